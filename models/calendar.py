"""Calendar arithmetic for survey scheduling and SLAs: durations, weekly windows, business time.

Everything is defined on the local wall clock of one time zone, because that is how people
state rules ("send at 10:00", "answer within 2 working days"), while every instant going in
or out is an aware datetime and every result is in UTC. Pure and stdlib-only (zoneinfo).

Working time is the set of instants whose local wall time falls inside the window on a
working day. On DST days that set is simply shorter or longer (a 00:00–24:00 window holds
23 or 25 hours), so business time is always real elapsed time, never wall-clock difference.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

__all__ = [
    "BusinessCalendar",
    "Duration",
    "WeeklyWindow",
    "in_window",
    "next_open",
    "parse_duration",
]

_DAY = timedelta(days=1)
# Python bounds every UTC offset strictly inside ±24 h, so the instants of one local date
# lie within a day either side of that date read as UTC.
_OFFSET_BOUND = timedelta(hours=24)
# Offset changes are found by sampling; no zone changes its offset twice within an hour.
_SAMPLE_STEP = timedelta(hours=1)


def _as_utc(at: datetime, name: str = "at") -> datetime:
    """Reject naive datetimes: guessing their zone is how SLAs end up an hour off."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def _offset(tz: ZoneInfo, at_utc: datetime) -> timedelta:
    offset = at_utc.astimezone(tz).utcoffset()
    if offset is None:  # ZoneInfo always answers; this keeps the type honest
        raise ValueError(f"{tz} has no UTC offset at {at_utc.isoformat()}")
    return offset


