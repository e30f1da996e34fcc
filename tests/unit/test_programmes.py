"""Programme planning and due-time checks (models.programmes), with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calendar import in_window
from models.contact_events import ContactEvent, ContactKind
from models.eligibility import CustomerView, Reason
from models.programmes import (
    Contact,
    PendingTimers,
    Timer,
    check_due,
    decision_id_for,
    next_repeat,
    plan_event,
)
from models.rules import Rules, load_rules, parse_rules
from tests.factories import contact_event

AMS = ZoneInfo("Europe/Amsterdam")
DEMO = load_rules()
EXAMPLE_TEXT = (
    __import__("importlib.resources", fromlist=["files"])
    .files("models")
    .joinpath("rule_sets", "example.toml")
    .read_bytes()
)
EXAMPLE = parse_rules(EXAMPLE_TEXT, "example.toml")


def event(
    n: int | str,
    kind: ContactKind,
    at: datetime,
    customer: str = "C-1",
    case_id: str | None = None,
    **customer_fields: Any,
) -> ContactEvent:
    return contact_event(
        f"e-{n}",
        kind,
        at,
        customer,
        email="anna@example.nl",
        customer_fields=customer_fields,
        case_id=case_id,
    )


def run(rules: Rules, events: list[ContactEvent]) -> tuple[PendingTimers, dict[str, Reason]]:
    """Plan *events* in order; the timers left pending and every decision's last reason."""
    pending = PendingTimers()
    reasons: dict[str, Reason] = {}
    for e in events:
        plan = plan_event(rules, e, pending.of(e.customer.id))
        pending.apply(plan)
        for d in plan.decisions:
            reasons[d.decision_id] = d.reason
        for timer, reason in plan.closed:
            reasons[timer.decision_id] = reason
    return pending, reasons


MON = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Amsterdam


def test_demo_rules_schedule_a_transactional_survey_due_at_once() -> None:
    plan = plan_event(DEMO, event(1, ContactKind.PURCHASE, MON), [])
    [decision] = plan.decisions
    assert (decision.programme, decision.rule, decision.reason) == (
        "transactional",
        "after-contact",
        Reason.SCHEDULED,
    )
    assert decision.timer is not None and decision.timer.due_at == MON


def test_a_complaint_opens_no_survey_and_cancels_pending_ones() -> None:
    pending, _ = run(DEMO, [event(1, ContactKind.FIRST_INVOICE, MON)])
    [relationship] = list(pending)
    plan = plan_event(
        DEMO, event(2, ContactKind.COMPLAINT, MON + timedelta(days=3)), [relationship]
    )
    assert [(d.programme, d.reason) for d in plan.decisions] == [(None, Reason.OPEN_COMPLAINT)]
    assert plan.closed == [(relationship, Reason.CANCELLED)]


def test_an_invoice_then_a_cancellation_cancels_the_relationship_survey() -> None:
    pending, reasons = run(
        EXAMPLE,
        [
            event(1, ContactKind.FIRST_INVOICE, MON),
            event(2, ContactKind.CANCELLATION, MON + timedelta(days=20)),
        ],
    )
    assert list(pending) == []
    assert reasons[decision_id_for("e-1", "relationship")] is Reason.CANCELLED
    assert reasons[decision_id_for("e-2", None)] is Reason.NO_PROGRAMME


def test_support_contacts_on_one_case_are_one_episode_surveyed_after_the_last() -> None:
    times = [MON, MON + timedelta(hours=5), MON + timedelta(hours=20)]
    events = [event(i, ContactKind.SUPPORT_CONTACT, t, case_id="K-77") for i, t in enumerate(times)]
    events.append(event(9, ContactKind.SUPPORT_CONTACT, MON, case_id="K-78"))
    pending, reasons = run(EXAMPLE, events)
    superseded = [
        i for i in range(3) if reasons[decision_id_for(f"e-{i}", "support")] is Reason.SUPERSEDED
    ]
    assert superseded == [0, 1]
    due = {t.episode: t.due_at for t in pending}
    assert due == {
        "case:K-77": times[-1] + timedelta(hours=24),
        "case:K-78": MON + timedelta(hours=24),
    }


def test_a_second_first_invoice_does_not_restart_the_relationship_timer() -> None:
    pending, reasons = run(
        EXAMPLE,
        [
            event(1, ContactKind.FIRST_INVOICE, MON),
            event(2, ContactKind.FIRST_INVOICE, MON + timedelta(days=2)),
        ],
    )
    assert reasons[decision_id_for("e-2", "relationship")] is Reason.ALREADY_SCHEDULED
    assert [t.event_id for t in pending] == ["e-1"]


def test_sampling_is_deterministic_and_near_the_rate() -> None:
    events = [event(i, ContactKind.PURCHASE, MON, customer=f"C-{i}") for i in range(2000)]
    first = [plan_event(EXAMPLE, e, []).decisions[0].reason for e in events]
    again = [plan_event(EXAMPLE, e, []).decisions[0].reason for e in events]
    assert first == again
    share = first.count(Reason.SAMPLED_OUT) / len(first)
    assert 0.45 < share < 0.55


