"""Upgrade path: a database created by the first migration only (0001), holding real instances, is brought to
head by `alur init` without losing anything, and every instance then runs to its end. SQLite and PostgreSQL.

How the 0001 database gets its data, honestly: today's service writes columns 0001 does not have
(`task.working_minutes`, …), so it cannot run against a 0001 schema, and the 0001-era code is not in the
repository. So the service runs against a head database (the source), and every row of every table that
exists in 0001 is copied into a database that Alembic created at revision 0001, column by column for the
columns 0001 has, as raw values (naive UTC timestamps, JSON text). That is exactly what a 0001 database in
use holds. The instance state documents are today's format; their format string (`alur-instance/<Spiff
version>`) has not changed since 0001, the later migrations only touched the relational schema.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import MetaData, func, inspect, select, text

from engine import accounts
from engine.check import check_database
from engine.cli import main
from engine.db import Database
from engine.migrate import current_revision, head_revision, upgrade
from engine.models import ProcessInstance, Task, TaskCandidate
from engine.service import Alur
from engine.store import change_instance_status
from engine.views import TaskView
from tests.conftest import DATA, PG_URL, FakeClock, _drop_schema, _postgres_in_fresh_schema
from tests.test_check import UNIT, World, make_world, populate
from tests.test_seed_models_service import fill_form

KANDIDAT = DATA / "candidates" / "kandidat.bpmn"
ROOT = Path(__file__).resolve().parent.parent


def fresh_database(kind: str, path: Path) -> Database:
    if kind == "postgres":
        if not PG_URL:
            pytest.skip("PostgreSQL tests need ALUR_TEST_DATABASE_URL (CI sets it)")
        return _postgres_in_fresh_schema(PG_URL)
    path.mkdir(parents=True, exist_ok=True)
    return Database(f"sqlite:///{path / 'alur.sqlite3'}")


@pytest.fixture(params=["sqlite", "postgres"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    """(source at head, target at 0001)."""
    source = fresh_database(request.param, tmp_path / "source")
    target = fresh_database(request.param, tmp_path / "target")
    yield source, target
    for database in (source, target):
        _drop_schema(database)


def copy_into_0001(source: Database, target: Database) -> dict[str, int]:
    """Copy every row of every 0001 table, the columns 0001 has, as raw values; rows copied per table."""
    old, new = MetaData(), MetaData()
    old.reflect(bind=source.engine)
    new.reflect(bind=target.engine)
    copied: dict[str, int] = {}
    with source.engine.connect() as src, target.engine.begin() as dst:
        for table in new.sorted_tables:
            if table.name == "alembic_version":
                continue
            columns = [old.tables[table.name].c[c.name] for c in table.columns]
            rows = [dict(r._mapping) for r in src.execute(select(*columns))]
            if rows:
                dst.execute(table.insert(), rows)
            copied[table.name] = len(rows)
            if target.engine.dialect.name == "postgresql" and "id" in table.c and rows and \
                    isinstance(rows[0]["id"], int):
                # As in a database that was used: the serial sequence is past the highest id.
                dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                 f"(SELECT max(id) FROM {table.name}))"))
    return copied


def row_counts(db: Database, names: list[str]) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {n: conn.execute(text(f"SELECT count(*) FROM {n}")).scalar_one() for n in names}


def fill(world: World) -> dict[str, str]:
    """populate()'s instances, plus one whose READY step has extra candidates (rows in task_candidate)."""
    svc, db = world.svc, world.svc.db
    svc.deploy({KANDIDAT.name: KANDIDAT.read_bytes()})
    with db.write() as s:
        for name, role in (("sekretaris", "Sekretaris"), ("camat-2", "Camat"), ("siti", "Staf")):
            accounts.add_user(s, name, "rahasia-123")
            accounts.grant(s, name, role, UNIT)
    populate(world)
    world.ids["kandidat"] = svc.start("kandidat", unit=UNIT, variables={"penanggung_jawab": "sekretaris"}).id
    return world.ids


def actor_for(svc: Alur, world: World, task: TaskView) -> accounts.Actor:
    if task.assignee:
        return svc.actor(task.assignee)
    if task.candidate_role:
        return svc.actor(_holder(svc, task.candidate_role))
    with svc.db.read() as s:
        role, username = s.execute(select(TaskCandidate.role, TaskCandidate.username)
                                   .where(TaskCandidate.task_id == task.id)).first() or (None, None)
    if username:
        return svc.actor(username)
    return svc.actor(_holder(svc, role or task.lane or ""))


