"""Business-hours SLA calculation: fixed cases worked out by hand (weekends, holidays, DST,
team time zones) and properties of the escalation ladder (reminder, lead, manager)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.followup_rules import FollowupRules, load_followup_rules, parse_followup_rules
from models.sla import (
    TOP_LEVEL,
    SlaKind,
    current_sla,
    due_steps,
    next_escalation_at,
    sla_times,
    step_at,
)
from models.task_lifecycle import TaskStatus

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
AUCKLAND = ZoneInfo("Pacific/Auckland")
MICROSECOND = timedelta(microseconds=1)

SHIPPED = load_followup_rules()  # team "service": Amsterdam, mon-fri 08:30–17:00, holidays

TEAMS = """
[routing]
default_team = "ams"

[[team]]
name = "ams"
timezone = "Europe/Amsterdam"
days = "mon-fri"
from = "08:30"
to = "17:00"
holidays = [2026-12-25, 2026-12-26, 2027-01-01]

[[team]]
name = "ops"
timezone = "Europe/Amsterdam"
days = "mon-sun"
from = "00:00"
to = "24:00"

[[team]]
name = "nyc"
timezone = "America/New_York"
from = "09:00"
to = "17:00"
holidays = [2026-11-26, 2026-12-25]

[[team]]
name = "tokyo"
timezone = "Asia/Tokyo"
from = "09:00"
to = "18:00"

