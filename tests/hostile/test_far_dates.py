"""Far dates feeding deadlines (issue 13, items 4 and 14). A form date used in `camunda:dueDate="${batas}"` once
made one completion walk the calendar to 9999-12-30 (46 s holding the SQLite write lock), 9999-12-31 gave a 500,
and 0001-01-01 added seconds to every later working-time count; `dueDate="P9999Y"` deployed and silently meant
"no deadline". Every moment now lies in one window (engine.moments, 1900-01-01 to 2199-12-31): a form refuses a
date outside it with a field message, a deadline value outside it refuses the step naming it, the deploy refuses
a literal run time could not use, and working time between far moments is counted in O(years)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from unittest import mock
from xml.sax.saxutils import quoteattr

import pytest
from sqlalchemy import update

from engine.calendar import WorkingCalendar
from engine.errors import FormValidationError, ProcessError
from engine.models import Task
from tests.hostile.helpers import World, changed, snapshot
from tests.hostile.test_bpmn_deploy import deploy, refused, timer_bpmn


def two_steps(field_type: str = "date", due: str = "${batas}", follow_up: str | None = None,
              key: str = "far_dates") -> bytes:
    """Kasubag types `batas` (a date field, or a string field), the second step's deadline is taken from it."""
    follow = f" camunda:followUpDate={quoteattr(follow_up)}" if follow_up else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_{key}" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{key}" name="Batas dari formulir" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="lane" name="Kasubag"><bpmn:flowNodeRef>s</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>t1</bpmn:flowNodeRef><bpmn:flowNodeRef>t2</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="s" />
    <bpmn:userTask id="t1" name="Menetapkan batas">
      <bpmn:extensionElements><camunda:formData>
        <camunda:formField id="batas" label="Batas waktu" type="{field_type}" />
      </camunda:formData></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:userTask id="t2" name="Menyelesaikan" camunda:dueDate={quoteattr(due)}{follow} />
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="t1" />
    <bpmn:sequenceFlow id="f1" sourceRef="t1" targetRef="t2" />
    <bpmn:sequenceFlow id="f2" sourceRef="t2" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>
""".encode()


class _Lookups:
    """Counts the calendar's per-day look-ups while it is active: the cost of a working-time count."""

    def __init__(self) -> None:
        self.days = 0
        self._original = WorkingCalendar._periods

    def __enter__(self) -> _Lookups:
        original = self._original

        def counting(calendar: WorkingCalendar, day: date) -> Any:
            self.days += 1
            return original(calendar, day)

        self._patch = mock.patch.object(WorkingCalendar, "_periods", counting)
        self._patch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._patch.stop()


@pytest.fixture(scope="module")
def far(world: World) -> World:
    for key, field_type in (("far_dates", "date"), ("far_text", "string")):
        response = deploy(world, {f"{key}.bpmn": two_steps(field_type, key=key)})
        assert response.status_code == 200, response.json
    return world


@pytest.mark.parametrize("typed", ["9999-12-30", "9999-12-31", "0001-01-01", "31/12/9999", "1899-12-31",
                                   "2200-01-01"])
def test_a_form_date_outside_the_window_is_a_field_error(far: World, typed: str) -> None:
    kasubag = far.service.actor("kasubag")
    task_id = far.start(business_key="FAR-FORM", key="far_dates")
    before = snapshot(far)
    with _Lookups() as lookups, pytest.raises(FormValidationError) as caught:
        far.service.complete(task_id, kasubag, {"batas": typed})
    assert caught.value.errors == {"batas": ["tanggal harus antara 1900-01-01 dan 2199-12-31"]}
    with pytest.raises(FormValidationError) as caught:
        far.service.complete(task_id, kasubag, {"batas": typed}, locale="en")
    assert caught.value.errors == {"batas": ["the date must be between 1900-01-01 and 2199-12-31"]}
    page = far.client("kasubag").post(f"/tugas/{task_id}", data={"batas": typed, "action": "complete"})
    assert "tanggal harus antara 1900-01-01 dan 2199-12-31" in page.get_data(as_text=True)
    assert page.status_code != 500
    assert changed(before, snapshot(far)) == []
    assert lookups.days < 50


@pytest.mark.parametrize(("typed", "needle"), [
    ("9999-12-30", "outside the supported range 1900-01-01 to 2199-12-31"),
    ("9999-12-31T23:59:59", "outside the supported range"),
    ("0001-01-01", "outside the supported range"),
    ("P9999Y", "longer than 100 years"),
    ("besok pagi", "not an ISO 8601 duration"),
])
def test_a_deadline_value_outside_the_window_refuses_the_step(far: World, typed: str, needle: str) -> None:
    """A text field is no date field: the value reaches `${batas}` and the step that would get it is refused,
    saying which attribute and why, instead of a 500, a 46-second walk or a silently missing deadline."""
    kasubag = far.service.actor("kasubag")
    task_id = far.start(business_key="FAR-TEXT", key="far_text")
    before = snapshot(far)
    with _Lookups() as lookups, pytest.raises(ProcessError) as caught:
        far.service.complete(task_id, kasubag, {"batas": typed})
    message = str(caught.value)
    assert "'Menyelesaikan'" in message and "camunda:dueDate '${batas}'" in message and needle in message
    page = far.client("kasubag").post(f"/tugas/{task_id}", data={"batas": typed, "action": "complete"})
    assert page.status_code == 422 and "Proses tidak dapat dilanjutkan" in page.get_data(as_text=True)
    assert changed(before, snapshot(far)) == []
    assert far.service.task(task_id).state == "READY"
    assert lookups.days < 50


