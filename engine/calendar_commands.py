"""`alur calendar`: the operator's extra days off and working days (docs/working-calendar.md).

A date is either a day off or a working day, never both: marking it one way replaces the other. A day
without `--unit` applies to every unit; a unit's own entry for the same date wins for that unit.
Running services notice the change within ALUR_CALENDAR_RECHECK_SECONDS (engine/service.py); deadlines
already computed keep their value (they were promised when the step began).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import click
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine import accounts
from engine.errors import AlurError
from engine.models import CalendarDay, Unit
from engine.store import audit

KINDS = {"off": "hari libur", "work": "hari kerja"}


def _unit_id(s: Session, unit: str | None) -> int | None:
    return accounts.get_unit(s, unit).id if unit else None


def _same_day(day: date, unit_id: int | None) -> Any:
    return (CalendarDay.day == day,
            CalendarDay.unit_id.is_(None) if unit_id is None else CalendarDay.unit_id == unit_id)


def set_day(s: Session, day: date, kind: str, *, unit: str | None = None, reason: str = "",
            actor: str | None = None, now: datetime | None = None) -> str | None:
    """Mark `day` as `kind` ("off" or "work"); returns the kind it had before (None if unlisted)."""
    if kind not in KINDS:
        raise AlurError(f"kind must be one of {sorted(KINDS)}")
    unit_id = _unit_id(s, unit)
    # Explicit lookup: the unique constraint does not stop two NULL-unit rows for one date.
    row = s.scalars(select(CalendarDay).where(*_same_day(day, unit_id))).first()
    before = row.kind if row else None
    if row is not None and row.kind != kind:
        s.delete(row)  # a new row (new id) for a changed day: simple and visible in the history
        s.flush()
        row = None
    if row is None:
        s.add(CalendarDay(day=day, unit_id=unit_id, kind=kind, reason=reason.strip()[:300]))
    else:
        row.reason = reason.strip()[:300]
    s.flush()
    audit(s, at=now or datetime.now(UTC), actor=actor, action="calendar",
          data={"day": day.isoformat(), "unit": unit, "kind": kind, "before": before, "reason": reason})
    return before


def remove_day(s: Session, day: date, *, unit: str | None = None, actor: str | None = None,
               now: datetime | None = None) -> bool:
    unit_id = _unit_id(s, unit)
    removed = s.execute(delete(CalendarDay).where(*_same_day(day, unit_id))).rowcount  # type: ignore[attr-defined]
    if removed:
        audit(s, at=now or datetime.now(UTC), actor=actor, action="calendar",
              data={"day": day.isoformat(), "unit": unit, "kind": None})
    return bool(removed)


def list_days(s: Session, *, unit: str | None = None, year: int | None = None) -> list[dict[str, Any]]:
    q = (select(CalendarDay.day, CalendarDay.kind, CalendarDay.reason, Unit.code)
         .outerjoin(Unit, Unit.id == CalendarDay.unit_id).order_by(CalendarDay.day, Unit.code))
    if unit:
        q = q.where(CalendarDay.unit_id == _unit_id(s, unit))
    if year:
        q = q.where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
    return [{"day": d.isoformat(), "kind": k, "reason": r, "unit": u} for d, k, r, u in s.execute(q).all()]


_DATE = click.DateTime(["%Y-%m-%d"])


@click.group("calendar")
def calendar() -> None:
    """Extra days off and working days of the working calendar (beside the national holidays)."""


def _change(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from engine.cli import _service

    service = _service()
    with service.db.write() as s:
        result = fn(s, *args, actor="cli", now=service.clock(), **kwargs)
    service.forget_calendars()
    return result


@calendar.command("off")
@click.argument("day", type=_DATE)
@click.option("--unit", help="Unit code; omit for every unit.")
@click.option("--reason", required=True, help="Why, e.g. 'Cuti bersama Idulfitri (SKB 3 Menteri)'.")
def calendar_off(day: datetime, unit: str | None, reason: str) -> None:
    """Declare DAY (YYYY-MM-DD) a day off."""
    before = _change(set_day, day.date(), "off", unit=unit, reason=reason)
    note = " (was a working day)" if before == "work" else ""
    click.echo(f"{day:%Y-%m-%d} is a day off{' in ' + unit if unit else ''}{note}")


@calendar.command("workday")
@click.argument("day", type=_DATE)
@click.option("--unit", help="Unit code; omit for every unit.")
@click.option("--reason", default="", help="Why, e.g. a working Saturday.")
def calendar_workday(day: datetime, unit: str | None, reason: str) -> None:
    """Declare DAY (YYYY-MM-DD) a working day (even a weekend or holiday)."""
    before = _change(set_day, day.date(), "work", unit=unit, reason=reason)
    note = " (was a day off)" if before == "off" else ""
    click.echo(f"{day:%Y-%m-%d} is a working day{' in ' + unit if unit else ''}{note}")


@calendar.command("remove")
@click.argument("day", type=_DATE)
@click.option("--unit", help="Unit code; omit for the entry that applies to every unit.")
def calendar_remove(day: datetime, unit: str | None) -> None:
    """Remove DAY from the lists: the normal rules (weekday, national holidays) apply again."""
    removed = _change(remove_day, day.date(), unit=unit)
    click.echo(f"{day:%Y-%m-%d} removed" if removed else f"{day:%Y-%m-%d} was not listed")


@calendar.command("list")
@click.option("--unit", help="Only this unit's own entries.")
@click.option("--year", type=int, help="Only this year.")
@click.option("--holidays", "with_holidays", is_flag=True, help="Also list the national holidays of --year.")
@click.option("--json", "as_json", is_flag=True)
def calendar_list(unit: str | None, year: int | None, with_holidays: bool, as_json: bool) -> None:
    """The extra days off and working days (and, with --holidays, the national ones)."""
    from engine.calendar import WorkingCalendar
    from engine.cli import _service

    with _service().db.read() as s:
        rows = list_days(s, unit=unit, year=year)
    if with_holidays:
        cal = WorkingCalendar()
        chosen = year or datetime.now(UTC).year
        rows += [{"day": d.isoformat(), "kind": "holiday", "reason": cal.holiday_name(d), "unit": None}
                 for d in (date.fromordinal(o) for o in range(date(chosen, 1, 1).toordinal(),
                                                               date(chosen, 12, 31).toordinal() + 1))
                 if cal.holiday_name(d)]
        rows.sort(key=lambda r: (r["day"], r["unit"] or ""))
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no extra days off or working days")
    for r in rows:
        label = KINDS.get(r["kind"], "libur nasional")
        click.echo(f"{r['day']}  {label:<14} {r['unit'] or 'semua unit':<14} {r['reason'] or ''}".rstrip())
