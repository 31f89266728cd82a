"""Timer starvation (issue 13, item 9): cycle timers far behind, fairness across instances, deploy limits.

A cycle with a tiny period and a start far in the past kept the oldest `next_due_at` and caught up one
occurrence per transaction, ten per sweep: twenty such instances took every worker round (200 timers) and no
other timer of the installation fired again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update

from engine import timer_fire
from engine.calendar import WorkingCalendar
from engine.db import Database
from engine.errors import DeployError, ProcessError
from engine.models import AuditEvent, ProcessInstance, Task
from engine.service import Alur
from engine.timers import MAX_CYCLE_REPETITIONS
from engine.worker import TIMER_BATCH, run_round
from tests.conftest import FakeClock
from tests.test_timers_service import TIMERS_BPMN, ready, setup_people, timer_audits, wib

A_YEAR_AGO = "2025-11-23T09:00:00+07:00"  # the FakeClock starts on Monday 2026-11-23 09:00 WIB


def cycle_bpmn(key: str, cycle: str) -> bytes:
    """A step with a non-interrupting cycle timer; each firing opens a reminder step `<key>_ingat`."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_{key}" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="{key}_start" />
    <bpmn:userTask id="{key}_kerja" name="Menunggu tanggapan" camunda:candidateGroups="Kasubag" />
    <bpmn:boundaryEvent id="{key}_timer" name="Berulang" cancelActivity="false" attachedToRef="{key}_kerja">
      <bpmn:timerEventDefinition><bpmn:timeCycle>{cycle}</bpmn:timeCycle></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:userTask id="{key}_ingat" name="Menanyakan tanggapan" camunda:candidateGroups="Kasubag" />
    <bpmn:endEvent id="{key}_end" />
    <bpmn:endEvent id="{key}_end2" />
    <bpmn:sequenceFlow id="{key}_f0" sourceRef="{key}_start" targetRef="{key}_kerja" />
    <bpmn:sequenceFlow id="{key}_f1" sourceRef="{key}_kerja" targetRef="{key}_end" />
    <bpmn:sequenceFlow id="{key}_f2" sourceRef="{key}_timer" targetRef="{key}_ingat" />
    <bpmn:sequenceFlow id="{key}_f3" sourceRef="{key}_ingat" targetRef="{key}_end2" />
  </bpmn:process>
