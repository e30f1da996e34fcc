"""Who may be surveyed when a survey is due: suppression() for single cases and over long runs
of contacts (a complaint contact itself is never surveyed: see test_programmes)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from models.contact_events import ContactEvent, ContactKind
from models.eligibility import CustomerView as CustomerState
from models.eligibility import Reason, suppression, usable_address
from tests.factories import contact_event

CAP = timedelta(days=180)
NOW = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
SECOND = timedelta(seconds=1)
DAY_S = 24 * 60 * 60


def contact(
    kind: ContactKind = ContactKind.SUPPORT_CONTACT,
    email: str | None = "anna@example.nl",
    customer_id: str = "C-1001",
    at: datetime = NOW,
    event_id: str = "e-1",
) -> ContactEvent:
    return contact_event(event_id, kind, at, customer_id, email=email)


@dataclass(frozen=True)
class Decision:
    surveyed: bool
    reason: Reason

    @property
    def outcome(self) -> str:
        return self.reason.outcome


def decide(event: ContactEvent, state: CustomerState, now: datetime, cap: timedelta) -> Decision:
    """suppression() for an e-mail survey due when *event* came in, as a decision; a
    complaint contact is never surveyed (no programme takes it), as the trigger does."""
    if event.kind is ContactKind.COMPLAINT:
        return Decision(False, Reason.OPEN_COMPLAINT)
    blocked = suppression(
        state,
        programme="transactional",
        channel="email",
        email=event.customer.email,
        phone=None,
        cooldown=timedelta(0),
        cap=cap,
        now=now,
    )
    return Decision(blocked is None, blocked or Reason.SURVEYED)


# ---------------------------------------------------------------------------- reason codes


def test_eligible_customer_is_surveyed() -> None:
    decision = decide(contact(), CustomerState(), NOW, CAP)
    assert decision.surveyed is True
    assert decision.reason is Reason.SURVEYED
    assert decision.outcome == "surveyed"


def test_complaint_is_never_surveyed() -> None:
    decision = decide(contact(kind=ContactKind.COMPLAINT), CustomerState(), NOW, CAP)
    assert decision.surveyed is False
    assert decision.reason is Reason.OPEN_COMPLAINT
    assert decision.outcome == "suppressed"


def test_open_complaint_suppresses_survey() -> None:
    decision = decide(contact(), CustomerState(open_complaints=1), NOW, CAP)
    assert (decision.surveyed, decision.reason) == (False, Reason.OPEN_COMPLAINT)


def test_open_followup_suppresses_survey() -> None:
    decision = decide(contact(), CustomerState(open_followups=2), NOW, CAP)
    assert (decision.surveyed, decision.reason) == (False, Reason.OPEN_FOLLOWUP)


def test_customer_without_email_is_not_surveyed() -> None:
    decision = decide(contact(email=None), CustomerState(), NOW, CAP)
    assert (decision.surveyed, decision.reason) == (False, Reason.NO_CONTACT_ADDRESS)


@pytest.mark.parametrize(
    ("since_last", "surveyed", "reason"),
    [
        (CAP - SECOND, False, Reason.RECENTLY_SURVEYED),
        (CAP, True, Reason.SURVEYED),
        (CAP + SECOND, True, Reason.SURVEYED),
    ],
    ids=["cap-1s", "exactly-cap", "cap+1s"],
)
def test_frequency_cap_boundary(since_last: timedelta, surveyed: bool, reason: Reason) -> None:
    state = CustomerState(last_surveyed_at=NOW - since_last)
    decision = decide(contact(), state, NOW, CAP)
    assert (decision.surveyed, decision.reason) == (surveyed, reason)


def test_survey_a_moment_ago_suppresses() -> None:
    decision = decide(contact(), CustomerState(last_surveyed_at=NOW), NOW, CAP)
    assert decision.reason is Reason.RECENTLY_SURVEYED


def test_cap_counts_across_time_zones() -> None:
    # The same instant written with another offset is still 1 s inside the cap.
    last = (NOW - CAP + SECOND).astimezone(timezone(timedelta(hours=-5)))
    decision = decide(contact(), CustomerState(last_surveyed_at=last), NOW, CAP)
    assert decision.reason is Reason.RECENTLY_SURVEYED


def test_complaint_reason_wins_over_every_other() -> None:
    state = CustomerState(last_surveyed_at=NOW, open_complaints=1, open_followups=1)
    decision = decide(contact(kind=ContactKind.COMPLAINT, email=None), state, NOW, CAP)
    assert decision.reason is Reason.OPEN_COMPLAINT


def test_open_followup_reason_wins_over_missing_email_and_cap() -> None:
    state = CustomerState(last_surveyed_at=NOW, open_followups=1)
    decision = decide(contact(email=None), state, NOW, CAP)
    assert decision.reason is Reason.OPEN_FOLLOWUP


@pytest.mark.parametrize(
    "email",
    [
        "",
        "annadevries",
        "anna de vries@example.nl",
        "anna@@example.nl",
        "anna.devries@example",
        "anna..devries@example.nl",
        "anna@example.invalid",
        "anna@localhost",
        "anna@example.nl\r\nBcc: evil@example.com",
    ],
)
def test_unusable_email_counts_as_no_contact_address(email: str) -> None:
    # The parser accepts any string (the contact happened); eligibility must not mail it.
    decision = decide(contact(email=email), CustomerState(), NOW, CAP)
    assert (decision.surveyed, decision.reason) == (False, Reason.NO_CONTACT_ADDRESS)


@pytest.mark.parametrize(
    "email", ["anna@example.nl", "anna.de.vries+cx@kpn.com", "ánna@exämple.nl", "a@b.co"]
)
def test_usable_email_is_surveyed(email: str) -> None:
    decision = decide(contact(email=email), CustomerState(), NOW, CAP)
    assert (decision.surveyed, decision.reason) == (True, Reason.SURVEYED)


def test_missing_email_reason_wins_over_cap() -> None:
    state = CustomerState(last_surveyed_at=NOW)
    decision = decide(contact(email=None), state, NOW, CAP)
    assert decision.reason is Reason.NO_CONTACT_ADDRESS


def test_opt_out_wins_over_every_other_reason() -> None:
    state = CustomerState(last_surveyed_at=NOW, open_complaints=1, opted_out=frozenset({"email"}))
    assert decide(contact(email=None), state, NOW, CAP).reason is Reason.OPTED_OUT


def test_opt_out_of_phone_does_not_stop_an_email_survey() -> None:
    decision = decide(contact(), CustomerState(opted_out=frozenset({"phone"})), NOW, CAP)
    assert decision.reason is Reason.SURVEYED


def test_programme_cooldown_suppresses_within_its_period() -> None:
    view = CustomerState(programme_last_surveyed={"support": NOW - timedelta(days=10)})
    kwargs = {"channel": "email", "email": "anna@example.nl", "phone": None, "cap": CAP, "now": NOW}
    cooldown = timedelta(days=30)
    same = suppression(view, programme="support", cooldown=cooldown, **kwargs)  # type: ignore[arg-type]
    other = suppression(view, programme="other", cooldown=cooldown, **kwargs)  # type: ignore[arg-type]
    assert (same, other) == (Reason.RECENTLY_SURVEYED, None)


@pytest.mark.parametrize(
    ("number", "usable"),
    [
        ("+31 6 1234 5678", True),
        ("020-1234567", True),
        ("(0)20 123.45.67", True),
        ("12345", False),
        ("call me", False),
        ("", False),
        (None, False),
    ],
)
def test_phone_survey_needs_a_dialable_number(number: str | None, usable: bool) -> None:
    reason = suppression(
        CustomerState(),
        programme="relationship",
        channel="phone",
        email=None,
        phone=number,
        cooldown=timedelta(0),
        cap=CAP,
        now=NOW,
    )
    assert (reason is None) == usable


# ---------------------------------------------------------------------------- long runs


@dataclass
class Simulated:
    """One customer as the store sees them, updated the way survey_store does."""

    email: str
    state: CustomerState
    surveys: list[datetime]


@dataclass(frozen=True)
class Step:
    """Time passes, then something happens to one customer.

    *gap_s* seconds pass; or, with *to_cap_edge* set, time moves to that many seconds
    around this customer's last survey + cap (at least one second forward), because the
    boundary is where an off-by-one would hide and random gaps rarely land on it.
    """

    customer: int
    gap_s: int
    what: str
    kind: ContactKind = ContactKind.SUPPORT_CONTACT
    has_email: bool = True
    to_cap_edge: int | None = None


def steps(max_gap_s: int = 400 * DAY_S) -> st.SearchStrategy[list[Step]]:
    step = st.builds(
        Step,
        customer=st.integers(min_value=0, max_value=3),
        gap_s=st.one_of(
            st.integers(min_value=1, max_value=max_gap_s),
            st.integers(min_value=1, max_value=120),
        ),
        what=st.sampled_from(["contact", "contact", "contact", "detractor_answer", "close_tasks"]),
        kind=st.sampled_from(list(ContactKind)),
        has_email=st.booleans(),
        to_cap_edge=st.one_of(st.none(), st.integers(min_value=-2, max_value=2)),
    )
    return st.lists(step, min_size=1, max_size=60)


def simulate(cap: timedelta, run: list[Step]) -> None:
    customers = {
        i: Simulated(email=f"c{i}@example.nl", state=CustomerState(), surveys=[]) for i in range(4)
    }
    now = NOW
    for n, step in enumerate(run):
        c = customers[step.customer]
        now += timedelta(seconds=step.gap_s)
        if step.to_cap_edge is not None and c.state.last_surveyed_at is not None:
            edge = c.state.last_surveyed_at + cap + timedelta(seconds=step.to_cap_edge)
            now = max(now - timedelta(seconds=step.gap_s) + SECOND, edge)
        if step.what == "detractor_answer":
            # A detractor answer opens a follow-up task (followup agent).
            c.state = replace(c.state, open_followups=c.state.open_followups + 1)
            continue
        if step.what == "close_tasks":
            c.state = replace(c.state, open_complaints=0, open_followups=0)
            continue
        event = contact(
            kind=step.kind,
            email=c.email if step.has_email else None,
            customer_id=f"C-{step.customer}",
            at=now,
            event_id=f"e-{n}",
        )
        before = c.state
        decision = decide(event, before, now, cap)

        if decision.surveyed:
            assert all(now - earlier >= cap for earlier in c.surveys), (
                f"customer {step.customer} surveyed at {now}, within {cap} of {c.surveys}"
            )
            c.surveys.append(now)
            c.state = replace(c.state, last_surveyed_at=now)
        if step.kind is ContactKind.COMPLAINT:
            # A complaint opens a task that must be closed before the next survey.
            c.state = replace(c.state, open_complaints=c.state.open_complaints + 1)

        no_open_tasks = before.open_complaints == 0 and before.open_followups == 0
        if step.has_email and no_open_tasks and step.kind is not ContactKind.COMPLAINT:
            if before.last_surveyed_at is None:
                assert decision.surveyed, f"eligible customer {step.customer} never surveyed"
            elif now - before.last_surveyed_at >= cap:
                assert decision.surveyed, f"customer {step.customer} not surveyed after the cap"
            else:
                assert decision.reason is Reason.RECENTLY_SURVEYED
        else:
            assert not decision.surveyed


# Surveyed, then back one second before the cap runs out (wall-clock time is no part of
# the property, so no deadline: timing belongs in benchmarks).
_TWICE = [Step(0, 1, "contact"), Step(0, 1, "contact", to_cap_edge=-1)]


@settings(max_examples=300, deadline=None)
@given(steps())
@example(_TWICE)
@example([Step(0, 1, "contact"), Step(0, 1, "contact", to_cap_edge=0)])
def test_six_month_cap_is_never_breached(run: list[Step]) -> None:
    simulate(CAP, run)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=400 * DAY_S), steps())
@example(7 * DAY_S, _TWICE)
def test_any_cap_is_never_breached(cap_s: int, run: list[Step]) -> None:
    simulate(timedelta(seconds=cap_s), run)


# --- the cheap address check agrees with email_validator ------------------------------


def _validator_says(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@given(
    st.from_regex(
        r"\A[a-zA-Z0-9._%+~-]{1,70}@[a-zA-Z0-9.-]{1,70}\.(nl|com|no|bg|test|invalid|local|x|co)\Z"
    )
)
def test_usable_address_agrees_with_email_validator(address: str) -> None:
    assert usable_address(address) == _validator_says(address)


@pytest.mark.parametrize(
    "address",
    [
        "anna@example.nl",
        "a..b@example.nl",
        ".a@example.nl",
        "a.@example.nl",
        "a@-example.nl",
        "a@example-.nl",
        "a@example.test",
        "a@sub.example.invalid",
        "a@localhost",
        "a@example.n",
        "x" * 65 + "@example.nl",
        "anna@exämple.nl",
        "änna@example.nl",
    ],
)
def test_usable_address_cases(address: str) -> None:
    assert usable_address(address) == _validator_says(address)