def _resolve_wall(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall time: gaps resolve forward, overlaps to the first.

    PEP 495's fold=0 reads a gap time with the offset from before the change, which lands
    the same distance past the gap (02:30 → 03:30 when clocks jump 02:00 → 03:00), and
    picks the earlier of two repeated times.
    """
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


# ---------------------------------------------------------------------------------- durations

_UNIT_PATTERN = re.compile(r"(\d+)(y|mo|w|d|h|m|s)")
_UNIT_ORDER = ("y", "mo", "w", "d", "h", "m", "s")


@dataclass(frozen=True)
class Duration:
    """A calendar-aware span: months and days move the local calendar, seconds elapse."""

    months: int = 0
    days: int = 0
    seconds: int = 0

    def __post_init__(self) -> None:
        if min(self.months, self.days, self.seconds) < 0:
            raise ValueError(f"duration parts must not be negative: {self!r}")

    @property
    def is_zero(self) -> bool:
        return not (self.months or self.days or self.seconds)

    def after(self, at: datetime, tz: ZoneInfo) -> datetime:
        """The instant this duration after *at*, in UTC.

        Months (clamped to month end: Jan 31 + 1mo is Feb 28/29) and then days step the
        wall clock in *tz*, so "30d" after 10:00 is 10:00 again even across a DST change;
        seconds are then added as elapsed time, so "24h" is always 86 400 s.
        """
        start = _as_utc(at)
        if self.months or self.days:
            wall = start.astimezone(tz).replace(tzinfo=None, fold=0)
            moved = _add_months(wall.date(), self.months) + timedelta(days=self.days)
            start = _resolve_wall(datetime.combine(moved, wall.time()), tz)
        return start + timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        """Canonical text that `parse_duration` reads back to an equal Duration."""
        if self.is_zero:
            return "0"
        years, months = divmod(self.months, 12)
        weeks, days = divmod(self.days, 7)
        hours, rest = divmod(self.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        counts = (years, months, weeks, days, hours, minutes, seconds)
        return "".join(f"{n}{unit}" for n, unit in zip(counts, _UNIT_ORDER, strict=True) if n)


def parse_duration(text: str) -> Duration:
    """Read "0", "90s", "45m", "24h", "3d", "2w", "1mo", "1y" or a mix such as "1d12h".

    Units go largest first, each at most once, so a typo like "1h1h" or "1m1h" is an error
    rather than a silently summed value. "m" is minutes, "mo" months, "y" twelve months.
    """
    cleaned = text.strip()
    if cleaned == "0":
        return Duration()
    months = days = seconds = 0
    position = 0
    last_rank = -1
    for match in _UNIT_PATTERN.finditer(cleaned):
        unit = match.group(2)
        rank = _UNIT_ORDER.index(unit)
        if match.start() != position or rank <= last_rank:
            break
        position, last_rank = match.end(), rank
        value = int(match.group(1))
        if unit == "y":
            months += 12 * value
        elif unit == "mo":
            months += value
        elif unit == "w":
            days += 7 * value
        elif unit == "d":
            days += value
        else:
            seconds += value * {"h": 3600, "m": 60, "s": 1}[unit]
    if not cleaned or position != len(cleaned):
        raise ValueError(
            f"invalid duration {text!r}: expected e.g. '0', '90s', '45m', '24h', '3d', '2w', "
            "'1mo', '1y' or '1d12h' (units largest first, each at most once)"
        )
    return Duration(months=months, days=days, seconds=seconds)


def _add_months(day: date, months: int) -> date:
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    next_month = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    month_length = (next_month - date(year, month, 1)).days
    return date(year, month, min(day.day, month_length))


# ------------------------------------------------------------------------------ weekly windows

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MIDNIGHT = time(0)


def _since_midnight(wall: time) -> timedelta:
    return timedelta(
        hours=wall.hour, minutes=wall.minute, seconds=wall.second, microseconds=wall.microsecond
    )


def _day_number(name: str) -> int:
    key = name.strip().lower()
    for names in (_DAY_NAMES, _FULL_DAY_NAMES):
        if key in names:
            return names.index(key)
    raise ValueError(f"unknown day {name!r}: expected one of {', '.join(_DAY_NAMES)}")


def _parse_days(days: str | Sequence[str]) -> frozenset[int]:
    parts = [days] if isinstance(days, str) else list(days)
    numbers: set[int] = set()
    for part in parts:
        for item in part.split(","):
            if item.strip().lower() == "daily":
                numbers.update(range(7))
            elif "-" in item:
                first, _, last = item.partition("-")
                begin, finish = _day_number(first), _day_number(last)
                # A range may wrap past Sunday: "fri-mon" is Fri, Sat, Sun, Mon.
                numbers.update((begin + i) % 7 for i in range((finish - begin) % 7 + 1))
            else:
                numbers.add(_day_number(item))
    return frozenset(numbers)


def _parse_time(text: str, *, is_end: bool) -> time:
    cleaned = text.strip()
    if is_end and cleaned in {"24:00", "24:00:00"}:
        return _MIDNIGHT
    try:
        return time.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"invalid time of day {text!r}: expected HH:MM") from None


@dataclass(frozen=True)
class WeeklyWindow:
    """Local wall-clock hours on chosen weekdays (0 = Monday); end 00:00 means 24:00."""

    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("a weekly window needs at least one day")
        if not self.days <= set(range(7)):
            raise ValueError(f"window days must be 0 (Mon) .. 6 (Sun), got {sorted(self.days)}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are local wall times; pass them without tzinfo")
        if self.end != _MIDNIGHT and not self.start < self.end:
            raise ValueError(f"window start {self.start} must be before its end {self.end}")

    @classmethod
    def parse(cls, days: str | Sequence[str], start: str, end: str) -> WeeklyWindow:
        """Build from config text: days "mon-fri", "mon,wed,fri", ["sat", "sun"] or "daily"."""
        return cls(
            days=_parse_days(days),
            start=_parse_time(start, is_end=False),
            end=_parse_time(end, is_end=True),
        )

    @classmethod
    def always(cls) -> WeeklyWindow:
        """Every day, all day."""
        return cls(days=frozenset(range(7)), start=_MIDNIGHT, end=_MIDNIGHT)

    @property
    def length(self) -> timedelta:
        """Wall-clock length of one day's window (24 h for 00:00–24:00)."""
        end = _DAY if self.end == _MIDNIGHT else _since_midnight(self.end)
        return end - _since_midnight(self.start)

    def contains_wall_time(self, weekday: int, wall: time) -> bool:
        """Whether a local weekday and wall time fall inside the window."""
        return (
            weekday in self.days
            and self.start <= wall
            and (self.end == _MIDNIGHT or wall < self.end)
        )


def in_window(window: WeeklyWindow, tz: ZoneInfo, at: datetime) -> bool:
    """Whether *at*'s local wall time in *tz* falls inside *window*."""
    local = _as_utc(at).astimezone(tz)
    return window.contains_wall_time(local.weekday(), local.time())


def next_open(window: WeeklyWindow, tz: ZoneInfo, at: datetime) -> datetime:
    """*at* (in UTC) if the window is open then, else the first instant after it that is.

    A window whose start falls in a DST gap opens at the first instant after the gap, and
    a window lying wholly inside a gap is skipped for that day.
    """
    start = _as_utc(at)
    opens, _closes = next(_working_intervals(window, tz, frozenset(), start))
    return max(opens, start)


# ------------------------------------------------------------------------- working intervals


@lru_cache(maxsize=256)
def _transitions_in_year(tz: ZoneInfo, year: int) -> tuple[datetime, ...]:
    """Every UTC instant in *year* (or at the next New Year) where *tz*'s offset changes.

    zoneinfo does not expose its transition table, so sample hourly and bisect to the
    second (tzdata transitions fall on whole seconds). Cached: one scan per zone and year.
    """
    found: list[datetime] = []
    here = datetime(year, 1, 1, tzinfo=UTC)
    stop = datetime(year + 1, 1, 1, tzinfo=UTC)
    offset = _offset(tz, here)
    while here < stop:
        there = here + _SAMPLE_STEP
        new_offset = _offset(tz, there)
        if new_offset != offset:
            low, high = here, there  # offset(low) is the old one, offset(high) the new one
            while high - low > timedelta(seconds=1):
                middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
                if _offset(tz, middle) == offset:
                    low = middle
                else:
                    high = middle
            found.append(high)
            offset = new_offset
        here = there
    return tuple(found)


def _transitions(tz: ZoneInfo, low: datetime, high: datetime) -> list[datetime]:
    """Offset changes strictly between *low* and *high* (UTC), in order."""
    found: list[datetime] = []
    # A change exactly at New Year is found by the previous year's scan.
    for year in range(low.year - 1, high.year + 1):
        table = _transitions_in_year(tz, year)
        first = bisect.bisect_right(table, low)
        last = bisect.bisect_left(table, high)
        found.extend(table[first:last])
    return found


def _day_intervals(
    window: WeeklyWindow, tz: ZoneInfo, day: date
) -> list[tuple[datetime, datetime]]:
    """UTC intervals whose local wall time lies in the window on local date *day*.

    Between offset changes local time is UTC plus a constant, so within each such piece
    the window maps to one shifted interval; clipping to the piece handles gaps (the
    interval shrinks or vanishes) and overlaps (the repeated hour is counted twice).
    """
    wall_start = datetime.combine(day, window.start, tzinfo=UTC)
    wall_end = (
        datetime.combine(day + _DAY, _MIDNIGHT, tzinfo=UTC)
        if window.end == _MIDNIGHT
        else datetime.combine(day, window.end, tzinfo=UTC)
    )
    low, high = wall_start - _OFFSET_BOUND, wall_end + _OFFSET_BOUND
    cuts = [low, *_transitions(tz, low, high), high]
    intervals: list[tuple[datetime, datetime]] = []
    for piece_start, piece_end in pairwise(cuts):
        offset = _offset(tz, piece_start)
        opens = max(piece_start, wall_start - offset)
        closes = min(piece_end, wall_end - offset)
        if opens >= closes:
            continue
        if intervals and intervals[-1][1] == opens:
            intervals[-1] = (intervals[-1][0], closes)
        else:
            intervals.append((opens, closes))
    return intervals


def _working_intervals(
    window: WeeklyWindow, tz: ZoneInfo, holidays: frozenset[date], since: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals in UTC, in order, from the first one that ends after *since*.

    Walks one local date at a time, so weeks cost a few dozen steps. Never runs out: the
    window is open on some weekday and holidays are finite. A fall-back change around
    midnight can put a later date's hours before an earlier date's, so intervals are held
    in a heap and released only once no later date can produce anything earlier.
    """
    day = (since - 2 * _OFFSET_BOUND).date()
    pending: list[tuple[datetime, datetime]] = []
    while True:
        if day.weekday() in window.days and day not in holidays:
            for interval in _day_intervals(window, tz, day):
                heapq.heappush(pending, interval)
        day += _DAY
        earliest_later = datetime.combine(day, _MIDNIGHT, tzinfo=UTC) - _OFFSET_BOUND
        while pending and pending[0][0] <= earliest_later:
            opens, closes = heapq.heappop(pending)
            if closes > since:
                yield opens, closes


# -------------------------------------------------------------------------- business calendar


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours in a zone, minus holidays (local dates), for SLA arithmetic.

    A calendar without any working time would make every search below run forever; it
    cannot be built, because `WeeklyWindow` refuses empty windows and holidays are finite.
    """

    window: WeeklyWindow
    tz: ZoneInfo
    holidays: frozenset[date] = frozenset()

    @property
    def working_day(self) -> timedelta:
        """The length of one working day's window on the wall clock (9–17 → 8 h)."""
        return self.window.length

    def is_working_time(self, at: datetime) -> bool:
        """Whether *at* falls in working hours on a non-holiday."""
        local = _as_utc(at).astimezone(self.tz)
        return local.date() not in self.holidays and in_window(self.window, self.tz, at)

    def next_working_time(self, at: datetime) -> datetime:
        """*at* (in UTC) during working hours, else the next instant working hours begin."""
        start = _as_utc(at)
        opens, _closes = next(_working_intervals(self.window, self.tz, self.holidays, start))
        return max(opens, start)

    def add_business_time(self, start: datetime, amount: timedelta) -> datetime:
        """The instant (UTC) when *amount* of working time has passed since *start*.

        Counting starts at the next opening if *start* is outside working hours, so a zero
        amount gives the next working instant. Ending exactly at closing time returns the
        closing instant, not the next morning.
        """
        if amount < timedelta(0):
            raise ValueError(f"business time to add must not be negative, got {amount}")
        begin = _as_utc(start, "start")
        remaining = amount
        for opens, closes in _working_intervals(self.window, self.tz, self.holidays, begin):
            counted_from = max(opens, begin)
            if closes - counted_from >= remaining:
                return counted_from + remaining
            remaining -= closes - counted_from
        raise AssertionError("unreachable: working intervals never run out")  # pragma: no cover

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time elapsed from *a* to *b*; zero if *b* is not after *a*."""
        begin, finish = _as_utc(a, "a"), _as_utc(b, "b")
        total = timedelta(0)
        if finish <= begin:
            return total
        for opens, closes in _working_intervals(self.window, self.tz, self.holidays, begin):
            if opens >= finish:
                break
            total += min(closes, finish) - max(opens, begin)
        return total

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """*days* working days after *start*, by definition *days* × `working_day` of time.

        Defined as an amount of working time rather than "same clock time N working days
        later" so it agrees with `add_business_time` and handles starts outside hours:
        Mon 10:00 + 1 day (9–17) is Tue 10:00; Fri 18:00 + 1 day is Mon 17:00. On a DST
        day whose window spans the change, the result shifts by the hour gained or lost.
        """
        if days < 0:
            raise ValueError(f"business days to add must not be negative, got {days}")
        return self.add_business_time(start, days * self.working_day)
