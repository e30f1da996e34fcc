"""Which programme surveys a contact, and when: the pure planning behind the trigger,
the timer sweeper and the backtest.

A contact event is offered to every programme. The first matching rule of a programme
makes a decision: sampled out at once, or pending with a timer (due after the rule's
delay, counted from when the contact happened). A later contact can cancel a programme's
pending timers (its ``cancel_on`` kinds) or, for ``per = "case"`` rules, supersede the
timer of the same case so the survey goes after the last contact of an issue episode.
When a timer is due, eligibility.suppression decides against the customer's state then.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.calendar import in_window, next_open
from models.contact_events import ContactEvent, ContactKind
from models.eligibility import CustomerView, Reason, suppression
from models.rules import Programme, Rules, approx_timedelta, sampled_in

_DECISION_NAMESPACE = uuid.UUID("6f0f7d0e-8a0e-4f51-9d57-3c7b7b1e5a10")
_INVITATION_NAMESPACE = uuid.UUID("0b8e2a53-3a43-4c55-8f0e-5d2f6f1b9c21")


def decision_id_for(event_id: str, programme: str | None, repeat: int = 0) -> str:
    """The stable id of a contact event's decision by one programme (or by none)."""
    return str(uuid.uuid5(_DECISION_NAMESPACE, f"{event_id}|{programme or '-'}|{repeat}"))


def invitation_id_for(decision_id: str) -> str:
    """The stable id of the survey a decision sends."""
    return str(uuid.uuid5(_INVITATION_NAMESPACE, decision_id))


@dataclass(frozen=True, slots=True)
class Contact:
    """What a survey needs from the contact that started it."""

    email: str | None
    phone: str | None
    name: str | None
    locale: str
    timezone: str | None
    kind: str
    channel: str
    partner: str | None
    product: str | None

    @classmethod
    def of(cls, event: ContactEvent) -> Contact:
        c = event.customer
        return cls(
            email=c.email,
            phone=c.phone,
            name=c.name,
            locale=(c.locale or "en").lower(),
            timezone=c.timezone,
            kind=event.kind.value,
            channel=event.channel.value,
            partner=event.partner,
            product=event.product,
        )


@dataclass(frozen=True, slots=True)
class Timer:
    """A pending decision: due_at moves when the send window defers it."""

    decision_id: str
    customer_id: str
    programme: str
    rule: str
    episode: str
    event_id: str
    repeat: int
    first_due_at: datetime
    due_at: datetime
    contact: Contact


@dataclass(frozen=True, slots=True)
class NewDecision:
    decision_id: str
    event_id: str
    customer_id: str
    programme: str | None
    rule: str | None
    repeat: int
    reason: Reason
    timer: Timer | None


@dataclass(frozen=True)
class EventPlan:
    """What one contact event does: new decisions, and pending ones it closes."""

    decisions: list[NewDecision]
    closed: list[tuple[Timer, Reason]]


