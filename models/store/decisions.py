"""Survey decisions and their timers in SQL, a batch per transaction.

decide_contacts records a batch of contact events, plans each with the rules in force
(models.programmes.plan_event), writes the decisions and timers, closes the timers the
events cancel or supersede, and fires the timers that are already due. fire_due_timers
is the sweeper: it takes due timers through the due_at index, oldest first, and fires
them. Firing checks eligibility against the customer's state at that moment, claims the
contact-frequency cap with a conditional UPDATE (so two workers cannot both survey one
customer), creates the invitation and schedules a repeating rule's next timer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, update
from sqlmodel import Session, col

from models.contact_events import ContactEvent, ContactKind
from models.eligibility import CustomerView, Reason
from models.followup_rules import FollowupRules
from models.programmes import (
    NewDecision,
    PendingTimers,
    Timer,
    cap_of,
    check_due,
    next_repeat,
    plan_event,
)
from models.rules import Rules
from models.store.aggregates import add_invitations
from models.store.consent import opted_out_by_channel
from models.store.engine import (
    insert_many_if_absent,
    insert_many_returning_new,
    lock_due,
    transaction,
)
from models.store.survey_state import (
    InvitationInfo,
    decision_row,
    invitation_info,
    invitation_row,
    last_surveyed_at,
    load_pending_timers,
    open_task_counts,
    programme_last_surveyed_at,
    timer_from_row,
    timer_row,
)
from models.store.tables import ContactEvent as ContactEventRow
from models.store.tables import (
    CustomerContactState,
    CustomerProgrammeState,
    FollowupTask,
    SurveyDecision,
    SurveyInvitation,
    SurveyTimer,
)
from models.store.tasks import open_tasks_in
from models.task_lifecycle import (
    NewTask,
    TaskOrigin,
    TaskSubject,
    task_for_complaint,
)

# Core tables for executemany statements (one round trip for a batch of rows).
_TIMERS = SurveyTimer.__table__  # type: ignore[attr-defined]
_DECISIONS = SurveyDecision.__table__  # type: ignore[attr-defined]
_PROGRAMME_STATE = CustomerProgrammeState.__table__  # type: ignore[attr-defined]

__all__ = [
    "DecisionInfo",
    "FireResult",
    "TriggerResult",
    "decide_contact",
    "decide_contacts",
    "fire_due_timers",
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


@dataclass
class FireResult:
    """What firing timers led to."""

    invitations: list[InvitationInfo] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    deferred_to: dict[str, datetime] = field(default_factory=dict)  # decision id → new due

    @property
    def deferred(self) -> int:
        return len(self.deferred_to)


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
        _resolve(session, self.closed, now)  # pending ones a later contact cancelled
        still = {t.decision_id for t in pending}
        due = [t for t in self.timers.values() if t.decision_id in still and t.due_at <= now]
        fired = _fire(session, rules, due, now)
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


def fire_due_timers(engine: Engine, rules: Rules, now: datetime, limit: int = 500) -> FireResult:
    """Fire up to *limit* timers due by *now*, oldest first (the sweeper's tick).

    The due_at index makes this cost the number of due timers, not the number pending;
    models.store.engine.lock_due lets workers sweep side by side.
    """
    with transaction(engine) as session:
        rows = lock_due(session, SurveyTimer, SurveyTimer.due_at, now, limit)
        return _fire(session, rules, [timer_from_row(r) for r in rows], now)


def next_due_at(engine: Engine) -> datetime | None:
    """When the earliest pending timer is due (the rules CLI tests step a clock by it)."""
    with Session(engine) as session:
        return session.execute(select(func.min(col(SurveyTimer.due_at)))).scalar()


def _fire(session: Session, rules: Rules, timers: list[Timer], now: datetime) -> FireResult:
    result = FireResult()
    if not timers:
        return result
    timers = sorted(timers, key=lambda t: (t.due_at, t.decision_id))
    customers = {t.customer_id for t in timers}
    last = last_surveyed_at(session, customers)
    programme_last = programme_last_surveyed_at(session, customers)
    open_tasks = open_task_counts(session, customers)
    blocked = opted_out_by_channel(session, customers)

    surveyed: list[Timer] = []
    resolved: dict[str, tuple[Timer, Reason]] = {}
    deferred: list[dict[str, Any]] = []
    for timer in timers:
        c = timer.customer_id
        view = CustomerView(
            last_surveyed_at=last.get(c),
            programme_last_surveyed=programme_last[c],
            open_complaints=open_tasks[c, TaskOrigin.COMPLAINT],
            open_followups=open_tasks[c, TaskOrigin.DETRACTOR] + open_tasks[c, TaskOrigin.UNHAPPY],
            opted_out=frozenset(ch for ch, who in blocked.items() if c in who),
        )
        outcome = check_due(rules, timer, view, now)
        if outcome.defer_to is not None:
            deferred.append(
                {
                    "b_id": timer.decision_id,
                    "b_due": outcome.defer_to,
                    "b_reason": outcome.reason.value,
                }
            )
            result.deferred_to[timer.decision_id] = outcome.defer_to
            continue
        if outcome.reason is Reason.SURVEYED:
            last[c] = now
            programme_last[c][timer.programme] = now
            surveyed.append(timer)
        resolved[timer.decision_id] = (timer, outcome.reason)

    _defer(session, deferred)
    claimed = _claim_caps(session, rules, surveyed, now)
    sent: list[Timer] = []
    for timer in surveyed:
        if timer.decision_id in claimed:
            sent.append(timer)
        else:
            # Another worker surveyed this customer since we read the state.
            resolved[timer.decision_id] = (timer, Reason.RECENTLY_SURVEYED)
    invitation_rows = [invitation_row(rules, t, now) for t in sent]
    result.invitations.extend(invitation_info(row) for row in invitation_rows)
    new_invitations = insert_many_returning_new(
        session, SurveyInvitation, invitation_rows, "invitation_id"
    )
    add_invitations(session, new_invitations, now)
    insert_many_if_absent(
        session,
        CustomerProgrammeState,
        [
            {"customer_id": t.customer_id, "programme": t.programme, "last_surveyed_at": now}
            for t in sent
        ],
    )
    programme_rows = [
        {"b_customer": t.customer_id, "b_programme": t.programme, "b_at": now} for t in sent
    ]
    if programme_rows:
        session.connection().execute(
            update(_PROGRAMME_STATE)
            .where(_PROGRAMME_STATE.c.customer_id == bindparam("b_customer"))
            .where(_PROGRAMME_STATE.c.programme == bindparam("b_programme"))
            .values(last_surveyed_at=bindparam("b_at")),
            programme_rows,
        )
    invitations = {r["decision_id"]: r["invitation_id"] for r in invitation_rows}
    _resolve(session, resolved.values(), now, invitations)
    repeats = [
        nxt
        for timer, reason in resolved.values()
        if reason is not Reason.PROGRAMME_REMOVED and (nxt := next_repeat(rules, timer))
    ]
    insert_many_if_absent(
        session, SurveyDecision, [decision_row(_scheduled(t), rules, now) for t in repeats]
    )
    insert_many_if_absent(session, SurveyTimer, [timer_row(t) for t in repeats])
    result.reasons.update(reason.value for _, reason in resolved.values())
    return result


def _defer(session: Session, rows: list[dict[str, Any]]) -> None:
    """Move deferred timers (b_id, b_due, b_reason) and their pending decisions, as a batch."""
    if not rows:
        return
    connection = session.connection()
    connection.execute(
        update(_TIMERS)
        .where(_TIMERS.c.decision_id == bindparam("b_id"))
        .values(due_at=bindparam("b_due")),
        rows,
    )
    connection.execute(
        update(_DECISIONS)
        .where(_DECISIONS.c.decision_id == bindparam("b_id"))
        .values(reason=bindparam("b_reason"), due_at=bindparam("b_due")),
        rows,
    )


def _resolve(
    session: Session,
    resolved: Iterable[tuple[Timer, Reason]],
    now: datetime,
    invitations: Mapping[str, str] | None = None,
) -> None:
    """Delete the timers and close their pending decisions with the reasons given (and the
    invitation each surveyed decision created)."""
    invitations = invitations or {}
    rows = list(resolved)
    if not rows:
        return
    ids = [t.decision_id for t, _ in rows]
    session.execute(_TIMERS.delete().where(_TIMERS.c.decision_id.in_(ids)))
    # Only a pending decision changes: one a sweeper resolved first keeps its outcome.
    session.connection().execute(
        update(_DECISIONS)
        .where(_DECISIONS.c.decision_id == bindparam("b_id"))
        .where(_DECISIONS.c.outcome == "pending")
        .values(
            outcome=bindparam("b_outcome"),
            reason=bindparam("b_reason"),
            resolved_at=bindparam("b_at"),
            invitation_id=bindparam("b_invitation"),
        ),
        [
            {
                "b_id": t.decision_id,
                "b_outcome": reason.outcome,
                "b_reason": reason.value,
                "b_at": now,
                "b_invitation": invitations.get(t.decision_id),
            }
            for t, reason in rows
        ],
    )


def _claim_caps(session: Session, rules: Rules, timers: list[Timer], now: datetime) -> set[str]:
    """Set last_surveyed_at = now for each customer not surveyed within the programme's
    cap; the decision ids whose customer was claimed.

    The conditional UPDATE … RETURNING is what keeps two workers from both surveying one
    customer: only the customers it returns may be surveyed.
    """
    if not timers:
        return set()
    insert_many_if_absent(
        session,
        CustomerContactState,
        [
            {"customer_id": c, "last_surveyed_at": None}
            for c in sorted({t.customer_id for t in timers})
        ],
    )
    by_cap: dict[timedelta, list[Timer]] = defaultdict(list)
    for timer in timers:
        programme = rules.programme(timer.programme)
        if programme is not None:
            by_cap[cap_of(programme)].append(timer)
    claimed: set[str] = set()
    for cap, group in by_cap.items():
        customers = {t.customer_id for t in group}
        got = set(
            session.execute(
                update(CustomerContactState)
                .where(col(CustomerContactState.customer_id).in_(customers))
                .where(
                    col(CustomerContactState.last_surveyed_at).is_(None)
                    | (col(CustomerContactState.last_surveyed_at) <= now - cap)
                )
                .values(last_surveyed_at=now)
                .returning(col(CustomerContactState.customer_id))
            ).scalars()
        )
        claimed.update(t.decision_id for t in group if t.customer_id in got)
    return claimed


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


def _scheduled(timer: Timer) -> NewDecision:
    """The pending decision a (repeat) timer stands for."""
    return NewDecision(
        timer.decision_id,
        timer.event_id,
        timer.customer_id,
        timer.programme,
        timer.rule,
        timer.repeat,
        Reason.SCHEDULED,
        timer,
    )


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
