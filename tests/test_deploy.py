"""The production setup in deploy/: reverse-proxy headers (ALUR_PROXY_FIX), the gunicorn config, the systemd
units, and backup.sh + restore.sh for real against the local PostgreSQL (skipped when it is not there)."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import request

from engine.db import Database
from engine.service import Alur
from web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
FORWARDED = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "alur.example.go.id"}


def probe(sqlite_db: Database, tmp_path: Path, **config: object) -> dict[str, str]:
    app = create_app({"TESTING": True, "SECRET_KEY": "uji", "ALUR_INSTANCE_DIR": str(tmp_path), **config},
                     service=Alur(sqlite_db))
    app.add_url_rule("/_probe", "probe", lambda: {"addr": request.remote_addr, "scheme": request.scheme,
                                                  "host": request.host, "url": request.url_root})
    response = app.test_client().get("/_probe", headers=FORWARDED)
    assert response.status_code == 200
    return response.get_json()  # type: ignore[no-any-return]


def test_forwarded_headers_are_ignored_unless_a_proxy_is_trusted(sqlite_db: Database, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALUR_PROXY_FIX", raising=False)
    direct = probe(sqlite_db, tmp_path)
    assert direct["addr"] == "127.0.0.1" and direct["scheme"] == "http" and direct["host"] == "localhost"


def test_one_trusted_proxy_gives_the_client_address_scheme_and_host(sqlite_db: Database, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALUR_PROXY_FIX", "1")
    seen = probe(sqlite_db, tmp_path)
    # Only the last hop (added by our nginx) counts: a client cannot forge its address by sending its own header.
    assert seen == {"addr": "203.0.113.9", "scheme": "https", "host": "alur.example.go.id",
                    "url": "https://alur.example.go.id/"}
    assert probe(sqlite_db, tmp_path, ALUR_PROXY_FIX=2)["addr"] == "198.51.100.7"
    with pytest.raises(ValueError, match="ALUR_PROXY_FIX"):
        probe(sqlite_db, tmp_path, ALUR_PROXY_FIX="yes")


def test_gunicorn_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALUR_WEB_WORKERS", "3")
    monkeypatch.setenv("ALUR_BIND", "127.0.0.1:8123")
    cfg = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert cfg["workers"] == 3 and cfg["bind"] == ["127.0.0.1:8123"]
    assert cfg["wsgi_app"] == "web.app:create_app()"
    assert cfg["preload_app"] is False and cfg["timeout"] >= 30
    monkeypatch.delenv("ALUR_WEB_WORKERS")
    cfg = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert cfg["workers"] == 2 * (os.cpu_count() or 1) + 1


def test_web_processes_never_run_the_timer_worker(sqlite_db: Database, tmp_path: Path) -> None:
    """Timers and reminders belong to `alur worker` processes: building the app (what each gunicorn process
    does) must not start the background worker thread that `alur serve` starts."""
    before = {t.name for t in threading.enumerate()}
    create_app({"TESTING": True, "SECRET_KEY": "uji", "ALUR_INSTANCE_DIR": str(tmp_path)}, service=Alur(sqlite_db))
    assert "alur-worker" not in {t.name for t in threading.enumerate()} - before


def test_systemd_units_run_alur_as_documented() -> None:
    web = (DEPLOY / "systemd" / "alur-web.service").read_text()
    worker = (DEPLOY / "systemd" / "alur-worker@.service").read_text()
    assert "gunicorn --config /opt/alur/deploy/gunicorn.conf.py" in web
    assert "ExecStart=/opt/alur/.venv/bin/alur worker" in worker
    for unit in (web, worker):
        assert "EnvironmentFile=/etc/alur/alur.env" in unit and "User=alur" in unit


# ------------------------------------------------------------------------------------------ backup, restore

def _psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qAtc", sql], check=True,
                   capture_output=True, text=True)


@pytest.fixture
def backup_databases() -> Iterator[tuple[str, str]]:
    if not all(shutil.which(t) for t in ("pg_dump", "pg_restore", "psql", "tar")):
        pytest.skip("backup/restore test needs pg_dump, pg_restore, psql and tar")
    if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode != 0:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    names = (f"alur_backup_test_{os.getpid()}", f"alur_restore_test_{os.getpid()}")
    for name in names:
        _psql(f'DROP DATABASE IF EXISTS "{name}"')
    _psql(f'CREATE DATABASE "{names[0]}"')
    yield names
    for name in names:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_then_restore_into_a_fresh_database(backup_databases: tuple[str, str], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from engine.check import check_database
    from engine.cli import main

    source_name, restored_name = backup_databases
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{source_name}"
    instance_dir = tmp_path / "instance"
    env = {**os.environ, "ALUR_DATABASE_URL": url, "ALUR_INSTANCE_DIR": str(instance_dir)}
    runner = CliRunner(env={"ALUR_DATABASE_URL": url, "ALUR_INSTANCE_DIR": str(instance_dir)})
    for args in (["init"], ["unit", "add", "kec-a", "Kecamatan A"],
                 ["deploy", str(ROOT / "tests" / "data" / "service")]):
        assert runner.invoke(main, args, catch_exceptions=False).exit_code == 0
    started = runner.invoke(main, ["start", "pengajuan", "--unit", "kec-a", "--json"], catch_exceptions=False)
    assert started.exit_code == 0, started.output
    instance_id = json.loads(started.output)["id"]
    (instance_dir / "attachments" / "ab").mkdir(parents=True)
    (instance_dir / "attachments" / "ab" / "abcdef").write_bytes(b"%PDF-1.4 uji")

    backups = tmp_path / "backups"
    done = subprocess.run(["bash", str(DEPLOY / "backup.sh"), str(backups)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [dump] = list(backups.glob("alur-*.dump"))
    [files] = list(backups.glob("alur-*-attachments.tar.gz"))
    assert dump.stat().st_size > 0 and files.name.startswith(dump.stem)

    # Restore into another database and another attachments folder, as on a replacement server.
    restored_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{restored_name}"
    restored_dir = tmp_path / "restored"
    renv = {**os.environ, "ALUR_DATABASE_URL": restored_url, "ALUR_INSTANCE_DIR": str(restored_dir)}
    done = subprocess.run(["bash", str(DEPLOY / "restore.sh"), "--create", str(dump)], env=renv,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (restored_dir / "attachments" / "ab" / "abcdef").read_bytes() == b"%PDF-1.4 uji"

    db = Database(restored_url)
    try:
        view = Alur(db).instance(instance_id)
        assert view.process_key == "pengajuan" and [t.state for t in view.tasks] == ["READY"]
        assert check_database(db) == []
    finally:
        db.dispose()
    # Restoring over a database that holds data is refused unless asked for explicitly.
    again = subprocess.run(["bash", str(DEPLOY / "restore.sh"), str(dump)], env=renv, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode != 0 and "not empty" in again.stderr
