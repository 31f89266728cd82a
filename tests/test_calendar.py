"""Working calendar: worked examples from real 2026 dates, then laws checked with hypothesis."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.calendar
from engine.calendar import (
    CalendarConfig,
    IsoDuration,
    WorkingCalendar,
    WorkingHours,
    parse_iso_duration,
)
from engine.moments import OutOfWindow

WIB = ZoneInfo("Asia/Jakarta")
WITA = ZoneInfo("Asia/Makassar")
WIT = ZoneInfo("Asia/Jayapura")

CAL = WorkingCalendar()


def wib(*args: int) -> datetime:
    return datetime(*args, tzinfo=WIB)


def local(moment: datetime, zone: ZoneInfo = WIB) -> datetime:
    return moment.astimezone(zone)


# --- holiday data (holidays >= 0.60, categories public + government) ---------------------------------------

def test_nyepi_and_its_cuti_bersama_are_days_off() -> None:
    assert not CAL.is_working_day(date(2026, 3, 19))
    assert "Nyepi" in (CAL.holiday_name(date(2026, 3, 19)) or "")
    assert CAL.holiday_name(date(2026, 3, 18)) == "Cuti Bersama Hari Suci Nyepi"
    assert not CAL.is_working_day(date(2026, 3, 18))


def test_idul_fitri_2026_with_cuti_bersama() -> None:
    # SKB 3 Menteri 2026: Idul Fitri 21–22 March (a weekend), cuti bersama 20, 23, 24 March.
    for day in (20, 21, 22, 23, 24):
        assert not CAL.is_working_day(date(2026, 3, day)), day
    assert "Idul Fitri" in (CAL.holiday_name(date(2026, 3, 21)) or "")
    assert (CAL.holiday_name(date(2026, 3, 23)) or "").startswith("Cuti Bersama")
    assert CAL.is_working_day(date(2026, 3, 25))


def test_public_only_category_leaves_cuti_bersama_as_working_days() -> None:
    public_only = WorkingCalendar(CalendarConfig(holiday_categories=("public",)))
    assert public_only.is_working_day(date(2026, 3, 18))
    assert not public_only.is_working_day(date(2026, 3, 19))


def test_holiday_name_language_and_ordinary_days() -> None:
    english = WorkingCalendar(CalendarConfig(language="en_US"))
    assert english.holiday_name(date(2026, 3, 19)) == "Day of Silence"
    assert CAL.holiday_name(date(2026, 1, 12)) is None
    assert CAL.holiday_name(date(2026, 8, 17)) == "Hari Kemerdekaan Republik Indonesia"


# --- worked examples ----------------------------------------------------------------------------------------

def test_two_days_started_monday_morning_is_due_close_of_tuesday() -> None:
    due = CAL.add(wib(2026, 1, 12, 10, 0), "P2D")
    assert due == wib(2026, 1, 13, 16, 0)
    assert due.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (wib(2026, 1, 12, 6, 0), wib(2026, 1, 12, 16, 0)),    # before opening: the day counts
        (wib(2026, 1, 12, 12, 30), wib(2026, 1, 12, 16, 0)),  # in the break: the day counts
        (wib(2026, 1, 12, 15, 59), wib(2026, 1, 12, 16, 0)),  # one minute left still counts as day 1
        (wib(2026, 1, 12, 16, 0), wib(2026, 1, 13, 16, 0)),   # at close: tomorrow is day 1
        (wib(2026, 1, 10, 9, 0), wib(2026, 1, 12, 16, 0)),    # Saturday: Monday is day 1
        (wib(2026, 1, 9, 17, 0), wib(2026, 1, 12, 16, 0)),    # Friday after close
    ],
)
def test_start_day_counts_only_before_close_of_business(start: datetime, expected: datetime) -> None:
    assert CAL.add(start, "P1D") == expected


def test_two_days_across_nyepi_and_idul_fitri_long_break() -> None:
    # Tue 17 March works; 18–24 March are Nyepi, Idul Fitri, a weekend and cuti bersama.
    assert CAL.add(wib(2026, 3, 17, 10, 0), "P2D") == wib(2026, 3, 25, 16, 0)


def test_thursday_before_the_imlek_long_weekend() -> None:
    # Thu 12 Feb 2026: Fri 13 works, then Sat, Sun, Mon 16 (cuti bersama), Tue 17 (Imlek).
    start = wib(2026, 2, 12, 10, 0)
    assert CAL.add(start, "P2D") == wib(2026, 2, 13, 16, 30)  # Friday closes at 16:30
    assert CAL.add(start, "P3D") == wib(2026, 2, 18, 16, 0)


def test_three_hours_on_friday_skip_the_long_friday_break() -> None:
    # 10:00–11:30 (1.5 h), break 11:30–13:00, then 13:00–14:30.
    assert CAL.add(wib(2026, 1, 9, 10, 0), "PT3H") == wib(2026, 1, 9, 14, 30)


def test_hours_carry_over_to_the_next_working_day() -> None:
    assert CAL.add(wib(2026, 1, 12, 15, 0), "PT2H") == wib(2026, 1, 13, 8, 30)
    assert CAL.add(wib(2026, 1, 9, 16, 30), "PT1H") == wib(2026, 1, 12, 8, 30)  # Fri close → Mon
    assert CAL.add(wib(2026, 1, 9, 16, 0), "PT1H") == wib(2026, 1, 12, 8, 0)  # Fri closes at 16:30


def test_saturday_night_start_begins_at_monday_opening() -> None:
    start = wib(2026, 1, 10, 22, 0)
    assert CAL.next_opening(start) == wib(2026, 1, 12, 7, 30)
    assert CAL.add(start, "PT15M") == wib(2026, 1, 12, 7, 45)


def test_result_may_be_exactly_the_end_of_a_period() -> None:
    assert CAL.add(wib(2026, 1, 12, 10, 0), "PT2H") == wib(2026, 1, 12, 12, 0)
    assert CAL.add(wib(2026, 1, 12, 8, 0), "PT7H") == wib(2026, 1, 12, 16, 0)


def test_zero_duration() -> None:
    assert CAL.add(wib(2026, 1, 12, 10, 0), "PT0M") == wib(2026, 1, 12, 10, 0)
    assert CAL.add(wib(2026, 1, 12, 12, 30), "PT0S") == wib(2026, 1, 12, 13, 0)


def test_start_on_a_holiday_waits_for_the_next_working_day() -> None:
    assert CAL.add(wib(2026, 3, 19, 10, 0), "PT1H") == wib(2026, 3, 25, 8, 30)


def test_week_is_five_working_days() -> None:
    start = wib(2026, 1, 12, 10, 0)
    assert CAL.add(start, "P1W") == CAL.add(start, "P5D")
    # Mon 12 … Thu 15, Fri 16 is Isra Mikraj, so day 5 is Monday 19.
    assert CAL.add(start, "P1W") == wib(2026, 1, 19, 16, 0)
    assert CAL.add(wib(2026, 2, 2, 10, 0), "P1W") == wib(2026, 2, 6, 16, 30)


def test_days_then_hours() -> None:
    assert CAL.add(wib(2026, 1, 12, 10, 0), "P1DT2H") == wib(2026, 1, 13, 9, 30)


def test_calendar_months_roll_to_a_working_day() -> None:
    assert CAL.add(wib(2026, 1, 12, 10, 0), "P1M") == wib(2026, 2, 12, 16, 0)
    # 31 Jan + 1 month = 28 Feb (Saturday) → Monday 2 March.
    assert CAL.add(wib(2026, 1, 31, 10, 0), "P1M") == wib(2026, 3, 2, 16, 0)
    # 17 Feb 2027 + 1 year = 17 Feb 2027 (Wednesday).
    assert CAL.add(wib(2026, 2, 17, 10, 0), "P1Y") == wib(2027, 2, 17, 16, 0)


def test_timedelta_is_working_time() -> None:
    start = wib(2026, 1, 12, 15, 0)
    assert CAL.add(start, timedelta(hours=2)) == CAL.add(start, "PT2H")
    with pytest.raises(ValueError, match="negative"):
        CAL.add(start, timedelta(minutes=-1))


def test_extra_day_off() -> None:
    cal = WorkingCalendar(CalendarConfig(extra_days_off=frozenset({date(2026, 1, 13)})))
    assert not cal.is_working_day(date(2026, 1, 13))
    assert cal.holiday_name(date(2026, 1, 13)) is None  # the reason lives with the operator's record
    assert cal.add(wib(2026, 1, 12, 10, 0), "P2D") == wib(2026, 1, 14, 16, 0)


def test_working_saturday_uses_monday_to_thursday_hours() -> None:
    saturday = date(2026, 1, 10)
    cal = WorkingCalendar(CalendarConfig(working_days=frozenset({saturday})))
    assert cal.is_working_day(saturday)
    assert cal.next_opening(wib(2026, 1, 10, 6, 0)) == wib(2026, 1, 10, 7, 30)
    assert cal.close_of_business(saturday) == wib(2026, 1, 10, 16, 0)
    assert not cal.is_working_time(wib(2026, 1, 10, 12, 30))
    assert cal.add(wib(2026, 1, 9, 10, 0), "P2D") == wib(2026, 1, 10, 16, 0)


def test_working_saturday_hours_can_be_configured() -> None:
    saturday = date(2026, 1, 10)
    short = WorkingHours(time(8, 0), time(12, 0))
    cal = WorkingCalendar(CalendarConfig(working_days=frozenset({saturday}), working_day_hours=short))
    assert cal.close_of_business(saturday) == wib(2026, 1, 10, 12, 0)


def test_holiday_declared_working_keeps_its_weekday_hours() -> None:
    friday_holiday = date(2026, 1, 16)  # Isra Mikraj
    cal = WorkingCalendar(CalendarConfig(working_days=frozenset({friday_holiday})))
    assert cal.is_working_day(friday_holiday)
    assert cal.holiday_name(friday_holiday) is not None
    assert cal.close_of_business(friday_holiday) == wib(2026, 1, 16, 16, 30)


def test_wita_unit_counts_in_its_own_local_hours() -> None:
    cal = WorkingCalendar(CalendarConfig(timezone="Asia/Makassar"))
    start = datetime(2026, 1, 12, 10, 0, tzinfo=WITA)
    assert cal.add(start, "PT3H") == datetime(2026, 1, 12, 14, 0, tzinfo=WITA)
    assert cal.add(start, "PT3H") == datetime(2026, 1, 12, 6, 0, tzinfo=UTC)
    # 07:00 WIB is 08:00 WITA: open in Makassar, not yet in Jakarta.
    moment = wib(2026, 1, 12, 7, 0)
    assert cal.is_working_time(moment)
    assert not CAL.is_working_time(moment)
    assert cal.close_of_business(date(2026, 1, 12)) == datetime(2026, 1, 12, 8, 0, tzinfo=UTC)


def test_is_working_time_boundaries() -> None:
    assert CAL.is_working_time(wib(2026, 1, 12, 7, 30))
    assert not CAL.is_working_time(wib(2026, 1, 12, 7, 29, 59))
    assert not CAL.is_working_time(wib(2026, 1, 12, 12, 0))
    assert CAL.is_working_time(wib(2026, 1, 12, 13, 0))
    assert not CAL.is_working_time(wib(2026, 1, 12, 16, 0))
    assert CAL.is_working_time(wib(2026, 1, 9, 16, 29))
    assert not CAL.is_working_time(wib(2026, 1, 9, 11, 45))


def test_close_of_business() -> None:
    assert CAL.close_of_business(date(2026, 1, 12)) == wib(2026, 1, 12, 16, 0)
    assert CAL.close_of_business(date(2026, 1, 9)) == wib(2026, 1, 9, 16, 30)
    with pytest.raises(ValueError, match="not a working day"):
        CAL.close_of_business(date(2026, 3, 19))


def test_working_minutes_between() -> None:
    assert CAL.working_minutes_between(wib(2026, 1, 12, 7, 30), wib(2026, 1, 12, 16, 0)) == 450
    assert CAL.working_minutes_between(wib(2026, 1, 9, 0, 0), wib(2026, 1, 10, 0, 0)) == 450
    assert CAL.working_minutes_between(wib(2026, 1, 9, 16, 0), wib(2026, 1, 12, 8, 0)) == 60
    assert CAL.working_minutes_between(wib(2026, 1, 12, 10, 0), wib(2026, 1, 12, 10, 0, 59)) == 0
    assert CAL.working_minutes_between(wib(2026, 1, 13, 10, 0), wib(2026, 1, 12, 10, 0)) == 0


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 1, 12, 10, 0)
    for call in (
        lambda: CAL.is_working_time(naive),
        lambda: CAL.next_opening(naive),
        lambda: CAL.add(naive, "PT1H"),
        lambda: CAL.working_minutes_between(naive, wib(2026, 1, 12, 11, 0)),
    ):
        with pytest.raises(ValueError, match="naive"):
            call()


def test_config_validation_and_hashing() -> None:
    with pytest.raises(ValueError, match="time zone"):
        CalendarConfig(timezone="Asia/Atlantis")
    day = date(2026, 1, 13)
    with pytest.raises(ValueError, match="both a day off and a working day"):
        CalendarConfig(extra_days_off=frozenset({day}), working_days=frozenset({day}))
    with pytest.raises(ValueError, match="no open weekday"):
        CalendarConfig(week={})
    with pytest.raises(ValueError, match="break"):
        WorkingHours(time(8), time(16), time(7), time(9))
    with pytest.raises(ValueError, match="before end"):
        WorkingHours(time(16), time(8))
    assert CalendarConfig() == CalendarConfig()
    assert hash(CalendarConfig()) == hash(CalendarConfig())


# --- durations ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT15M", IsoDuration(minutes=15)),
        ("PT3H", IsoDuration(hours=3)),
        ("PT1H30M", IsoDuration(hours=1, minutes=30)),
        ("PT90S", IsoDuration(seconds=90)),
        ("P2D", IsoDuration(days=2)),
        ("P1W", IsoDuration(weeks=1)),
        ("P1M", IsoDuration(months=1)),
        ("P1Y2M3W4DT5H6M7S", IsoDuration(1, 2, 3, 4, 5, 6, 7)),
        ("P1DT2H", IsoDuration(days=1, hours=2)),
        ("pt1.5h", IsoDuration(hours=1.5)),
        (" PT0,5S ", IsoDuration(seconds=0.5)),
    ],
)
def test_parse_iso_duration(text: str, expected: IsoDuration) -> None:
    assert parse_iso_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a valid duration"),
        ("P", "not a valid duration"),
        ("PT", "not a valid duration"),
        ("P1DT", "not a valid duration"),
        ("15M", "not a valid duration"),
        ("PT15", "not a valid duration"),
        ("P1H", "not a valid duration"),
        ("2026-01-12", "not a valid duration"),
        ("R3/PT10M", "repeating interval"),
        ("-PT5M", "negative"),
        ("P1.5D", "fractional days"),
        ("PT1.5H30M", "only the last component"),
    ],
)
def test_parse_iso_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_iso_duration(text)


def test_duration_text_round_trip() -> None:
    for text in ("PT15M", "P2D", "P1DT2H", "P1Y2M3W4DT5H6M7S", "PT1.5H", "PT0S"):
        assert str(parse_iso_duration(text)) == text


def test_add_is_fast_enough_to_not_walk_minutes() -> None:
    # Not a timing test: a year of working days must be computed by walking days (a few hundred steps).
    start = wib(2026, 1, 12, 10, 0)
    assert CAL.add(start, "P240D") > CAL.add(start, "P239D")
    assert CAL.working_minutes_between(start, CAL.add(start, "PT1000H")) == 60_000


# --- laws (hypothesis) -------------------------------------------------------------------------------------

CALENDARS = [
    CAL,
    WorkingCalendar(CalendarConfig(timezone="Asia/Makassar")),
    WorkingCalendar(CalendarConfig(
        timezone="Asia/Jayapura",
        extra_days_off=frozenset({date(2026, 1, 13), date(2027, 6, 2)}),
        working_days=frozenset({date(2026, 1, 10), date(2026, 3, 23)}),
    )),
]
LAWS = settings(max_examples=200, deadline=None)

calendars = st.sampled_from(CALENDARS)
starts = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31),
    timezones=st.sampled_from([UTC, WIB, WITA, WIT]),
)
# Working time in whole seconds, up to ~4 working weeks.
amounts = st.integers(min_value=0, max_value=4 * 5 * 450 * 60).map(lambda s: timedelta(seconds=s))
day_counts = st.integers(min_value=1, max_value=30)


def in_working_closure(cal: WorkingCalendar, moment: datetime) -> bool:
    """Working time, or exactly the end of a working period (the instant just before is working time)."""
    return cal.is_working_time(moment) or cal.is_working_time(moment - timedelta(microseconds=1))


@LAWS
@given(calendars, starts, amounts)
def test_law_result_is_never_outside_working_time(cal: WorkingCalendar, s: datetime, a: timedelta) -> None:
    result = cal.add(s, a)
    assert result >= s
    assert result.tzinfo is UTC
    assert in_working_closure(cal, result)


@LAWS
@given(calendars, starts, day_counts)
def test_law_days_end_at_close_of_business(cal: WorkingCalendar, s: datetime, n: int) -> None:
    result = cal.add(s, f"P{n}D")
    assert result > s
    assert result == cal.close_of_business(result.astimezone(cal.zone).date())
    # n days = 1 day, then n-1 more: the rule composes.
    if n > 1:
        assert result == cal.add(cal.add(s, "P1D"), f"P{n - 1}D")


@LAWS
@given(calendars, starts, starts, amounts)
def test_law_monotonic_in_start(cal: WorkingCalendar, s1: datetime, s2: datetime, a: timedelta) -> None:
    s1, s2 = sorted((s1, s2))
    assert cal.add(s1, a) <= cal.add(s2, a)
    assert cal.add(s1, "P3D") <= cal.add(s2, "P3D")
    assert cal.add(s1, "P1M") <= cal.add(s2, "P1M")


@LAWS
@given(calendars, starts, amounts, amounts, day_counts, day_counts)
def test_law_monotonic_in_duration(
    cal: WorkingCalendar, s: datetime, a: timedelta, b: timedelta, m: int, n: int
) -> None:
    a, b = sorted((a, b))
    m, n = sorted((m, n))
    assert cal.add(s, a) <= cal.add(s, b)
    assert cal.add(s, f"P{m}D") <= cal.add(s, f"P{n}D")
    assert cal.add(s, f"P{m}M") <= cal.add(s, f"P{n}M")


@LAWS
@given(calendars, starts, amounts, amounts)
def test_law_time_durations_compose(cal: WorkingCalendar, s: datetime, a: timedelta, b: timedelta) -> None:
    assert cal.add(s, a + b) == cal.add(cal.add(s, a), b)


@LAWS
@given(calendars, starts, st.integers(min_value=0, max_value=20 * 450))
def test_law_minutes_between_inverts_add(cal: WorkingCalendar, s: datetime, n: int) -> None:
    assert cal.working_minutes_between(s, cal.add(s, f"PT{n}M")) == n


@LAWS
@given(calendars, starts, starts, starts)
def test_law_working_time_is_additive(cal: WorkingCalendar, a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    if c - a > timedelta(days=400):
        c = a + timedelta(days=400)
        b = min(b, c)
    assert cal.working_time_between(a, c) == cal.working_time_between(a, b) + cal.working_time_between(b, c)


@LAWS
@given(calendars, starts)
def test_law_next_opening(cal: WorkingCalendar, s: datetime) -> None:
    opening = cal.next_opening(s)
    assert opening >= s
    assert cal.is_working_time(opening)
    if cal.is_working_time(s):
        assert opening == s
    else:
        assert cal.working_minutes_between(s, opening) == 0


@settings(max_examples=60, deadline=None)
@given(calendars, starts.map(lambda d: d.replace(second=0, microsecond=0)), st.integers(1, 900))
def test_law_matches_minute_by_minute_oracle(cal: WorkingCalendar, s: datetime, n: int) -> None:
    # Independent oracle: walk minutes, counting those that start in working time.
    moment, counted = s, 0
    while counted < n:
        if cal.is_working_time(moment):
            counted += 1
        moment += timedelta(minutes=1)
    assert cal.add(s, f"PT{n}M") == moment


# --- far moments: closed form in O(years), equal to the day-by-day walk (issue 13, item 4) -----------------

FAR_CALENDARS = [
    *CALENDARS,
    # A zone with DST, and working hours across its 02:00–03:00 changes: a day's UTC length differs there.
    WorkingCalendar(CalendarConfig(
        timezone="Europe/Amsterdam",
        week={0: WorkingHours(time(1, 0), time(4, 0)), 3: WorkingHours(time(8, 0), time(17, 0)),
              6: WorkingHours(time(1, 30), time(3, 30), time(2, 0), time(3, 0))},
        extra_days_off=frozenset({date(1950, 3, 2), date(2030, 3, 5), date(2101, 1, 6)}),
        working_days=frozenset({date(1960, 6, 4), date(2031, 6, 7)}),
    )),
]
far_starts = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2120, 12, 31),
                          timezones=st.sampled_from([UTC, WIB, WIT]))
far_spans = st.one_of(st.integers(0, 40 * 24 * 60), st.integers(0, 60 * 366 * 24 * 60)).map(
    lambda m: timedelta(minutes=m))
far_durations = st.one_of(
    st.integers(0, 150_000).map(lambda h: timedelta(hours=h, minutes=17)),
    st.integers(0, 150_000).map(lambda h: f"PT{h}H"),
    st.integers(1, 20_000).map(lambda d: f"P{d}D"),
    st.integers(1, 1000).map(lambda m: f"P{m}M"),
    st.tuples(st.integers(1, 3000), st.integers(0, 5000)).map(lambda t: f"P{t[0]}DT{t[1]}H"),
)


def _walked() -> Any:
    """The plain day-by-day walk (what the calendar did before the closed form), as the oracle."""
    return mock.patch.object(engine.calendar, "_WALK_DAYS", 10**9)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FAR_CALENDARS), far_starts, far_spans)
def test_far_working_time_equals_the_day_by_day_walk(cal: WorkingCalendar, s: datetime, span: timedelta) -> None:
    fast = cal.working_time_between(s, s + span)
    with _walked():
        assert fast == cal.working_time_between(s, s + span)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FAR_CALENDARS), far_starts, far_durations)
def test_far_add_equals_the_day_by_day_walk(cal: WorkingCalendar, s: datetime, duration: str | timedelta) -> None:
    def outcome() -> datetime | str:
        try:
            return cal.add(s, duration)
        except OutOfWindow as exc:  # both ways: past 2199 is refused, not computed
            return str(exc)

    fast = outcome()
    with _walked():
        assert fast == outcome()


class CountingCalendar(WorkingCalendar):
    """Counts the per-day look-ups (`_periods`), cached or not: what a walk over the days would cost."""

    days_looked_up = 0

    def _periods(self, day: date) -> Any:
        self.days_looked_up += 1
        return super()._periods(day)


def test_fifty_years_of_working_time_do_not_walk_18000_days() -> None:
    start, end = wib(2026, 1, 12, 10, 0), wib(2076, 1, 12, 10, 0)
    cal = CountingCalendar()
    minutes = cal.working_minutes_between(start, end)
    assert cal.days_looked_up < 1_500  # ~ holidays and offset changes of 50 years, plus 4 walked days
    assert minutes > 50 * 240 * 400  # 50 years of ~245 working days of 450 minutes
    with _walked():
        assert CountingCalendar().working_minutes_between(start, end) == minutes


@pytest.mark.parametrize("duration", ["P12000D", "PT90000H", "P600M", timedelta(hours=90000)])
def test_adding_a_long_duration_does_not_walk_its_days(duration: str | timedelta) -> None:
    start = wib(2026, 1, 12, 10, 0)
    cal = CountingCalendar()
    due = cal.add(start, duration)
    assert due > wib(2060, 1, 1) if duration != "P600M" else due > wib(2075, 1, 1)
    assert cal.days_looked_up < 3_000  # the walk looked up ~18,000 days for P12000D
    with _walked():
        assert CountingCalendar().add(start, duration) == due


def test_moments_outside_the_window_are_refused_or_not_counted() -> None:
    now = wib(2026, 12, 7, 9, 0)
    with pytest.raises(OutOfWindow, match=r"^deadline: .*outside the supported range 1900-01-01 to 2199-12-31$"):
        CAL.add(wib(2150, 1, 5, 9, 0), "P99Y")
    with pytest.raises(OutOfWindow, match="start"):
        CAL.add(datetime(1, 1, 1, tzinfo=UTC), "PT1H")
    # A deadline stored before the window existed (0001-01-01, 9999-12-31) counts only the window's time,
    # cheaply, and never overflows.
    cal = CountingCalendar()
    assert cal.working_time_between(datetime(1, 1, 1, tzinfo=UTC), now) == \
        cal.working_time_between(datetime(1900, 1, 1, tzinfo=UTC), now)
    assert cal.working_time_between(now, datetime(9999, 12, 31, 23, 59, tzinfo=UTC)) == \
        cal.working_time_between(now, datetime(2200, 1, 1, tzinfo=UTC))
    assert cal.days_looked_up < 10_000