def _holder(svc: Alur, role: str) -> str:
    with svc.db.read() as s:
        return s.execute(text("SELECT u.username FROM user_account u JOIN role_assignment r ON r.user_id = u.id "
                              "WHERE r.role = :role ORDER BY u.username"), {"role": role}).scalars().first()


def run_to_end(svc: Alur, world: World, instance_id: str, max_steps: int = 300) -> str:
    """Complete READY steps and let due timers fire until the instance ends."""
    clock = world.clock
    for _ in range(max_steps):
        view = svc.instance(instance_id)
        if view.status != "running":
            return view.status
        ready = [t for t in view.tasks if t.state == "READY"]
        if ready:
            task = ready[0]
            actor = actor_for(svc, world, task)
            data = fill_form(svc.task_form(task.id, actor), "ya", clock)
            clock.advance(minutes=20)
            svc.complete(task.id, actor, data, late_reason="Menunggu data")
        else:
            assert view.next_due_at is not None, f"{instance_id}: running, nothing READY, no timer"
            clock.now = max(clock.now, view.next_due_at)
            svc.fire_due_timers()
    raise AssertionError(f"{instance_id} did not end in {max_steps} steps")


def test_a_0001_database_full_of_instances_upgrades_and_runs_to_the_end(
        pair: tuple[Database, Database], clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    source, target = pair
    upgrade(source)
    world = make_world(source, clock)
    ids = fill(world)
    assert check_database(source) == []

    assert upgrade(target, "0001") == (None, "0001")
    assert "working_minutes" not in {c["name"] for c in inspect(target.engine).get_columns("task")}
    assert not inspect(target.engine).has_table("notification")
    copied = copy_into_0001(source, target)
    assert copied["process_instance"] == len(ids) and copied["task_candidate"] >= 1 and copied["audit_event"] > 0
    before = row_counts(target, list(copied))

    # `alur init` upgrades through Alembic and says from which revision to which.
    monkeypatch.setenv("ALUR_DATABASE_URL", target.url)
    result = CliRunner().invoke(main, ["init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"database upgraded from 0001 to {head_revision()}"
    result = CliRunner().invoke(main, ["init"], catch_exceptions=False)
    assert result.output.strip() == f"database is up to date (revision {head_revision()})"
    assert current_revision(target) == head_revision()

    # Nothing lost: every row of every table, and the stored state still agrees with its projection.
    assert row_counts(target, list(copied)) == before
    with source.read() as a, target.read() as b:
        q = select(ProcessInstance.id, ProcessInstance.status, ProcessInstance.version, ProcessInstance.state)
        assert sorted(a.execute(q).all()) == sorted(b.execute(q).all())
        q2 = select(Task.id, Task.state, Task.assignee, Task.due_at)
        assert sorted(a.execute(q2).all()) == sorted(b.execute(q2).all())
    assert check_database(target) == []

    # The extra candidate group (kept only in task_candidate) still sees its step.
    svc = Alur(target, clock=clock)
    camat2 = svc.actor("camat-2")
    assert [t.element_id for t in svc.tasks_for(camat2) if t.instance_id == ids["kandidat"]] == ["Step_groups"]

    # Every instance runs to its end on the upgraded database.
    with target.write() as s:
        change_instance_status(s, ids["suspended"], from_states=("suspended",), to="running", now=clock(),
                               actor="system", action="resume", reason=None)
    ends = {label: run_to_end(svc, world, iid) for label, iid in ids.items()}
    assert ends.pop("cancelled") == "cancelled"
    assert set(ends.values()) == {"completed"}, ends
    with target.read() as s:
        assert s.scalar(select(func.count()).select_from(Task).where(Task.state == "READY")) == 0
        # New columns fill in for the steps completed after the upgrade.
        assert s.scalar(select(func.count()).select_from(Task).where(Task.working_minutes.is_not(None))) > 0
    assert check_database(target) == []



def test_two_servers_running_alur_init_at_once_on_postgresql(tmp_path: Path) -> None:
    """Several hosts may run `alur init` together: one creates the schema, the other waits for it (advisory
    lock) and finds it current, instead of failing on a half-made schema."""
    db = fresh_database("postgres", tmp_path)
    env = {**os.environ, "ALUR_DATABASE_URL": db.url}
    code = "from engine.cli import main; main(['init'])"
    try:
        procs = [subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
        outputs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert outputs == [f"database created (revision {head_revision()})",
                           f"database is up to date (revision {head_revision()})"]
    finally:
        _drop_schema(db)