def zone_for(contact: Contact, rules: Rules) -> ZoneInfo:
    """The customer's time zone, or the rules' default when absent or unknown."""
    if contact.timezone:
        try:
            return ZoneInfo(contact.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return rules.timezone


def episode_for(per: str, event: ContactEvent) -> str:
    if per == "case" and event.case_id:
        return f"case:{event.case_id}"
    if per == "customer":
        return "customer"
    return f"event:{event.event_id}"


def plan_event(rules: Rules, event: ContactEvent, pending: Iterable[Timer]) -> EventPlan:
    """Decide what *event* starts and stops, given the customer's pending timers."""
    open_timers = list(pending)
    closed: list[tuple[Timer, Reason]] = []
    for timer in open_timers:
        programme = rules.programme(timer.programme)
        if programme is not None and event.kind in programme.cancel_on:
            closed.append((timer, Reason.CANCELLED))
    closed_ids = {t.decision_id for t, _ in closed}
    contact = Contact.of(event)
    customer = event.customer.id
    decisions: list[NewDecision] = []
    for programme in rules.programmes:
        rule = programme.first_rule(event)
        if rule is None:
            continue
        decision_id = decision_id_for(event.event_id, programme.name)
        if not sampled_in(programme.sampling, customer, programme.name, event.event_id):
            decisions.append(_decided(event, programme.name, rule.name, Reason.SAMPLED_OUT))
            continue
        episode = episode_for(rule.per, event)
        same = [
            t
            for t in open_timers
            if t.programme == programme.name
            and t.episode == episode
            and t.decision_id not in closed_ids
        ]
        if same and rule.per == "customer":
            decisions.append(_decided(event, programme.name, rule.name, Reason.ALREADY_SCHEDULED))
            continue
        for timer in same:
            closed.append((timer, Reason.SUPERSEDED))
            closed_ids.add(timer.decision_id)
        due = rule.delay_duration.after(event.occurred_at, zone_for(contact, rules))
        timer = Timer(
            decision_id=decision_id,
            customer_id=customer,
            programme=programme.name,
            rule=rule.name,
            episode=episode,
            event_id=event.event_id,
            repeat=0,
            first_due_at=due,
            due_at=due,
            contact=contact,
        )
        decisions.append(_decided(event, programme.name, rule.name, Reason.SCHEDULED, timer))
    if not decisions:
        complaint = event.kind is ContactKind.COMPLAINT
        reason = Reason.OPEN_COMPLAINT if complaint else Reason.NO_PROGRAMME
        decisions.append(_decided(event, None, None, reason))
    return EventPlan(decisions, closed)


def _decided(
    event: ContactEvent,
    programme: str | None,
    rule: str | None,
    reason: Reason,
    timer: Timer | None = None,
) -> NewDecision:
    return NewDecision(
        decision_id_for(event.event_id, programme),
        event.event_id,
        event.customer.id,
        programme,
        rule,
        0,
        reason,
        timer,
    )


@dataclass(frozen=True, slots=True)
class DueOutcome:
    """What to do with a due timer: resolve it with a reason, or defer it to *defer_to*."""

    reason: Reason
    defer_to: datetime | None = None


def check_due(rules: Rules, timer: Timer, view: CustomerView, now: datetime) -> DueOutcome:
    """Decide a due timer against the customer's state *now*."""
    programme = rules.programme(timer.programme)
    if programme is None:
        return DueOutcome(Reason.PROGRAMME_REMOVED)
    zone = zone_for(timer.contact, rules)
    expires = programme.expiry.after(timer.first_due_at, zone)
    if now > expires:
        return DueOutcome(Reason.EXPIRED)
    if not in_window(programme.window, zone, now):
        opens = next_open(programme.window, zone, now)
        if opens > expires:
            return DueOutcome(Reason.EXPIRED)
        return DueOutcome(Reason.OUTSIDE_WINDOW_DEFERRED, opens)
    blocked = suppression(
        view,
        programme=programme.name,
        channel=programme.channel,
        email=timer.contact.email,
        phone=timer.contact.phone,
        cooldown=approx_timedelta(programme.cooldown),
        cap=cap_of(programme),
        now=now,
    )
    return DueOutcome(blocked or Reason.SURVEYED)


def cap_of(programme: Programme) -> timedelta:
    """The contact-frequency cap a programme's surveys are held to."""
    return approx_timedelta(programme.cap)


def next_repeat(rules: Rules, timer: Timer) -> Timer | None:
    """The next timer of a repeating rule ("yearly after that"), due one period after
    this one's first due time, or None."""
    programme = rules.programme(timer.programme)
    rule = programme.rule_named(timer.rule) if programme else None
    period = rule.repeat_duration if rule else None
    if period is None:
        return None
    due = period.after(timer.first_due_at, zone_for(timer.contact, rules))
    return replace(
        timer,
        decision_id=decision_id_for(timer.event_id, timer.programme, timer.repeat + 1),
        repeat=timer.repeat + 1,
        first_due_at=due,
        due_at=due,
    )


class PendingTimers:
    """Pending timers per customer, in memory (the backtest; a batch in the trigger)."""

    def __init__(self, timers: Iterable[Timer] = ()) -> None:
        self._by_customer: dict[str, dict[str, Timer]] = {}
        for t in timers:
            self.add(t)

    def of(self, customer_id: str) -> list[Timer]:
        return list(self._by_customer.get(customer_id, {}).values())

    def add(self, timer: Timer) -> None:
        self._by_customer.setdefault(timer.customer_id, {})[timer.decision_id] = timer

    def remove(self, timer: Timer) -> None:
        self._by_customer.get(timer.customer_id, {}).pop(timer.decision_id, None)

    def apply(self, plan: EventPlan) -> None:
        for timer, _ in plan.closed:
            self.remove(timer)
        for decision in plan.decisions:
            if decision.timer is not None:
                self.add(decision.timer)

    def __iter__(self) -> Iterator[Timer]:
        for timers in self._by_customer.values():
            yield from timers.values()
