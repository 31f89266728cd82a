"""Inbox and task page: rights, every form rule through the HTML form, completion, double submit, late
reasons, substitution, comments."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine.accounts import SYSTEM
from engine.models import AuditEvent, Task
from tests.web.conftest import login

GOOD = {"judul": "Laporan bulanan", "kode": "AB-123", "jumlah": "7", "sifat": "biasa", "action": "complete"}


def _task_row(env, task_id):  # type: ignore[no-untyped-def]
    with env.db.read() as s:
        row = s.get(Task, task_id)
        return (row.state, row.assignee, row.form_data, row.late_reason)


def _audit_count(env, action: str) -> int:  # type: ignore[no-untyped-def]
    with env.db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0


def test_inbox_shows_my_lane_and_unit_only(env, client_for):  # type: ignore[no-untyped-def]
    env.start("kec-a", "LAP-A")
    env.start("kec-b", "LAP-B")
    assert "LAP-A" in client_for("kasubag").get("/").get_data(as_text=True)
    html = client_for("kasubag").get("/").get_data(as_text=True)
    assert "LAP-B" not in html
    assert "LAP-A" not in client_for("camat").get("/").get_data(as_text=True)  # another lane
    assert "LAP-B" in client_for("kasubag.b").get("/").get_data(as_text=True)


def test_inbox_pages_past_the_counting_cap(env, app, client_for):  # type: ignore[no-untyped-def]
    for i in range(4):
        env.start("kec-a", f"LAP-{i}")
    app.config.update(ALUR_INBOX_PAGE_SIZE=1, ALUR_INBOX_COUNT_CAP=2)
    client = client_for("kasubag")
    first = client.get("/").get_data(as_text=True)
    assert "(2+)" in first and "page=2" in first and "dari" not in first  # a lower bound, no "page 1 of 2"
    shown = []
    for page in range(1, 5):
        html = client.get(f"/?page={page}").get_data(as_text=True)
        shown += [key for key in ("LAP-0", "LAP-1", "LAP-2", "LAP-3") if key in html]
        assert (f"page={page + 1}" in html) == (page < 4)  # the last page has no next link
    assert sorted(shown) == ["LAP-0", "LAP-1", "LAP-2", "LAP-3"]


def test_another_units_task_is_404_and_nothing_changes(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start("kec-b")
    before = _task_row(env, task_id)
    client = client_for("kasubag")  # Kasubag of kec-a, not kec-b
    page = client.get(f"/tugas/{task_id}")
    assert page.status_code == 404
    assert "Tidak ditemukan" in page.get_data(as_text=True)
    assert client.post(f"/tugas/{task_id}", data=GOOD).status_code == 404
    assert client.post(f"/tugas/{task_id}/ambil").status_code == 404
    assert client.post(f"/tugas/{task_id}/komentar", data={"body": "halo"}).status_code == 404
    assert _task_row(env, task_id) == before
    assert _audit_count(env, "complete") == 0


def test_another_lanes_task_is_read_only_and_403(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    before = _task_row(env, task_id)
    client = client_for("camat")  # same unit, other lane
    page = client.get(f"/tugas/{task_id}").get_data(as_text=True)
    assert "tidak mengerjakannya" in page
    response = client.post(f"/tugas/{task_id}", data=GOOD)
    assert response.status_code == 403
    assert "Tidak diizinkan" in response.get_data(as_text=True)
    assert client.post(f"/tugas/{task_id}/ambil").status_code == 403
    assert _task_row(env, task_id) == before


@pytest.mark.parametrize(("field", "bad", "message", "good"), [
    ("judul", "", "wajib diisi", "Laporan"),
    ("judul", "ab", "minimal 3 karakter", "abc"),
    ("judul", "x" * 41, "maksimal 40 karakter", "x" * 40),
    ("kode", "ab-12", "format tidak sesuai", "AB-123"),
    ("jumlah", "0", "minimal 1", "1"),
    ("jumlah", "101", "maksimal 100", "100"),
    ("jumlah", "1.5", "harus bilangan bulat", "2"),
    ("jumlah", "sepuluh", "harus angka", "10"),
    ("sifat", "kilat", "pilihan tidak dikenal", "segera"),
    ("sifat", "", "wajib diisi", "biasa"),
    ("tanggal", "31-02-2026", "tanggal tidak valid", "2026-11-20"),
    ("tembusan", "lurah", "pilihan tidak dikenal", "camat"),
])
def test_form_rules_through_html(env, client_for, field, bad, message, good):  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = client_for("kasubag")
    data = {**GOOD, field: bad, "catatan": "teks yang diketik tidak hilang"}
    response = client.post(f"/tugas/{task_id}", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html
    assert 'aria-invalid="true"' in html
    assert "teks yang diketik tidak hilang" in html  # the user's input is kept
    if bad and field not in ("sifat", "tembusan"):
        assert f'value="{bad}"' in html
    assert _task_row(env, task_id)[0] == "READY"
    response = client.post(f"/tugas/{task_id}", data={**data, field: good})
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    state, _, form_data, _ = _task_row(env, task_id)
    assert state == "COMPLETED"
    expected = int(good) if field == "jumlah" else ([good] if field == "tembusan" else good)
    assert form_data[field] == expected


def test_complete_goes_to_inbox_and_next_lane(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = client_for("kasubag")
    response = client.post(f"/tugas/{task_id}", data={**GOOD, "tembusan": ["camat", "sekcam"], "lengkap": "true"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Langkah selesai" in client.get("/").get_data(as_text=True)
    _, _, form_data, _ = _task_row(env, task_id)
    assert form_data["dua_kali"] == 14  # the expression, computed on submit
    assert form_data["tembusan"] == ["camat", "sekcam"]
    assert form_data["lengkap"] is True
    camat = client_for("camat").get("/").get_data(as_text=True)
    assert "Memeriksa laporan" in camat
    assert "Memeriksa laporan" not in client.get("/").get_data(as_text=True)


def test_double_submit_completes_once(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = client_for("kasubag")
    assert client.post(f"/tugas/{task_id}", data=GOOD).status_code == 302
    second = client.post(f"/tugas/{task_id}", data={**GOOD, "judul": "Judul lain"})
    assert second.status_code == 409
    assert "sudah diselesaikan" in second.get_data(as_text=True)
    assert _audit_count(env, "complete") == 1
    assert _task_row(env, task_id)[2]["judul"] == GOOD["judul"]


def test_concurrent_double_submit_completes_once(env, app):  # type: ignore[no-untyped-def]
    task_id = env.start()
    clients = [app.test_client(), app.test_client()]
    for c in clients:
        login(c, "kasubag")
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def post(c):  # type: ignore[no-untyped-def]
        barrier.wait()
        codes.append(c.post(f"/tugas/{task_id}", data=GOOD).status_code)

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [302, 409]
    assert _audit_count(env, "complete") == 1
    with env.db.read() as s:  # exactly one next step
        assert s.scalar(select(func.count()).select_from(Task).where(Task.element_id == "Step_2")) == 1


def test_submit_after_a_rival_completed_the_open_page_is_409_not_403(env, app):  # type: ignore[no-untyped-def]
    """The page was open when a colleague completed the step: the submit reads the task once, in its own
    write transaction, sees it is no longer READY before asking whose it is, and changes nothing."""
    task_id = env.start()
    client = app.test_client()
    login(client, "kasubag")
    assert client.get(f"/tugas/{task_id}").status_code == 200
    svc = app.extensions["alur"]
    rival = next(t for t in svc.instance(svc.task(task_id).instance_id).tasks if t.id == task_id)
    svc.complete(rival.id, SYSTEM, {k: v for k, v in GOOD.items() if k != "action"} | {"jumlah": 7})
    response = client.post(f"/tugas/{task_id}", data=GOOD)
    assert response.status_code == 409
    assert _audit_count(env, "complete") == 1


def test_submit_reads_the_task_once(env, app):  # type: ignore[no-untyped-def]
    """A submit without a file is one write transaction: the task page is not read first (it used to be,
    which cost a round trip per completion and opened a window between two reads)."""
    task_id = env.start()
    client = app.test_client()
    login(client, "kasubag")
    svc = app.extensions["alur"]
    calls: list[str] = []
    real_task_page = svc.task_page
    svc.task_page = lambda *a, **k: calls.append("task_page") or real_task_page(*a, **k)  # type: ignore[method-assign]
    try:
        assert client.post(f"/tugas/{task_id}", data=GOOD).status_code == 302
        assert calls == []
        # With a mistake the page is read, to show the form again with the message.
        second = env.start()
        bad = {**GOOD, "jumlah": "bukan angka"}
        assert client.post(f"/tugas/{second}", data=bad).status_code == 422
        assert calls == ["task_page"]
    finally:
        del svc.task_page


def test_a_step_reached_again_through_the_loop_starts_from_the_last_round(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    kasubag, camat = client_for("kasubag"), client_for("camat")
    fresh = kasubag.get(f"/tugas/{task_id}").get_data(as_text=True)
    assert "Laporan bulanan" not in fresh and "putaran sebelumnya" not in fresh
    assert kasubag.post(f"/tugas/{task_id}", data=GOOD).status_code == 302
    with env.db.read() as s:
        review = s.scalar(select(Task.id).where(Task.element_id == "Step_2", Task.state == "READY"))
    sent_back = camat.post(f"/tugas/{review}", data={"keputusan": "tidak", "catatan": "Kode salah",
                                                      "action": "complete"})
    assert sent_back.status_code == 302
    with env.db.read() as s:
        again = s.scalar(select(Task.id).where(Task.element_id == "Step_1", Task.state == "READY"))
    assert again and again != task_id
    page = kasubag.get(f"/tugas/{again}").get_data(as_text=True)
    assert 'value="Laporan bulanan"' in page and 'value="AB-123"' in page and "putaran sebelumnya" in page
    # Someone who may only look at the step sees no pre-filled form data of another round.
    assert "putaran sebelumnya" not in camat.get(f"/tugas/{again}").get_data(as_text=True)


def test_late_reason_is_required_past_the_deadline(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    env.clock.advance(hours=5)
    client = client_for("kasubag")
    page = client.get(f"/tugas/{task_id}").get_data(as_text=True)
    assert "Terlambat" in page and "Alasan keterlambatan" in page
    response = client.post(f"/tugas/{task_id}", data=GOOD)
    assert response.status_code == 422
    assert _task_row(env, task_id)[0] == "READY"
    response = client.post(f"/tugas/{task_id}", data={**GOOD, "late_reason": "Listrik padam"})
    assert response.status_code == 302
    assert _task_row(env, task_id)[3] == "Listrik padam"


def test_claim_and_unclaim(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = client_for("kasubag")
    assert client.post(f"/tugas/{task_id}/ambil", data={"next": "/"}).status_code == 302
    assert _task_row(env, task_id)[1] == "kasubag"
    assert "Diambil saya" in client.get("/").get_data(as_text=True)
    assert client.post(f"/tugas/{task_id}/lepas").status_code == 302
    assert _task_row(env, task_id)[1] is None


def test_inbox_row_shows_deadline_time_left_and_the_right_button(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start("kec-a", "LAP-BATAS")
    client = client_for("kasubag")
    row = _inbox_row(client.get("/").get_data(as_text=True), task_id)
    assert "Batas: Sen, 23 Nov 2026 11.00 WIB" in row and "dalam 2 jam" in row  # the unit's time zone
    assert f'action="/tugas/{task_id}/ambil"' in row and ">Ambil<" in row and "Diambil saya" not in row
    client.post(f"/tugas/{task_id}/ambil")
    env.clock.advance(hours=1, minutes=59, seconds=40)
    row = _inbox_row(client.get("/").get_data(as_text=True), task_id)
    assert "dalam 1 menit" in row and 'class="task"' in row  # twenty seconds left: not "0 minutes"
    assert f'action="/tugas/{task_id}/lepas"' in row and ">Lepas<" in row and "Diambil saya" in row
    env.clock.advance(minutes=5)
    client.post("/bahasa", data={"locale": "en", "next": "/"})
    row = _inbox_row(client.get("/").get_data(as_text=True), task_id)
    assert 'class="task late"' in row and ">Overdue<" in row and "Mon, 23 Nov 2026 11:00 WIB" in row


def _inbox_row(html: str, task_id: str) -> str:
    start = html.rindex("<li", 0, html.index(f'href="/tugas/{task_id}"'))
    return html[start:html.index("</li>", start)]


def test_inbox_filters_and_pages(env, client_for):  # type: ignore[no-untyped-def]
    for i in range(30):
        env.start("kec-a", f"LAP-{i:03d}")
    client = client_for("kasubag")
    first = client.get("/").get_data(as_text=True)
    assert "(30)" in first and "Halaman 1 dari 2" in first
    second = client.get("/?page=2").get_data(as_text=True)
    assert second.count('class="task"') == 5
    assert client.get("/?sop=web_flow&unit=kec-a").status_code == 200
    assert client.get("/?sop=tidak-ada&page=x").status_code == 200  # unknown filters are ignored


def test_inbox_sorted_by_deadline_with_my_tasks_first(env, client_for):  # type: ignore[no-untyped-def]
    early = env.start("kec-a", "LAP-AWAL")
    env.clock.advance(minutes=30)
    late = env.start("kec-a", "LAP-AKHIR")
    client = client_for("kasubag")
    html = client.get("/").get_data(as_text=True)
    assert html.index("LAP-AWAL") < html.index("LAP-AKHIR")
    client.post(f"/tugas/{late}/ambil")
    html = client.get("/").get_data(as_text=True)
    assert html.index("LAP-AKHIR") < html.index("LAP-AWAL")
    assert early


def test_substitution_shows_the_task_with_badge(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    staf = client_for("staf")
    assert task_id not in staf.get("/").get_data(as_text=True)
    admin = client_for("admin")
    today = env.clock().date()
    bad = admin.post("/admin/pengganti", data={"username": "staf", "role": "Kasubag", "unit": "kec-a",
                                               "starts_on": today.isoformat(),
                                               "ends_on": (today - timedelta(days=1)).isoformat(), "kind": "Plh"})
    assert bad.status_code == 422
    ok = admin.post("/admin/pengganti", data={"username": "staf", "role": "Kasubag", "unit": "kec-a",
                                              "starts_on": today.isoformat(),
                                              "ends_on": (today + timedelta(days=3)).isoformat(), "kind": "Plh"})
    assert ok.status_code == 302
    staf = client_for("staf")  # a new request loads the actor with today's substitutions
    html = staf.get("/").get_data(as_text=True)
    assert task_id in html and "Plh Kasubag" in html
    assert "Plh Kasubag" in staf.get("/profil").get_data(as_text=True)
    assert staf.post(f"/tugas/{task_id}", data=GOOD).status_code == 302
    assert _task_row(env, task_id)[0] == "COMPLETED"


def test_substitution_page_is_for_admins(client_for):  # type: ignore[no-untyped-def]
    assert client_for("kasubag").get("/admin/pengganti").status_code == 403


def test_comments(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = client_for("kasubag")
    assert client.post(f"/tugas/{task_id}/komentar", data={"body": "  "}).status_code == 422
    assert client.post(f"/tugas/{task_id}/komentar", data={"body": "Data <b>belum</b> lengkap"}).status_code == 302
    html = client_for("camat").get(f"/tugas/{task_id}").get_data(as_text=True)
    assert "Data &lt;b&gt;belum&lt;/b&gt; lengkap" in html  # escaped


def test_task_page_is_small_and_works_without_javascript(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    response = client_for("kasubag").get(f"/tugas/{task_id}")
    html = response.get_data(as_text=True)
    assert len(response.data) < 100 * 1024
    assert "<script" not in html
    assert 'enctype="multipart/form-data"' in html
    for text in ("Pelaksana", "Kasubag", "Waktu baku", "2 jam", "Kelengkapan", "Surat permintaan", "Draf laporan",
                 "Sen, 23 Nov 2026 11.00 WIB"):
        assert text in html


def test_completed_task_page_says_so(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = client_for("kasubag")
    client.post(f"/tugas/{task_id}", data=GOOD)
    assert "sudah diselesaikan oleh kasubag" in client.get(f"/tugas/{task_id}").get_data(as_text=True)


def test_unknown_task_is_404(client_for):  # type: ignore[no-untyped-def]
    assert client_for("kasubag").get("/tugas/tidak-ada").status_code == 404
