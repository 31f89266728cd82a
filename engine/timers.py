"""Timer event definitions that read Camunda-style ISO 8601 text and use an injectable clock and calendar.

SpiffWorkflow's own timers evaluate the timer text as a Python expression (a bare `PT15M` crashes) and
read `datetime.now` directly. Ours take the text literally unless it is wrapped as `${expr}`, get "now"
from the workflow's script engine (`SafeScriptEngine.now()`), and add durations on its working calendar.
Internal data keeps SpiffWorkflow's keys (`event_value`, `event_fired`) so `waiting_events()` reports the
due time (ISO 8601, UTC) of each waiting timer.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.util import PendingBpmnEvent

from engine.calendar import IsoDuration, parse_iso_duration
from engine.expressions import check_expression, is_wrapped
from engine.moments import check_moment

TimerKind = Literal["timeDate", "timeDuration", "timeCycle"]
_CYCLE = re.compile(r"^R(\d*)/(.+)$", re.IGNORECASE)
# A cycle repeats at most once a minute (of working time) and at most this many times (`R/…` has no end).
# SOP timers count hours and working days; a shorter period only floods the worker and the inbox.
MIN_CYCLE_PERIOD = timedelta(minutes=1)
MAX_CYCLE_REPETITIONS = 10_000


def _is_expression(text: str) -> bool:
    # `${…}` is JUEL; a quoted literal is how SpiffWorkflow-style files write timers. Both get evaluated.
    return is_wrapped(text) or text[:1] in {"'", '"'}


def parse_duration(text: str) -> dict[str, Any]:
    """ISO 8601 duration (`PT15M`, `P2D`, `P1W`) -> SpiffWorkflow's parsed dict; ValueError if invalid."""
    text = text.strip()
    if not re.fullmatch(r"P(?=\d|T\d)[0-9YMWDTHS.,]*", text.upper()) or text.upper().endswith("T"):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    try:
        parsed = TimerEventDefinition.parse_iso_duration(text)
    except Exception:
        raise ValueError(f"not an ISO 8601 duration: {text!r}") from None
    parse_iso_duration(text)  # what the working calendar adds at run time (at most 100 years): the same refusals
    return parsed


def parse_datetime(text: str) -> datetime:
    """ISO 8601 date-time -> aware UTC datetime. A value without offset is taken as UTC; one outside
    engine.moments' window (1900–2199) is refused (OutOfWindow, a ValueError), at deploy and at run time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return check_moment(value, "").astimezone(UTC)


def parse_cycle(text: str) -> tuple[int, datetime | None, str]:
    """`R3/PT10M`, `R/PT1H`, `R2/2026-01-05T08:00:00+07:00/P1D` -> (cycles or -1, start or None, duration)."""
    match = _CYCLE.match(text.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 repeating interval (like R3/PT10M): {text!r}")
    count, rest = match.groups()
    if count and (len(count) > 9 or int(count) > MAX_CYCLE_REPETITIONS):
        shown = count if len(count) <= 12 else f"{count[:6]}… ({len(count)} digits)"
        raise ValueError(f"the cycle repeats {shown} times; at most {MAX_CYCLE_REPETITIONS} "
                         f"(write R/… for a cycle without end)")
    parts = rest.split("/")
    if len(parts) == 1:
        start, duration = None, parts[0]
    elif len(parts) == 2:
        start, duration = parse_datetime(parts[0]), parts[1]
    else:
        raise ValueError(f"not a supported repeating interval: {text!r}")
    parse_duration(duration)
    period = parse_iso_duration(duration)
    if not (period.calendar_months or period.working_days) and period.working_time < MIN_CYCLE_PERIOD:
        raise ValueError(f"{text.strip()!r} repeats every {duration.strip()}; a cycle may repeat at most once a "
                         f"minute (PT1M)")
    return (int(count) if count else -1), start, duration


def parse_timer_text(kind: TimerKind, text: str | None) -> str | None:
    """Why `text` is not acceptable for a timer of `kind`, or None when it is (deploy check)."""
    if text is None or not text.strip():
        return f"{kind} is empty"
    text = text.strip()
    if _is_expression(text):
        problem = check_expression(text)
        return f"{kind}: {problem}" if problem else None
    try:
        if kind == "timeDate":
            parse_datetime(text)
        elif kind == "timeDuration":
            parse_duration(text)
        elif kind == "timeCycle":
            parse_cycle(text)
        else:
            return f"unknown timer kind {kind!r}"
    except ValueError as err:
        return f"{kind}: {err}"
    return None


def _now(my_task: Any) -> datetime:
    engine = my_task.workflow.script_engine
    clock = getattr(engine, "now", None)
    if clock is None:
        raise RuntimeError("timers need a script engine with now() (engine.expressions.SafeScriptEngine)")
    return clock().astimezone(UTC)


def add_duration(my_task: Any, start: datetime, duration: str) -> datetime:
    """start + duration, on the script engine's working calendar when it has one."""
    calendar = getattr(my_task.workflow.script_engine, "calendar", None)
    if calendar is not None:
        return calendar.add(start, duration).astimezone(UTC)  # refuses a result outside engine.moments' window
    return check_moment(start + TimerEventDefinition.get_timedelta_from_start(parse_duration(duration), start), "")


