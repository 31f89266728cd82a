"""Desain Proses: designers upload .bpmn/.form files on the web (every problem listed and nothing stored on
failure; versions on success), see every process with its versions and running instances, and anyone may start a
definition from its page in a unit where they may start."""

from __future__ import annotations

import io
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from engine import accounts
from engine.models import Deployment, FormDefinition, ProcessDefinition, ProcessInstance
from engine.service import MAX_DEPLOY_FILE_BYTES
from tests.web.conftest import DATA, PASSWORD, Env, csrf_token, make_app

SOURCE = (DATA / "web_flow.bpmn").read_bytes()
FORMS = {p.name: p.read_bytes() for p in sorted(DATA.iterdir()) if p.suffix == ".form"}
NEW_PROCESS = SOURCE.replace(b"web_flow", b"desain_uji").replace(b'name="Laporan Uji Web"', b'name="Proses Desain Uji"')


@pytest.fixture
def designer_env(env: Env) -> Env:
    with env.db.write() as s:
        accounts.add_user(s, "desainer", PASSWORD, full_name="Desainer")
        accounts.grant(s, "desainer", "designer")
    return env


def _rows(env: Env) -> tuple[int, int, int]:
    """(definitions, deployments, form versions) stored."""
    with env.db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(model))  # type: ignore[return-value]
                     for model in (ProcessDefinition, Deployment, FormDefinition))


def _upload(client: FlaskClient, files: dict[str, bytes], name: str = "Uji desain", **extra: str):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {"name": name, "files": [(io.BytesIO(c), n) for n, c in files.items()], **extra}
    return client.post("/desain/pasang", data=data, content_type="multipart/form-data")


def _problem_rows(html: str) -> list[list[str]]:
    """The cells of the problem table, tags stripped."""
    section = html.split('class="card alur-problems"', 1)[1].split("</section>", 1)[0]
    body = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]


