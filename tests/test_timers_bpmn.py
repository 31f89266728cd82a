"""BPMN timers on an injected clock (and calendar): nothing fires before its due time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.expressions import SafeScriptEngine
from engine.loader import build_specs
from engine.timers import (
    AlurCycleTimerEventDefinition,
    AlurDurationTimerEventDefinition,
    AlurTimeDateEventDefinition,
    next_timer_due,
    parse_timer_text,
)

FILES = {"timers.bpmn": (Path(__file__).parent / "data" / "engine" / "timers.bpmn").read_bytes()}
START = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)  # Monday 08:00 WIB


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def start(process: str, clock: Clock, data: dict | None = None, calendar: object | None = None) -> BpmnWorkflow:
    spec, subs = build_specs(FILES, process)
    workflow = BpmnWorkflow(spec, subs, script_engine=SafeScriptEngine(clock=clock, calendar=calendar))
    if data:
        workflow.get_next_task(spec_name="Start").data.update(data)
    workflow.do_engine_steps()
    return workflow


def tick(workflow: BpmnWorkflow, clock: Clock, **delta: float) -> list[str]:
    clock.now += timedelta(**delta)
    workflow.refresh_timers()
    workflow.do_engine_steps()
    return sorted(t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY))


def test_parser_uses_our_timer_classes() -> None:
    spec, _ = build_specs(FILES, "boundary_cycle")
    assert isinstance(spec.task_specs["boundary_cycle_timer"].event_definition, AlurCycleTimerEventDefinition)
    spec, _ = build_specs(FILES, "catch_date")
    assert isinstance(spec.task_specs["cdt_wait"].event_definition, AlurTimeDateEventDefinition)
    spec, _ = build_specs(FILES, "catch_duration")
    assert isinstance(spec.task_specs["cd_wait"].event_definition, AlurDurationTimerEventDefinition)


def test_interrupting_boundary_fires_only_after_due() -> None:
    clock = Clock()
    wf = start("boundary_interrupting", clock)
    assert next_timer_due(wf) == START + timedelta(minutes=15)
    [event] = wf.waiting_events()
    assert event.event_type == "DurationTimerEventDefinition"
    assert event.value == (START + timedelta(minutes=15)).isoformat()
    assert tick(wf, clock, minutes=14, seconds=59) == ["boundary_interrupting_work"]
    assert tick(wf, clock, seconds=2) == ["boundary_interrupting_escalate"]
    work = wf.get_next_task(spec_name="boundary_interrupting_work")
    assert work.state == TaskState.CANCELLED
    assert next_timer_due(wf) is None


def test_non_interrupting_boundary_with_expression() -> None:
    clock = Clock()
    wf = start("boundary_noninterrupting", clock, data={"wait": "PT1H"})
    assert next_timer_due(wf) == START + timedelta(hours=1)
    assert tick(wf, clock, minutes=59) == ["boundary_noninterrupting_work"]
    assert tick(wf, clock, minutes=2) == ["boundary_noninterrupting_escalate", "boundary_noninterrupting_work"]


def test_timer_never_reads_the_wall_clock() -> None:
    clock = Clock()
    clock.now = datetime(2001, 1, 1, tzinfo=UTC)  # far in the past: only the injected clock can say so
    wf = start("boundary_interrupting", clock)
    assert next_timer_due(wf) == datetime(2001, 1, 1, 0, 15, tzinfo=UTC)
    assert tick(wf, clock, minutes=1) == ["boundary_interrupting_work"]


def test_durations_use_the_calendar_when_set() -> None:
    class TwoDayCalendar:
        def __init__(self) -> None:
            self.calls: list[tuple[datetime, str]] = []

        def add(self, begin: datetime, iso: str) -> datetime:
            self.calls.append((begin, iso))
            return begin + timedelta(days=2)

    calendar = TwoDayCalendar()
    clock = Clock()
    wf = start("boundary_interrupting", clock, calendar=calendar)
    assert calendar.calls == [(START, "PT15M")]
    assert next_timer_due(wf) == START + timedelta(days=2)
    assert tick(wf, clock, hours=47) == ["boundary_interrupting_work"]
    assert tick(wf, clock, hours=2) == ["boundary_interrupting_escalate"]


def test_intermediate_catch_duration() -> None:
    clock = Clock()
    wf = start("catch_duration", clock)
    assert next_timer_due(wf) == START + timedelta(days=1)
    assert tick(wf, clock, hours=23) == []
    assert tick(wf, clock, hours=2) == ["cd_work"]


def test_time_date() -> None:
    clock = Clock()
    clock.now = datetime(2026, 12, 1, 0, 59, tzinfo=UTC)  # 07:59 WIB
    wf = start("catch_date", clock)
    due = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert next_timer_due(wf) == due
    assert wf.waiting_events()[0].value == due.isoformat()
    assert tick(wf, clock, seconds=30) == []
    assert tick(wf, clock, minutes=1) == ["cdt_work"]


def test_cycle_fires_exactly_three_times() -> None:
    clock = Clock()
    wf = start("boundary_cycle", clock)
    assert next_timer_due(wf) == START + timedelta(minutes=10)
    fired = []
    for _ in range(8):
        ready = tick(wf, clock, minutes=10, seconds=1)
        fired.append(ready.count("boundary_cycle_escalate"))
    assert fired[:3] == [1, 2, 3]
    assert max(fired) == 3
    assert next_timer_due(wf) is None
    assert wf.get_next_task(spec_name="boundary_cycle_work").state == TaskState.READY


@pytest.mark.parametrize(("kind", "text"), [
    ("timeDuration", "PT15M"), ("timeDuration", "P2D"), ("timeDuration", "P1W"), ("timeDuration", "P1Y2M"),
    ("timeDuration", "${wait}"), ("timeDuration", "'PT5M'"),
    ("timeDate", "2026-12-01T08:00:00+07:00"), ("timeDate", "2026-12-01"), ("timeDate", "#{deadline}"),
    ("timeCycle", "R3/PT10M"), ("timeCycle", "R/PT1H"), ("timeCycle", "R2/2026-01-05T08:00:00+07:00/P1D"),
])
def test_parse_timer_text_accepts(kind: str, text: str) -> None:
    assert parse_timer_text(kind, text) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "text"), [
    ("timeDuration", "15 minutes"), ("timeDuration", "PT"), ("timeDuration", "P"), ("timeDuration", "PT15X"),
    ("timeDuration", ""), ("timeDuration", "${__import__('os')}"), ("timeDate", "besok"),
    ("timeCycle", "PT10M"), ("timeCycle", "R3/soon"), ("timeCycle", "Rx/PT1M"),
])
def test_parse_timer_text_refuses(kind: str, text: str) -> None:
    assert parse_timer_text(kind, text)  # type: ignore[arg-type]