[[team]]
name = "akl"
timezone = "Pacific/Auckland"
days = "mon-fri"
from = "08:00"
to = "17:00"
holidays = [2026-12-25, 2026-12-28]
"""
TEAM_NAMES = ("ams", "ops", "nyc", "tokyo", "akl")


@cache
def rules_with(
    first_contact: str = "2 business days",
    closure: str = "5 business days",
    ladder: tuple[float, float, float] = (0.75, 1.0, 2.0),
) -> FollowupRules:
    """The teams above with these SLA targets and ladder fractions."""
    reminder, lead, manager = ladder
    return parse_followup_rules(
        f'version = "sla-test"\n[sla]\nfirst_contact = "{first_contact}"\n'
        f'closure = "{closure}"\nreminder_at = {reminder}\nlead_at = {lead}\n'
        f"manager_at = {manager}\n" + TEAMS,
        "sla-test.toml",
    )


def local(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def wall(at: datetime, tz: ZoneInfo) -> datetime:
    """The naive local wall time of an instant, for readable assertions."""
    return at.astimezone(tz).replace(tzinfo=None)


def ladder(
    rules: FollowupRules, team: str, opened: datetime, kind: SlaKind = "first_contact"
) -> list[datetime]:
    return [step_at(rules, team, opened, kind, level) for level in (1, 2, 3)]


# ------------------------------------------------------------------------------ fixed cases


def test_friday_afternoon_task_is_due_tuesday_afternoon() -> None:
    # 08:30–17:00 is 8.5 h, so 2 business days are 17 h: Fri 16–17 (1 h), Mon (9.5 h),
    # Tue 08:30 + 7.5 h = 16:00. Closure, 42.5 h: Fri 1, Mon–Thu 34 → 35, next Fri 08:30 + 7.5.
    opened = local(AMSTERDAM, 2026, 11, 20, 16)  # a Friday
    times = sla_times(SHIPPED, "service", opened)
    assert wall(times.first_contact_due_at, AMSTERDAM) == datetime(2026, 11, 24, 16, 0)
    assert wall(times.closure_due_at, AMSTERDAM) == datetime(2026, 11, 27, 16, 0)
    assert times.first_contact_due_at.tzinfo is UTC
    # Reminder at 75 % (12.75 h): Fri 1 + Mon 8.5 → Tue 08:30 + 3.25 h. Manager at 200 %
    # (34 h): Fri 1 + Mon, Tue, Wed 25.5 → Thu 08:30 + 7.5 h.
    assert [wall(t, AMSTERDAM) for t in ladder(SHIPPED, "service", opened)] == [
        datetime(2026, 11, 24, 11, 45),
        datetime(2026, 11, 24, 16, 0),
        datetime(2026, 11, 26, 16, 0),
    ]


def test_sixteen_business_hours_from_friday_afternoon_is_tuesday_three_pm() -> None:
    rules = rules_with(first_contact="16 business hours")
    opened = local(AMSTERDAM, 2026, 11, 20, 16)
    # Fri 1 h, Mon 8.5 h, Tue 08:30 + 6.5 h.
    due = sla_times(rules, "ams", opened).first_contact_due_at
    assert wall(due, AMSTERDAM) == datetime(2026, 11, 24, 15, 0)
    # The same hours on an 8-hour day in another zone are not the same share of a day.
    tokyo = sla_times(rules, "tokyo", local(TOKYO, 2026, 11, 20, 16)).first_contact_due_at
    assert wall(tokyo, TOKYO) == datetime(2026, 11, 24, 14, 0)  # Fri 2, Mon 9, Tue 09 + 5


@pytest.mark.parametrize(
    ("opened", "due"),
    [
        # Opened at the weekend: counting starts Monday 08:30, 17 h end at Tuesday's close
        # (the closing instant itself, not Wednesday morning).
        (datetime(2026, 11, 21, 10, 0), datetime(2026, 11, 24, 17, 0)),
        (datetime(2026, 11, 22, 23, 59), datetime(2026, 11, 24, 17, 0)),
        # Before opening on Monday: the same.
        (datetime(2026, 11, 23, 7, 0), datetime(2026, 11, 24, 17, 0)),
        # After closing on Monday: counting starts Tuesday 08:30.
        (datetime(2026, 11, 23, 20, 0), datetime(2026, 11, 25, 17, 0)),
        (datetime(2026, 11, 23, 17, 0), datetime(2026, 11, 25, 17, 0)),
        # At opening time exactly.
        (datetime(2026, 11, 23, 8, 30), datetime(2026, 11, 24, 17, 0)),
        # One minute before closing: 1 min on Monday, 8.5 h on Tuesday, 8 h 29 min Wednesday.
        (datetime(2026, 11, 23, 16, 59), datetime(2026, 11, 25, 16, 59)),
    ],
)
def test_tasks_opened_outside_hours_start_counting_at_the_next_opening(
    opened: datetime, due: datetime
) -> None:
    at = opened.replace(tzinfo=AMSTERDAM)
    assert wall(sla_times(SHIPPED, "service", at).first_contact_due_at, AMSTERDAM) == due
    assert SHIPPED.calendar("service").business_time_between(
        at, sla_times(SHIPPED, "service", at).first_contact_due_at
    ) == timedelta(hours=17)


def test_christmas_and_new_year_are_skipped() -> None:
    # Thu 24 Dec 12:00: 5 h on Thursday; Fri 25 (holiday), Sat 26, Sun 27 off; Mon 28
    # 8.5 h (13.5); Tue 29 08:30 + 3.5 h. Closure 42.5 h: Tue 22, Wed 30.5, Thu 31 39,
    # Fri 1 Jan holiday, Mon 4 Jan 08:30 + 3.5 h.
    opened = local(AMSTERDAM, 2026, 12, 24, 12)
    times = sla_times(SHIPPED, "service", opened)
    assert wall(times.first_contact_due_at, AMSTERDAM) == datetime(2026, 12, 29, 12, 0)
    assert wall(times.closure_due_at, AMSTERDAM) == datetime(2027, 1, 4, 12, 0)
    # The manager step (34 h) lands on New Year's Eve, a working day.
    assert wall(ladder(SHIPPED, "service", opened)[2], AMSTERDAM) == datetime(2026, 12, 31, 12)
    # Opened on the holiday itself: nothing counts until Monday.
    on_the_day = sla_times(SHIPPED, "service", local(AMSTERDAM, 2026, 12, 25, 10))
    assert wall(on_the_day.first_contact_due_at, AMSTERDAM) == datetime(2026, 12, 29, 17, 0)


def test_a_team_without_those_holidays_works_through_them() -> None:
    rules = rules_with()
    opened = local(TOKYO, 2026, 12, 24, 12)
    # Thu 6 h, Fri 25 9 h (15), Mon 28 09:00 + 3 h.
    assert wall(sla_times(rules, "tokyo", opened).first_contact_due_at, TOKYO) == datetime(
        2026, 12, 28, 12, 0
    )


def test_weekday_team_across_the_spring_change_in_amsterdam() -> None:
    # Clocks go 02:00 → 03:00 on Sunday 29 March 2026: the working hours are wall-clock
    # hours, so Tuesday 16:00 CEST is the due time although an hour less has elapsed.
    opened = local(AMSTERDAM, 2026, 3, 27, 16)
    due = sla_times(SHIPPED, "service", opened).first_contact_due_at
    assert wall(due, AMSTERDAM) == datetime(2026, 3, 31, 16, 0)
    assert opened.astimezone(UTC) == datetime(2026, 3, 27, 15, 0, tzinfo=UTC)
    assert due == datetime(2026, 3, 31, 14, 0, tzinfo=UTC)


def test_weekday_team_across_the_autumn_change_in_amsterdam() -> None:
    # Clocks go 03:00 → 02:00 on Sunday 25 October 2026.
    opened = local(AMSTERDAM, 2026, 10, 23, 16)
    due = sla_times(SHIPPED, "service", opened).first_contact_due_at
    assert wall(due, AMSTERDAM) == datetime(2026, 10, 27, 16, 0)
    assert due == datetime(2026, 10, 27, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("opened", "sla", "due_wall", "due_utc"),
    [
        # A team open around the clock counts elapsed time: 16 h from Saturday 20:00 CET
        # over the lost hour is Sunday 13:00 CEST, 17 wall-clock hours later.
        (
            local(AMSTERDAM, 2026, 3, 28, 20),
            "16 business hours",
            datetime(2026, 3, 29, 13, 0),
            datetime(2026, 3, 29, 11, 0, tzinfo=UTC),
        ),
        # Over the repeated hour: Sunday 11:00 CET, 15 wall-clock hours later.
        (
            local(AMSTERDAM, 2026, 10, 24, 20),
            "16 business hours",
            datetime(2026, 10, 25, 11, 0),
            datetime(2026, 10, 25, 10, 0, tzinfo=UTC),
        ),
        # A business day of a 00:00–24:00 window is 24 h, so 2 of them are 48 h elapsed.
        (
            local(AMSTERDAM, 2026, 3, 28, 12),
            "2 business days",
            datetime(2026, 3, 30, 13, 0),
            datetime(2026, 3, 30, 11, 0, tzinfo=UTC),
        ),
    ],
)
def test_all_day_team_counts_real_hours_across_dst(
    opened: datetime, sla: str, due_wall: datetime, due_utc: datetime
) -> None:
    due = sla_times(rules_with(first_contact=sla), "ops", opened).first_contact_due_at
    assert wall(due, AMSTERDAM) == due_wall
    assert due == due_utc


@pytest.mark.parametrize(
    ("opened", "due_wall", "due_utc"),
    [
        # US clocks change on 8 March 2026, three weeks before Europe's: Fri 2 h, Mon 8 h,
        # Tue 09:00 + 6 h = 15:00 EDT.
        (
            local(NEW_YORK, 2026, 3, 6, 15),
            datetime(2026, 3, 10, 15, 0),
            datetime(2026, 3, 10, 19, 0, tzinfo=UTC),
        ),
        # And back on 1 November 2026: 15:00 EST.
        (
            local(NEW_YORK, 2026, 10, 30, 15),
            datetime(2026, 11, 3, 15, 0),
            datetime(2026, 11, 3, 20, 0, tzinfo=UTC),
        ),
        # Thanksgiving (26 Nov) is the New York team's holiday: Wed 2 h, Fri 8 h, Mon 6 h.
        (
            local(NEW_YORK, 2026, 11, 25, 15),
            datetime(2026, 11, 30, 15, 0),
            datetime(2026, 11, 30, 20, 0, tzinfo=UTC),
        ),
    ],
)
def test_new_york_team_across_its_own_dst_and_holidays(
    opened: datetime, due_wall: datetime, due_utc: datetime
) -> None:
    due = sla_times(rules_with(first_contact="16 business hours"), "nyc", opened)
    assert wall(due.first_contact_due_at, NEW_YORK) == due_wall
    assert due.first_contact_due_at == due_utc


def test_the_team_time_zone_decides_not_the_customers() -> None:
    # Monday 10:00 in Amsterdam is 04:00 in New York: the New York team starts at 09:00
    # EST and needs 16 h (2 × 8 h), ending at Tuesday's close; Amsterdam has 7 h on Monday,
    # 8.5 on Tuesday and 1.5 on Wednesday.
    opened = local(AMSTERDAM, 2026, 11, 23, 10)
    rules = rules_with()
    nyc = sla_times(rules, "nyc", opened).first_contact_due_at
    ams = sla_times(rules, "ams", opened).first_contact_due_at
    assert wall(nyc, NEW_YORK) == datetime(2026, 11, 24, 17, 0)
    assert nyc == datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
    assert wall(ams, AMSTERDAM) == datetime(2026, 11, 25, 10, 0)


def test_tokyo_team_without_dst() -> None:
    # 09:00–18:00 is 9 h, so 2 business days are 18 h: Fri 1 h, Mon 9 h, Tue 09:00 + 8 h.
    opened = local(TOKYO, 2026, 11, 20, 17)
    times = sla_times(rules_with(), "tokyo", opened)
    assert wall(times.first_contact_due_at, TOKYO) == datetime(2026, 11, 24, 17, 0)
    assert times.first_contact_due_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    # The closure SLA, 45 h: Fri 1, Mon–Thu 36 → 37, next Fri 09:00 + 8 h.
    assert wall(times.closure_due_at, TOKYO) == datetime(2026, 11, 27, 17, 0)


@pytest.mark.parametrize(
    ("opened", "due_wall", "due_utc"),
    [
        # New Zealand springs forward on Sunday 27 September 2026 (NZST +12 → NZDT +13):
        # Fri 2 h, Mon 9 h, Tue 08:00 + 5 h.
        (
            local(AUCKLAND, 2026, 9, 25, 15),
            datetime(2026, 9, 29, 13, 0),
            datetime(2026, 9, 29, 0, 0, tzinfo=UTC),
        ),
        # And falls back on Sunday 5 April 2026.
        (
            local(AUCKLAND, 2026, 4, 3, 15),
            datetime(2026, 4, 7, 13, 0),
            datetime(2026, 4, 7, 1, 0, tzinfo=UTC),
        ),
        # Christmas and the Boxing Day holiday (Monday 28 December): Thu 24 2 h, Tue 29 9 h,
        # Wed 30 08:00 + 5 h.
        (
            local(AUCKLAND, 2026, 12, 24, 15),
            datetime(2026, 12, 30, 13, 0),
            datetime(2026, 12, 30, 0, 0, tzinfo=UTC),
        ),
    ],
)
def test_auckland_team_across_southern_dst_and_holidays(
    opened: datetime, due_wall: datetime, due_utc: datetime
) -> None:
    due = sla_times(rules_with(first_contact="16 business hours"), "akl", opened)
    assert wall(due.first_contact_due_at, AUCKLAND) == due_wall
    assert due.first_contact_due_at == due_utc


def test_the_lead_step_is_the_breach_and_the_sla_times_agree() -> None:
    rules = rules_with()
    opened = local(AMSTERDAM, 2026, 11, 20, 16)
    times = sla_times(rules, "ams", opened)
    assert step_at(rules, "ams", opened, "first_contact", 2) == times.first_contact_due_at
    assert step_at(rules, "ams", opened, "closure", 2) == times.closure_due_at


def test_due_steps_on_a_worked_example() -> None:
    opened = local(AMSTERDAM, 2026, 11, 20, 16)
    reminder, lead, manager = ladder(SHIPPED, "service", opened)

    def due(now: datetime, level: int = 0, status: TaskStatus = TaskStatus.ASSIGNED) -> list[int]:
        return due_steps(SHIPPED, "service", opened, status, level, now)

    assert due(reminder - MICROSECOND) == []
    assert due(reminder) == [1]
    assert due(lead) == [1, 2]
    assert due(lead, level=1) == [2]
    # A task first looked at after the manager step gets every step it missed, in order.
    assert due(manager + timedelta(days=30)) == [1, 2, 3]
    assert due(manager + timedelta(days=30), level=3) == []
    # Once contacted the closure SLA applies: at the first-contact breach nothing is due.
    assert due(lead, status=TaskStatus.CONTACTED) == []
    closure = ladder(SHIPPED, "service", opened, "closure")
    assert due(closure[0], status=TaskStatus.CUSTOMER_INFORMED) == [1]
    assert due(closure[2], status=TaskStatus.UNREACHABLE) == []
    assert due(closure[2], status=TaskStatus.CLOSED) == []


# ------------------------------------------------------------------------------- current_sla


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (TaskStatus.OPEN, "first_contact"),
        (TaskStatus.ASSIGNED, "first_contact"),
        (TaskStatus.CONTACTED, "closure"),
        (TaskStatus.CUSTOMER_INFORMED, "closure"),
        (TaskStatus.UNREACHABLE, None),
        (TaskStatus.CLOSED, None),
        (TaskStatus.CANCELLED, None),
    ],
)
def test_current_sla_by_status(status: TaskStatus, kind: str | None) -> None:
    assert current_sla(status) == kind


def test_every_status_has_an_answer() -> None:
    assert {current_sla(s) for s in TaskStatus} == {"first_contact", "closure", None}


# -------------------------------------------------------------------------------- properties

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
teams = st.sampled_from(TEAM_NAMES)
targets = st.sampled_from(
    ["2 business days", "16 business hours", "1 business hour", "1.5 business days", "3 bd"]
)
kinds: st.SearchStrategy[SlaKind] = st.sampled_from(["first_contact", "closure"])
# Fractions on a grid, so two different ones never round to the same microsecond.
ladders = st.tuples(
    st.integers(1, 19).map(lambda n: n / 20),
    st.integers(0, 4).map(lambda n: 1 + n / 4),
    st.integers(1, 8).map(lambda n: n / 4),
).map(lambda t: (t[0], t[1], t[1] + t[2]))
sla_statuses = st.sampled_from(
    [TaskStatus.OPEN, TaskStatus.ASSIGNED, TaskStatus.CONTACTED, TaskStatus.CUSTOMER_INFORMED]
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[FollowupRules, str, datetime, SlaKind]:
    target = draw(targets)
    rules = rules_with(first_contact=target, closure=draw(targets), ladder=draw(ladders))
    return rules, draw(teams), draw(instants), draw(kinds)


@given(cases())
def test_steps_are_ordered_reminder_breach_manager(
    case: tuple[FollowupRules, str, datetime, SlaKind],
) -> None:
    rules, team, opened, kind = case
    reminder, lead, manager = ladder(rules, team, opened, kind)
    assert opened <= reminder < lead < manager


@given(teams, instants, kinds, st.lists(st.integers(1, 19), min_size=2, max_size=2, unique=True))
def test_a_later_reminder_fraction_gives_a_later_reminder(
    team: str, opened: datetime, kind: SlaKind, twentieths: list[int]
) -> None:
    low, high = sorted(n / 20 for n in twentieths)
    early = step_at(rules_with(ladder=(low, 1.0, 2.0)), team, opened, kind, 1)
    late = step_at(rules_with(ladder=(high, 1.0, 2.0)), team, opened, kind, 1)
    assert early < late


@given(cases(), st.integers(1, TOP_LEVEL))
def test_each_step_is_its_fraction_of_the_target_in_business_time(
    case: tuple[FollowupRules, str, datetime, SlaKind], level: int
) -> None:
    rules, team, opened, kind = case
    fraction = {1: rules.sla.reminder_at, 2: rules.sla.lead_at, 3: rules.sla.manager_at}[level]
    target = rules.sla_amount(kind, team)
    at = step_at(rules, team, opened, kind, level)
    measured = rules.calendar(team).business_time_between(opened, at)
    assert abs(measured.total_seconds() - fraction * target.total_seconds()) < 1
    assert measured == target * fraction


@given(cases(), st.integers(1, TOP_LEVEL))
def test_steps_fall_in_working_time_or_at_a_closing_instant(
    case: tuple[FollowupRules, str, datetime, SlaKind], level: int
) -> None:
    rules, team, opened, kind = case
    calendar = rules.calendar(team)
    at = step_at(rules, team, opened, kind, level)
    closing = not calendar.is_working_time(at) and calendar.is_working_time(at - MICROSECOND)
    assert calendar.is_working_time(at) or closing


@st.composite
def moments(draw: st.DrawFn) -> tuple[FollowupRules, str, datetime, TaskStatus, int, datetime]:
    """A task, the ladder level it reached and a moment: often exactly at a step or one
    microsecond either side, where an off-by-one would show."""
    rules, team, opened, _kind = draw(cases())
    status = draw(st.sampled_from(list(TaskStatus)))
    kind = current_sla(status) or "first_contact"
    steps = ladder(rules, team, opened, kind)
    around = st.sampled_from(steps).flatmap(
        lambda at: st.sampled_from([at - MICROSECOND, at, at + MICROSECOND])
    )
    later = st.timedeltas(timedelta(0), timedelta(weeks=4)).map(lambda d: opened + d)
    return rules, team, opened, status, draw(st.integers(0, TOP_LEVEL)), draw(around | later)


@given(moments())
def test_due_steps_are_exactly_the_levels_whose_time_has_come(
    moment: tuple[FollowupRules, str, datetime, TaskStatus, int, datetime],
) -> None:
    rules, team, opened, status, level, now = moment
    due = due_steps(rules, team, opened, status, level, now)
    kind = current_sla(status)
    if kind is None:
        assert due == []
        return
    times = dict(zip((1, 2, 3), ladder(rules, team, opened, kind), strict=True))
    assert due == [n for n in range(level + 1, TOP_LEVEL + 1) if times[n] <= now]
    # Steps come in order, so what is due is always the next few levels, none skipped.
    assert due == list(range(level + 1, level + 1 + len(due)))


@given(moments())
def test_next_escalation_at_is_when_due_steps_starts_answering(
    moment: tuple[FollowupRules, str, datetime, TaskStatus, int, datetime],
) -> None:
    rules, team, opened, status, level, _now = moment
    at = next_escalation_at(rules, team, opened, status, level)
    if current_sla(status) is None or level == TOP_LEVEL:
        assert at is None
        return
    assert at is not None
    assert due_steps(rules, team, opened, status, level, at - MICROSECOND) == []
    assert due_steps(rules, team, opened, status, level, at)[0] == level + 1


@given(cases(), sla_statuses)
def test_the_status_picks_the_ladder(
    case: tuple[FollowupRules, str, datetime, SlaKind], status: TaskStatus
) -> None:
    rules, team, opened, _kind = case
    kind = current_sla(status)
    assert kind is not None
    assert next_escalation_at(rules, team, opened, status, 0) == step_at(
        rules, team, opened, kind, 1
    )
    times = sla_times(rules, team, opened)
    due = times.first_contact_due_at if kind == "first_contact" else times.closure_due_at
    breach = step_at(rules, team, opened, kind, 2)
    # The lead hears of it at the due time, or later when lead_at is above 1.
    assert breach >= due
    assert (breach == due) is (rules.sla.lead_at == 1.0)