@pytest.mark.parametrize(
    ("invoiced", "due_local", "repeat_local"),
    [
        # Month ends: the 31st plus a month is the last day of the shorter month.
        (
            datetime(2026, 1, 31, 10, 0, tzinfo=AMS),
            datetime(2026, 2, 28, 10, 0, tzinfo=AMS),
            datetime(2027, 2, 28, 10, 0, tzinfo=AMS),
        ),
        (
            datetime(2028, 1, 31, 10, 0, tzinfo=AMS),
            datetime(2028, 2, 29, 10, 0, tzinfo=AMS),
            datetime(2029, 2, 28, 10, 0, tzinfo=AMS),
        ),
        # Across the spring and autumn DST changes the local time stays 10:00.
        (
            datetime(2026, 3, 10, 10, 0, tzinfo=AMS),
            datetime(2026, 4, 10, 10, 0, tzinfo=AMS),
            datetime(2027, 4, 10, 10, 0, tzinfo=AMS),
        ),
        (
            datetime(2026, 10, 10, 10, 0, tzinfo=AMS),
            datetime(2026, 11, 10, 10, 0, tzinfo=AMS),
            datetime(2027, 11, 10, 10, 0, tzinfo=AMS),
        ),
    ],
)
def test_a_month_after_the_first_invoice_on_the_local_calendar(
    invoiced: datetime, due_local: datetime, repeat_local: datetime
) -> None:
    [decision] = plan_event(EXAMPLE, event(1, ContactKind.FIRST_INVOICE, invoiced), []).decisions
    assert decision.timer is not None
    assert decision.timer.due_at == due_local.astimezone(UTC)
    repeat = next_repeat(EXAMPLE, decision.timer)
    assert repeat is not None
    assert repeat.due_at == repeat_local.astimezone(UTC)
    assert repeat.decision_id == decision_id_for("e-1", "relationship", 1)


def test_the_customers_own_time_zone_sets_the_window() -> None:
    # 10:00 UTC on a Monday: 11:00 in Amsterdam (open) but 05:00 in New York (closed).
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    ams = _timer(EXAMPLE, at)
    nyc = _timer(EXAMPLE, at, timezone="America/New_York")
    assert check_due(EXAMPLE, ams, CustomerView(), at).reason is Reason.SURVEYED
    deferred = check_due(EXAMPLE, nyc, CustomerView(), at)
    assert deferred.reason is Reason.OUTSIDE_WINDOW_DEFERRED
    assert deferred.defer_to == datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/New_York"))


def _timer(rules: Rules, at: datetime, timezone: str | None = None) -> Timer:
    """A transactional e-mail survey due at *at*."""
    return Timer(
        decision_id="d-1",
        customer_id="C-1",
        programme="transactional",
        rule="after-purchase",
        episode="event:e-1",
        event_id="e-1",
        repeat=0,
        first_due_at=at,
        due_at=at,
        contact=Contact(
            email="anna@example.nl",
            phone=None,
            name=None,
            locale="nl",
            timezone=timezone,
            kind="purchase",
            channel="web",
            partner=None,
            product=None,
        ),
    )


def test_a_survey_due_too_long_ago_expires() -> None:
    timer = _timer(EXAMPLE, MON)
    assert (
        check_due(EXAMPLE, timer, CustomerView(), MON + timedelta(days=15)).reason is Reason.EXPIRED
    )
    assert (
        check_due(EXAMPLE, timer, CustomerView(), MON + timedelta(days=11)).reason
        is Reason.SURVEYED
    )


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    st.sampled_from(["Europe/Amsterdam", "Europe/Sofia", "America/New_York", "Pacific/Auckland"]),
)
def test_a_deferred_survey_always_fires_inside_the_window(now: datetime, zone: str) -> None:
    timer = _timer(EXAMPLE, now, timezone=zone)
    outcome = check_due(EXAMPLE, timer, CustomerView(), now)
    programme = EXAMPLE.programme(timer.programme)
    assert programme is not None
    if outcome.defer_to is None:
        assert in_window(programme.window, ZoneInfo(zone), now)
        return
    assert outcome.defer_to > now
    assert in_window(programme.window, ZoneInfo(zone), outcome.defer_to)
    again = check_due(EXAMPLE, timer, CustomerView(), outcome.defer_to)
    assert again.reason is Reason.SURVEYED


KINDS = [
    ContactKind.PURCHASE,
    ContactKind.SUPPORT_CONTACT,
    ContactKind.FIRST_INVOICE,
    ContactKind.CANCELLATION,
    ContactKind.COMPLAINT,
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.sampled_from(KINDS),
            st.integers(0, 40 * 24),
            st.sampled_from([None, "K-1", "K-2"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_a_closed_timer_never_stays_pending(
    steps: list[tuple[int, ContactKind, int, str | None]],
) -> None:
    pending = PendingTimers()
    closed: set[str] = set()
    at = MON
    for n, (customer, kind, hours, case) in enumerate(steps):
        at += timedelta(hours=hours)
        e = event(n, kind, at, customer=f"C-{customer}", case_id=case)
        plan = plan_event(EXAMPLE, e, pending.of(e.customer.id))
        pending.apply(plan)
        closed.update(t.decision_id for t, _ in plan.closed)
        pending_ids = {t.decision_id for t in pending}
        assert not pending_ids & closed
        for timer, reason in plan.closed:
            programme = EXAMPLE.programme(timer.programme)
            assert programme is not None
            assert reason is Reason.SUPERSEDED or kind in programme.cancel_on