def test_only_designers_see_and_use_the_pages(designer_env: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    staff = client_for("kasubag")
    before = _rows(designer_env)
    assert staff.get("/desain/").status_code == 403
    assert staff.get("/desain/pasang").status_code == 403
    assert _upload(staff, {"desain_uji.bpmn": NEW_PROCESS, **FORMS}).status_code == 403
    assert _rows(designer_env) == before
    assert 'href="/desain/"' not in staff.get("/").get_data(as_text=True)

    designer = client_for("desainer")
    assert 'href="/desain/"' in designer.get("/").get_data(as_text=True)
    assert designer.get("/desain/").status_code == 200
    form = designer.get("/desain/pasang").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in form and 'name="files"' in form and "multiple" in form


def test_a_post_without_csrf_token_is_refused(designer_env: Env) -> None:
    app = make_app(designer_env, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    page = client.get("/masuk").get_data(as_text=True)
    client.post("/masuk", data={"username": "desainer", "password": PASSWORD, "csrf_token": csrf_token(page)})
    before = _rows(designer_env)
    refused = _upload(client, {"desain_uji.bpmn": NEW_PROCESS})
    assert refused.status_code == 400 and "kedaluwarsa" in refused.get_data(as_text=True)
    assert _rows(designer_env) == before
    token = csrf_token(client.get("/desain/pasang").get_data(as_text=True))
    assert _upload(client, {"desain_uji.bpmn": NEW_PROCESS}, csrf_token=token).status_code == 200
    assert _rows(designer_env)[0] == before[0] + 1


def test_invalid_files_list_every_problem_and_store_nothing(designer_env: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    one = NEW_PROCESS.replace(b'camunda:dueDate="PT2H"', b'camunda:dueDate="dua jam"').replace(
        b'<bpmn:userTask id="Step_3"', b'<bpmn:scriptTask id="Script_1" scriptFormat="python"><bpmn:script>1'
        b'</bpmn:script></bpmn:scriptTask><bpmn:userTask id="Step_3"')
    two = SOURCE.replace(b"web_flow", b"desain_dua").replace(
        b'camunda:formRef="Form_keputusan"', b'camunda:formRef="Form_tidak_ada"').replace(
        b'camunda:dueDate="P1D"', b'camunda:dueDate="besok"')
    changed_form = {n: c.replace(b'"Form_web_rules"', b'"Form_web_rules_baru"') for n, c in FORMS.items()}
    before = _rows(designer_env)
    r = _upload(client_for("desainer"), {"satu.bpmn": one, "dua.bpmn": two, **changed_form})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "Tidak dipasang: 5 masalah ditemukan" in html
    rows = _problem_rows(html)
    assert [(f, e, line) for f, e, line, _ in rows] == [
        ("dua.bpmn", "Step_2", "44"), ("dua.bpmn", "Step_2", "44"), ("satu.bpmn", "Step_1", "31"),
        ("satu.bpmn", "Script_1", "53"), ("satu.bpmn", "Script_1", "53")]
    messages = " | ".join(m for *_, m in rows)
    assert "&#39;besok&#39;" in messages and "Form_tidak_ada" in messages and "&#39;dua jam&#39;" in messages
    assert "script tasks are not allowed" in messages and "not reachable" in messages
    assert _rows(designer_env) == before  # not even the valid, changed form


def test_hostile_xml_is_refused_clearly(designer_env: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    hostile = (b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
               b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&xxe;</bpmn:definitions>')
    before = _rows(designer_env)
    r = _upload(client_for("desainer"), {"jahat.bpmn": hostile})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert _problem_rows(html) == [["jahat.bpmn", "–", "2", "DOCTYPE declarations are not allowed in BPMN files"]]
    assert "root:" not in html
    assert _rows(designer_env) == before


def test_oversized_upload_is_413_and_stores_nothing(designer_env: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    big = NEW_PROCESS + b"<!--" + b"x" * (MAX_DEPLOY_FILE_BYTES - len(NEW_PROCESS)) + b"-->"
    before = _rows(designer_env)
    r = _upload(client_for("desainer"), {"desain_uji.bpmn": big, **FORMS})
    assert r.status_code == 413
    assert "lebih besar dari 5 MB" in r.get_data(as_text=True)
    assert _rows(designer_env) == before


def test_no_file_chosen(designer_env: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    r = client_for("desainer").post("/desain/pasang", data={"name": "kosong"}, content_type="multipart/form-data")
    assert r.status_code == 400 and "Pilih minimal satu berkas" in r.get_data(as_text=True)


def test_versions_duplicates_and_the_definitions_list(designer_env: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    designer = client_for("desainer")
    first = _upload(designer, {"desain_uji.bpmn": NEW_PROCESS, **FORMS})
    html = first.get_data(as_text=True)
    assert first.status_code == 200 and "Berhasil dipasang" in html
    assert re.search(r"Proses Desain Uji</a>.*?v1</td>.*?versi baru", html, re.S)
    [v1] = designer_env.service.definitions(key="desain_uji")
    assert v1.version == 1
    deployment = designer_env.service.deployments(deployment_id=v1.deployment_id)[0][0]
    assert deployment["name"] == "Uji desain" and deployment["source"] == "Alur web"
    assert deployment["deployed_by"] == "desainer"

    before = _rows(designer_env)
    again = _upload(designer, {"desain_uji.bpmn": NEW_PROCESS, **FORMS}).get_data(as_text=True)
    assert "Tidak ada perubahan" in again and "<b>versi baru</b>" not in again and "tidak berubah" in again
    assert _rows(designer_env) == before

    changed = NEW_PROCESS.replace(b'name="Menyusun laporan"', b'name="Menyusun laporan (revisi)"')
    third = _upload(designer, {"desain_uji.bpmn": changed, **FORMS}).get_data(as_text=True)
    assert re.search(r"v2</td>.*?versi baru", third, re.S)
    v2 = designer_env.service.definitions(key="desain_uji", latest_only=True)[0]
    assert v2.version == 2 and _rows(designer_env)[0] == before[0] + 1

    designer_env.service.start(definition_id=v1.id, unit="kec-a")
    designer_env.service.start(definition_id=v2.id, unit="kec-a")
    designer_env.service.start(definition_id=v2.id, unit="kec-b")
    listing = designer.get("/desain/").get_data(as_text=True)
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", listing, re.S) if "desain_uji" in r)
    assert f'href="/pengawasan/definitions/{v2.id}">Proses Desain Uji</a>' in row
    assert f'href="/pengawasan/definitions/{v1.id}"' in row and 'data-label="Versi terbaru">v2<br>' in row
    assert '<td class="n" data-label="Instans berjalan">3</td>' in row
    assert "(2)" in row and "(1)" in row  # running per version
    assert "web_flow" in listing  # the process deployed before is listed too


def test_definition_page_shows_diagram_document_and_start(designer_env: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    designer = client_for("desainer")
    _upload(designer, {"desain_uji.bpmn": NEW_PROCESS, **FORMS})
    _upload(designer, {"desain_uji.bpmn": NEW_PROCESS.replace(b"Menyusun laporan", b"Menyusun"), **FORMS})
    v1, v2 = designer_env.service.definitions(key="desain_uji")
    page = designer.get(f"/pengawasan/definitions/{v2.id}").get_data(as_text=True)
    assert f"/pengawasan/definitions/{v2.id}/diagram.json" in page and "bpmn-navigated-viewer" in page
    assert f"/pengawasan/definitions/{v2.id}/dokumen" in page
    assert f'action="/desain/definisi/{v2.id}/mulai"' in page
    # A designer may start in every unit.
    assert set(re.findall(r'<option value="([^"]+)"', page)) == {"kab", "kec-a", "kec-b"}
    diagram = designer.get(f"/pengawasan/definitions/{v2.id}/diagram.json").json
    assert 'id="desain_uji"' in diagram["xml"] and "Menyusun" in diagram["xml"]
    # An older version's page offers no start: new instances run the latest.
    assert "/mulai" not in designer.get(f"/pengawasan/definitions/{v1.id}").get_data(as_text=True)

    r = designer.post(f"/desain/definisi/{v2.id}/mulai", data={"unit": "kec-b", "business_key": "UJI-7"})
    assert r.status_code == 302
    instance_id = r.headers["Location"].rsplit("/", 1)[1]
    assert r.headers["Location"].endswith(f"/pengawasan/instances/{instance_id}")
    view = designer_env.service.instance(instance_id)
    assert (view.definition_id, view.unit_code, view.business_key, view.started_by) == (
        v2.id, "kec-b", "UJI-7", "desainer")
    # The designer holds no role in kec-b, yet sees the instance they started.
    assert designer.get(f"/pengawasan/instances/{instance_id}").status_code == 200


def test_start_only_in_units_the_user_may_use(designer_env: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    definition_id = designer_env.service.definitions(key="web_flow")[0].id
    staff = client_for("kasubag")
    page = staff.get(f"/pengawasan/definitions/{definition_id}").get_data(as_text=True)
    assert re.findall(r'<option value="([^"]+)"', page) == ["kec-a"]

    def started() -> int:
        with designer_env.db.read() as s:
            return s.scalar(select(func.count()).select_from(ProcessInstance)) or 0

    assert staff.post(f"/desain/definisi/{definition_id}/mulai", data={"unit": "kec-b"}).status_code == 403
    assert staff.post(f"/desain/definisi/{definition_id}/mulai", data={"unit": "tidak-ada"}).status_code == 404
    assert staff.post("/desain/definisi/tidak-ada:1:x/mulai", data={"unit": "kec-a"}).status_code == 404
    assert started() == 0
    r = staff.post(f"/desain/definisi/{definition_id}/mulai", data={"unit": "kec-a", "business_key": "LAP-9"})
    assert r.status_code == 302 and started() == 1
    follow = staff.get(r.headers["Location"])
    assert follow.status_code == 200 and "LAP-9" in follow.get_data(as_text=True)
    too_long = staff.post(f"/desain/definisi/{definition_id}/mulai", data={"unit": "kec-a", "business_key": "x" * 201})
    assert too_long.status_code == 302 and started() == 1
    assert "tidak dapat dimulai" in staff.get(too_long.headers["Location"]).get_data(as_text=True)


def test_pages_are_small_and_work_without_javascript(designer_env: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    designer = client_for("desainer")
    for path in ("/desain/", "/desain/pasang"):
        html = designer.get(path).get_data(as_text=True)
        assert "<script" not in html and len(html.encode()) < 20_000
        assert 'name="viewport"' in html

