"""`alur check`: a database made by the service is consistent; each kind of hand-made damage is reported
as exactly that problem on exactly that instance, and the command exits 1. SQLite and (in CI) PostgreSQL."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from engine import accounts
from engine.accounts import Actor
from engine.check import CheckProblem, check_database
from engine.cli import main
from engine.db import Database
from engine.models import AuditEvent, ProcessInstance, Task
from engine.service import Alur
from engine.store import audit, change_instance_status
from tests.conftest import DATA, FakeClock
from tests.test_seed_models_service import fill_form

ROOT = Path(__file__).resolve().parent.parent
UNIT = "uji-cek"
TIMERS_BPMN = DATA / "timers" / "timers_service.bpmn"
SEED_KEYS = ("sop_monev_capaian_kinerja_iv_jurai", "sop_pemantauan_kinerja_setda_pessel",
             "sop_pengukuran_data_kinerja_iv_jurai", "sop_pengukuran_kinerja_wangon")


def seed_files() -> dict[str, bytes]:
    paths = sorted([*(ROOT / "bpmn").glob("*.bpmn"), *(ROOT / "forms").glob("*.form")])
    return {p.name: p.read_bytes() for p in paths}


@functools.cache
def _password_hash() -> str:
    return accounts.hash_password("rahasia-123")


@pytest.fixture(autouse=True)
def one_password_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = _password_hash()
    monkeypatch.setattr(accounts, "hash_password", lambda password: hashed)


@dataclass
class World:
    svc: Alur
    clock: FakeClock
    actors: dict[str, Actor] = field(default_factory=dict)  # role -> actor
    ids: dict[str, str] = field(default_factory=dict)  # label -> instance id


def make_world(db: Database, clock: FakeClock) -> World:
    """One deployment of the seed SOPs (and the timer test models), one user per lane in one unit."""
    svc = Alur(db, clock=clock)
    svc.deploy(seed_files())
    svc.deploy({TIMERS_BPMN.name: TIMERS_BPMN.read_bytes()})
    roles: list[str] = []
    for d in svc.definitions():
        roles += [lane for lane in svc.definition_info(d.id)["lanes"] if lane not in roles]
    with db.write() as s:
        accounts.add_unit(s, UNIT, "Unit uji pemeriksaan")
        for i, role in enumerate(roles, start=1):
            accounts.add_user(s, f"pegawai-{i:02d}", "rahasia-123")
            accounts.grant(s, f"pegawai-{i:02d}", role, UNIT)
    world = World(svc, clock)
    world.actors = {role: svc.actor(f"pegawai-{i:02d}") for i, role in enumerate(roles, start=1)}
    return world


def advance(world: World, instance_id: str, steps: int) -> str:
    """Complete up to `steps` READY tasks of an instance as staff would; its status afterwards."""
    svc = world.svc
    for _ in range(steps):
        view = svc.instance(instance_id)
        ready = [t for t in view.tasks if t.state == "READY"]
        if view.status != "running" or not ready:
            break
        task = ready[0]
        actor = world.actors[task.candidate_role or task.lane or ""]
        data = fill_form(svc.task_form(task.id, actor), "ya", world.clock)
        world.clock.advance(minutes=20)
        svc.complete(task.id, actor, data, late_reason="Menunggu data")
    return svc.instance(instance_id).status


def populate(world: World) -> World:
    """Instances at different steps, some completed, some waiting on or fired by timers, one cancelled."""
    svc, ids = world.svc, world.ids
    for key in SEED_KEYS:
        for steps in (0, 1, 3):
            ids[f"{key}/{steps}"] = svc.start(key, unit=UNIT).id
            advance(world, ids[f"{key}/{steps}"], steps)
    ids["done"] = svc.start(SEED_KEYS[0], unit=UNIT).id
    assert advance(world, ids["done"], 200) == "completed"
    ids["done2"] = svc.start(SEED_KEYS[2], unit=UNIT).id
    assert advance(world, ids["done2"], 200) == "completed"
    for key in ("eskalasi", "siklus", "batas"):  # a boundary timer each: fired once, twice, interrupting
        ids[key] = svc.start(key, unit=UNIT).id
    fired: list[str] = []
    for key in ("eskalasi", "siklus", "siklus", "batas"):
        due = svc.instance(ids[key]).next_due_at
        if due is not None:
            world.clock.now = max(world.clock.now, due)
            fired += svc.fire_due_timers().fired
    assert [fired.count(ids[k]) for k in ("eskalasi", "siklus", "batas")] == [1, 2, 1]
    for key in ("tunggu", "mulai_terjadwal"):  # still waiting on their timers
        ids[key] = svc.start(key, unit=UNIT).id
    ids["cancelled"] = svc.start(SEED_KEYS[1], unit=UNIT).id
    advance(world, ids["cancelled"], 1)
    svc.cancel_instance(ids["cancelled"], accounts.SYSTEM, reason="uji")
    ids["suspended"] = svc.start("eskalasi", unit=UNIT).id
    with svc.db.write() as s:
        change_instance_status(s, ids["suspended"], from_states=("running",), to="suspended", now=world.clock(),
                               actor="system", action="suspend", reason="uji")
    return world


@pytest.fixture
def world(db: Database, clock: FakeClock) -> World:
    return populate(make_world(db, clock))


def kinds(problems: list[CheckProblem]) -> set[tuple[str, str]]:
    return {(p.instance_id, p.kind) for p in problems}


def run_check(db: Database, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("ALUR_DATABASE_URL", db.url)
    result = CliRunner().invoke(main, ["check", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_a_database_the_service_made_is_consistent(world: World, db: Database,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with db.read() as s:
        statuses = dict(s.execute(select(ProcessInstance.id, ProcessInstance.status)).all())
        task_states = set(s.scalars(select(Task.state)))
        waiting = s.scalar(select(ProcessInstance.id).where(ProcessInstance.next_due_at.is_not(None),
                                                            ProcessInstance.status == "running"))
    assert {"running", "completed", "cancelled", "suspended"} <= set(statuses.values())
    assert {"READY", "COMPLETED", "CANCELLED"} <= task_states and waiting is not None
    assert check_database(db) == []
    assert check_database(db, batch_size=3) == []  # several batches, keyset-paged
    assert check_database(db, instance_id=world.ids["eskalasi"]) == []

    code, output = run_check(db, monkeypatch)
    assert code == 0, output
    assert output.strip().splitlines()[-1] == f"checked {len(statuses)} instance(s): no problem found"


def test_every_kind_of_damage_is_reported_on_its_instance(world: World, db: Database, clock: FakeClock,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ids = world.ids
    key = SEED_KEYS[0]
    with db.write() as s:
        # A READY task row deleted.
        ready = s.scalar(select(Task.id).where(Task.instance_id == ids[f"{key}/1"], Task.state == "READY"))
        s.execute(delete(Task).where(Task.id == ready))
        # A bogus READY row, for a task the workflow does not have.
        template = s.scalars(select(Task).where(Task.instance_id == ids[f"{key}/3"])).first()
        assert template is not None
        s.add(Task(id="00000000-0000-4000-8000-000000000001", instance_id=ids[f"{key}/3"],
                   definition_id=template.definition_id, process_key=template.process_key,
                   unit_id=template.unit_id, element_id="Step_bogus", name="Bogus", state="READY",
                   created_at=clock()))
        # A completed step's row turned back into READY.
        done_row = s.scalar(select(Task.id).where(Task.instance_id == ids[f"{SEED_KEYS[2]}/3"],
                                                  Task.state == "COMPLETED"))
        s.execute(update(Task).where(Task.id == done_row).values(state="READY", completed_at=None))
        # Status flipped both ways.
        s.execute(update(ProcessInstance).where(ProcessInstance.id == ids["done"]).values(status="running",
                                                                                          ended_at=None))
        s.execute(update(ProcessInstance).where(ProcessInstance.id == ids[f"{SEED_KEYS[1]}/1"])
                  .values(status="completed", ended_at=clock()))
        # Garbled state.
        s.execute(update(ProcessInstance).where(ProcessInstance.id == ids[f"{SEED_KEYS[3]}/0"])
                  .values(state='{"format": "alur-instance/'))
        # Wrong next_due_at: moved, and lost.
        s.execute(update(ProcessInstance).where(ProcessInstance.id == ids["tunggu"])
                  .values(next_due_at=clock() + timedelta(days=3)))
        s.execute(update(ProcessInstance).where(ProcessInstance.id == ids["mulai_terjadwal"])
                  .values(next_due_at=None))
        # The eskalasi boundary timer fired a second time: another write of the instance (version + 1) audited
        # with the same due moment.
        first = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == ids["eskalasi"],
                                                   AuditEvent.action == "timer")).one()
        audit(s, at=clock(), actor=None, action="timer", instance_id=ids["eskalasi"], data=dict(first.data or {}))
        s.execute(update(ProcessInstance).where(ProcessInstance.id == ids["eskalasi"])
                  .values(version=ProcessInstance.version + 1))
        # A version that went backwards.
        s.execute(update(ProcessInstance).where(ProcessInstance.id == ids[f"{SEED_KEYS[1]}/3"]).values(version=1))

    expected = {
        (ids[f"{key}/1"], "missing_task_row"),
        (ids[f"{key}/3"], "stale_ready_row"),
        (ids[f"{SEED_KEYS[2]}/3"], "stale_ready_row"),
        (ids["done"], "status_mismatch"),
        (ids[f"{SEED_KEYS[1]}/1"], "completed_with_open_task"),  # a READY step, status completed
        (ids[f"{SEED_KEYS[3]}/0"], "unreadable"),
        (ids["tunggu"], "next_due_mismatch"),
        (ids["mulai_terjadwal"], "next_due_mismatch"),
        (ids["eskalasi"], "timer_fired_twice"),
        (ids[f"{SEED_KEYS[1]}/3"], "bad_version"),
    }
    problems = check_database(db)
    assert kinds(problems) == expected, "\n".join(map(str, problems))
    [garbled] = [p for p in problems if p.kind == "unreadable"]
    assert "JSONDecodeError" in garbled.detail
    [moved] = [p for p in problems if p.instance_id == ids["tunggu"]]
    assert "next_due_at is" in moved.detail

    code, output = run_check(db, monkeypatch)
    lines = output.strip().splitlines()
    assert code == 1
    assert {tuple(line.split("  ")[:2]) for line in lines[:-1]} == expected
    summary = f"checked {len(world.ids)} instance(s): {len(problems)} problem(s) in {len(expected)} instance(s)"
    assert lines[-1] == summary
    code, output = run_check(db, monkeypatch, "--instance", ids["tunggu"])
    assert code == 1 and output.startswith(f"{ids['tunggu']}  next_due_mismatch  ")
    code, output = run_check(db, monkeypatch, "--instance", ids["batas"])
    assert code == 0 and "checked 1 instance(s): no problem found" in output


def test_a_timer_put_back_after_an_error_is_not_a_mismatch(world: World, db: Database, clock: FakeClock) -> None:
    iid = world.ids["tunggu"]
    retry = clock() + timedelta(minutes=5)
    with db.write() as s:
        s.execute(update(ProcessInstance).where(ProcessInstance.id == iid).values(next_due_at=retry))
    assert kinds(check_database(db, instance_id=iid)) == {(iid, "next_due_mismatch")}
    with db.write() as s:
        audit(s, at=clock(), actor=None, action="timer_error", instance_id=iid,
              data={"due_at": clock().isoformat(), "error": "ValueError: x", "retry_at": retry.isoformat()})
    assert check_database(db, instance_id=iid) == []


def test_duplicate_reminders_and_unknown_instance(world: World, db: Database, clock: FakeClock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    iid = world.ids[f"{SEED_KEYS[0]}/0"]
    with db.write() as s:
        tid = s.scalar(select(Task.id).where(Task.instance_id == iid, Task.state == "READY"))
        for _ in range(2):
            audit(s, at=clock(), actor=None, action="reminder", instance_id=iid, task_id=tid, data={"to": []})
    assert kinds(check_database(db)) == {(iid, "reminder_sent_twice")}
    code, output = run_check(db, monkeypatch, "--instance", "no-such-instance")
    assert code == 2 and "no instance" in output


def test_progress_goes_to_stderr(world: World, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALUR_DATABASE_URL", db.url)
    result = CliRunner().invoke(main, ["check", "--progress", "--batch-size", "5"])
    assert result.exit_code == 0, result.output
    total = len(world.ids)
    assert f"checked {total}/{total} instances" in result.stderr
    assert "checked 5/" in result.stderr and "/" not in result.stdout.replace("instance(s)", "")
