"""Uploads and paths: a 50 MB document (413, nothing stored, not even a temp file), the same without a
Content-Length, file names that carry paths in every spelling, and ids/paths in URLs that try to leave their
folder or overflow the database's integers."""

from __future__ import annotations

import io

import pytest

from tests.hostile.helpers import PDF, World, basic, changed, snapshot

MB = 1024 * 1024


def _upload(world: World, task_id: str, name: str, data: bytes, **kwargs):  # type: ignore[no-untyped-def]
    return world.client("kasubag").post(f"/tugas/{task_id}", data={"action": "upload",
                                                                   "document": (io.BytesIO(data), name)},
                                        content_type="multipart/form-data", **kwargs)


def test_50_mb_attachment_is_refused_and_nothing_is_stored(world: World) -> None:
    task_id = world.start(business_key="BESAR")
    before = snapshot(world)
    response = _upload(world, task_id, "besar.pdf", PDF + b"0" * (50 * MB))
    assert response.status_code == 413
    assert "Berkas terlalu besar" in response.get_data(as_text=True)
    assert changed(before, snapshot(world)) == []  # no row, no file (not even a half-written temp file)


def test_50_mb_attachment_without_content_length_is_refused(world: World) -> None:
    """A chunked request states no length: the server must stop reading at the limit, not trust the client."""
    task_id = world.start(business_key="BESAR-CHUNKED")
    body = (b'--XB\r\nContent-Disposition: form-data; name="action"\r\n\r\nupload\r\n'
            b'--XB\r\nContent-Disposition: form-data; name="document"; filename="besar.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n" + PDF + b"0" * (50 * MB) + b"\r\n--XB--\r\n")
    client = world.client("kasubag")
    before = snapshot(world)
    response = client.post(f"/tugas/{task_id}", input_stream=io.BytesIO(body),
                           content_type="multipart/form-data; boundary=XB",
                           environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
                           headers={"Transfer-Encoding": "chunked"})
    assert response.status_code == 413
    assert changed(before, snapshot(world)) == []


def test_50_mb_deployment_through_the_designer_page_is_refused(world: World) -> None:
    before = snapshot(world)
    response = world.client("desainer").post("/desain/pasang", data={
        "files": (io.BytesIO(b"<x/>" + b" " * (50 * MB)), "besar.bpmn")}, content_type="multipart/form-data")
    assert response.status_code == 413
    assert changed(before, snapshot(world)) == []


@pytest.mark.parametrize("name", [
    "../../etc/passwd.pdf", "..\\..\\windows\\win.ini.pdf", "/etc/passwd.pdf", "C:\\boot.pdf", "C:boot.pdf",
    "laporan\x00.pdf", "....//....//x.pdf", "%2e%2e%2fx.pdf".replace("%2f", "/"), "a/../b.pdf", "..",
    "\\\\server\\share\\x.pdf", "laporan\u2215..\u2215x.pdf",
])
def test_attachment_names_with_paths_are_refused(world: World, name: str) -> None:
    task_id = world.start(business_key="NAMA")
    before = snapshot(world)
    response = _upload(world, task_id, name, PDF)
    assert response.status_code == 422, name
    assert changed(before, snapshot(world)) == []
    assert not (world.instance_dir.parent / "etc").exists()


@pytest.mark.parametrize(("name", "kept"), [
    ("laporan\u2215x.pdf", "laporan_x.pdf"),  # a 'division slash' is not a folder separator
    ("laporan\uff0fx.pdf", "laporan_x.pdf"),  # nor is a full-width solidus
    ("<img src=x onerror=alert(1)>.pdf", "_img src_x onerror_alert(1)_.pdf"),
    ("a" * 500 + ".pdf", "a" * 196 + ".pdf"),
    ("rm -rf ~; $(id) `id`.pdf", "rm -rf __ _(id) _id_.pdf"),
])
def test_odd_attachment_names_are_sanitised_for_display_and_download(world: World, name: str, kept: str) -> None:
    task_id = world.start(business_key="NAMA-ANEH")
    assert _upload(world, task_id, name, PDF).status_code == 302
    kasubag = world.service.actor("kasubag")
    row = next(a for a in world.service.attachments_for(world.service.task(task_id).instance_id, kasubag))
    assert row["name"] == kept
    response = world.client("kasubag").get(f"/lampiran/{row['id']}")
    assert response.status_code == 200 and response.data == PDF
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "\n" not in disposition and "/" not in disposition
    stored = [p for p in (world.instance_dir / "attachments").rglob("*") if p.is_file()]
    assert stored and all(p.name == row["sha256"] for p in stored)  # the disk never sees the client's name


@pytest.mark.parametrize("path", [
    "/lampiran/../../etc/passwd", "/lampiran/..%2F..%2Fetc%2Fpasswd", "/lampiran/-1", "/lampiran/1.0",
    "/lampiran/%00", "/lampiran/99999999999999999999999999", "/lampiran/9223372036854775808",
    "/pengawasan/notifikasi/99999999999999999999999999", "/pengawasan/notifikasi/-1",
    "/static/../app.py", "/static/..%2fapp.py", "/static/%2e%2e/%2e%2e/engine/service.py",
    "/static/vendor/../../app.py", "/static//etc/passwd", "/tugas/..%2F..%2Fetc%2Fpasswd",
    "/tugas/%00", "/pengawasan/instances/..%2f..%2fsecret_key", "/pengawasan/definitions/..%2F..%2Fsecret_key/dokumen",
    "/pengawasan/laporan/..%2F..%2Fsecret_key",
])
def test_paths_and_ids_that_try_to_leave_their_folder(world: World, path: str) -> None:
    secret = world.app.config["SECRET_KEY"]
    for client in (world.client("admin"), world.client("kasubag")):
        response = client.get(path)
        body = response.get_data()
        if response.status_code == 308:  # werkzeug merges '//' and redirects: still inside /static/
            location = response.headers["Location"].removeprefix("http://localhost")
            assert location.startswith("/static/") and ".." not in location
            continue
        assert response.status_code in (400, 404), (path, response.status_code)
        assert b"root:x:0:0" not in body and secret.encode() not in body and b"def create_app" not in body


@pytest.mark.parametrize("path", [
    "/engine-rest/task/..%2F..%2Fetc%2Fpasswd", "/engine-rest/deployment/%2e%2e",
    "/engine-rest/process-definition/key/..%2f..%2fx/xml", "/engine-rest/process-instance/%00",
    "/engine-rest/history/process-instance/99999999999999999999999",
])
def test_rest_paths_that_try_to_leave_their_folder(world: World, path: str) -> None:
    response = world.app.test_client().get(path, headers=basic("admin"))
    assert response.status_code in (400, 404), (path, response.status_code)
    assert response.is_json and b"root:x:0:0" not in response.data
