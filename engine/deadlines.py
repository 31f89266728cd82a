"""Turn a task's `camunda:dueDate` / `followUpDate` text into a moment, on the unit's working calendar."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol


class Calendar(Protocol):
    def add(self, start: datetime, duration: str) -> datetime: ...

    def working_minutes_between(self, start: datetime, end: datetime) -> int: ...


def resolve_moment(text: str | None, start: datetime, calendar: Calendar,
                   data: Mapping[str, Any] | None = None) -> datetime | None:
    """ISO duration → start + working time; ISO date-time → as is; `${expr}` → evaluated, then the same.

    Returns None when there is nothing usable: deploy checks already refused unparseable texts, and a
    variable that holds nonsense at run time must not stop the step from being worked on.
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
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if not isinstance(value, str):
            return None
        text = value.strip()
    if text[:1] in ("P", "p"):
        try:
            return calendar.add(start, text)
        except ValueError:
            return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
