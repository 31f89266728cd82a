"""SOP performance report ("laporan monitoring"): how each step of an SOP performs against its standard time.

For one process key (all versions, or one definition version), a set of units and a period:

- per step (BPMN element id): completions in the period, median and p90 of the actual working minutes
  (`task.working_minutes`, created → completed in the unit's working time), the standard in minutes, the
  share done on time and the three most frequent late reasons;
- overall lead time: instance start → end in working minutes (median, p90) against the SOP's total standard
  (the sum of its steps' standards), for instances that ended in the period.

Decisions (also in docs/supervisor-guide.md):
- Standard minutes come from the step's `camunda:dueDate`: `PT15M` = 15, `PT3H` = 180, `PnD` = n × the working
  day of the unit's calendar — Monday's hours, 07:30–16:00 minus the 12:00–13:00 break = **450 minutes** by
  default (Friday's 07:30–16:30 minus 11:30–13:00 is 450 too); a week (`PnW`) is 5 working days. Months,
  years, dates and `${…}` expressions have no fixed length in working time: their standard is left empty.
- On time = `late_minutes` is 0, or NULL (a step without deadline cannot be late).
- A step done several times in one instance (a "Tidak" loop back) counts each time: `done` is completions.
- Percentiles interpolate linearly between the closest ranks (Excel's PERCENTILE.INC, numpy's default):
  the median of 10, 20, 30, 40 is 25; the p90 of 1…10 is 9.1.
- A step counts in the period when it was completed in [since, until); the lead time when its instance ended
  in [since, until). Cancelled steps and instances are left out of the times.

Speed: SQL does the heavy part — one GROUP BY (element, minutes, on time) gives a histogram per step, from which
Python reads exact percentiles without fetching a row per task; a second GROUP BY gives late reasons.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from engine.calendar import WorkingCalendar, parse_iso_duration
from engine.models import ProcessDefinition, ProcessInstance, Task

DEFAULT_DAY_MINUTES = 450
TOP_REASONS = 3


# ------------------------------------------------------------------------------------------------ numbers

def day_minutes(calendar: WorkingCalendar | None) -> int:
    """Length of one working day in minutes: the first open weekday's hours (Monday: 450 by default)."""
    if calendar is None:
        return DEFAULT_DAY_MINUTES
    for weekday in range(7):
        hours = calendar.config.week.get(weekday)
        if hours is not None:
            base = datetime.min.date()
            total = sum((datetime.combine(base, b) - datetime.combine(base, a) for a, b in hours.periods),
                        timedelta(0))
            return int(total // timedelta(minutes=1))
    return DEFAULT_DAY_MINUTES


def standard_minutes(due_date: str | None, working_day: int = DEFAULT_DAY_MINUTES) -> int | None:
    """`PT15M` → 15, `PT3H` → 180, `P2D` → 2 × working_day, `P1W` → 5 × working_day; None when it has no
    fixed length in working time (months, years, dates, expressions) or there is no standard."""
    if not due_date:
        return None
    try:
        d = parse_iso_duration(due_date.strip())
    except ValueError:
        return None
    if d.calendar_months:
        return None
    minutes = d.working_days * working_day + d.working_time / timedelta(minutes=1)
    return round(minutes)


def quantile(histogram: Sequence[tuple[float, int]], q: float) -> float | None:
    """The q-quantile (0…1) of values given as (value, count) sorted by value; linear interpolation between
    the closest ranks (PERCENTILE.INC). None for no values."""
    n = sum(c for _, c in histogram)
    if n == 0:
        return None
    position = (n - 1) * q
    lower_rank = math.floor(position)
    fraction = position - lower_rank

    def value_at(rank: int) -> float:
        seen = 0
        for value, count in histogram:
            seen += count
            if rank < seen:
                return value
        return histogram[-1][0]

    low = value_at(lower_rank)
    if fraction == 0:
        return float(low)
    high = value_at(lower_rank + 1)
    return float(low + (high - low) * fraction)


def heat_level(on_time_pct: float | None) -> str:
    """Colour class of a step on the heatmap: good ≥ 90 %, fair ≥ 75 %, poor ≥ 50 %, bad below, none = no data."""
    if on_time_pct is None:
        return "none"
    if on_time_pct >= 90:
        return "good"
    if on_time_pct >= 75:
        return "fair"
    if on_time_pct >= 50:
        return "poor"
    return "bad"


# ------------------------------------------------------------------------------------------------ records

@dataclass(frozen=True)
class StepStats:
    element_id: str
    name: str
    lane: str | None
    sop_no: str | None
    standard: str | None  # the dueDate text, e.g. "PT15M"
    standard_text: str | None  # sop.waktu as the SOP writes it, e.g. "15 menit"
    standard_minutes: int | None
    done: int = 0
    on_time: int = 0
    median_minutes: float | None = None
    p90_minutes: float | None = None
    late_reasons: tuple[tuple[str, int], ...] = ()

    @property
    def on_time_pct(self) -> float | None:
        return None if self.done == 0 else 100.0 * self.on_time / self.done

    @property
    def late(self) -> int:
        return self.done - self.on_time

    @property
    def heat(self) -> str:
        return heat_level(self.on_time_pct)


@dataclass(frozen=True)
class LeadTime:
    done: int
    median_minutes: float | None
    p90_minutes: float | None
    standard_minutes: int | None  # sum of the steps' standards
    within_standard: int  # instances whose lead time ≤ the total standard
    standard_complete: bool  # False when some step has no standard in minutes (the sum is then a floor)

    @property
    def within_standard_pct(self) -> float | None:
        if self.done == 0 or self.standard_minutes is None:
            return None
        return 100.0 * self.within_standard / self.done


@dataclass(frozen=True)
class SopReport:
    key: str
    name: str
    definition_id: str | None  # None = all versions
    versions: tuple[int, ...]
    since: datetime | None
    until: datetime | None
    day_minutes: int
    steps: tuple[StepStats, ...]
    lead: LeadTime
    running: int = 0
    cancelled: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total_done(self) -> int:
        return sum(s.done for s in self.steps)

    @property
    def on_time_pct(self) -> float | None:
        done = self.total_done
        return None if done == 0 else 100.0 * sum(s.on_time for s in self.steps) / done


# ------------------------------------------------------------------------------------------------ the report

def _step_order(element_id: str, meta: dict[str, Any], position: int) -> tuple[float, int]:
    no = ((meta.get("extensions") or {}).get("properties") or {}).get("sop.no")
    try:
        return (float(str(no).strip().rstrip(".")), position)
    except (TypeError, ValueError):
        return (math.inf, position)


def _period(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    conds = []
    if since is not None:
        conds.append(column >= since)
    if until is not None:
        conds.append(column < until)
    return conds


def sop_report(session: Session, key: str, *, unit_ids: Iterable[int] | None, definition_id: str | None = None,
               since: datetime | None = None, until: datetime | None = None,
               calendar_for: Callable[[int], WorkingCalendar] | None = None) -> SopReport:
    """The performance report of process `key` over the units `unit_ids` (None = every unit; the caller
    passes only what the reader may see) for steps completed / instances ended in [since, until)."""
    definitions = session.execute(
        select(ProcessDefinition.id, ProcessDefinition.version, ProcessDefinition.name, ProcessDefinition.info)
        .where(ProcessDefinition.key == key).order_by(ProcessDefinition.version)).all()
    if definition_id is not None:
        definitions = [d for d in definitions if d.id == definition_id]
    if not definitions:
        from engine.errors import NotFound

        raise NotFound(f"no process definition {definition_id or key!r}")
    reference = definitions[-1]  # the newest version names the steps and gives the standards
    units = None if unit_ids is None else sorted(set(unit_ids))
    first_unit = units[0] if units else None
    calendar = calendar_for(first_unit) if (calendar_for and first_unit is not None) else None
    working_day = day_minutes(calendar)

    # Steps: the reference version's user tasks, then any older version's that it no longer has.
    metas: dict[str, dict[str, Any]] = {}
    for d in reversed(definitions):
        for element_id, meta in ((d.info or {}).get("user_tasks") or {}).items():
            metas.setdefault(element_id, meta)
    reference_steps = set((reference.info or {}).get("user_tasks") or {})

    def task_filter() -> list[Any]:
        conds = [Task.process_key == key, Task.state == "COMPLETED", *_period(Task.completed_at, since, until)]
        if definition_id is not None:
            conds.append(Task.definition_id == definition_id)
        if units is not None:
            conds.append(Task.unit_id.in_(units))
        return conds

    # One scan: (step, minutes, on time, reason) groups make a histogram per step (exact percentiles without
    # a row per task) and the late-reason counts at once.
    on_time = case((or_(Task.late_minutes.is_(None), Task.late_minutes <= 0), 1), else_=0)
    histograms: dict[str, dict[int, int]] = defaultdict(dict)
    done: Counter[str] = Counter()
    on_time_count: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    spellings: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    rows = session.execute(
        select(Task.element_id, Task.working_minutes, on_time.label("on_time"), Task.late_reason, func.count())
        .where(*task_filter()).group_by(Task.element_id, Task.working_minutes, on_time, Task.late_reason))
    for element_id, minutes, is_on_time, reason, count in rows:
        done[element_id] += count
        if is_on_time:
            on_time_count[element_id] += count
        if minutes is not None:
            hist = histograms[element_id]
            hist[minutes] = hist.get(minutes, 0) + count
        if reason and reason.strip():
            text = " ".join(reason.split())
            norm = text.casefold()
            spellings[(element_id, norm)][text] += count
            reasons[element_id][norm] += count

    def shown(element_id: str, norm: str) -> str:  # the most used spelling of a reason
        return min(spellings[(element_id, norm)].items(), key=lambda kv: (-kv[1], kv[0]))[0]

    for element_id in done:  # steps of tasks whose definition no longer lists them (should not happen)
        metas.setdefault(element_id, {"name": element_id})
    ordered = sorted(enumerate(metas.items()), key=lambda p: _step_order(p[1][0], p[1][1], p[0]))
    steps: list[StepStats] = []
    for _, (element_id, meta) in ordered:
        if element_id not in reference_steps and not done[element_id]:
            continue
        ext = meta.get("extensions") or {}
        props = ext.get("properties") or {}
        hist = sorted(histograms.get(element_id, {}).items())
        top = sorted(reasons.get(element_id, Counter()).items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
        steps.append(StepStats(
            element_id=element_id, name=str(meta.get("name") or element_id), lane=meta.get("lane"),
            sop_no=props.get("sop.no"), standard=ext.get("dueDate"), standard_text=props.get("sop.waktu"),
            standard_minutes=standard_minutes(ext.get("dueDate"), working_day),
            done=done[element_id], on_time=on_time_count[element_id],
            median_minutes=quantile(hist, 0.5), p90_minutes=quantile(hist, 0.9),
            late_reasons=tuple((shown(element_id, norm), n) for norm, n in top),
        ))

    reference_standards = [s.standard_minutes for s in steps if s.element_id in reference_steps]
    total_standard = sum(m for m in reference_standards if m is not None) if any(
        m is not None for m in reference_standards) else None
    lead = _lead_time(session, key, definition_id, units, since, until, calendar_for, total_standard,
                      standard_complete=all(m is not None for m in reference_standards))

    inst_conds = [ProcessInstance.process_key == key]
    if definition_id is not None:
        inst_conds.append(ProcessInstance.definition_id == definition_id)
    if units is not None:
        inst_conds.append(ProcessInstance.unit_id.in_(units))
    counts = dict(session.execute(
        select(ProcessInstance.status, func.count()).where(
            *inst_conds, or_(ProcessInstance.status.in_(("running", "suspended")),
                             and_(ProcessInstance.status == "cancelled",
                                  *_period(ProcessInstance.ended_at, since, until))))
        .group_by(ProcessInstance.status)).all())
    return SopReport(
        key=key, name=reference.name, definition_id=definition_id,
        versions=tuple(d.version for d in definitions), since=since, until=until, day_minutes=working_day,
        steps=tuple(steps), lead=lead, running=counts.get("running", 0) + counts.get("suspended", 0),
        cancelled=counts.get("cancelled", 0), meta={"properties": (reference.info or {}).get("properties") or {}},
    )


def _lead_time(session: Session, key: str, definition_id: str | None, units: list[int] | None,
               since: datetime | None, until: datetime | None,
               calendar_for: Callable[[int], WorkingCalendar] | None, total_standard: int | None,
               *, standard_complete: bool) -> LeadTime:
    conds = [ProcessInstance.process_key == key, ProcessInstance.status == "completed",
             ProcessInstance.ended_at.is_not(None), *_period(ProcessInstance.ended_at, since, until)]
    if definition_id is not None:
        conds.append(ProcessInstance.definition_id == definition_id)
    if units is not None:
        conds.append(ProcessInstance.unit_id.in_(units))
    # Plain Core over the table: no ORM identity map for thousands of rows.
    table = ProcessInstance.__table__
    rows = session.execute(select(table.c.unit_id, table.c.started_at, table.c.ended_at).where(*conds)).all()
    indexes: dict[int, _WorkingClock] = {}
    leads: Counter[int] = Counter()
    for unit_id, started, ended in rows:
        index = indexes.get(unit_id)
        if index is None:
            index = indexes[unit_id] = working_clock(calendar_for(unit_id) if calendar_for else WorkingCalendar())
        leads[index.minutes_between(started, ended)] += 1
    hist = sorted(leads.items())
    within = sum(c for m, c in hist if total_standard is not None and m <= total_standard)
    return LeadTime(done=len(rows), median_minutes=quantile(hist, 0.5), p90_minutes=quantile(hist, 0.9),
                    standard_minutes=total_standard, within_standard=within, standard_complete=standard_complete)


class _WorkingClock:
    """Working time since an epoch, per calendar: the lead time of an instance is then two look-ups and a
    subtraction instead of a walk over its days (10,000 instances: ~25 ms instead of ~200 ms). Equal to
    `WorkingCalendar.working_minutes_between` (exact working time, rounded down to whole minutes)."""

    def __init__(self, calendar: WorkingCalendar):
        self.calendar = calendar
        self.zone = calendar.zone
        self._days: dict[date, tuple[timedelta, tuple[tuple[datetime, datetime], ...]]] = {}
        self._first: date | None = None
        self._last: date | None = None
        self._lock = threading.Lock()

    def _periods(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        hours = self.calendar.hours_on(day)
        if hours is None:
            return ()
        return tuple((datetime.combine(day, a, self.zone).astimezone(UTC),
                      datetime.combine(day, b, self.zone).astimezone(UTC)) for a, b in hours.periods)

    def _extend(self, day: date) -> None:
        with self._lock:
            self._extend_locked(day)

    def _extend_locked(self, day: date) -> None:
        if day in self._days:
            return
        if self._first is None or self._last is None:
            self._first = self._last = day
            self._days[day] = (timedelta(0), self._periods(day))
            return
        while day > self._last:  # forwards: the next day starts where this one ends
            base, periods = self._days[self._last]
            self._last += timedelta(days=1)
            self._days[self._last] = (base + sum((b - a for a, b in periods), timedelta(0)),
                                      self._periods(self._last))
        while day < self._first:  # backwards
            earlier = self._first - timedelta(days=1)
            periods = self._periods(earlier)
            self._days[earlier] = (self._days[self._first][0] - sum((b - a for a, b in periods), timedelta(0)),
                                   periods)
            self._first = earlier

    def at(self, moment: datetime) -> timedelta:
        day = moment.astimezone(self.zone).date()
        if day not in self._days:
            self._extend(day)
        base, periods = self._days[day]
        for a, b in periods:
            if moment >= b:
                base += b - a
            elif moment > a:
                base += moment - a
        return base

    def minutes_between(self, start: datetime, end: datetime) -> int:
        if end <= start:
            return 0
        return int((self.at(end) - self.at(start)) // timedelta(minutes=1))


_clocks: dict[Any, _WorkingClock] = {}


def working_clock(calendar: WorkingCalendar) -> _WorkingClock:
    """One index per calendar configuration (units with the same calendar share it), kept for the process:
    a calendar's days never change meaning for a given configuration (its config holds the days off)."""
    clock = _clocks.get(calendar.config)
    if clock is None:
        if len(_clocks) > 256:
            _clocks.clear()
        clock = _clocks.setdefault(calendar.config, _WorkingClock(calendar))
    return clock


_MINUTE_UNITS = {"id": ("hr", "j", "m"), "en": ("d", "h", "min")}


def format_minutes(minutes: float | None, working_day: int = DEFAULT_DAY_MINUTES, lang: str = "id") -> str:
    """`95` → `1 j 35 m`; `900` (two 450-minute days) → `2 hr`; Indonesian short units, working time.
    `lang="en"`: `1 h 35 min`, `2 d`."""
    if minutes is None:
        return "–"
    day_unit, hour_unit, minute_unit = _MINUTE_UNITS.get(lang, _MINUTE_UNITS["id"])
    total = round(minutes)
    days, rest = divmod(total, working_day) if total >= working_day else (0, total)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} {day_unit}")
    if hours:
        parts.append(f"{hours} {hour_unit}")
    if mins or not parts:
        parts.append(f"{mins} {minute_unit}")
    return " ".join(parts)