def test_a_far_deadline_inside_the_window_is_counted_in_years_not_days(far: World) -> None:
    kasubag = far.service.actor("kasubag")
    task_id = far.start(business_key="FAR-OK", key="far_dates")
    with _Lookups() as lookups:
        view = far.service.complete(task_id, kasubag, {"batas": "2199-12-30"})
    assert lookups.days < 3_000  # the day-by-day walk looked up ~63,000 days for the reminder alone
    second = far.service.task(view.ready_task_ids[0])
    assert second.due_at is not None and second.due_at.year == 2199
    assert second.follow_up_at is not None and far.clock.now < second.follow_up_at < second.due_at


def test_a_stored_deadline_at_year_one_costs_nothing_at_completion(far: World) -> None:
    """Rows written before the window (a deadline of 0001-01-01) still complete, and cheaply: working time is
    only counted inside the window (the walk from year 1 took ~4 s on every completion of such a step)."""
    kasubag = far.service.actor("kasubag")
    task_id = far.start(business_key="FAR-OLD", key="far_dates")
    view = far.service.complete(task_id, kasubag, {"batas": "2027-01-15"})
    second = view.ready_task_ids[0]
    with far.db.write() as s:
        s.execute(update(Task).where(Task.id == second).values(due_at=datetime(1, 1, 1, tzinfo=UTC)))
    with _Lookups() as lookups:
        far.service.complete(second, kasubag, {}, late_reason="data lama")
    assert lookups.days < 2_000
    assert far.service.task(second).state == "COMPLETED"


# ------------------------------------------------------------------------------------------ deploy = run time

@pytest.mark.parametrize(("attribute", "text", "needle"), [
    ("dueDate", "P9999Y", "longer than 100 years"),
    ("dueDate", "P36600D", "longer than 100 years"),
    ("followUpDate", "PT99999999H", "longer than 100 years"),
    ("dueDate", "9999-12-30T00:00:00", "outside the supported range 1900-01-01 to 2199-12-31"),
    ("followUpDate", "0001-01-01T00:00:00+07:00", "outside the supported range"),
    ("dueDate", "P1.5D", "fractional days are not supported"),
])
def test_deadlines_run_time_could_not_use_are_refused_at_deploy(world: World, attribute: str, text: str,
                                                                needle: str) -> None:
    """They deployed and then silently meant "no deadline"; now the deploy names the element and why."""
    due, follow = (text, None) if attribute == "dueDate" else ("PT2H", text)
    refused(world, {"far.bpmn": two_steps(due=due, follow_up=follow, key="far_deploy")},
            f"camunda:{attribute}", needle, "t2", "far.bpmn")


@pytest.mark.parametrize(("kind", "text", "needle"), [
    ("timeDuration", "P9999Y", "longer than 100 years"),
    ("timeDuration", "PT99999999H", "longer than 100 years"),
    ("timeDate", "9999-12-31T00:00:00Z", "outside the supported range"),
    ("timeDate", "0001-01-01T00:00:00+07:00", "outside the supported range"),
    ("timeCycle", "R3/1000-01-01T00:00:00Z/P1D", "outside the supported range"),
])
def test_timers_run_time_could_not_use_are_refused_at_deploy(world: World, kind: str, text: str,
                                                             needle: str) -> None:
    refused(world, {"timer.bpmn": timer_bpmn(kind, text)}, kind, needle, "timer.bpmn")


def test_ordinary_deadlines_and_timers_still_deploy(world: World) -> None:
    for due in ("PT2H", "P2D", "P1W", "P3M", "P99Y", "2026-12-31T10:00:00+07:00", "2199-12-31T16:00:00",
                "${batas}"):
        response = deploy(world, {"ok.bpmn": two_steps(due=due, follow_up="PT1H", key="far_ok")})
        assert response.status_code == 200, (due, response.json)
    for kind, text in (("timeDuration", "PT1H"), ("timeDuration", "P5D"), ("timeDate", "2027-01-04T08:00:00+07:00"),
                       ("timeCycle", "R3/PT10M")):
        response = deploy(world, {"timer.bpmn": timer_bpmn(kind, text)})
        assert response.status_code == 200, (kind, text, response.json)
