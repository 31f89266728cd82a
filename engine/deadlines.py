"""Turn a task's `camunda:dueDate` / `followUpDate` text into a moment, on the unit's working calendar.

One parser for both ends: the deploy check (engine.loader) refuses a literal text exactly when run time could
not use it, so a model never deploys with a deadline that silently means "none" (`P9999Y`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from engine.calendar import IsoDuration, parse_iso_duration
from engine.moments import check_moment


class Calendar(Protocol):
    def add(self, start: datetime, duration: str) -> datetime: ...

    def working_minutes_between(self, start: datetime, end: datetime) -> int: ...


def parse_deadline_text(text: str) -> IsoDuration | datetime:
    """A literal deadline: an ISO 8601 duration (working time, at most 100 years) or an ISO 8601 date-time
    inside engine.moments' window (no offset = UTC). ValueError naming the problem otherwise."""
    text = text.strip()
    if text[:1] in ("P", "p"):
        return parse_iso_duration(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text[:80]}' is not an ISO 8601 duration (PT15M, P2D), date-time, "
                         f"or ${{expression}}") from None
    return check_moment(moment if moment.tzinfo else moment.replace(tzinfo=UTC), "")


def resolve_moment(text: str | None, start: datetime, calendar: Calendar,
                   data: Mapping[str, Any] | None = None) -> datetime | None:
    """ISO duration → start + working time; ISO date-time → as is; `${expr}` → evaluated, then the same.

    None when there is no deadline: no text, an expression naming a variable nobody has set yet, or a value
    that is empty. A value that is there but unusable (not a duration or date, longer than 100 years, outside
    the window 1900–2199) raises ValueError: the caller refuses the step instead of silently dropping its
    deadline (a far date would also make every working-time count span millennia).
    """
    if not text:
        return None
    text = text.strip()
    if text.startswith(("${", "#{")):
        from engine.expressions import ExpressionError, evaluate

        try:
            value = evaluate(text, data or {})
        except ExpressionError:
            return None
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, datetime):
            return check_moment(value if value.tzinfo else value.replace(tzinfo=UTC), "")
        if not isinstance(value, str):
            raise ValueError(f"a {type(value).__name__} value is not an ISO 8601 duration or date-time")
        text = value.strip()
    parsed = parse_deadline_text(text)
    if isinstance(parsed, IsoDuration):
        return calendar.add(start, text)
    return parsed
