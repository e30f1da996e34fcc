"""Calendar arithmetic: durations, weekly windows and business time, across DST and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calendar import (
    BusinessCalendar,
    Duration,
    WeeklyWindow,
    in_window,
    next_open,
    parse_duration,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SOFIA = ZoneInfo("Europe/Sofia")
NEW_YORK = ZoneInfo("America/New_York")
AUCKLAND = ZoneInfo("Pacific/Auckland")
SANTIAGO = ZoneInfo("America/Santiago")  # changes clocks at midnight
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # half-hour DST shift
KOLKATA = ZoneInfo("Asia/Kolkata")  # no DST at all
GOOSE_BAY = ZoneInfo("America/Goose_Bay")  # until 2010 fell back at 00:01 into the day before

OFFICE = WeeklyWindow.parse("mon-fri", "09:00", "17:00")
OFFICE_AMS = BusinessCalendar(OFFICE, AMSTERDAM)


def local(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold)


def wall(at: datetime, tz: ZoneInfo) -> datetime:
    """The naive local wall time of an instant, for readable assertions."""
    return at.astimezone(tz).replace(tzinfo=None)


# ----------------------------------------------------------------------------- parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Duration()),
        ("90s", Duration(seconds=90)),
        ("45m", Duration(seconds=45 * 60)),
        ("24h", Duration(seconds=24 * 3600)),
        ("3d", Duration(days=3)),
        ("2w", Duration(days=14)),
        ("1mo", Duration(months=1)),
        ("1y", Duration(months=12)),
        ("1d12h", Duration(days=1, seconds=12 * 3600)),
        ("1y2mo3w4d5h6m7s", Duration(months=14, days=25, seconds=5 * 3600 + 6 * 60 + 7)),
        ("  2h ", Duration(seconds=7200)),
    ],
)
def test_parse_duration_reads_every_unit(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", " ", "abc", "1", "1h1h", "1m1h", "-1h", "1.5h", "1 d", "1M", "1H", "h", "0s0"]
)
def test_parse_duration_names_the_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as raised:
        parse_duration(text)
    assert repr(text) in str(raised.value)


def test_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Duration(days=-1)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (Duration(), "0"),
        (Duration(seconds=90), "1m30s"),
        (Duration(days=10), "1w3d"),
        (Duration(months=13), "1y1mo"),
        (Duration(seconds=86400), "24h"),
    ],
)
def test_duration_text_is_canonical(duration: Duration, text: str) -> None:
    assert str(duration) == text


@given(
    st.builds(
        Duration,
        months=st.integers(0, 600),
        days=st.integers(0, 3000),
        seconds=st.integers(0, 10**7),
    )
)
def test_duration_text_reads_back(duration: Duration) -> None:
    assert parse_duration(str(duration)) == duration
    assert duration.is_zero == (str(duration) == "0")


# ------------------------------------------------------------------------------ Duration.after


@pytest.mark.parametrize(
    ("start", "text", "expected"),
    [
        # month ends clamp; leap years give Feb 29
        (date(2026, 1, 31), "1mo", date(2026, 2, 28)),
        (date(2028, 1, 31), "1mo", date(2028, 2, 29)),
        (date(2026, 3, 31), "1mo", date(2026, 4, 30)),
        (date(2026, 12, 31), "2mo", date(2027, 2, 28)),
        (date(2028, 2, 29), "1y", date(2029, 2, 28)),
        (date(2028, 2, 29), "4y", date(2032, 2, 29)),
        (date(2026, 1, 31), "1mo1d", date(2026, 3, 1)),
        (date(2026, 11, 30), "3mo", date(2027, 2, 28)),
    ],
)
def test_months_clamp_to_month_end(start: date, text: str, expected: date) -> None:
    at = datetime.combine(start, time(10), tzinfo=AMSTERDAM)
    result = parse_duration(text).after(at, AMSTERDAM)
    assert wall(result, AMSTERDAM) == datetime.combine(expected, time(10))


def test_days_keep_local_wall_time_across_dst() -> None:
    at = local(AMSTERDAM, 2026, 3, 15, 10)
    result = parse_duration("30d").after(at, AMSTERDAM)
    assert wall(result, AMSTERDAM) == datetime(2026, 4, 14, 10)
    assert result - at == timedelta(days=30, hours=-1)  # the spring-forward hour is skipped
    assert result.tzinfo is UTC


def test_hours_are_elapsed_time_across_dst() -> None:
    at = local(AMSTERDAM, 2026, 3, 28, 10)
    result = parse_duration("24h").after(at, AMSTERDAM)
    assert result - at == timedelta(hours=24)
    assert wall(result, AMSTERDAM) == datetime(2026, 3, 29, 11)


@pytest.mark.parametrize(
    ("tz", "start", "expected"),
    [
        # A day later the wall time does not exist: it moves forward by the gap.
        (AMSTERDAM, datetime(2026, 3, 28, 2, 30), datetime(2026, 3, 29, 3, 30)),
        (SOFIA, datetime(2026, 3, 28, 3, 15), datetime(2026, 3, 29, 4, 15)),
        (NEW_YORK, datetime(2026, 3, 7, 2, 0), datetime(2026, 3, 8, 3, 0)),
        (AUCKLAND, datetime(2026, 9, 26, 2, 45), datetime(2026, 9, 27, 3, 45)),
        (LORD_HOWE, datetime(2026, 10, 3, 2, 10), datetime(2026, 10, 4, 2, 40)),
        (SANTIAGO, datetime(2026, 9, 5, 0, 20), datetime(2026, 9, 6, 1, 20)),
    ],
)
def test_days_into_a_gap_resolve_forward(tz: ZoneInfo, start: datetime, expected: datetime) -> None:
    result = Duration(days=1).after(start.replace(tzinfo=tz), tz)
    assert wall(result, tz) == expected


@pytest.mark.parametrize(
    ("tz", "start", "utc"),
    [
        # A day later the wall time happens twice: the first occurrence (summer time) wins.
        (AMSTERDAM, datetime(2026, 10, 24, 2, 30), datetime(2026, 10, 25, 0, 30)),
        (SOFIA, datetime(2026, 10, 24, 3, 30), datetime(2026, 10, 25, 0, 30)),
        (NEW_YORK, datetime(2026, 10, 31, 1, 30), datetime(2026, 11, 1, 5, 30)),
        (AUCKLAND, datetime(2026, 4, 4, 2, 30), datetime(2026, 4, 4, 13, 30)),
    ],
)
def test_days_into_an_overlap_take_the_first(tz: ZoneInfo, start: datetime, utc: datetime) -> None:
    result = Duration(days=1).after(start.replace(tzinfo=tz), tz)
    assert result == utc.replace(tzinfo=UTC)


def test_seconds_only_keep_the_instant_in_a_repeated_hour() -> None:
    second_0230 = local(AMSTERDAM, 2026, 10, 25, 2, 30, fold=1)  # 01:30 UTC
    result = parse_duration("90s").after(second_0230, AMSTERDAM)
    assert result == datetime(2026, 10, 25, 1, 31, 30, tzinfo=UTC)


def test_zero_duration_is_the_same_instant() -> None:
    at = local(NEW_YORK, 2026, 6, 1, 8)
    assert Duration().after(at, NEW_YORK) == at
    assert Duration().is_zero
    assert not Duration(seconds=1).is_zero


def test_after_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        Duration(days=1).after(datetime(2026, 1, 1), AMSTERDAM)


# ------------------------------------------------------------------------------- WeeklyWindow


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon,wed,fri", {0, 2, 4}),
        (["sat", "sun"], {5, 6}),
        ("daily", set(range(7))),
        ("fri-mon", {4, 5, 6, 0}),
        ("Monday, Tue", {0, 1}),
        (["mon-wed", "sun"], {0, 1, 2, 6}),
    ],
)
def test_window_days_parse(days: str | list[str], expected: set[int]) -> None:
    assert WeeklyWindow.parse(days, "09:00", "17:00").days == expected


def test_window_end_of_day_is_midnight() -> None:
    window = WeeklyWindow.parse("daily", "18:00", "24:00")
    assert window.end == time(0)
    assert window.length == timedelta(hours=6)
    assert WeeklyWindow.always() == WeeklyWindow.parse("daily", "00:00", "24:00")
    assert WeeklyWindow.always().length == timedelta(hours=24)


@pytest.mark.parametrize(
    ("days", "start", "end", "message"),
    [
        ("funday", "09:00", "17:00", "unknown day"),
        ([], "09:00", "17:00", "at least one day"),
        ("mon", "17:00", "09:00", "before its end"),
        ("mon", "09:00", "09:00", "before its end"),
        ("mon", "24:00", "24:00", "invalid time"),
        ("mon", "9am", "17:00", "invalid time"),
        ("mon", "09:00", "25:00", "invalid time"),
    ],
)
def test_bad_windows_are_refused(days: str | list[str], start: str, end: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WeeklyWindow.parse(days, start, end)


def test_window_days_must_be_weekdays() -> None:
    with pytest.raises(ValueError, match="0 \\(Mon\\)"):
        WeeklyWindow(days=frozenset({7}), start=time(9), end=time(17))


# ---------------------------------------------------------------------- in_window / next_open


def test_in_window_reads_local_time() -> None:
    assert in_window(OFFICE, AMSTERDAM, local(AMSTERDAM, 2026, 6, 1, 9))  # Monday
    assert in_window(OFFICE, AMSTERDAM, datetime(2026, 6, 1, 7, tzinfo=UTC))  # 09:00 CEST
    assert not in_window(OFFICE, AMSTERDAM, local(AMSTERDAM, 2026, 6, 1, 17))  # end excluded
    assert not in_window(OFFICE, AMSTERDAM, local(AMSTERDAM, 2026, 6, 6, 10))  # Saturday
    assert in_window(
        WeeklyWindow.parse("sun", "18:00", "24:00"), NEW_YORK, local(NEW_YORK, 2026, 6, 7, 23, 59)
    )


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 6, 1, 10), datetime(2026, 6, 1, 10)),  # inside: itself
        (datetime(2026, 6, 1, 9), datetime(2026, 6, 1, 9)),  # at opening: itself
        (datetime(2026, 6, 1, 8, 59), datetime(2026, 6, 1, 9)),
        (datetime(2026, 6, 1, 17), datetime(2026, 6, 2, 9)),  # at closing: next morning
        (datetime(2026, 6, 5, 17, 30), datetime(2026, 6, 8, 9)),  # Friday evening → Monday
        (datetime(2026, 6, 6, 12), datetime(2026, 6, 8, 9)),  # Saturday → Monday
    ],
)
def test_next_open_office_hours(at: datetime, expected: datetime) -> None:
    result = next_open(OFFICE, AMSTERDAM, at.replace(tzinfo=AMSTERDAM))
    assert result.tzinfo is UTC
    assert wall(result, AMSTERDAM) == expected


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        (AMSTERDAM, date(2026, 3, 29)),
        (AMSTERDAM, date(2026, 10, 25)),
        (SOFIA, date(2026, 3, 29)),
        (NEW_YORK, date(2026, 3, 8)),
        (NEW_YORK, date(2026, 11, 1)),
        (AUCKLAND, date(2026, 4, 5)),
        (AUCKLAND, date(2026, 9, 27)),
    ],
)
def test_window_opens_at_local_time_on_dst_days(tz: ZoneInfo, day: date) -> None:
    window = WeeklyWindow.parse("daily", "09:00", "17:00")
    result = next_open(window, tz, datetime.combine(day, time(0), tzinfo=tz))
    assert wall(result, tz) == datetime.combine(day, time(9))


@pytest.mark.parametrize(
    ("tz", "start", "at", "expected_utc"),
    [
        # The window starts inside the gap: it opens when the clocks land after it.
        (AMSTERDAM, "02:30", datetime(2026, 3, 29, 0, 0), datetime(2026, 3, 29, 1, 0)),
        (SOFIA, "03:30", datetime(2026, 3, 29, 0, 0), datetime(2026, 3, 29, 1, 0)),
        (NEW_YORK, "02:15", datetime(2026, 3, 8, 0, 0), datetime(2026, 3, 8, 7, 0)),
        (AUCKLAND, "02:00", datetime(2026, 9, 27, 0, 0), datetime(2026, 9, 26, 14, 0)),
        (SANTIAGO, "00:00", datetime(2026, 9, 5, 23, 0), datetime(2026, 9, 6, 4, 0)),
    ],
)
def test_window_starting_in_a_gap_opens_after_it(
    tz: ZoneInfo, start: str, at: datetime, expected_utc: datetime
) -> None:
    window = WeeklyWindow.parse("daily", start, "05:00")
    result = next_open(window, tz, at.replace(tzinfo=tz))
    assert result == expected_utc.replace(tzinfo=UTC)
    assert in_window(window, tz, result)
    assert not in_window(window, tz, result - timedelta(seconds=1))


def test_window_wholly_inside_a_gap_waits_a_day() -> None:
    window = WeeklyWindow.parse("daily", "02:10", "02:50")
    result = next_open(window, AMSTERDAM, local(AMSTERDAM, 2026, 3, 29, 0))
    assert wall(result, AMSTERDAM) == datetime(2026, 3, 30, 2, 10)


def test_repeated_hour_reopens_the_window() -> None:
    window = WeeklyWindow.parse("daily", "02:00", "02:30")
    first_0240 = local(AMSTERDAM, 2026, 10, 25, 2, 40)  # summer time, 00:40 UTC
    result = next_open(window, AMSTERDAM, first_0240)
    assert result == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 02:00 again, winter time


def test_next_open_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_open(OFFICE, AMSTERDAM, datetime(2026, 6, 1, 10))


# -------------------------------------------------------------------------- BusinessCalendar


def test_friday_afternoon_runs_into_monday() -> None:
    friday_1600 = local(AMSTERDAM, 2026, 6, 5, 16)
    result = OFFICE_AMS.add_business_time(friday_1600, timedelta(hours=2))
    assert wall(result, AMSTERDAM) == datetime(2026, 6, 8, 10)


def test_holiday_monday_moves_to_tuesday() -> None:
    calendar = BusinessCalendar(OFFICE, AMSTERDAM, frozenset({date(2026, 6, 8)}))
    friday_1600 = local(AMSTERDAM, 2026, 6, 5, 16)
    result = calendar.add_business_time(friday_1600, timedelta(hours=2))
    assert wall(result, AMSTERDAM) == datetime(2026, 6, 9, 10)
    assert calendar.business_time_between(friday_1600, result) == timedelta(hours=2)
    assert not calendar.is_working_time(local(AMSTERDAM, 2026, 6, 8, 10))
    assert calendar.is_working_time(local(AMSTERDAM, 2026, 6, 9, 10))
    assert wall(calendar.next_working_time(friday_1600 + timedelta(hours=2)), AMSTERDAM) == (
        datetime(2026, 6, 9, 9)
    )


def test_easter_weekend_across_spring_forward() -> None:
    easter = frozenset({date(2026, 4, 3), date(2026, 4, 6)})  # Good Friday, Easter Monday
    calendar = BusinessCalendar(OFFICE, AMSTERDAM, easter)
    thursday_1630 = local(AMSTERDAM, 2026, 4, 2, 16, 30)
    result = calendar.add_business_time(thursday_1630, timedelta(hours=1))
    assert wall(result, AMSTERDAM) == datetime(2026, 4, 7, 9, 30)


@pytest.mark.parametrize(
    ("start", "amount", "expected"),
    [
        (datetime(2026, 6, 5, 16), timedelta(hours=1), datetime(2026, 6, 5, 17)),  # ends at close
        (datetime(2026, 6, 6, 12), timedelta(hours=1), datetime(2026, 6, 8, 10)),  # from Saturday
        (datetime(2026, 6, 6, 12), timedelta(0), datetime(2026, 6, 8, 9)),  # zero: next opening
        (datetime(2026, 6, 3, 12), timedelta(0), datetime(2026, 6, 3, 12)),  # zero inside: start
        (datetime(2026, 6, 1, 9), timedelta(hours=40), datetime(2026, 6, 5, 17)),  # one week
        (datetime(2026, 6, 1, 9), timedelta(hours=41), datetime(2026, 6, 8, 10)),
        (datetime(2026, 6, 3, 7), timedelta(minutes=30), datetime(2026, 6, 3, 9, 30)),
    ],
)
def test_add_business_time(start: datetime, amount: timedelta, expected: datetime) -> None:
    result = OFFICE_AMS.add_business_time(start.replace(tzinfo=AMSTERDAM), amount)
    assert result.tzinfo is UTC
    assert wall(result, AMSTERDAM) == expected


def test_long_spans_count_whole_weeks() -> None:
    monday = local(AMSTERDAM, 2026, 1, 5, 9)
    result = OFFICE_AMS.add_business_time(monday, timedelta(hours=40 * 52))
    assert wall(result, AMSTERDAM) == datetime(2027, 1, 1, 17)  # Friday of week 52
    assert OFFICE_AMS.business_time_between(monday, result) == timedelta(hours=40 * 52)


def test_business_time_between() -> None:
    friday_1600 = local(AMSTERDAM, 2026, 6, 5, 16)
    monday_1000 = local(AMSTERDAM, 2026, 6, 8, 10)
    assert OFFICE_AMS.business_time_between(friday_1600, monday_1000) == timedelta(hours=2)
    assert OFFICE_AMS.business_time_between(monday_1000, friday_1600) == timedelta(0)
    assert OFFICE_AMS.business_time_between(monday_1000, monday_1000) == timedelta(0)
    saturday, sunday = local(AMSTERDAM, 2026, 6, 6, 9), local(AMSTERDAM, 2026, 6, 7, 18)
    assert OFFICE_AMS.business_time_between(saturday, sunday) == timedelta(0)


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (AMSTERDAM, date(2026, 3, 29), 23),
        (AMSTERDAM, date(2026, 10, 25), 25),
        (SOFIA, date(2026, 3, 29), 23),
        (SOFIA, date(2026, 10, 25), 25),
        (NEW_YORK, date(2026, 3, 8), 23),
        (NEW_YORK, date(2026, 11, 1), 25),
        (AUCKLAND, date(2026, 4, 5), 25),
        (AUCKLAND, date(2026, 9, 27), 23),
        (SANTIAGO, date(2026, 4, 4), 25),  # the repeated hour is Saturday 23:00
        (SANTIAGO, date(2026, 9, 6), 23),  # Sunday has no 00:00–01:00
        (LORD_HOWE, date(2026, 4, 5), 24.5),
        (KOLKATA, date(2026, 3, 29), 24),
    ],
)
def test_all_day_windows_are_as_long_as_the_day(tz: ZoneInfo, day: date, hours: float) -> None:
    calendar = BusinessCalendar(WeeklyWindow.always(), tz)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    assert calendar.business_time_between(start, end) == timedelta(hours=hours)
    assert calendar.add_business_time(start, timedelta(hours=hours)) == end


@pytest.mark.parametrize(
    ("tz", "day", "start", "end", "hours"),
    [
        # Windows that cross the change: the skipped or repeated hour is not or twice worked.
        (AMSTERDAM, date(2026, 3, 29), "01:00", "04:00", 2),
        (AMSTERDAM, date(2026, 10, 25), "01:00", "04:00", 4),
        (NEW_YORK, date(2026, 11, 1), "01:00", "03:00", 3),
        (NEW_YORK, date(2026, 3, 8), "01:30", "02:30", 0.5),
        (AUCKLAND, date(2026, 4, 5), "02:00", "02:30", 1),
        (SOFIA, date(2026, 3, 29), "03:00", "04:00", 0),
    ],
)
def test_windows_crossing_a_change(
    tz: ZoneInfo, day: date, start: str, end: str, hours: float
) -> None:
    calendar = BusinessCalendar(WeeklyWindow.parse("daily", start, end), tz)
    midnight = datetime.combine(day, time(0), tzinfo=tz)
    assert calendar.business_time_between(midnight, midnight + timedelta(hours=12)) == timedelta(
        hours=hours
    )


def test_fall_back_past_midnight_keeps_instants_in_order() -> None:
    # 1990-10-28 00:00:59 ADT became 1990-10-27 23:01 AST: Sunday's first minute comes
    # before the rest of Saturday, so working intervals must be ordered by instant, not date.
    calendar = BusinessCalendar(WeeklyWindow.always(), GOOSE_BAY)
    saturday_2359 = local(GOOSE_BAY, 1990, 10, 27, 23, 59)
    result = calendar.add_business_time(saturday_2359, timedelta(minutes=2))
    assert result - saturday_2359 == timedelta(minutes=2)
    assert wall(result, GOOSE_BAY) == datetime(1990, 10, 27, 23, 1)
    weekend = BusinessCalendar(WeeklyWindow.parse("sat", "23:30", "24:00"), GOOSE_BAY)
    sunday_first_minute = datetime(1990, 10, 28, 3, 0, 30, tzinfo=UTC)  # 00:00:30 ADT
    assert next_open(weekend.window, GOOSE_BAY, sunday_first_minute) == datetime(
        1990, 10, 28, 3, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (datetime(2026, 6, 1, 10), 1, datetime(2026, 6, 2, 10)),
        (datetime(2026, 6, 5, 10), 1, datetime(2026, 6, 8, 10)),
        (datetime(2026, 6, 5, 18), 1, datetime(2026, 6, 8, 17)),  # starts counting Monday 09:00
        (datetime(2026, 6, 1, 10), 5, datetime(2026, 6, 8, 10)),
        (datetime(2026, 6, 1, 10), 0, datetime(2026, 6, 1, 10)),
    ],
)
def test_add_business_days(start: datetime, days: int, expected: datetime) -> None:
    result = OFFICE_AMS.add_business_days(start.replace(tzinfo=AMSTERDAM), days)
    assert wall(result, AMSTERDAM) == expected


def test_negative_amounts_are_refused() -> None:
    start = local(AMSTERDAM, 2026, 6, 1, 10)
    with pytest.raises(ValueError, match="negative"):
        OFFICE_AMS.add_business_time(start, timedelta(hours=-1))
    with pytest.raises(ValueError, match="negative"):
        OFFICE_AMS.add_business_days(start, -1)


def test_calendar_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="start must be an aware"):
        OFFICE_AMS.add_business_time(datetime(2026, 6, 1), timedelta(hours=1))


def test_calendar_without_working_time_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        BusinessCalendar(WeeklyWindow(frozenset(), time(9), time(17)), AMSTERDAM)


def test_fixed_offset_inputs_are_the_same_instants() -> None:
    plus_two = timezone(timedelta(hours=2))
    at = datetime(2026, 6, 5, 16, tzinfo=plus_two)  # 16:00 CEST
    assert wall(OFFICE_AMS.add_business_time(at, timedelta(hours=2)), AMSTERDAM) == datetime(
        2026, 6, 8, 10
    )


# ------------------------------------------------------------------------- property tests

ZONES = [AMSTERDAM, SOFIA, NEW_YORK, AUCKLAND, SANTIAGO, LORD_HOWE, KOLKATA, GOOSE_BAY]
MINUTE = timedelta(minutes=1)

# Instants clustered around 2026's clock changes, where the bugs live, plus anywhere at all.
_CHANGES = [
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 4, 4, 13, tzinfo=UTC),
    datetime(2026, 4, 5, 3, tzinfo=UTC),
    datetime(2026, 9, 6, 4, tzinfo=UTC),
    datetime(2026, 9, 26, 14, tzinfo=UTC),
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(1990, 10, 28, 2, 31, tzinfo=UTC),  # Goose Bay
]
near_changes = st.builds(
    lambda change, minutes: change + timedelta(minutes=minutes),
    st.sampled_from(_CHANGES),
    st.integers(-4 * 24 * 60, 4 * 24 * 60),
)
anywhere = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
).map(lambda at: at.replace(second=0, microsecond=0))
instants = st.one_of(near_changes, anywhere)


@st.composite
def windows(draw: st.DrawFn) -> WeeklyWindow:
    """Windows on a 10-minute grid, so DST edges at :00 and :30 fall inside them often."""
    first = draw(st.integers(0, 143))
    last = draw(st.integers(first + 1, 144))  # slot 144 is 24:00, written as 00:00
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    return WeeklyWindow(days=days, start=_slot_time(first), end=_slot_time(last))


def _slot_time(slot: int) -> time:
    return time(slot // 6 % 24, slot % 6 * 10)


@st.composite
def calendars(draw: st.DrawFn, near: datetime) -> BusinessCalendar:
    tz = draw(st.sampled_from(ZONES))
    offsets = draw(st.frozensets(st.integers(-3, 30), max_size=8))
    holidays = frozenset(near.astimezone(tz).date() + timedelta(days=n) for n in offsets)
    return BusinessCalendar(draw(windows()), tz, holidays)


def brute_force_next_open(window: WeeklyWindow, tz: ZoneInfo, at: datetime) -> datetime:
    """Minute by minute: the first minute at or after *at* inside the window."""
    probe = at
    while not in_window(window, tz, probe):
        probe += MINUTE
    return probe


@settings(max_examples=150, deadline=None)
@given(windows(), st.sampled_from(ZONES), instants)
def test_next_open_is_the_first_open_minute(
    window: WeeklyWindow, tz: ZoneInfo, at: datetime
) -> None:
    result = next_open(window, tz, at)
    assert result >= at
    assert in_window(window, tz, result)
    # Every window edge and clock change here is on a whole minute, so no opening between
    # *at* and the result can hide between two probes.
    assert result == brute_force_next_open(window, tz, at)


@settings(max_examples=60, deadline=None)
@given(st.data(), instants, st.integers(0, 3 * 24 * 60))
def test_business_time_between_counts_working_minutes(
    data: st.DataObject, a: datetime, minutes: int
) -> None:
    calendar = data.draw(calendars(a))
    b = a + minutes * MINUTE
    worked = sum(calendar.is_working_time(a + n * MINUTE) for n in range(minutes))
    assert calendar.business_time_between(a, b) == worked * MINUTE


@settings(max_examples=150, deadline=None)
@given(st.data(), instants, st.timedeltas(timedelta(0), timedelta(weeks=3)))
def test_add_then_measure_gives_the_amount_back(
    data: st.DataObject, start: datetime, amount: timedelta
) -> None:
    calendar = data.draw(calendars(start))
    result = calendar.add_business_time(start, amount)
    assert result >= start
    assert calendar.business_time_between(start, result) == amount
    if amount:
        # The result is the earliest such instant: the last moment before it was worked.
        assert calendar.is_working_time(result - timedelta(microseconds=1))


@settings(max_examples=100, deadline=None)
@given(
    st.data(),
    instants,
    st.timedeltas(timedelta(0), timedelta(days=10)),
    st.timedeltas(timedelta(0), timedelta(days=10)),
)
def test_add_business_time_is_monotone(
    data: st.DataObject, start: datetime, x: timedelta, y: timedelta
) -> None:
    calendar = data.draw(calendars(start))
    smaller, larger = sorted((x, y))
    first = calendar.add_business_time(start, smaller)
    second = calendar.add_business_time(start, larger)
    assert first <= second
    assert second - first >= larger - smaller  # working time never outruns elapsed time


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ZONES), instants, st.timedeltas(timedelta(0), timedelta(weeks=5)))
def test_all_day_every_day_is_elapsed_time(
    tz: ZoneInfo, start: datetime, amount: timedelta
) -> None:
    calendar = BusinessCalendar(WeeklyWindow.always(), tz)
    assert calendar.add_business_time(start, amount) == start + amount
    assert calendar.business_time_between(start, start + amount) == amount


@given(st.sampled_from(ZONES), instants, st.integers(0, 800))
def test_days_keep_wall_time_when_it_exists(tz: ZoneInfo, at: datetime, days: int) -> None:
    before = wall(at, tz)
    result = Duration(days=days).after(at, tz)
    intended = before + timedelta(days=days)
    after = wall(result, tz)
    exists = wall(intended.replace(tzinfo=tz).astimezone(UTC), tz) == intended
    if exists:
        assert after == intended
    else:  # in a gap: moved forward, by less than an hour in these zones
        assert intended < after <= intended + timedelta(hours=1)
