"""Pengawasan pages: a supervisor of one unit never sees another unit's instances or numbers; supervisor actions
are allowed to the SOP's supervisor role only, and audited; bell, SOP document, exports."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from engine import accounts, supervision
from engine.accounts import SYSTEM
from engine.errors import InvalidState
from engine.models import AuditEvent, Notification, Task
from tests.report_fixtures import linear_sop_bpmn, run_instance
from tests.web.conftest import PASSWORD, Env, csrf_token, login, make_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sup(env: Env) -> Env:
    """The three-step SOP (supervisor role Camat) plus a Camat of Kecamatan B and a Sekda-level Camat role
    holder at the kabupaten; one finished and one overdue instance in A, one finished in B."""
    with env.db.write() as s:
        accounts.add_user(s, "camat.b", PASSWORD)
        accounts.grant(s, "camat.b", "Camat", "kec-b")
        accounts.add_user(s, "sekda", PASSWORD)
        accounts.grant(s, "sekda", "Camat", "kab")
    env.service.deploy({"sop_uji.bpmn": linear_sop_bpmn()})
    start = env.clock.now
    run_instance(env.service, env.clock, start, [10, 30, 10], business_key="LAP-A-SELESAI")
    run_instance(env.service, env.clock, start + timedelta(days=1), [20, 30, 10], unit="kec-b",
                 business_key="LAP-B-SELESAI")
    env.clock.now = start + timedelta(days=2)
    view = env.service.start("sop_uji", unit="kec-a", business_key="LAP-A-TERLAMBAT")
    env.clock.advance(minutes=40)  # Step_A (15 minutes) is now overdue
    env.overdue_id = view.id  # type: ignore[attr-defined]
    return env


def _task(env: Env, instance_id: str) -> Task:
    with env.db.read() as s:
        return s.query(Task).filter(Task.instance_id == instance_id, Task.state == "READY").one()


def _audit(env: Env, instance_id: str) -> list[str]:
    with env.db.read() as s:
        return [a.action for a in s.query(AuditEvent).filter(AuditEvent.instance_id == instance_id)
                .order_by(AuditEvent.id)]


def test_supervisor_of_another_unit_sees_nothing_of_it(sup: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    b = client_for("camat.b")
    page = b.get("/pengawasan/instances").get_data(as_text=True)
    assert "LAP-B-SELESAI" in page and "LAP-A" not in page
    assert b.get(f"/pengawasan/instances/{sup.overdue_id}").status_code == 404  # type: ignore[attr-defined]
    assert b.get(f"/pengawasan/instances/{sup.overdue_id}/diagram.json").status_code == 404  # type: ignore[attr-defined]
    # Naming the other unit in the filter gives nothing either.
    assert "LAP-A" not in b.get("/pengawasan/instances?unit=kec-a").get_data(as_text=True)
    report = b.get("/pengawasan/laporan/sop_uji?dari=2026-01-01&sampai=2026-12-31").get_data(as_text=True)
    assert "Kecamatan B" in report and "Kecamatan A" not in report
    xlsx = b.get("/pengawasan/laporan/sop_uji/xlsx?dari=2026-01-01&sampai=2026-12-31&unit=kec-a")
    ws = load_workbook(io.BytesIO(xlsx.data))["Laporan monitoring"]
    head = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "No")
    # A unit they may not see is ignored as a filter: the numbers are B's only (A's step took 10 minutes).
    assert ws.cell(head + 1, 6).value == 1 and ws.cell(head + 1, 7).value == 20
    assert ws.cell(3, 2).value == "Semua unit yang Anda awasi"
    assert supervision.report(sup.service, sup.service.actor("camat.b"), "sop_uji", unit_code="kec-a").total_done == 0


def test_unit_above_and_admin_see_every_unit_below(sup: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    for user in ("sekda", "admin"):
        page = client_for(user).get("/pengawasan/instances").get_data(as_text=True)
        assert "LAP-A-SELESAI" in page and "LAP-B-SELESAI" in page and "LAP-A-TERLAMBAT" in page
    overdue = client_for("camat").get("/pengawasan/instances?terlambat=1").get_data(as_text=True)
    assert "LAP-A-TERLAMBAT" in overdue and "LAP-A-SELESAI" not in overdue
    done = client_for("camat").get("/pengawasan/instances?status=completed").get_data(as_text=True)
    assert "LAP-A-SELESAI" in done and "LAP-A-TERLAMBAT" not in done


def test_instance_page_marks_the_overdue_step(sup: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    camat = client_for("camat")
    iid = sup.overdue_id  # type: ignore[attr-defined]
    page = camat.get(f"/pengawasan/instances/{iid}").get_data(as_text=True)
    assert 'data-element-id="Step_A"' in page and "alur-step-overdue" in page
    assert "bpmn-navigated-viewer.production.min.js" in page and "instance-diagram.js" in page
    data = camat.get(f"/pengawasan/instances/{iid}/diagram.json").get_json()
    assert data["xml"].startswith("<?xml") and {"id": "Step_A", "cls": "alur-overdue"} in data["markers"]
    assert data["badges"] == [{"id": "Step_A", "text": "Kasubag", "cls": "alur-badge-overdue"}]
    finished = camat.get("/pengawasan/instances?status=completed").get_data(as_text=True)
    assert "LAP-A-SELESAI" in finished


def test_supervisor_actions_are_checked_and_audited(sup: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    iid = sup.overdue_id  # type: ignore[attr-defined]
    staff = client_for("kasubag")
    assert staff.get(f"/pengawasan/instances/{iid}").status_code == 200  # may see its unit…
    assert staff.post(f"/pengawasan/instances/{iid}/tangguhkan").status_code == 403  # …but not act
    assert client_for("camat.b").post(f"/pengawasan/instances/{iid}/tangguhkan").status_code == 404

    camat = client_for("camat")
    response = camat.post(f"/pengawasan/instances/{iid}/tangguhkan", data={"reason": "menunggu anggaran"})
    assert response.status_code == 302
    assert sup.service.instance(iid).status == "suspended"
    task = _task(sup, iid)
    with pytest.raises(InvalidState):
        sup.service.complete(task.id, SYSTEM, {}, late_reason="x")
    with pytest.raises(InvalidState):  # nor claimed, as in Camunda
        sup.service.claim(task.id, sup.service.actor("kasubag"))
    assert _task(sup, iid).assignee is None
    camat.post(f"/pengawasan/instances/{iid}/lanjutkan")
    assert sup.service.instance(iid).status == "running"

    # Reassign: only to someone holding a role in the step's unit; the new assignee is notified.
    camat.post(f"/pengawasan/tasks/{task.id}/tugaskan", data={"assignee": "kasubag.b"})
    assert _task(sup, iid).assignee is None
    camat.post(f"/pengawasan/tasks/{task.id}/tugaskan", data={"assignee": "staf"})
    assert _task(sup, iid).assignee == "staf"
    with sup.db.read() as s:
        assert s.query(Notification).filter_by(username="staf", kind="assignment").count() == 1

    page = camat.post(f"/pengawasan/instances/{iid}/batalkan", data={"reason": ""}, follow_redirects=True)
    assert "wajib diisi" in page.get_data(as_text=True) and sup.service.instance(iid).status == "running"
    camat.post(f"/pengawasan/instances/{iid}/batalkan", data={"reason": "salah input"})
    view = sup.service.instance(iid)
    assert view.status == "cancelled" and view.ended_at is not None
    assert [t.state for t in view.tasks] == ["CANCELLED"]
    actions = _audit(sup, iid)
    assert actions[actions.index("suspend"):] == ["suspend", "resume", "reassign", "cancel"]
    audit_page = camat.get(f"/pengawasan/instances/{iid}").get_data(as_text=True)
    assert "salah input" in audit_page and 'data-action="cancel"' in audit_page
    # Cancelled is final.
    assert camat.post(f"/pengawasan/instances/{iid}/lanjutkan").status_code == 409


def test_bell_lists_unread_and_marks_read_with_csrf(sup: Env) -> None:
    with sup.db.write() as s:
        s.add(Notification(dedupe_key="escalation:x:camat", username="camat", kind="escalation",
                           instance_id=sup.overdue_id, task_id=None,  # type: ignore[attr-defined]
                           message="Langkah Menyiapkan bahan terlambat", created_at=sup.clock.now))
    app = make_app(sup, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    page = client.get("/masuk").get_data(as_text=True)
    client.post("/masuk", data={"username": "camat", "password": PASSWORD, "csrf_token": csrf_token(page)})
    home = client.get("/pengawasan/notifikasi").get_data(as_text=True)
    assert 'class="alur-bell-count">1<' in home and "Menyiapkan bahan terlambat" in home
    with sup.db.read() as s:
        nid = s.query(Notification).filter_by(username="camat").one().id
    target = client.get(f"/pengawasan/notifikasi/{nid}")
    assert target.headers["Location"].endswith(f"/pengawasan/instances/{sup.overdue_id}")  # type: ignore[attr-defined]
    assert client.post("/pengawasan/notifikasi/baca", data={"id": nid}).status_code == 400  # no CSRF token
    client.post("/pengawasan/notifikasi/baca", data={"id": nid, "csrf_token": csrf_token(home)})
    assert "alur-bell-count" not in client.get("/pengawasan/notifikasi").get_data(as_text=True)
    # Another user's notification cannot be opened.
    other = make_app(sup).test_client()
    login(other, "kasubag")
    assert other.get(f"/pengawasan/notifikasi/{nid}").status_code == 404


def test_definition_page_shows_the_sop_document_and_versions(sup: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    camat = client_for("camat")
    definition_id = sup.service.definitions(key="sop_uji")[0].id
    page = camat.get(f"/pengawasan/definitions/{definition_id}").get_data(as_text=True)
    assert "v1" in page and f"/pengawasan/definitions/{definition_id}/dokumen" in page
    doc = camat.get(f"/pengawasan/definitions/{definition_id}/dokumen")
    assert doc.status_code == 200 and "Menyiapkan bahan" in doc.get_data(as_text=True)
    assert "script-src" not in doc.headers["Content-Security-Policy"]
    assert "default-src 'none'" in doc.headers["Content-Security-Policy"]


def test_report_page_exports(sup: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    admin = client_for("admin")
    q = "?dari=2026-11-01&sampai=2026-11-30"
    page = admin.get(f"/pengawasan/laporan/sop_uji{q}").get_data(as_text=True)
    assert "Menyiapkan bahan" in page and "<svg" in page and 'id="alur-diagram"' in page
    heat = admin.get(f"/pengawasan/laporan/sop_uji/diagram.json{q}").get_json()
    assert {"id": "Step_B", "cls": "alur-heat-good"} in heat["markers"]
    printable = admin.get(f"/pengawasan/laporan/sop_uji/cetak{q}")
    assert "Laporan Monitoring Kinerja SOP" in printable.get_data(as_text=True)
    assert printable.headers["Content-Security-Policy"].startswith("default-src 'none'")
    pdf = admin.get(f"/pengawasan/laporan/sop_uji/pdf{q}")
    assert pdf.data.startswith(b"%PDF")
    assert admin.get("/pengawasan/laporan/tidak_ada").status_code == 404


def test_vendored_viewer_matches_the_pinned_package() -> None:
    vendored = ROOT / "web/static/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js"
    assert vendored.read_bytes().startswith(b"/*! bpmn-js - bpmn-navigated-viewer")
    assert (ROOT / "web/static/vendor/bpmn-js/LICENSE").read_text().startswith("Copyright")
    source = ROOT / "node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js"
    if not source.exists():
        pytest.skip("node_modules not installed")
    assert vendored.read_bytes() == source.read_bytes(), "run .venv/bin/python -m web.vendor_assets"


def test_bell_count_stops_at_99_plus(sup: Env) -> None:
    with sup.db.write() as s:
        for i in range(120):
            s.add(Notification(dedupe_key=f"notice:{i}:camat", username="camat", kind="escalation",
                               instance_id=sup.overdue_id, task_id=None,  # type: ignore[attr-defined]
                               message=f"Pemberitahuan {i}", created_at=sup.clock.now))
    client = make_app(sup).test_client()
    login(client, "camat")
    assert 'class="alur-bell-count">99+<' in client.get("/").get_data(as_text=True)
    client.post("/pengawasan/notifikasi/baca")  # all read (CSRF is off in this app)
    assert "alur-bell-count" not in client.get("/").get_data(as_text=True)


def test_notifications_page_speaks_the_readers_language(env, client_for) -> None:  # type: ignore[no-untyped-def]
    from engine import notify

    info = notify.TaskInfo("t1", "i1", "Memeriksa laporan", "Laporan Uji", "Kecamatan A", "Asia/Jakarta",
                           env.clock.now, business_key="LAP-9")
    with env.db.write() as s:
        notify.store(s, kind="reminder", usernames=["camat"], message=notify.reminder_message(info),
                     now=env.clock.now, task_id="t1", data={"task": info.to_json()})
    client = client_for("camat")
    assert "Pengingat: langkah &#39;Memeriksa laporan&#39;" in client.get("/pengawasan/notifikasi").get_data(
        as_text=True)
    client.post("/bahasa", data={"locale": "en", "next": "/"})
    page = client.get("/pengawasan/notifikasi").get_data(as_text=True)
    assert "Reminder: step &#39;Memeriksa laporan&#39;" in page and "Pengingat" not in page


@pytest.mark.parametrize("query", ["sampai=9999-12-31", "dari=0001-01-01", "dari=2026-01-01&sampai=2200-01-01"])
def test_far_periods_get_a_clear_400_not_a_500(sup: Env, client_for, query: str) -> None:  # type: ignore[no-untyped-def]
    """`sampai=9999-12-31` overflowed the period's end (a 500); a period outside 1900–2199 is refused, saying so."""
    admin = client_for("admin")
    for path in ("/pengawasan/instances", "/pengawasan/laporan/sop_uji", "/pengawasan/laporan/sop_uji/xlsx",
                 "/pengawasan/laporan/sop_uji/diagram.json"):
        response = admin.get(f"{path}?{query}")
        body = response.get_data(as_text=True)
        assert response.status_code == 400, (path, body[:300])
        assert "di luar rentang yang didukung: 1900-01-01 s.d. 2199-12-31" in body, path
    # The window's own ends are fine.
    assert admin.get("/pengawasan/laporan/sop_uji?dari=1900-01-01&sampai=2199-12-31").status_code == 200
    assert admin.get("/pengawasan/instances?dari=1900-01-01&sampai=2199-12-31").status_code == 200