</bpmn:definitions>""".encode()


@pytest.fixture
def svc(db: Database, clock: FakeClock) -> Alur:
    service = Alur(db, clock=clock)
    service.deploy({TIMERS_BPMN.name: TIMERS_BPMN.read_bytes(),
                    "lama.bpmn": cycle_bpmn("lama", f"R/{A_YEAR_AGO}/PT1M"),
                    "lima.bpmn": cycle_bpmn("lima", f"R5/{A_YEAR_AGO}/PT1M")})
    setup_people(db)
    return service


def reminders(db: Database, instance_id: str, key: str) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(Task).where(
            Task.instance_id == instance_id, Task.element_id == f"{key}_ingat")) or 0


def next_due(db: Database, instance_id: str) -> datetime | None:
    with db.read() as s:
        return s.scalar(select(ProcessInstance.next_due_at).where(ProcessInstance.id == instance_id))


def test_twenty_cycles_a_year_behind_do_not_stop_a_normal_timer(svc: Alur, db: Database, clock: FakeClock) -> None:
    starving = [svc.start("lama", unit="iv-jurai").id for _ in range(20)]
    normal = svc.start("tunggu", unit="iv-jurai")  # waits one working hour
    clock.now = wib(2026, 11, 23, 10, 0)
    report = run_round(svc, timer_limit=TIMER_BATCH)  # one round of `alur serve`'s background worker
    assert ready(svc, normal.id) == ["tunggu_kerja"]  # the normal timer fired in the first round
    assert [timer_audits(db, i) for i in starving] == [1] * 20  # each cycle once, not ten times
    assert report.fired == 21
    assert all(next_due(db, i) == wib(2026, 11, 23, 10, 1) for i in starving)  # the next occurrence after now


def test_a_cycle_a_year_behind_fires_once_per_due_round(svc: Alur, db: Database, clock: FakeClock) -> None:
    inst = svc.start("lama", unit="iv-jurai")
    # Starting reached the timer: one firing for the ~150,000 working minutes missed since the start date.
    assert reminders(db, inst.id, "lama") == 1
    assert next_due(db, inst.id) == wib(2026, 11, 23, 9, 1)
    for minute in range(1, 6):
        clock.now = wib(2026, 11, 23, 9, minute)
        assert svc.fire_due_timers().fired == [inst.id]
        assert not svc.fire_due_timers()  # nothing left for the same moment
    assert reminders(db, inst.id, "lama") == 6 and timer_audits(db, inst.id) == 5
    clock.now = wib(2026, 11, 23, 11, 30)  # the worker was away 85 working minutes: once, then 11:31
    assert svc.fire_due_timers().fired == [inst.id]
    assert reminders(db, inst.id, "lama") == 7 and next_due(db, inst.id) == wib(2026, 11, 23, 11, 31)


def test_the_repetition_count_includes_the_missed_occurrences(svc: Alur, db: Database, clock: FakeClock) -> None:
    inst = svc.start("lima", unit="iv-jurai")  # R5 from a year ago: all five are long past
    assert reminders(db, inst.id, "lima") == 1 and next_due(db, inst.id) is None
    clock.advance(days=1)
    assert not svc.fire_due_timers()
    assert reminders(db, inst.id, "lima") == 1


def test_catching_up_a_year_takes_few_calendar_steps(
        svc: Alur, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = 0
    real_add = WorkingCalendar.add

    def counting_add(self: WorkingCalendar, *args: Any) -> datetime:
        nonlocal steps
        steps += 1
        return real_add(self, *args)

    monkeypatch.setattr(WorkingCalendar, "add", counting_add)
    svc.start("lama", unit="iv-jurai")
    assert steps < 100  # a binary search over ~150,000 occurrences, not one step per occurrence


def test_an_instance_that_stays_due_gets_one_turn_per_pass(
        svc: Alur, db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fairness without the cycle rule: instances that are due again right after firing (simulated) take one
    turn each per pass, oldest due first, and the others get theirs in the same pass."""
    sticky = [svc.start("tunggu", unit="iv-jurai").id for _ in range(3)]
    clock.advance(minutes=30)
    normal = svc.start("tunggu", unit="iv-jurai").id  # due half an hour after the sticky ones
    clock.now = wib(2026, 11, 23, 11, 0)
    real_fire = timer_fire._fire

    def fire_and_stay_due(service: Alur, s: Any, row: Any, now: datetime) -> datetime | None:
        new_due = real_fire(service, s, row, now)
        if row.id not in sticky:
            return new_due
        s.execute(update(ProcessInstance).where(ProcessInstance.id == row.id).values(next_due_at=row.next_due_at))
        return row.next_due_at

    monkeypatch.setattr(timer_fire, "_fire", fire_and_stay_due)
    first = svc.fire_due_timers(limit=4)
    assert sorted(first.fired) == sorted([*sticky, normal])  # each once; the normal one is not starved
    report = svc.fire_due_timers(limit=1000)
    assert sorted(report.fired) == sorted(sticky * timer_fire.MAX_PASSES_PER_SWEEP)  # bounded per sweep


@pytest.mark.parametrize("cycle, problem", [
    ("R/PT30S", "repeats every PT30S; a cycle may repeat at most once a minute (PT1M)"),
    ("R3/PT0.5M", "repeats every PT0.5M; a cycle may repeat at most once a minute (PT1M)"),
    (f"R/{A_YEAR_AGO}/PT59S", "repeats every PT59S"),
    (f"R{MAX_CYCLE_REPETITIONS + 1}/PT1H", f"repeats {MAX_CYCLE_REPETITIONS + 1} times; at most "
                                           f"{MAX_CYCLE_REPETITIONS} (write R/… for a cycle without end)"),
    ("R" + "9" * 5000 + "/P1D", "times; at most"),
])
def test_cycles_too_short_or_repeated_too_often_are_refused_at_deploy(
        svc: Alur, db: Database, cycle: str, problem: str) -> None:
    with db.read() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(DeployError) as err:
        svc.deploy({"cepat.bpmn": cycle_bpmn("cepat", cycle)})
    [found] = err.value.problems
    assert found.element_id == "cepat_timer" and found.file == "cepat.bpmn"
    assert problem in found.message and len(found.message) < 300
    assert svc.definitions(key="cepat") == []
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before


@pytest.mark.parametrize("cycle", ["R/PT1M", f"R{MAX_CYCLE_REPETITIONS}/P1D", "R/P1M", "R2/PT1H30M"])
def test_cycles_at_the_limits_deploy(svc: Alur, cycle: str) -> None:
    assert svc.deploy({"batas.bpmn": cycle_bpmn("batas", cycle)}).changed


def test_a_cycle_from_a_variable_is_held_to_the_same_limits(svc: Alur, db: Database) -> None:
    svc.deploy({"var.bpmn": cycle_bpmn("var", "${siklus}")})
    with db.read() as s:
        before = s.scalar(select(func.count()).select_from(ProcessInstance))
    with pytest.raises(ProcessError, match="at most once a minute"):
        svc.start("var", unit="iv-jurai", variables={"siklus": "R/PT1S"})
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance)) == before
    inst = svc.start("var", unit="iv-jurai", variables={"siklus": "R/PT10M"})
    assert next_due(db, inst.id) == wib(2026, 11, 23, 9, 10)
