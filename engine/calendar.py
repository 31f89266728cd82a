"""Working calendar: turns an SOP's standard time ("mutu baku waktu") into a deadline in WORKING time.

Pure module (no database, no clock): callers pass the operator's extra days off / working days in
through `CalendarConfig` and inject a `WorkingCalendar` into timers and deadline computation.

Rules (DESIGN.md §6; operator-facing version in docs/working-calendar.md):

- Working time is the union of each working day's periods, e.g. Monday 07:30–12:00 and 13:00–16:00.
  Periods are half-open: 07:30 is working time, 12:00 and 16:00 are not.
- Minutes/hours/seconds (`PT15M`, `PT3H`, `PT1H30M`) consume working time only, across days.
  `add(s, PTx)` is the earliest instant t >= s with exactly x of working time in [s, t] that is working
  time or the *end* of a working period. So a result can be 12:00 or 16:00 ("done by the break / by close"),
  never 22:00; a zero duration from outside working hours gives the next opening.
- `PnD` = n working days, due at close of business (end of the day's last period) of the n-th working day.
  The start day counts as day 1 when it is a working day and the start is before its close of business
  (also before opening or during the break); otherwise day 1 is the next working day.
  "2 hari" started Monday 10:00 is due Tuesday 16:00.
- `PnW` = 5n working days (same rule).
- `PnM` / `PnY` are calendar months/years: same day of month n months later (clamped to the month's last
  day, 31 Jan + P1M = 28/29 Feb), due at close of business of that date, or of the next working day
  when that date is not one.
- Mixed durations apply years/months, then weeks/days, then time: `P1DT2H` started Monday 10:00 = close
  of Monday, then 2 working hours = Tuesday 09:30.
- A `timedelta` is an amount of working time (like `PT…`): `timedelta(days=1)` means 24 working hours.
  Use ISO text for working days.

All returned datetimes are aware and in UTC (store UTC, show local time).
"""

from __future__ import annotations

import bisect
import calendar as _stdlib_calendar
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from engine.moments import EARLIEST, LAST_DAY, LATEST, OutOfWindow

__all__ = [
    "DEFAULT_WEEK",
    "CalendarConfig",
    "IsoDuration",
    "WorkingCalendar",
    "WorkingHours",
    "parse_iso_duration",
]

# A calendar that finds no working day in ten years is misconfigured; fail instead of looping forever.
_MAX_IDLE_DAYS = 3660
# Ranges longer than this are counted in closed form (whole weeks from the weekly hours, corrected on the
# days that differ); shorter ones, and the few days at either end, day by day.
_WALK_DAYS = 14
_SKIP_CHUNKS_DAYS = (366, 28)
_NO_DAY = date(2001, 1, 1)  # any date: wall-clock durations of a day's hours


