"""Survey decisions on contact events in SQL, a batch per transaction.

decide_contacts records a batch of contact events, plans each with the rules in force
(models.programmes.plan_event), writes the decisions and timers, closes the timers the
events cancel or supersede, opens complaint tasks, and fires the timers that are already
due (models.store.survey_timers, where the sweeper fires the rest when they fall due).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.contact_events import ContactEvent, ContactKind
from models.eligibility import Reason
from models.followup_rules import FollowupRules
from models.programmes import PendingTimers, Timer, plan_event
from models.rules import Rules
from models.store.engine import insert_many_if_absent, transaction
from models.store.survey_state import (
    InvitationInfo,
    decision_row,
    invitation_info,
    load_pending_timers,
    timer_row,
)
from models.store.survey_timers import FireResult, fire_timers, resolve_timers
from models.store.tables import ContactEvent as ContactEventRow
from models.store.tables import FollowupTask, SurveyDecision, SurveyInvitation, SurveyTimer
from models.store.tasks import open_tasks_in
from models.task_lifecycle import NewTask, TaskSubject, task_for_complaint

__all__ = [
    "DecisionInfo",
    "TriggerResult",
    "decide_contact",
    "decide_contacts",
]


@dataclass(frozen=True, slots=True)
class DecisionInfo:
    """A survey_decisions row as it stands after the transaction."""

    decision_id: str
    event_id: str
    customer_id: str
    programme: str | None
    rule: str | None
    outcome: str
    reason: str
    invitation_id: str | None
    decided_at: datetime
    due_at: datetime | None = None


@dataclass(frozen=True)
class TriggerResult:
    """What one contact event led to; *fresh* is False when it was decided before."""

    decisions: tuple[DecisionInfo, ...]
    invitations: tuple[InvitationInfo, ...]
    task: FollowupTask | None
    fresh: bool

    @property
    def decision(self) -> DecisionInfo:
        """The event's first decision (the only one when one programme took it)."""
        return self.decisions[0]

    @property
    def invitation(self) -> InvitationInfo | None:
        return self.invitations[0] if self.invitations else None


def decide_contacts(
    engine: Engine,
    events: Sequence[ContactEvent],
    now: datetime,
    rules: Rules,
    followup: FollowupRules,
) -> list[TriggerResult]:
    """Record, plan and (where due) fire *events* in one transaction; one result each.

    An event decided before (in an earlier batch or earlier in this one) changes nothing
    and gets its first outcome back with fresh=False.
    """
    with transaction(engine) as session:
        earlier = _earlier_outcomes(session, [e.event_id for e in events])
        fresh: dict[str, ContactEvent] = {}
        for event in events:
            if event.event_id not in earlier:
                fresh.setdefault(event.event_id, event)
        customers = {e.customer.id for e in fresh.values()}
        pending = PendingTimers(load_pending_timers(session, customers))
        batch = _Batch(followup)
        all_decisions: list[str] = []
        invitations: list[InvitationInfo] = []
        for event in fresh.values():
            if batch.has_due(event.customer.id, pending, now):
                # One contact after another: this customer's survey that is already due
                # goes out (or not) before this contact can cancel or block it.
                invitations.extend(batch.flush(session, rules, pending, now).invitations)
            plan = plan_event(rules, event, pending.of(event.customer.id))
            pending.apply(plan)
            batch.closed.extend(plan.closed)
            for d in plan.decisions:
                all_decisions.append(d.decision_id)
                batch.decisions.append(decision_row(d, rules, now))
                if d.timer is not None:
                    batch.timers[d.decision_id] = d.timer
            batch.contacts.append(_contact_row(event, now))
            if event.kind is ContactKind.COMPLAINT:
                new = task_for_complaint(
                    followup,
                    event.event_id,
                    event.occurred_at,
                    complaint_subject(event),
                    _complaint_text(event),
                )
                if new is not None:
                    batch.tasks.append(new)
        invitations.extend(batch.flush(session, rules, pending, now).invitations)
        tasks = {t.source_id: t for t in batch.opened}

        infos = _decision_infos(session, all_decisions)
        by_event: dict[str, list[DecisionInfo]] = defaultdict(list)
        for info in infos:
            by_event[info.event_id].append(info)
        invitations_by_event: dict[str, list[InvitationInfo]] = defaultdict(list)
        for invitation in invitations:
            invitations_by_event[invitation.event_id].append(invitation)
        results: list[TriggerResult] = []
        seen: set[str] = set()
        for event in events:
            if event.event_id in earlier:
                results.append(earlier[event.event_id])
                continue
            results.append(
                TriggerResult(
                    tuple(by_event[event.event_id]),
                    tuple(invitations_by_event[event.event_id]),
                    tasks.get(event.event_id),
                    fresh=event.event_id not in seen,
                )
            )
            seen.add(event.event_id)
        return results


