"""Deadlines and BPMN timers through the service, on the working calendar and a hand-moved clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from engine import accounts
from engine.calendar import WorkingCalendar
from engine.db import Database
from engine.errors import FormValidationError
from engine.models import AuditEvent, ProcessInstance, Task
from engine.service import Alur
from engine.store import reminder_moment
from tests.conftest import DATA, FakeClock

TIMERS_BPMN = DATA / "timers" / "timers_service.bpmn"


def wib(*args: int) -> datetime:
    """A moment in Jakarta time (UTC+7), as UTC."""
    return datetime(*args, tzinfo=UTC) - timedelta(hours=7)  # type: ignore[misc]


def setup_people(db: Database) -> None:
    with db.write() as s:
        accounts.add_unit(s, "iv-jurai", "Kecamatan IV Jurai")
        for name, role in [("kasubag", "Kasubag"), ("camat", "Camat"), ("sekretaris", "Sekretaris")]:
            accounts.add_user(s, name, "rahasia-123", email=f"{name}@example.test")
            accounts.grant(s, name, role, "iv-jurai")


@pytest.fixture
def svc(db: Database, clock: FakeClock) -> Alur:
    service = Alur(db, clock=clock)
    service.deploy({TIMERS_BPMN.name: TIMERS_BPMN.read_bytes()})
    setup_people(db)
    return service


def ready(svc: Alur, instance_id: str) -> list[str]:
    return sorted(t.element_id for t in svc.instance(instance_id).tasks if t.state == "READY")


def task_rows(db: Database, instance_id: str) -> dict[str, list[str]]:
    with db.read() as s:
        rows = s.execute(select(Task.element_id, Task.state).where(Task.instance_id == instance_id)).all()
    out: dict[str, list[str]] = {}
    for element, state in rows:
        out.setdefault(element, []).append(state)
    return out


def timer_audits(db: Database, instance_id: str) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == instance_id, AuditEvent.action == "timer")) or 0


# ------------------------------------------------------------------------------------------ task deadlines

def test_p2d_started_before_nyepi_and_idulfitri_is_due_after_the_long_break(svc: Alur, clock: FakeClock) -> None:
    clock.now = wib(2026, 3, 17, 10, 0)  # Tuesday; Wed 18 – Tue 24 March are holidays / cuti bersama
    inst = svc.start("tenggat", unit="iv-jurai")
    [step] = [t for t in inst.tasks if t.state == "READY"]
    assert step.due_at == wib(2026, 3, 25, 16, 0)  # day 1 = Tuesday 17, day 2 = Wednesday 25, at close
    # Reminder after 75 % of the 12.5 working hours (5 h on Tuesday + 7.5 h on the 25th) = 9 h 22.5 min.
    assert step.follow_up_at == wib(2026, 3, 25, 11, 52, 30)


def test_p2d_started_before_imlek(svc: Alur, clock: FakeClock) -> None:
    clock.now = wib(2026, 2, 13, 10, 0)  # Friday; Mon 16 (cuti bersama) and Tue 17 (Imlek) are off
    inst = svc.start("tenggat", unit="iv-jurai")
    assert inst.tasks[0].due_at == wib(2026, 2, 18, 16, 0)


def test_absolute_due_date_is_used_as_is(svc: Alur, clock: FakeClock) -> None:
    inst = svc.start("tenggat", unit="iv-jurai")
    kasubag = svc.actor("kasubag")
    svc.complete(inst.tasks[0].id, kasubag, {})
    [step] = [t for t in svc.instance(inst.id).tasks if t.state == "READY"]
    assert step.element_id == "tenggat_absolut"
    assert step.due_at == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 10:00 WIB as written in the model
    # Created Monday 23 Nov 09:00 WIB: reminder after 75 % of the working time up to the deadline.
    cal = WorkingCalendar()
    share = cal.working_time_between(clock.now, step.due_at) * 0.75
    assert step.follow_up_at == cal.add(clock.now, share)
    assert clock.now < step.follow_up_at < step.due_at


def test_reminder_share_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    cal = WorkingCalendar()
    start = wib(2026, 11, 23, 9, 0)
    due = cal.add(start, "PT4H")  # 09:00 + 3 h + break + 1 h = 14:00
    assert reminder_moment(start, due, cal) == wib(2026, 11, 23, 12, 0)  # 3 of 4 working hours
    monkeypatch.setenv("ALUR_REMINDER_SHARE", "0.5")
    assert reminder_moment(start, due, cal) == wib(2026, 11, 23, 11, 0)
    assert reminder_moment(start, None, cal) is None
    assert reminder_moment(start, start - timedelta(hours=1), cal) == start - timedelta(hours=1)


def test_late_completion_needs_a_reason_and_records_working_and_late_minutes(
        svc: Alur, db: Database, clock: FakeClock) -> None:
    inst = svc.start("dua_jam", unit="iv-jurai")  # Monday 09:00 WIB, PT2H → due 11:00
    [step] = inst.tasks
    assert step.due_at == wib(2026, 11, 23, 11, 0)
    kasubag = svc.actor("kasubag")
    clock.now = wib(2026, 11, 23, 12, 0)  # three working hours later (09:00–12:00)
    with pytest.raises(FormValidationError) as err:
        svc.complete(step.id, kasubag, {})
    assert "late_reason" in err.value.errors
    assert svc.task(step.id).state == "READY"
    svc.complete(step.id, kasubag, {}, late_reason="Menunggu data dari kelurahan")
    with db.read() as s:
        row = s.get(Task, step.id)
        assert row is not None
        assert (row.working_minutes, row.late_minutes) == (180, 60)
        assert row.late_reason == "Menunggu data dari kelurahan"
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.task_id == step.id,
                                                     AuditEvent.action == "complete")).all()
        assert event.data["late_reason"] == "Menunggu data dari kelurahan"


def test_on_time_completion_needs_no_reason(svc: Alur, db: Database, clock: FakeClock) -> None:
    inst = svc.start("dua_jam", unit="iv-jurai")
    clock.advance(minutes=90)
    svc.complete(inst.tasks[0].id, svc.actor("kasubag"), {})
    with db.read() as s:
        row = s.get(Task, inst.tasks[0].id)
        assert row is not None and (row.working_minutes, row.late_minutes, row.late_reason) == (90, 0, None)


# ------------------------------------------------------------------------------------------ BPMN timers

def test_non_interrupting_boundary_creates_its_task_and_the_step_stays_open(
        svc: Alur, db: Database, clock: FakeClock) -> None:
    inst = svc.start("eskalasi", unit="iv-jurai")  # Monday 09:00 WIB, boundary PT2H → 11:00
    assert inst.next_due_at == wib(2026, 11, 23, 11, 0)
    clock.now = wib(2026, 11, 23, 10, 59)
    assert not svc.fire_due_timers()
    assert ready(svc, inst.id) == ["eskalasi_kerja"]
    clock.now = wib(2026, 11, 23, 11, 0)
    report = svc.fire_due_timers()
    assert report.fired == [inst.id]
    assert ready(svc, inst.id) == ["eskalasi_kerja", "eskalasi_tindak"]
    view = svc.instance(inst.id)
    assert view.next_due_at is None and view.version == inst.version + 1
    [escalate] = [t for t in view.tasks if t.element_id == "eskalasi_tindak"]
    assert escalate.candidate_role == "Camat"
    clock.advance(hours=5)
    assert not svc.fire_due_timers()  # nothing fires twice
    assert timer_audits(db, inst.id) == 1
    assert task_rows(db, inst.id) == {"eskalasi_kerja": ["READY"], "eskalasi_tindak": ["READY"]}


def test_interrupting_boundary_cancels_the_step(svc: Alur, db: Database, clock: FakeClock) -> None:
    inst = svc.start("batas", unit="iv-jurai")  # P1D: close of business Monday, 16:00 WIB
    assert inst.next_due_at == wib(2026, 11, 23, 16, 0)
    clock.now = wib(2026, 11, 24, 7, 0)  # next morning, before opening: still due
    assert svc.fire_due_timers().fired == [inst.id]
    assert task_rows(db, inst.id) == {"batas_kerja": ["CANCELLED"], "batas_lanjut": ["READY"]}
    assert ready(svc, inst.id) == ["batas_lanjut"]


def test_cycle_fires_exactly_three_times(svc: Alur, db: Database, clock: FakeClock) -> None:
    inst = svc.start("siklus", unit="iv-jurai")  # R3/PT1H in working hours from Monday 09:00 WIB
    for _ in range(10):
        clock.advance(hours=1)
        svc.fire_due_timers()
    assert task_rows(db, inst.id) == {"siklus_kerja": ["READY"], "siklus_ingat": ["READY"] * 3}
    assert timer_audits(db, inst.id) == 3
    assert svc.instance(inst.id).next_due_at is None


def test_cycle_that_missed_occurrences_fires_once_and_they_count(svc: Alur, db: Database, clock: FakeClock) -> None:
    # Issue 13, item 9: missed occurrences no longer pile up (they were fired one per transaction before).
    inst = svc.start("siklus", unit="iv-jurai")
    clock.advance(days=3)  # the worker was down: all three occurrences are overdue
    assert svc.fire_due_timers().fired == [inst.id]  # one firing for the three missed occurrences
    assert task_rows(db, inst.id)["siklus_ingat"] == ["READY"]
    assert svc.instance(inst.id).next_due_at is None  # R3 is used up: no occurrence is left after now
    clock.advance(days=3)
    assert not svc.fire_due_timers()


def test_intermediate_catch_and_start_timer(svc: Alur, db: Database, clock: FakeClock) -> None:
    waiting = svc.start("tunggu", unit="iv-jurai")
    assert waiting.tasks == [] and waiting.next_due_at == wib(2026, 11, 23, 10, 0)
    scheduled = svc.start("mulai_terjadwal", unit="iv-jurai")  # waits for its start timer (1 Dec 08:00)
    assert scheduled.tasks == [] and scheduled.next_due_at == wib(2026, 12, 1, 8, 0)
    clock.now = wib(2026, 11, 23, 10, 0)
    assert svc.fire_due_timers().fired == [waiting.id]
    assert ready(svc, waiting.id) == ["tunggu_kerja"]
    clock.now = wib(2026, 12, 1, 8, 0)
    assert svc.fire_due_timers().fired == [scheduled.id]
    assert ready(svc, scheduled.id) == ["mulai_terjadwal_kerja"]


def test_only_due_instances_are_touched_and_limit_holds(svc: Alur, db: Database, clock: FakeClock) -> None:
    early = [svc.start("tunggu", unit="iv-jurai").id for _ in range(3)]
    clock.advance(minutes=30)
    late = [svc.start("tunggu", unit="iv-jurai").id for _ in range(2)]
    clock.now = wib(2026, 11, 23, 10, 0)  # only the first three are due
    with db.read() as s:
        versions = dict(s.execute(select(ProcessInstance.id, ProcessInstance.version)).all())
    first = svc.fire_due_timers(limit=2)
    assert len(first.fired) == 2
    assert svc.fire_due_timers().fired == [i for i in early if i not in first.fired]
    with db.read() as s:
        after = dict(s.execute(select(ProcessInstance.id, ProcessInstance.version)).all())
    assert all(after[i] == versions[i] for i in late)
    assert all(after[i] == versions[i] + 1 for i in early)


def test_a_crash_before_commit_loses_nothing_and_repeats_nothing(
        svc: Alur, db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.timer_fire as timer_fire

    inst = svc.start("eskalasi", unit="iv-jurai")
    clock.advance(hours=3)
    real_audit = timer_fire.audit

    def crash(*args: object, **kwargs: object) -> None:
        if kwargs.get("action") == "timer":
            raise SystemExit("power cut")  # not an Exception: nothing of ours catches it
        real_audit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(timer_fire, "audit", crash)
    with pytest.raises(SystemExit):
        svc.fire_due_timers()
    assert ready(svc, inst.id) == ["eskalasi_kerja"]  # rolled back: as if never started
    assert svc.instance(inst.id).version == inst.version
    monkeypatch.setattr(timer_fire, "audit", real_audit)
    assert svc.fire_due_timers().fired == [inst.id]
    assert svc.fire_due_timers().fired == []
    assert task_rows(db, inst.id)["eskalasi_tindak"] == ["READY"]
    assert timer_audits(db, inst.id) == 1


def test_a_failing_instance_is_put_back_and_the_others_fire(
        svc: Alur, db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.timer_fire as timer_fire

    bad = svc.start("tunggu", unit="iv-jurai")
    good = svc.start("tunggu", unit="iv-jurai")
    clock.advance(hours=2)
    real_sync = timer_fire.sync_tasks

    def sync(session, ref, *args, **kwargs):  # type: ignore[no-untyped-def]
        if ref.id == bad.id:
            raise ValueError("broken model")
        return real_sync(session, ref, *args, **kwargs)

    monkeypatch.setattr(timer_fire, "sync_tasks", sync)
    report = svc.fire_due_timers()
    assert report.fired == [good.id] and report.failed == [bad.id]
    view = svc.instance(bad.id)
    assert view.next_due_at == clock.now + timer_fire.RETRY_AFTER and view.tasks == []
    assert [a.action for a in view.audit] == ["start", "timer_error"]
    monkeypatch.setattr(timer_fire, "sync_tasks", real_sync)
    assert not svc.fire_due_timers()  # not before the retry time
    clock.advance(minutes=6)
    assert svc.fire_due_timers().fired == [bad.id]