@dataclass(frozen=True)
class WorkingHours:
    """One day's opening: start–end, optionally minus a break (break_start–break_end), local wall time."""

    start: time
    end: time
    break_start: time | None = None
    break_end: time | None = None

    def __post_init__(self) -> None:
        for name in ("start", "end", "break_start", "break_end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is not None:
                raise ValueError(f"WorkingHours.{name} must be a local wall time without tzinfo")
        if not self.start < self.end:
            raise ValueError(f"WorkingHours: start {self.start} must be before end {self.end}")
        if (self.break_start is None) != (self.break_end is None):
            raise ValueError("WorkingHours: give both break_start and break_end, or neither")
        if self.break_start is not None and self.break_end is not None and not (
            self.start < self.break_start < self.break_end < self.end
        ):
            raise ValueError(
                f"WorkingHours: break {self.break_start}–{self.break_end} must lie strictly inside "
                f"{self.start}–{self.end}"
            )

    @property
    def periods(self) -> tuple[tuple[time, time], ...]:
        """The working periods of the day, in order (two when there is a break)."""
        if self.break_start is None or self.break_end is None:
            return ((self.start, self.end),)
        return ((self.start, self.break_start), (self.break_end, self.end))


MONDAY_TO_THURSDAY = WorkingHours(time(7, 30), time(16, 0), time(12, 0), time(13, 0))
FRIDAY = WorkingHours(time(7, 30), time(16, 30), time(11, 30), time(13, 0))
DEFAULT_WEEK: Mapping[int, WorkingHours | None] = MappingProxyType(
    {0: MONDAY_TO_THURSDAY, 1: MONDAY_TO_THURSDAY, 2: MONDAY_TO_THURSDAY, 3: MONDAY_TO_THURSDAY,
     4: FRIDAY, 5: None, 6: None}
)


@dataclass(frozen=True)
class CalendarConfig:
    """Everything a unit's calendar depends on. Hashable, so callers may cache calendars per config."""

    timezone: str = "Asia/Jakarta"
    # 0 = Monday … 6 = Sunday; a missing key or None = closed that weekday.
    week: Mapping[int, WorkingHours | None] = field(default_factory=lambda: DEFAULT_WEEK)
    extra_days_off: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    # "government" = cuti bersama; the library's default ("public" only) leaves it out.
    holiday_categories: tuple[str, ...] = ("public", "government")
    # Hours for a working day whose weekday is closed (a working Saturday); None = Monday's hours.
    working_day_hours: WorkingHours | None = None
    # Language of holiday names ("id" or "en_US").
    language: str = "id"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r} (use e.g. Asia/Jakarta, Asia/Makassar, "
                             f"Asia/Jayapura)") from exc
        bad_keys = [k for k in self.week if k not in range(7)]
        if bad_keys:
            raise ValueError(f"week keys must be 0 (Monday) … 6 (Sunday), got {bad_keys}")
        if not any(self.week.get(k) for k in range(7)):
            raise ValueError("week has no open weekday")
        # Copy so a caller mutating its dict later cannot change a calendar behind its cache.
        object.__setattr__(self, "week", MappingProxyType({k: self.week.get(k) for k in range(7)}))
        object.__setattr__(self, "extra_days_off", frozenset(self.extra_days_off))
        object.__setattr__(self, "working_days", frozenset(self.working_days))
        object.__setattr__(self, "holiday_categories", tuple(self.holiday_categories))
        both = self.extra_days_off & self.working_days
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise ValueError(f"dates both a day off and a working day: {listed}")

    def __hash__(self) -> int:
        return hash((self.timezone, tuple(self.week.items()), self.extra_days_off, self.working_days,
                     self.holiday_categories, self.working_day_hours, self.language))


# ---------------------------------------------------------------------------------------------------------
# ISO 8601 durations

