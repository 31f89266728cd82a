"""HTML/script injection in every text Alur shows back: unit names, user display names, role names, comments,
form values, late reasons, business keys, BPMN process/step names, documentation and SOP properties, file names
of attachments, substitution notes, notifications, the sign-in name, deploy problems and query strings. Every
page that can show them is fetched by the users who see them: each text appears (so the test looks where it is
shown), and never as live markup. The XLSX export keeps texts as text (no formula injection)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from engine import accounts
from engine.models import Attachment, Notification, Unit, User
from tests.hostile.helpers import GOOD_FORM, PDF, World, build_world
from tests.report_fixtures import linear_sop_bpmn

RAW = re.compile(r"<script>alert|<img src=x onerror|onerror=\"alert", re.IGNORECASE)


def payload(tag: str) -> str:
    return f"<script>alert(\"{tag}\")</script><img src=x onerror=\"alert('{tag}')\">"


def _xss_sop() -> bytes:
    steps = (("Step_A", payload("taskname"), "Kasubag", "PT15M"), ("Step_B", "Memeriksa", "Camat", "PT3H"))
    xml = linear_sop_bpmn(key="sop_xss", name=payload("procname"), steps=steps).decode()
    doc = f"<bpmn:documentation>{payload('doc').replace('&', '&amp;').replace('<', '&lt;')}</bpmn:documentation>"
    xml = xml.replace('<bpmn:userTask id="Step_A"', '<bpmn:userTask id="Step_A"', 1)
    xml = re.sub(r'(<bpmn:userTask id="Step_A"[^>]*>)', lambda m: m.group(1) + doc, xml, count=1)
    prop = f'<camunda:property name="sop.kelengkapan" value={quoteattr(payload("prop"))}/>'
    xml = xml.replace('<camunda:property name="sop.no" value="1"/>', '<camunda:property name="sop.no" value="1"/>'
                      + prop, 1)
    assert payload("prop")[:10] not in xml  # it is in there XML-escaped, as a designer's tool would write it
    return xml.encode()


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = build_world(tmp_path_factory.mktemp("xss"))
    svc = world.service
    with world.db.write() as s:
        s.execute(update(Unit).where(Unit.code == "kec-a").values(name=payload("unit")))
        s.execute(update(User).where(User.username == "kasubag").values(full_name=payload("fullname")))
        accounts.grant(s, "kasubag", payload("role"), "kec-a")
    svc.deploy({"sop_xss.bpmn": _xss_sop()})
    world.app = world.make_app()  # a fresh app: no cached unit names

    # web_flow in kec-a: Kasubag completes step 1 late, with a hostile note, reason, document name and comment.
    task_id = world.start(business_key=payload("bk"))
    kasubag = world.client("kasubag")
    assert kasubag.post(f"/tugas/{task_id}/komentar", data={"body": payload("comment")}).status_code == 302
    upload = kasubag.post(f"/tugas/{task_id}", data={"action": "upload", "document": (
        io.BytesIO(PDF), "<img src=x onerror=alert(1)>.pdf")}, content_type="multipart/form-data")
    assert upload.status_code == 302
    world.clock.advance(hours=3)
    done = kasubag.post(f"/tugas/{task_id}", data={**GOOD_FORM, "catatan": payload("form"),
                                                   "late_reason": payload("late")})
    assert done.status_code == 302, done.get_data(as_text=True)[:500]
    with world.db.write() as s:  # names are sanitised at upload; the page must escape even if one slips by
        s.execute(update(Attachment).values(original_name=payload("file") + ".pdf"))
        s.add(Notification(dedupe_key="xss", username="camat", kind="reminder", message=payload("notif"),
                           created_at=world.clock.now, instance_id=svc.task(task_id).instance_id, task_id=task_id))

    # sop_xss in kec-a: step A done late with a reason that Excel would run as a formula.
    view = svc.start("sop_xss", unit="kec-a", business_key=payload("bk"))
    world.clock.advance(hours=1)
    svc.complete(view.tasks[0].id, svc.actor("kasubag"), {}, late_reason='=HYPERLINK("http://evil.example/","klik")')

    admin = world.client("admin")
    assert admin.post("/admin/pengganti", data={"username": "staf", "role": "Kasubag", "unit": "kec-a",
                                                "starts_on": "2026-11-23", "ends_on": "2026-11-30", "kind": "Plh",
                                                "note": payload("note")}).status_code == 302
    world.xss_task = task_id  # type: ignore[attr-defined]
    world.xss_instance = svc.task(task_id).instance_id  # type: ignore[attr-defined]
    world.xss_sop_instance = view.id  # type: ignore[attr-defined]
    return world


def _pages(world: World) -> list[tuple[str, str]]:
    svc = world.service
    step2 = next(t.id for t in svc.tasks_for(svc.actor("camat")) if t.instance_id == world.xss_instance)  # type: ignore[attr-defined]
    xss_def = svc.definitions(key="sop_xss")[0].id
    flow_def = svc.definitions(key="web_flow")[0].id
    pages = [
        ("kasubag", "/"), ("kasubag", "/profil"), ("kasubag", f"/tugas/{world.xss_task}"),  # type: ignore[attr-defined]
        ("camat", "/"), ("camat", f"/tugas/{step2}"), ("camat", "/pengawasan/notifikasi"),
        ("camat", "/pengawasan/notifikasi?semua=1"), ("camat", "/pengawasan/instances"),
        ("camat", f"/pengawasan/instances/{world.xss_sop_instance}"),  # type: ignore[attr-defined]
        ("camat", "/pengawasan/laporan/sop_xss?dari=2026-11-01&sampai=2026-11-30"),
        ("admin", "/pengawasan/instances"), ("admin", f"/pengawasan/instances/{world.xss_instance}"),  # type: ignore[attr-defined]
        ("admin", "/pengawasan/laporan"), ("admin", "/pengawasan/laporan/web_flow?dari=2026-11-01&sampai=2026-11-30"),
        ("admin", "/pengawasan/laporan/web_flow/cetak?dari=2026-11-01&sampai=2026-11-30"),
        ("admin", f"/pengawasan/definitions/{xss_def}"), ("admin", f"/pengawasan/definitions/{xss_def}/dokumen"),
        ("admin", f"/pengawasan/definitions/{flow_def}"), ("admin", "/admin/pengganti"),
        ("desainer", "/desain/"), ("desainer", "/desain/pasang"),
    ]
    return pages


def _check(body: str, where: str) -> None:
    match = RAW.search(body)
    assert match is None, f"{where}: live markup {body[max(0, match.start() - 80):match.end() + 80]!r}"


def test_every_text_shown_back_is_escaped(poisoned: World) -> None:
    shown: set[str] = set()
    # (BPMN documentation is poisoned too but shown on no page: only the REST API returns it, as JSON.)
    tags = ["unit", "fullname", "role", "comment", "form", "late", "procname", "taskname", "prop", "bk", "file",
            "note", "notif"]
    clients = {u: poisoned.client(u) for u in ("kasubag", "camat", "admin", "desainer")}
    for user, path in _pages(poisoned):
        response = clients[user].get(path)
        assert response.status_code == 200, (user, path, response.status_code)
        assert response.mimetype == "text/html"
        body = response.get_data(as_text=True)
        _check(body, f"{user} {path}")
        shown |= {tag for tag in tags if f"alert(&#34;{tag}&#34;)" in body or f"alert(&quot;{tag}&quot;)" in body}
    assert sorted(set(tags) - shown) == []  # every hostile text was on some page (escaped)


def test_reflected_input_is_escaped(poisoned: World) -> None:
    """Query strings, the sign-in name, a 422 form and error pages echo what was sent: as text."""
    attack = payload("reflect")
    client = poisoned.client("kasubag")
    for path in ("/", "/profil", f"/tugas/{poisoned.xss_task}", "/pengawasan/instances", "/tidak-ada"):  # type: ignore[attr-defined]
        response = client.get(path, query_string={"next": attack, "sop": attack, "unit": attack, "page": attack,
                                                  "status": attack, "dari": attack, "semua": attack})
        _check(response.get_data(as_text=True), path)
    signin = poisoned.client().post("/masuk", data={"username": payload("login"), "password": "salah",
                                                    "next": attack})
    assert signin.status_code == 401
    body = signin.get_data(as_text=True)
    _check(body, "/masuk")
    assert "alert(&#34;login&#34;)" in body  # the name is given back for correction, escaped
    task_id = poisoned.start(business_key="REFLECT")
    refused = client.post(f"/tugas/{task_id}", data={**GOOD_FORM, "judul": "ab", "catatan": attack,
                                                     "kode": attack[:30]})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    _check(body, "422 form")
    assert "alert(&#34;reflect&#34;)" in body  # kept in the textarea for the user, escaped


def test_deploy_problems_echo_file_names_and_expressions_as_text(poisoned: World) -> None:
    bpmn = Path(__file__).resolve().parents[1] / "web" / "data" / "web_flow.bpmn"
    content = bpmn.read_bytes().replace(b'camunda:formRef="Form_keputusan"',
                                        b'camunda:formRef="&lt;script&gt;alert(&quot;expr&quot;)&lt;/script&gt;"')
    name = "<img src=x onerror=alert(1337)>deployfile.bpmn"  # a browser sends any name the file has
    response = poisoned.client("desainer").post("/desain/pasang", data={
        "files": [(io.BytesIO(content), name), (io.BytesIO(b"<broken"), "b.bpmn")]},
        content_type="multipart/form-data")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    _check(body, "/desain/pasang")
    assert "deployfile" in body and "expr" in body


def test_json_and_documents_are_not_html_with_scripts(poisoned: World) -> None:
    admin = poisoned.client("admin")
    for path in (f"/pengawasan/instances/{poisoned.xss_sop_instance}/diagram.json",  # type: ignore[attr-defined]
                 "/pengawasan/laporan/sop_xss/diagram.json"):
        response = admin.get(path)
        assert response.status_code == 200 and response.mimetype == "application/json"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    document = admin.get(f"/pengawasan/definitions/{poisoned.service.definitions(key='sop_xss')[0].id}/dokumen")
    assert "script-src" not in document.headers["Content-Security-Policy"]  # default-src 'none': no script runs


def test_xlsx_export_keeps_texts_as_text(poisoned: World) -> None:
    response = poisoned.client("admin").get("/pengawasan/laporan/sop_xss/xlsx?dari=2026-11-01&sampai=2026-11-30")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    cells = [c for row in sheet.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula, none injected
    assert any(isinstance(c.value, str) and c.value.startswith("=HYPERLINK") for c in cells)
    assert any(isinstance(c.value, str) and "alert(\"taskname\")" in c.value for c in cells)