@dataclass
class _Batch:
    """Rows of a run of contact events not yet written, and the timers they started."""

    followup: FollowupRules
    contacts: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    timers: dict[str, Timer] = field(default_factory=dict)
    tasks: list[NewTask] = field(default_factory=list)
    closed: list[tuple[Timer, Reason]] = field(default_factory=list)
    opened: list[FollowupTask] = field(default_factory=list)  # complaint tasks, every flush

    def has_due(self, customer_id: str, pending: PendingTimers, now: datetime) -> bool:
        """Whether this run started a timer for the customer that is due and still waits."""
        return any(
            t.due_at <= now and t.decision_id in self.timers for t in pending.of(customer_id)
        )

    def flush(
        self, session: Session, rules: Rules, pending: PendingTimers, now: datetime
    ) -> FireResult:
        """Write the run, then fire its timers that are due (one set of statements)."""
        insert_many_if_absent(session, ContactEventRow, self.contacts)
        insert_many_if_absent(session, SurveyDecision, self.decisions)
        insert_many_if_absent(session, SurveyTimer, [timer_row(t) for t in self.timers.values()])
        self.opened.extend(t for t, _ in open_tasks_in(session, self.followup, self.tasks, now))
        resolve_timers(session, self.closed, now)  # pending ones a later contact cancelled
        still = {t.decision_id for t in pending}
        due = [t for t in self.timers.values() if t.decision_id in still and t.due_at <= now]
        fired = fire_timers(session, rules, due, now)
        for timer in due:
            pending.remove(timer)
            if timer.decision_id in fired.deferred_to:
                pending.add(replace(timer, due_at=fired.deferred_to[timer.decision_id]))
        self.contacts, self.decisions, self.tasks, self.closed = [], [], [], []
        self.timers = {}
        return fired


def decide_contact(
    engine: Engine, event: ContactEvent, now: datetime, rules: Rules, followup: FollowupRules
) -> TriggerResult:
    """decide_contacts for one event."""
    return decide_contacts(engine, [event], now, rules, followup)[0]


def complaint_subject(event: ContactEvent) -> TaskSubject:
    """Who a complaint task is about, from the complaint contact event."""
    c = event.customer
    return TaskSubject(
        customer_id=c.id,
        partner=event.partner,
        product=event.product,
        channel=event.channel.value,
        region=_region(event),
        language=c.locale,
        name=c.name,
        email=c.email,
        phone=c.phone,
        timezone=c.timezone,
    )


def _complaint_text(event: ContactEvent) -> str | None:
    """The complaint's own words when the event carries them (web form, e-mail intake)."""
    text = (event.model_extra or {}).get("comment")
    return text[:4000] if isinstance(text, str) and text.strip() else None


def _earlier_outcomes(session: Session, event_ids: list[str]) -> dict[str, TriggerResult]:
    decisions = _decision_infos_where(session, col(SurveyDecision.event_id).in_(set(event_ids)))
    if not decisions:
        return {}
    invitation_ids = {d.invitation_id for d in decisions if d.invitation_id}
    invitations = {
        i.invitation_id: invitation_info(_values(i))
        for i in session.execute(
            select(SurveyInvitation).where(col(SurveyInvitation.invitation_id).in_(invitation_ids))
        ).scalars()
    }
    found = {d.event_id for d in decisions}
    tasks = {
        t.source_id: t
        for t in session.execute(
            select(FollowupTask).where(col(FollowupTask.source_id).in_(found))
        ).scalars()
    }
    grouped: dict[str, list[DecisionInfo]] = defaultdict(list)
    for d in decisions:
        grouped[d.event_id].append(d)
    return {
        event_id: TriggerResult(
            tuple(ds),
            tuple(invitations[d.invitation_id] for d in ds if d.invitation_id in invitations),
            tasks.get(event_id),
            fresh=False,
        )
        for event_id, ds in grouped.items()
    }


def _decision_infos(session: Session, decision_ids: list[str]) -> list[DecisionInfo]:
    if not decision_ids:
        return []
    return _decision_infos_where(session, col(SurveyDecision.decision_id).in_(decision_ids))


def _decision_infos_where(session: Session, condition: Any) -> list[DecisionInfo]:
    rows = session.execute(
        select(
            col(SurveyDecision.decision_id),
            col(SurveyDecision.event_id),
            col(SurveyDecision.customer_id),
            col(SurveyDecision.programme),
            col(SurveyDecision.rule),
            col(SurveyDecision.outcome),
            col(SurveyDecision.reason),
            col(SurveyDecision.invitation_id),
            col(SurveyDecision.decided_at),
            col(SurveyDecision.due_at),
        )
        .where(condition)
        .order_by(col(SurveyDecision.repeat), col(SurveyDecision.programme))
    ).all()
    return [DecisionInfo(*row) for row in rows]


def _values(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in type(row).model_fields}


def _contact_row(event: ContactEvent, now: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "kind": event.kind.value,
        "channel": event.channel.value,
        "customer_id": event.customer.id,
        "locale": event.customer.locale,
        "partner": event.partner,
        "product": event.product,
        "case_id": event.case_id,
        "region": _region(event),
        "inquiry_type": event.inquiry_type,
        "team": event.team,
        "received_at": now,
    }


def _region(event: ContactEvent) -> str | None:
    region = (event.customer.model_extra or {}).get("region")
    return region[:100] if isinstance(region, str) and region.strip() else None
