"""The window of moments Alur works with: every date or date-time that comes from outside (a form field, a
`camunda:dueDate`/`followUpDate`, a timer, a REST filter or Date variable, a report period) is checked here.

Why a window at all: Python's datetime ends at 9999-12-31, so arithmetic near either end overflows (a 500),
and a deadline in year 9999 or 0001 makes every working-time computation span thousands of years. Real
government deadlines, birth dates and archive dates all lie well inside 1900–2199.

Why fixed years rather than "now ± n years": the same text gets the same answer at deploy, at run time and in
tests, whatever the clock says; a literal date a deployment accepted is never refused later. Durations are
bounded to 100 years (engine.calendar.MAX_DURATION_YEARS), so any accepted duration started before 2100 ends
inside the window.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

__all__ = ["EARLIEST", "LATEST", "OutOfWindow", "check_day", "check_moment", "window_text"]

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive: the last accepted day is 2199-12-31
FIRST_DAY = EARLIEST.date()
LAST_DAY = (LATEST - timedelta(days=1)).date()


def window_text() -> str:
    return f"{FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"


class OutOfWindow(ValueError):
    """A moment outside [EARLIEST, LATEST). `what` names where it came from (a field, a parameter), or is
    empty when the caller names it in its own message."""

    def __init__(self, what: str, value: date | datetime | str):
        self.what = what
        self.value = value
        shown = value.isoformat() if isinstance(value, date) else str(value)
        prefix = f"{what}: " if what else ""
        super().__init__(f"{prefix}{shown} is outside the supported range {window_text()}")


def check_moment(value: datetime, what: str = "moment") -> datetime:
    """`value` unchanged when it lies in the window (a naive value is read as UTC); OutOfWindow otherwise."""
    aware = value if value.tzinfo is not None and value.utcoffset() is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware < LATEST:
        raise OutOfWindow(what, value)
    return value


def check_day(value: date, what: str = "date") -> date:
    """`value` unchanged when the day lies in the window; OutOfWindow otherwise. A datetime is checked as one."""
    if isinstance(value, datetime):
        return check_moment(value, what)
    if not FIRST_DAY <= value <= LAST_DAY:
        raise OutOfWindow(what, value)
    return value
