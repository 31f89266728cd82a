"""Faults of the machine, met through the web (engine/faults.py, web/faults.py): a SQLite write lock held
longer than the busy timeout, a full disk, a read-only attachment folder, a revocation folder that cannot be
written, a database that is down, PostgreSQL connections dropped mid-request. Each: HTTP 503 with Retry-After,
the form shown again with what was typed, nothing saved; a dropped connection retried once when safe."""

from __future__ import annotations

import errno
import io
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select, text

from engine import db as dbmod
from engine.db import Database
from engine.models import Attachment, AuditEvent, Comment, Task
from engine.service import Alur
from tests.conftest import PG_URL, FakeClock, _drop_schema, make_database
from tests.rest.conftest import basic
from tests.web.conftest import Env, login, make_app, setup_data

TYPED = {"judul": "Laporan bulan Desember", "kode": "DS-481", "jumlah": "12", "sifat": "biasa", "action": "complete"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _state(env: Env, task_id: str) -> str:
    with env.db.read() as s:
        return s.get(Task, task_id).state  # type: ignore[union-attr]


def _count(env: Env, model: Any, **where: Any) -> int:
    with env.db.read() as s:
        q = select(func.count()).select_from(model)
        for key, value in where.items():
            q = q.where(getattr(model, key) == value)
        return s.scalar(q) or 0


def _stored_files(env: Env) -> list[Path]:
    root = env.instance_dir / "attachments"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _signed_in(app: Flask, username: str = "kasubag") -> FlaskClient:
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


def _assert_typed_form_kept(html: str, task_id: str) -> None:
    assert f'action="/tugas/{task_id}"' in html  # the step form itself, not an error page
    for value in ("Laporan bulan Desember", "DS-481", 'value="12"'):
        assert value in html, value


# ------------------------------------------------------------------------------------------ SQLite write lock


@pytest.fixture
def locked(env: Env) -> Iterator[tuple[Flask, sqlite3.Connection]]:
    """An app whose SQLite connections wait 0.1 s for a lock (instead of 30 s), and a second connection that
    takes the write lock (BEGIN IMMEDIATE) when the test says so."""
    short = Database(env.db.url, sqlite_busy_timeout=0.1)
    app = make_app(env)
    app.extensions["alur"] = Alur(short, clock=env.clock)
    holder = sqlite3.connect(env.db.url.split(":///", 1)[1], isolation_level=None)
    yield app, holder
    holder.close()
    short.dispose()


def test_locked_database_shows_the_step_form_again_with_what_was_typed(env, locked) -> None:  # type: ignore[no-untyped-def]
    app, holder = locked
    task_id = env.start()
    client = _signed_in(app)
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = client.post(f"/tugas/{task_id}", data=TYPED)
    finally:
        holder.execute("ROLLBACK")
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Server sedang sibuk" in html and "Tidak ada yang tersimpan" in html and "Coba kirim lagi" in html
    _assert_typed_form_kept(html, task_id)
    assert _state(env, task_id) == "READY"
    assert _count(env, AuditEvent, action="complete") == 0
    # The lock is gone: the same submission goes through.
    assert client.post(f"/tugas/{task_id}", data=TYPED).status_code == 302
    assert _state(env, task_id) == "COMPLETED"


def test_locked_database_keeps_a_comment_and_english_page(env, locked) -> None:  # type: ignore[no-untyped-def]
    app, holder = locked
    task_id = env.start()
    client = _signed_in(app)
    client.post("/bahasa", data={"locale": "en"})
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = client.post(f"/tugas/{task_id}/komentar", data={"body": "Mohon lampirkan notulen rapat."})
    finally:
        holder.execute("ROLLBACK")
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "The server is busy" in html and "Nothing was saved" in html
    assert ">Mohon lampirkan notulen rapat.</textarea>" in html
    assert _count(env, Comment) == 0


def test_locked_database_answers_rest_with_json_503(env, locked) -> None:  # type: ignore[no-untyped-def]
    app, holder = locked
    task_id = env.start()
    client = app.test_client()
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = client.post(f"/engine-rest/task/{task_id}/complete", headers=basic("kasubag"),
                               json={"variables": {"judul": {"value": "Laporan"}, "sifat": {"value": "biasa"}}})
    finally:
        holder.execute("ROLLBACK")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.is_json
    body = response.get_json()
    assert body["type"] == "ProcessEngineException" and body["code"] == "locked"
    assert "locked" in body["message"] and "nothing was saved" in body["message"]
    assert _state(env, task_id) == "READY"


def test_locked_database_on_password_change_asks_to_type_it_again(env, locked) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import PASSWORD

    app, holder = locked
    client = _signed_in(app)
    new = "kata-sandi-baru-9876"
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = client.post("/kata-sandi", data={"current": PASSWORD, "new": new, "confirm": new})
    finally:
        holder.execute("ROLLBACK")
    html = response.get_data(as_text=True)
    assert response.status_code == 503 and 'action="/kata-sandi"' in html
    assert "Tidak ada yang tersimpan" in html and "Kata sandi perlu diketik lagi" in html
    assert new not in html and PASSWORD not in html  # never written back into a page
    assert login(app.test_client(), "kasubag", PASSWORD).status_code == 302  # the old password still works
    assert login(app.test_client(), "kasubag", new).status_code == 401


# ----------------------------------------------------------------------------------- the attachment folder


class _FullDisk:
    """A file whose write stores half the data, then fails as a full disk does."""

    def __init__(self, fh: Any):
        self.fh = fh

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.fh.close()

    def write(self, data: bytes) -> int:
        self.fh.write(data[: len(data) // 2])
        self.fh.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_on_upload_keeps_the_form_and_leaves_no_file(env, app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = _signed_in(app)
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **kw: _FullDisk(real_fdopen(fd, *a, **kw)))
    response = client.post(f"/tugas/{task_id}", data={**TYPED, "document": (io.BytesIO(PDF), "draf.pdf")},
                           content_type="multipart/form-data")
    monkeypatch.undo()
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert "Ruang penyimpanan server penuh" in html and "Tidak ada yang tersimpan" in html
    assert "perlu dipilih lagi" in html  # the file must be chosen again
    _assert_typed_form_kept(html, task_id)
    assert _state(env, task_id) == "READY"
    assert _count(env, Attachment) == 0 and _count(env, AuditEvent, action="attach") == 0
    assert _stored_files(env) == []  # neither the document nor the half-written temporary file


def test_read_only_attachment_folder_keeps_the_form(env, app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = _signed_in(app)
    root = env.instance_dir / "attachments"
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        root.chmod(0o555)  # the real thing: EACCES on mkdir
    else:  # root writes through any mode bits: the file system answers as a read-only mount does
        def read_only(*_a: object, **_kw: object) -> None:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

        monkeypatch.setattr("engine.attachments.tempfile.mkstemp", read_only)
        monkeypatch.setattr(Path, "mkdir", read_only)
    try:
        response = client.post(f"/tugas/{task_id}", data={**TYPED, "action": "upload",
                                                           "document": (io.BytesIO(PDF), "draf.pdf")},
                                content_type="multipart/form-data")
    finally:
        monkeypatch.undo()
        root.chmod(0o755)
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Server tidak dapat menyimpan berkas" in html and "Tidak ada yang tersimpan" in html
    _assert_typed_form_kept(html, task_id)
    assert _count(env, Attachment) == 0 and _stored_files(env) == []
    assert _state(env, task_id) == "READY"


# ------------------------------------------------------------------------------------------------- sign-out


def test_sign_out_ends_the_session_when_the_revocation_folder_cannot_be_written(env, app, caplog) -> None:  # type: ignore[no-untyped-def]
    client = _signed_in(app)
    task_id = env.start()
    assert client.get(f"/tugas/{task_id}").status_code == 200
    revocations = app.extensions["alur_session_revocations"]
    if os.geteuid() != 0:
        revocations.root.mkdir(parents=True, exist_ok=True)
        revocations.root.chmod(0o555)
    else:  # root ignores mode bits: a folder whose parent is a file cannot be written by anyone
        blocker = env.instance_dir / "not-a-folder"
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("")
        revocations.root = blocker / "revoked-sessions"
    with caplog.at_level(logging.ERROR):
        response = client.post("/keluar")
    if os.geteuid() != 0:
        revocations.root.chmod(0o755)
    assert response.status_code == 302 and response.headers["Location"].endswith("/masuk")
    assert "Anda sudah keluar" in client.get("/masuk").get_data(as_text=True)
    assert client.get(f"/tugas/{task_id}").status_code == 302  # signed out: back to the sign-in page
    assert "could not be recorded" in caplog.text


# ------------------------------------------------------------------------------------------ database down


def test_database_down_keeps_typed_values_and_rest_gets_json(env, app) -> None:  # type: ignore[no-untyped-def]
    task_id = env.start()
    client = _signed_in(app)
    down = Database("postgresql+psycopg://postgres@127.0.0.1:1/alur?connect_timeout=2")  # nothing listens
    env.service.db = down
    try:
        page = client.get(f"/tugas/{task_id}")
        posted = client.post(f"/tugas/{task_id}/komentar", data={"body": "Tolong cek lampiran kedua."})
        rest = client.get("/engine-rest/task", headers=basic("kasubag"))
    finally:
        down.dispose()
        env.service.db = env.db
    assert page.status_code == 503 and page.headers["Retry-After"] == "30"
    assert "Basis data tidak dapat dihubungi" in page.get_data(as_text=True)
    html = posted.get_data(as_text=True)
    assert posted.status_code == 503
    # The step form cannot be read back, so the plain page keeps the text in a form that sends it again.
    assert ">Tolong cek lampiran kedua.</textarea>" in html and f'action="/tugas/{task_id}/komentar"' in html
    assert rest.status_code == 503 and rest.is_json and rest.get_json()["code"] == "db_down"
    assert _count(env, Comment) == 0


# ------------------------------------------------------------------------------- PostgreSQL: dropped connections


@pytest.fixture
def pg_env(clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    db = make_database("postgres", tmp_path)  # skips without ALUR_TEST_DATABASE_URL
    monkeypatch.setattr(dbmod, "PING_AFTER_IDLE_SECONDS", 1e9)  # never ping a used connection: the statement meets it
    yield Env(setup_data(db, clock), clock, db, tmp_path / "instance")
    _drop_schema(db)


def _track_backends(db: Database) -> set[int]:
    pids: set[int] = set()

    @event.listens_for(db.engine, "checkout")
    def _seen(dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
        pids.add(dbapi_connection.info.backend_pid)

    return pids


def _terminate(pids: set[int]) -> None:
    admin = Database(PG_URL or "")
    with admin.engine.connect() as conn:
        for pid in sorted(pids):  # wait (up to 5 s each) until each backend is really gone
            conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    admin.dispose()
    pids.clear()


def test_dropped_connection_on_a_read_only_request_is_retried(pg_env, caplog) -> None:  # type: ignore[no-untyped-def]
    task_id = pg_env.start()
    pids = _track_backends(pg_env.db)
    client = _signed_in(make_app(pg_env))
    assert client.get(f"/tugas/{task_id}").status_code == 200
    _terminate(pids)
    with caplog.at_level(logging.WARNING, logger="alur.db"):
        response = client.get(f"/tugas/{task_id}")
    assert response.status_code == 200 and "Isian langkah" in response.get_data(as_text=True)
    assert "running the request once more" in caplog.text


def test_dropped_connection_before_anything_was_written_is_retried(pg_env) -> None:  # type: ignore[no-untyped-def]
    task_id = pg_env.start()
    pids = _track_backends(pg_env.db)
    client = _signed_in(make_app(pg_env))
    _terminate(pids)
    assert client.post(f"/tugas/{task_id}", data=TYPED).status_code == 302
    assert _state(pg_env, task_id) == "COMPLETED"
    assert _count(pg_env, AuditEvent, action="complete", task_id=task_id) == 1


def test_connection_dropped_during_commit_is_not_retried(pg_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    task_id = pg_env.start()
    client = _signed_in(make_app(pg_env))
    calls: list[str] = []
    complete = pg_env.service.complete

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("complete")
        return complete(*args, **kwargs)

    monkeypatch.setattr(pg_env.service, "complete", counted)
    armed = [True]

    @event.listens_for(pg_env.db.engine, "before_cursor_execute")
    def _mark(conn, _cursor, statement, *_a) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            conn.info["wrote"] = True

    @event.listens_for(pg_env.db.engine, "commit")
    def _drop_before_commit(conn) -> None:  # type: ignore[no-untyped-def]
        if armed[0] and conn.info.pop("wrote", False):
            armed[0] = False  # the COMMIT is sent on a connection the server has just ended
            _terminate({conn.connection.dbapi_connection.info.backend_pid})

    response = client.post(f"/tugas/{task_id}", data=TYPED)
    html = response.get_data(as_text=True)
    assert calls == ["complete"]  # not run twice: the first COMMIT may have been applied
    assert response.status_code == 503
    assert "Belum dapat dipastikan" in html
    _assert_typed_form_kept(html, task_id)
    assert _state(pg_env, task_id) == "READY"  # the server ended the transaction before its COMMIT


# --------------------------------------------------------------------------------------- a damaged state row


def test_completing_a_step_of_a_damaged_instance_says_so(env, app) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from engine.models import ProcessInstance

    task_id = env.start()
    with env.db.write() as s:
        instance_id = s.get(Task, task_id).instance_id  # type: ignore[union-attr]
        s.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id).values(state='{"cut sh'))
    client = _signed_in(app)
    page = client.post(f"/tugas/{task_id}", data=TYPED)
    assert page.status_code == 500 and "Data proses rusak" in page.get_data(as_text=True)
    rest = client.post(f"/engine-rest/task/{task_id}/complete", headers=basic("kasubag"), json={})
    assert rest.status_code == 500 and rest.is_json
    assert f"state of instance {instance_id} cannot be read" in rest.get_json()["message"]
    assert _state(env, task_id) == "READY" and _count(env, AuditEvent, action="complete") == 0
