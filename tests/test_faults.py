"""Faults below the web (engine/faults.py, engine/db.py): what is a fault, no file left behind when the row
cannot be committed, the command line on a damaged instance state and on a locked database."""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import event, func, select, text, update
from sqlalchemy.exc import OperationalError

from engine import db as dbmod
from engine import faults
from engine.attachments import AttachmentStore, check_upload
from engine.cli import main
from engine.db import Database
from engine.models import Attachment, ProcessInstance
from engine.service import Alur
from tests.conftest import DATA, FakeClock
from tests.test_service import service_files, setup_people

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_classify_names_faults_and_leaves_bugs_alone(tmp_path: Path) -> None:
    assert faults.classify(OSError(errno.ENOSPC, "No space left on device")).kind == "disk_full"  # type: ignore[union-attr]
    assert faults.classify(OSError(errno.EROFS, "Read-only file system")).kind == "read_only"  # type: ignore[union-attr]
    assert faults.classify(PermissionError(errno.EACCES, "Permission denied")).kind == "no_permission"  # type: ignore[union-attr]
    assert faults.classify(FileNotFoundError(errno.ENOENT, "gone")) is None
    assert faults.classify(KeyError("x")) is None
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with pytest.raises(OperationalError) as caught, db.read() as s:
        s.execute(text("SELECT * FROM no_such_table"))
    assert faults.classify(caught.value) is None  # a bug, not "try again"
    db.dispose()


def test_locked_database_is_a_fault_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    db = Database(f"sqlite:///{path}", sqlite_busy_timeout=0.05)
    with db.write() as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    def insert() -> None:
        with db.write() as s:
            s.execute(text("INSERT INTO t VALUES (1)"))

    try:
        with pytest.raises(faults.Unavailable) as caught:
            db.attempt(insert)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert caught.value.fault.kind == "locked" and caught.value.fault.nothing_saved
    assert "database is locked" in str(caught.value) and "nothing was saved" in str(caught.value)
    db.attempt(insert)  # free again
    with db.read() as s:
        assert s.scalar(text("SELECT count(*) FROM t")) == 1
    db.dispose()


def test_attachment_file_removed_when_the_commit_fails(sqlite_db: Database, clock: FakeClock,
                                                       tmp_path: Path) -> None:
    """The row and the file go together: a COMMIT that fails (SQLite: "database or disk is full") must not
    leave a file on disk that no row names."""
    service = Alur(sqlite_db, clock=clock)
    service.deploy(service_files())
    setup_people(sqlite_db)
    task_id = next(t.id for t in service.start("pengajuan", unit="iv-jurai").tasks if t.state == "READY")
    store = AttachmentStore(tmp_path / "attachments")
    checked = check_upload("draf.pdf", PDF)
    kasubag = service.actor("kasubag")
    written: list[bool] = []

    def full_disk(conn) -> None:  # type: ignore[no-untyped-def]
        if conn.get_execution_options().get(dbmod.WRITE_OPTION):  # the write's COMMIT, not a read's
            written.append(store.exists(checked.sha256))
            raise OperationalError("COMMIT", {}, sqlite3.OperationalError("database or disk is full"))

    event.listen(service.db.engine, "commit", full_disk)
    try:
        with pytest.raises(OperationalError):
            service.add_attachment(task_id, kasubag, checked, store)
    finally:
        event.remove(service.db.engine, "commit", full_disk)
    assert written == [True]  # the file was on disk when the COMMIT failed ...
    assert not store.exists(checked.sha256)  # ... and is gone again
    with service.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Attachment)) == 0


# ------------------------------------------------------------------------------------------------ command line


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("ALUR_DATABASE_URL", url)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)  # a traceback fails the test

    assert invoke("init").exit_code == 0
    assert invoke("deploy", str(DATA / "service")).exit_code == 0
    assert invoke("unit", "add", "iv-jurai", "Kecamatan IV Jurai").exit_code == 0
    assert invoke("user", "add", "kasubag", input="rahasia-123\nrahasia-123\n").exit_code == 0
    assert invoke("role", "grant", "kasubag", "Kasubag", "--unit", "iv-jurai").exit_code == 0
    invoke.url = url  # type: ignore[attr-defined]
    return invoke


def _corrupt(url: str, instance_id: str, state: str) -> None:
    db = Database(url)
    with db.write() as s:
        s.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id).values(state=state))
    db.dispose()


def _good_state(url: str, instance_id: str) -> dict:  # type: ignore[type-arg]
    db = Database(url)
    with db.read() as s:
        state = s.scalar(select(ProcessInstance.state).where(ProcessInstance.id == instance_id))
    db.dispose()
    return json.loads(state)  # type: ignore[arg-type]


@pytest.mark.parametrize("damage", ["invalid_json", "wrong_format", "missing_spec", "missing_tasks",
                                    "not_an_object"])
def test_show_on_a_corrupted_state_says_so(cli, damage: str) -> None:  # type: ignore[no-untyped-def]
    started = cli("start", "pengajuan", "--unit", "iv-jurai", "--json")
    instance_id = json.loads(started.output)["id"]
    state = _good_state(cli.url, instance_id)
    if damage == "invalid_json":
        broken = json.dumps(state)[:-40]  # cut short, as a full disk would leave it
    elif damage == "wrong_format":
        broken = json.dumps({**state, "format": "something-else/1"})
    elif damage == "missing_spec":  # a step the definition does not have (a state from another version)
        for task in state["tasks"].values():
            task["task_spec"] = "Step_gone"
        broken = json.dumps(state)
    elif damage == "missing_tasks":
        broken = json.dumps({k: v for k, v in state.items() if k != "tasks"})
    else:
        broken = "[1, 2, 3]"
    _corrupt(cli.url, instance_id, broken)
    for args in (("show", instance_id), ("show", instance_id, "--json")):
        result = cli(*args)
        assert result.exit_code == 1, result.output
        assert f"state of instance {instance_id} cannot be read: " in result.output
        assert "Traceback" not in result.output
    [task] = json.loads(cli("tasks", "--user", "kasubag", "--json").output)  # the row list needs no state
    done = cli("complete", task["id"], "--user", "kasubag", "--data", '{"judul": "Laporan"}')
    assert done.exit_code == 1 and f"state of instance {instance_id} cannot be read" in done.output


def test_cli_on_a_locked_database_says_so(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(dbmod, "SQLITE_BUSY_TIMEOUT_SECONDS", 0.05)
    holder = sqlite3.connect(cli.url.split(":///", 1)[1], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = cli("unit", "add", "kab", "Kabupaten")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1
    assert "error: the database is locked by another write; nothing was saved" in result.output
    assert "Traceback" not in result.output