def _resolve(my_task: Any, text: str) -> Any:
    text = text.strip()
    if _is_expression(text):
        return my_task.workflow.script_engine.evaluate(my_task, text)
    return text


def _unusable(my_task: Any, text: str, err: Exception) -> WorkflowTaskException:
    """A timer whose text (or the variable it reads) gives no usable moment: a process error the service
    reports (ProcessError), not a crash. E.g. `${batas}` where a user typed `P99999999D` or `besok`."""
    return WorkflowTaskException(f"timer {text.strip()!r} gives no usable moment: {err}", task=my_task,
                                 exception=err)


class AlurTimerMixin:
    """Shared behaviour; `details` reports SpiffWorkflow's class name so callers can filter on it."""

    spiff_type: str = ""
    expression: str
    name: str

    def details(self, my_task: Any) -> PendingBpmnEvent:
        value = my_task._get_internal_data("event_value")
        if isinstance(value, dict):
            value = value["next"] if value.get("cycles") != 0 else None
        return PendingBpmnEvent(self.name, self.spiff_type, value)


class AlurTimeDateEventDefinition(AlurTimerMixin, TimeDateEventDefinition):
    spiff_type = "TimeDateEventDefinition"

    def has_fired(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            value = _resolve(my_task, self.expression)
            try:
                due = (check_moment(value, "").astimezone(UTC) if isinstance(value, datetime)
                       else parse_datetime(str(value)))
            except (ValueError, OverflowError) as err:
                raise _unusable(my_task, self.expression, err) from err
            event_value = due.isoformat()
            my_task._set_internal_data(event_value=event_value)
        if _now(my_task) >= datetime.fromisoformat(event_value):
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class AlurDurationTimerEventDefinition(AlurTimerMixin, DurationTimerEventDefinition):
    spiff_type = "DurationTimerEventDefinition"

    def has_fired(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        now = _now(my_task)
        if event_value is None:
            duration = str(_resolve(my_task, self.expression))
            try:
                event_value = add_duration(my_task, now, duration).isoformat()
            except (ValueError, OverflowError) as err:
                raise _unusable(my_task, self.expression, err) from err
            my_task._set_internal_data(event_value=event_value)
        if now >= datetime.fromisoformat(event_value):
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class AlurCycleTimerEventDefinition(AlurTimerMixin, CycleTimerEventDefinition):
    spiff_type = "CycleTimerEventDefinition"

    def cycle_complete(self, my_task: Any) -> bool:
        """True when the next occurrence has passed (the caller then starts one more path)."""
        now = _now(my_task)
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            text = str(_resolve(my_task, self.expression))
            try:
                cycles, start, duration = parse_cycle(text)
                first = start if start is not None else add_duration(my_task, now, duration)
            except (ValueError, OverflowError) as err:
                raise _unusable(my_task, self.expression, err) from err
            event_value = {"cycles": cycles, "next": first.isoformat(), "duration": duration}

        ready = False
        if event_value["cycles"] != 0:
            next_due = datetime.fromisoformat(event_value["next"])
            if now >= next_due:
                # Behind (the worker was down, or the start lies in the past): fire once for all the missed
                # occurrences and go on with the first one after now. The missed ones count: R5 never fires
                # more than 5 times nor after its last occurrence.
                try:
                    missed, following = occurrences_until(my_task, next_due, event_value["duration"], now)
                except (ValueError, OverflowError) as err:
                    raise _unusable(my_task, self.expression, err) from err
                event_value["next"] = following.isoformat()
                if event_value["cycles"] > 0:
                    event_value["cycles"] = max(0, event_value["cycles"] - missed)
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
            return False
        my_task._set_internal_data(event_value=event_value)
        return ready


def occurrences_until(my_task: Any, first: datetime, duration: str, now: datetime) -> tuple[int, datetime]:
    """For a cycle due at `first` <= `now`: how many of its occurrences lie in [first, now], and the first
    occurrence after `now`. In O(log n) calendar steps, not n: a PT1M cycle a year behind has 500,000."""
    period = parse_iso_duration(duration)
    calendar = getattr(my_task.workflow.script_engine, "calendar", None)
    if period.calendar_months or (period.working_days and period.working_time):
        # Calendar months do not add up (31 Jan + P1M + P1M is 28 Mar, 31 Jan + P2M is 31 Mar): step through
        # them, at least a day each.
        count, following = 1, add_duration(my_task, first, duration)
        while following <= now:
            count, following = count + 1, add_duration(my_task, following, duration)
        return count, following
    if not (period.working_days or period.working_time):
        raise ValueError(f"the cycle period {duration!r} is empty")
    step = add_duration(my_task, first, duration) - first

    def nth(k: int) -> datetime:
        """The k-th occurrence after `first`: k periods added at once (working time and working days add up)."""
        if calendar is None:
            return first + k * step
        amount: IsoDuration | timedelta = (IsoDuration(days=period.working_days * k) if period.working_days
                                           else period.working_time * k)
        return calendar.add(first, amount).astimezone(UTC)

    def after_now(k: int) -> datetime | None:
        """nth(k) if it lies after now, else None; a moment too far to compute lies after now too."""
        try:
            moment = nth(k)
        except (ValueError, OverflowError):
            return datetime.max.replace(tzinfo=UTC)
        return moment if moment > now else None

    low, high = 0, 1  # nth(low) <= now < nth(high)
    while after_now(high) is None:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if after_now(middle) is None:
            low = middle
        else:
            high = middle
    return low + 1, nth(high)  # the next occurrence itself must be a usable moment


TIMER_CLASSES: dict[TimerKind, type[TimerEventDefinition]] = {
    "timeDate": AlurTimeDateEventDefinition,
    "timeDuration": AlurDurationTimerEventDefinition,
    "timeCycle": AlurCycleTimerEventDefinition,
}


def next_timer_due(workflow: Any) -> datetime | None:
    """Earliest due time (UTC) among the workflow's waiting timers; None when nothing waits on time."""
    due: list[datetime] = []
    timer_types = {cls.spiff_type for cls in TIMER_CLASSES.values()}  # type: ignore[attr-defined]
    for event in workflow.waiting_events():
        if event.event_type in timer_types and isinstance(event.value, str):
            try:
                due.append(datetime.fromisoformat(event.value).astimezone(UTC))
            except ValueError:
                continue
    return min(due, default=None)