@dataclass(frozen=True)
class IsoDuration:
    """A parsed ISO 8601 duration. Only the last (smallest) time component may be fractional."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: float = 0
    minutes: float = 0
    seconds: float = 0

    @property
    def calendar_months(self) -> int:
        return self.years * 12 + self.months

    @property
    def working_days(self) -> int:
        """Weeks and days as working days: a week is 5 working days."""
        return self.weeks * 5 + self.days

    @property
    def working_time(self) -> timedelta:
        """The time part (hours, minutes, seconds) as an amount of working time."""
        return timedelta(hours=self.hours, minutes=self.minutes, seconds=self.seconds)

    def __str__(self) -> str:
        def num(value: float) -> str:
            return str(int(value)) if float(value).is_integer() else repr(float(value))

        date_part = "".join(f"{num(v)}{u}" for v, u in (
            (self.years, "Y"), (self.months, "M"), (self.weeks, "W"), (self.days, "D")) if v)
        time_part = "".join(f"{num(v)}{u}" for v, u in (
            (self.hours, "H"), (self.minutes, "M"), (self.seconds, "S")) if v)
        if not date_part and not time_part:
            return "PT0S"
        return "P" + date_part + ("T" + time_part if time_part else "")


_NUMBER = r"(\d+(?:[.,]\d+)?)"
_DURATION_RE = re.compile(
    rf"P(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?"
)
_FIELDS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
_DAYS_PER_UNIT = {"years": 365.2425, "months": 365.2425 / 12, "weeks": 7, "days": 1, "hours": 1 / 24,
                  "minutes": 1 / 1440, "seconds": 1 / 86400}
MAX_DURATION_YEARS = 100


@functools.lru_cache(maxsize=1024)
def parse_iso_duration(text: str) -> IsoDuration:
    """Parse `PnYnMnWnDTnHnMnS` (any subset, case-insensitive, e.g. `PT15M`, `P2D`, `P1DT2H`).

    Raises ValueError naming the problem: negative or empty durations, repeating intervals (`R3/…`),
    dates, and fractions anywhere but the last time component are refused.
    """
    if not isinstance(text, str):
        raise ValueError(f"ISO 8601 duration must be text, got {type(text).__name__}")
    raw = text.strip().upper()
    hint = "expected an ISO 8601 duration such as PT15M, PT3H, PT1H30M, P2D, P1W or P1M"
    if raw.startswith("-"):
        raise ValueError(f"{text!r}: negative durations are not allowed; {hint}")
    if raw.startswith("R") or "/" in raw:
        raise ValueError(f"{text!r} is a repeating interval or time interval, not a duration; {hint}")
    match = _DURATION_RE.fullmatch(raw)
    if not match or raw in ("P", "PT") or raw.endswith("T"):
        raise ValueError(f"{text!r} is not a valid duration; {hint}")
    groups = match.groups()
    given = [i for i, g in enumerate(groups) if g is not None]
    values: dict[str, float] = {}
    for i in given:
        token = groups[i].replace(",", ".")
        if "." in token:
            if _FIELDS[i] not in ("hours", "minutes", "seconds"):
                raise ValueError(f"{text!r}: fractional {_FIELDS[i]} are not supported; "
                                 f"write the time part instead (e.g. PT3H45M)")
            if i != given[-1]:
                raise ValueError(f"{text!r}: only the last component may have a fraction")
            values[_FIELDS[i]] = float(token)
        else:
            values[_FIELDS[i]] = int(token)
    # Bounded, because the text may come from a form (`${batas}`): P99999999D would walk the calendar for a minute.
    days = sum(values.get(name, 0) * factor for name, factor in _DAYS_PER_UNIT.items())
    if days > MAX_DURATION_YEARS * 365.2425 + 1e-6:
        raise ValueError(f"{text!r} is longer than {MAX_DURATION_YEARS} years; {hint}")
    return IsoDuration(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# Holidays

@functools.lru_cache(maxsize=512)  # the whole moment window (engine.moments) is 300 years
def _holidays_for(year: int, categories: tuple[str, ...], language: str) -> Mapping[date, str]:
    """Official Indonesian holidays of one year (cached: the library builds a year in ~0.5 ms)."""
    table = holidays.country_holidays("ID", years=year, categories=categories, language=language)
    return MappingProxyType(dict(table))


@functools.lru_cache(maxsize=2048)
def _offset_change_days(zone_key: str, year: int) -> tuple[date, ...]:
    """Local days of `year` during which the zone's UTC offset changes (DST, a legal change): only on those is
    a day's working time in UTC not its wall-clock length. Sampled weekly, then day by day around a change, so
    two changes that cancel out within one week (no zone has had them) would go unseen."""
    zone = ZoneInfo(zone_key)

    def offset(day: date) -> timedelta | None:
        return datetime.combine(day, time(0), zone).utcoffset()

    found: list[date] = []
    day, end = date(year, 1, 1), date(year + 1, 1, 1)
    before = offset(day)
    while day < end:
        week_end = min(day + timedelta(days=7), end)
        after = offset(week_end)
        if after != before:
            inner, inner_before = day, before
            while inner < week_end:
                following = inner + timedelta(days=1)
                inner_after = offset(following)
                if inner_after != inner_before:
                    found.append(inner)
                inner, inner_before = following, inner_after
        day, before = week_end, after
    return tuple(found)


def _wall_length(hours: WorkingHours | None) -> timedelta:
    if hours is None:
        return timedelta(0)
    return sum((datetime.combine(_NO_DAY, b) - datetime.combine(_NO_DAY, a) for a, b in hours.periods),
               timedelta(0))


def _require_aware(moment: datetime, name: str = "moment") -> None:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} {moment.isoformat()} is naive; pass an aware datetime "
                         f"(e.g. datetime.now(timezone.utc))")


_Period = tuple[datetime, datetime]


class WorkingCalendar:
    """Working days and hours of one unit. Thread-safe to share (its caches only ever add entries)."""

    def __init__(self, config: CalendarConfig | None = None):
        self.config = config or CalendarConfig()
        self.zone = ZoneInfo(self.config.timezone)
        self._periods_cache: dict[date, tuple[_Period, ...]] = {}
        # For the closed form: each weekday's wall-clock working time, and the days that may differ from it
        # (besides official holidays and offset changes, which are looked up per year).
        week = self.config.week
        self._weekday_time = tuple(_wall_length(week.get(wd)) for wd in range(7))
        self._weekday_open = tuple(int(week.get(wd) is not None) for wd in range(7))
        self._week_time = sum(self._weekday_time, timedelta(0))
        self._week_open = sum(self._weekday_open)
        self._own_days = tuple(sorted(self.config.extra_days_off | self.config.working_days))

    def __repr__(self) -> str:
        return f"WorkingCalendar({self.config.timezone!r})"

    # -- days ----------------------------------------------------------------------------------------------

    def holiday_name(self, day: date) -> str | None:
        """Name of the official holiday (public or cuti bersama, per config) on `day`, else None.

        Reports the national list only, also on weekends and on dates the operator declared working
        days; the operator's own days off carry their reason in the caller's database.
        """
        return _holidays_for(day.year, self.config.holiday_categories, self.config.language).get(day)

    def hours_on(self, day: date) -> WorkingHours | None:
        """The opening hours of `day`, or None when it is not a working day."""
        cfg = self.config
        weekday_hours = cfg.week.get(day.weekday())
        if day in cfg.working_days:
            return weekday_hours or cfg.working_day_hours or cfg.week.get(0) or MONDAY_TO_THURSDAY
        if day in cfg.extra_days_off or self.holiday_name(day) is not None:
            return None
        return weekday_hours

    def is_working_day(self, day: date) -> bool:
        if isinstance(day, datetime):  # a datetime is a date subclass: its wall date would be ambiguous
            raise TypeError("is_working_day takes a date; use is_working_time for a datetime")
        return self.hours_on(day) is not None

    def _periods(self, day: date) -> tuple[_Period, ...]:
        """The working periods of `day` as UTC instants (empty on a day off)."""
        cached = self._periods_cache.get(day)
        if cached is None:
            hours = self.hours_on(day)
            cached = () if hours is None else tuple(
                (datetime.combine(day, a, self.zone).astimezone(UTC),
                 datetime.combine(day, b, self.zone).astimezone(UTC))
                for a, b in hours.periods
            )
            self._periods_cache[day] = cached
        return cached

    def _local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def _days_from(self, day: date) -> Iterator[date]:
        """`day`, then each following day; stops with ValueError after a decade without a working day."""
        idle = 0
        while True:
            if day > LAST_DAY:
                raise OutOfWindow("deadline", f"a day after {LAST_DAY.isoformat()}")
            if self._periods(day):
                idle = 0
            else:
                idle += 1
                if idle > _MAX_IDLE_DAYS:
                    raise ValueError(f"no working day for {_MAX_IDLE_DAYS} days up to {day}: "
                                     f"check the calendar's days off")
            yield day
            day += timedelta(days=1)

    def _working_days_from(self, day: date) -> Iterator[date]:
        return (d for d in self._days_from(day) if self._periods(d))

    def close_of_business(self, day: date) -> datetime:
        """End of the last working period of `day` (e.g. 16:00, Friday 16:30), in UTC.

        Raises ValueError when `day` is not a working day.
        """
        periods = self._periods(day)
        if not periods:
            raise ValueError(f"{day.isoformat()} is not a working day")
        return periods[-1][1]

    # -- instants ------------------------------------------------------------------------------------------

    def is_working_time(self, moment: datetime) -> bool:
        """True inside a working period (start inclusive, end exclusive: 16:00 is not working time)."""
        _require_aware(moment)
        utc = moment.astimezone(UTC)
        return any(a <= utc < b for a, b in self._periods(self._local_date(utc)))

    def next_opening(self, moment: datetime) -> datetime:
        """`moment` itself (in UTC) if it is working time, else the start of the next working period."""
        _require_aware(moment)
        utc = moment.astimezone(UTC)
        for day in self._working_days_from(self._local_date(utc)):
            for a, b in self._periods(day):
                if utc < b:
                    return max(a, utc)
        raise AssertionError("unreachable")  # _days_from never ends without raising

    # -- closed form -----------------------------------------------------------------------------------

    def _day_time(self, day: date) -> timedelta:
        return sum((b - a for a, b in self._periods(day)), timedelta(0))

    def _differing_days(self, first: date, end: date) -> set[date]:
        """Days in [first, end) whose working time may differ from their weekday's: official holidays, the
        unit's own days off and working days, and days on which the UTC offset changes."""
        cfg = self.config
        days: set[date] = set()
        for year in range(first.year, (end - timedelta(days=1)).year + 1):
            days.update(d for d in _holidays_for(year, cfg.holiday_categories, cfg.language) if first <= d < end)
            days.update(d for d in _offset_change_days(cfg.timezone, year) if first <= d < end)
        own = self._own_days
        days.update(own[bisect.bisect_left(own, first):bisect.bisect_left(own, end)])
        return days

    def _whole_days(self, first: date, end: date) -> tuple[timedelta, int]:
        """(working time, number of working days) of the local days [first, end), in O(years): whole weeks
        and the remaining weekdays from the weekly hours, then each differing day corrected with its own
        periods. Equal to summing `_periods` over every day."""
        weeks, rest = divmod((end - first).days, 7)
        total, count = self._week_time * weeks, self._week_open * weeks
        weekday = first.weekday()
        for i in range(rest):
            total += self._weekday_time[(weekday + i) % 7]
            count += self._weekday_open[(weekday + i) % 7]
        for day in self._differing_days(first, end):
            periods = self._periods(day)
            total += sum((b - a for a, b in periods), timedelta(0)) - self._weekday_time[day.weekday()]
            count += int(bool(periods)) - self._weekday_open[day.weekday()]
        return total, count

    def _skip_whole_days(self, day: date, remaining: timedelta | int) -> tuple[date, timedelta | int]:
        """Move `day` on by whole chunks (a year, then four weeks) while a chunk holds less than `remaining`
        (working time, or a number of working days when `remaining` is an int); return the new day and what
        is left to walk. Stops before the end of the moment window; the walk refuses to go beyond it."""
        counting = isinstance(remaining, int)
        idle = 0
        for chunk in _SKIP_CHUNKS_DAYS:
            while day + timedelta(days=chunk) <= LAST_DAY:
                worked, working_days = self._whole_days(day, day + timedelta(days=chunk))
                value: timedelta | int = working_days if counting else worked
                if value >= remaining:  # type: ignore[operator]
                    break
                remaining -= value  # type: ignore[operator]
                day += timedelta(days=chunk)
                idle = idle + chunk if not working_days else 0
                if idle > _MAX_IDLE_DAYS:
                    raise ValueError(f"no working day for {_MAX_IDLE_DAYS} days up to {day}: "
                                     f"check the calendar's days off")
        return day, remaining

    # -- arithmetic ------------------------------------------------------------------------------------

    def _add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """Earliest t >= start that is working time or a period's end, with `amount` worked in [start, t].
        Walks day by day; after _WALK_DAYS days a long amount skips whole chunks in closed form first."""
        remaining = amount
        for walked, day in enumerate(self._days_from(self._local_date(start))):
            if walked == _WALK_DAYS:
                skipped, left = self._skip_whole_days(day, remaining)
                if skipped != day:  # the skip starts at a local midnight: every later period is after start
                    return self._add_working_time(
                        datetime.combine(skipped, time(0), self.zone).astimezone(UTC), left)  # type: ignore[arg-type]
            for a, b in self._periods(day):
                if b < start:
                    continue
                cursor = max(a, start)
                available = b - cursor
                if remaining <= available:
                    return cursor + remaining
                remaining -= available
        raise AssertionError("unreachable")

    def _add_working_days(self, start: datetime, count: int) -> datetime:
        """Close of business of the `count`-th working day; the start day is day 1 if before its close."""
        day = self._local_date(start)
        periods = self._periods(day)
        if not (periods and start < periods[-1][1]):
            day += timedelta(days=1)
        remaining = count
        for walked, working_day in enumerate(self._days_from(day)):
            if walked == _WALK_DAYS:
                skipped, left = self._skip_whole_days(working_day, remaining)
                if skipped != working_day:  # the due day lies beyond the skipped chunks
                    assert isinstance(left, int)
                    return self._add_working_days_from(skipped, left)
            if self._periods(working_day):
                remaining -= 1
                if remaining == 0:
                    return self.close_of_business(working_day)
        raise AssertionError("unreachable")

    def _add_working_days_from(self, day: date, count: int) -> datetime:
        """Close of business of the `count`-th working day counting from `day` itself (count >= 1)."""
        for nth, working_day in enumerate(self._working_days_from(day), start=1):
            if nth == count:
                return self.close_of_business(working_day)
        raise AssertionError("unreachable")

    def _add_calendar_months(self, start: datetime, months: int) -> datetime:
        """Close of business of the same day of month `months` later (clamped), or the next working day."""
        local = self._local_date(start)
        index = local.year * 12 + (local.month - 1) + months
        year, month = divmod(index, 12)
        month += 1
        target = date(year, month, min(local.day, _stdlib_calendar.monthrange(year, month)[1]))
        return self.close_of_business(next(self._working_days_from(target)))

    def add(self, start: datetime, duration: str | IsoDuration | timedelta) -> datetime:
        """The deadline `duration` of working time after `start` (rules in the module docstring), in UTC.

        Raises OutOfWindow (a ValueError) when `start` or the result lies outside engine.moments' window."""
        _require_aware(start, "start")
        if not EARLIEST <= start < LATEST:
            raise OutOfWindow("start", start)
        if isinstance(duration, timedelta):
            if duration < timedelta(0):
                raise ValueError(f"negative duration {duration} is not allowed")
            return self._in_window(self._add_working_time(start.astimezone(UTC), duration), start, duration)
        parsed = duration if isinstance(duration, IsoDuration) else parse_iso_duration(duration)
        result = start.astimezone(UTC)
        moved = False
        if parsed.calendar_months:
            result = self._add_calendar_months(result, parsed.calendar_months)
            moved = True
        if parsed.working_days:
            result = self._add_working_days(result, parsed.working_days)
            moved = True
        amount = parsed.working_time
        if amount or not moved:
            result = self._add_working_time(result, amount)
        return self._in_window(result, start, parsed)

    @staticmethod
    def _in_window(result: datetime, start: datetime, duration: object) -> datetime:
        if not result < LATEST:
            raise OutOfWindow("deadline", f"{start.isoformat()} + {duration}")
        return result

    def working_minutes_between(self, start: datetime, end: datetime) -> int:
        """Whole working minutes in [start, end) (rounded down); 0 when end <= start."""
        return int(self.working_time_between(start, end) // timedelta(minutes=1))

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time in [start, end) as a timedelta (exact); zero when end <= start.

        Only time inside engine.moments' window counts (a stored 0001-01-01 deadline costs nothing). In
        O(years): the first and last two days are walked, the days between counted in closed form."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        start, end = max(start.astimezone(UTC), EARLIEST), min(end.astimezone(UTC), LATEST)
        if end <= start:
            return timedelta(0)
        first, last = self._local_date(start), self._local_date(end)
        if (last - first).days <= _WALK_DAYS:
            return self._walk_between(start, end, first, last)
        inner_first, inner_end = first + timedelta(days=2), last - timedelta(days=1)
        return (self._walk_between(start, end, first, inner_first - timedelta(days=1))
                + self._whole_days(inner_first, inner_end)[0]
                + self._walk_between(start, end, inner_end, last))

    def _walk_between(self, start: datetime, end: datetime, first: date, last: date) -> timedelta:
        """Working time in [start, end) on the local days first … last, day by day."""
        total = timedelta(0)
        day = first
        while True:
            for a, b in self._periods(day):
                lo, hi = max(a, start), min(b, end)
                if lo < hi:
                    total += hi - lo
            if day >= last:
                return total
            day += timedelta(days=1)
