"""Output documents: accepted types, refused sizes/names/disguises (nothing on disk or in the DB), downloads."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from sqlalchemy import func, select

from engine.models import Attachment
from tests.web.conftest import make_app

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
GOOD = {"judul": "Laporan bulanan", "sifat": "biasa"}


def _docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def _stored(env) -> tuple[int, list[Path]]:  # type: ignore[no-untyped-def]
    with env.db.read() as s:
        rows = s.scalar(select(func.count()).select_from(Attachment)) or 0
    root = env.instance_dir / "attachments"
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    return rows, files


def _upload(client, task_id, name, data, action="upload", **fields):  # type: ignore[no-untyped-def]
    return client.post(f"/tugas/{task_id}", data={"action": action, **fields, "document": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_upload_pdf_and_docx_then_download(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = client_for("kasubag")
    assert _upload(client, task_id, "Laporan Bulanan.pdf", PDF).status_code == 302
    assert _upload(client, task_id, "notulen.docx", _docx()).status_code == 302
    rows, files = _stored(env)
    assert rows == 2 and len(files) == 2
    html = client.get(f"/tugas/{task_id}").get_data(as_text=True)
    assert "Laporan Bulanan.pdf" in html and "sudah diunggah" in html
    attachments = env.service.attachments_for(env.service.task(task_id).instance_id, env.service.actor("kasubag"))
    response = client.get(f"/lampiran/{attachments[0]['id']}")
    assert response.status_code == 200 and response.data == PDF
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "Laporan Bulanan.pdf" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Same unit, other lane: may view the instance, so may download. Another unit: 404.
    assert client_for("camat").get(f"/lampiran/{attachments[0]['id']}").status_code == 200
    assert client_for("kasubag.b").get(f"/lampiran/{attachments[0]['id']}").status_code == 404


def test_upload_with_completion_then_next_step_sees_the_document(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    assert _upload(client_for("kasubag"), task_id, "draf.pdf", PDF, action="complete", **GOOD).status_code == 302
    camat = client_for("camat")
    next_id = env.service.tasks_for(env.service.actor("camat"))[0].id
    html = camat.get(f"/tugas/{next_id}").get_data(as_text=True)
    assert "draf.pdf" in html and "/lampiran/" in html  # kelengkapan links to the earlier step's output


def test_upload_kept_when_the_form_has_mistakes(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    response = _upload(client_for("kasubag"), task_id, "draf.pdf", PDF, action="complete", judul="x")
    assert response.status_code == 422
    assert "draf.pdf" in response.get_data(as_text=True)
    assert _stored(env)[0] == 1


def test_oversized_upload_refused_by_request_limit(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    big = PDF + b"0" * (10 * 1024 * 1024 + 300 * 1024)
    response = _upload(client_for("kasubag"), task_id, "besar.pdf", big)
    assert response.status_code == 413
    assert "terlalu besar" in response.get_data(as_text=True).lower()
    assert _stored(env) == (0, [])


def test_oversized_upload_refused_by_file_limit(env):  # type: ignore[no-untyped-def]
    app = make_app(env, ALUR_MAX_ATTACHMENT_BYTES=1024)
    task_id = env.start()
    client = app.test_client()
    client.post("/masuk", data={"username": "kasubag", "password": "rahasia-uji-123"})
    response = _upload(client, task_id, "besar.pdf", PDF + b"0" * 2000)
    assert response.status_code == 422
    assert "terlalu besar" in response.get_data(as_text=True)
    assert _stored(env) == (0, [])


def test_path_traversal_names_refused(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = client_for("kasubag")
    for name in ("../../etc/passwd.pdf", "..\\..\\boot.pdf", "a/b.pdf", "C:secret.pdf"):
        response = client.post(f"/tugas/{task_id}", data={"action": "upload", "document": (io.BytesIO(PDF), name)},
                               content_type="multipart/form-data")
        # werkzeug's client keeps the name as given: the server must refuse it, not just sanitise it.
        assert response.status_code == 422, name
        assert "folder" in response.get_data(as_text=True)
    assert _stored(env) == (0, [])
    assert not (env.instance_dir.parent / "etc").exists()


def test_disguised_and_unknown_types_refused(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = client_for("kasubag")
    cases = [("virus.pdf", b"MZ\x90\x00 not a pdf"), ("skrip.exe", b"MZ\x90\x00"), ("gambar.png", PDF),
             ("dok.docx", b"PK\x03\x04 broken zip"), ("kosong.pdf", b""), ("tanpa-ekstensi", PDF)]
    for name, data in cases:
        response = _upload(client, task_id, name, data)
        assert response.status_code == 422, name
    assert _stored(env) == (0, [])


def test_upload_to_completed_task_stores_nothing(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = client_for("kasubag")
    assert client.post(f"/tugas/{task_id}", data={**GOOD, "action": "complete"}).status_code == 302
    assert _upload(client, task_id, "telat.pdf", PDF, action="complete", **GOOD).status_code == 409
    assert _stored(env) == (0, [])


def test_upload_to_another_lanes_task_stores_nothing(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    assert _upload(client_for("camat"), task_id, "x.pdf", PDF).status_code == 403
    assert _upload(client_for("kasubag.b"), task_id, "x.pdf", PDF).status_code == 404
    assert _stored(env) == (0, [])


def test_same_file_twice_is_stored_once_on_disk(env, client_for):  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = client_for("kasubag")
    _upload(client, task_id, "a.pdf", PDF)
    _upload(client, task_id, "b.pdf", PDF)
    rows, files = _stored(env)
    assert rows == 2 and len(files) == 1
    assert oct(files[0].stat().st_mode & 0o777) == "0o640"
