"""Survey decisions in SQL, a batch of contact events per transaction.

Reads what the batch needs in a few set queries, decides each event in order with the pure
rule (models.eligibility.decide), and writes every row with idempotent bulk inserts.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

from models.contact_events import ContactEvent, ContactKind
from models.database import insert_many_if_absent, transaction
from models.eligibility import CustomerState, Decision, Reason, decide
from models.followup import TaskOrigin, TaskStatus, task_for_complaint
from models.tables import ContactEvent as ContactEventRow
from models.tables import CustomerContactState, FollowupTask, SurveyDecision, SurveyInvitation

_INVITATION_NAMESPACE = uuid.UUID("0b8e2a53-3a43-4c55-8f0e-5d2f6f1b9c21")


def invitation_id_for(event_id: str) -> str:
    """The stable invitation id of a contact event's survey."""
    return str(uuid.uuid5(_INVITATION_NAMESPACE, event_id))


@dataclass(frozen=True, slots=True)
class DecisionInfo:
    """A survey_decisions row (plain data: building ORM objects costs more than the SQL)."""

    event_id: str
    customer_id: str
    outcome: str
    reason: str
    invitation_id: str | None
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class InvitationInfo:
    """What the survey-invitations message carries about a survey_invitations row."""

    invitation_id: str
    event_id: str
    customer_id: str
    locale: str
    created_at: datetime


@dataclass(frozen=True)
class TriggerResult:
    """What one contact event led to; *fresh* is False when it was decided before."""

    decision: DecisionInfo
    invitation: InvitationInfo | None
    task: FollowupTask | None
    fresh: bool


def decide_contacts(
    engine: Engine,
    events: Sequence[ContactEvent],
    now: datetime,
    cap: timedelta,
    task_due: timedelta,
) -> list[TriggerResult]:
    """Record and decide *events* (in order) in one transaction; one result per event.

    An event decided before (in an earlier batch or earlier in this one) changes nothing
    and gets its first outcome back with fresh=False.
    """
    with transaction(engine) as session:
        earlier = _earlier_outcomes(session, [e.event_id for e in events])
        customers = {e.customer.id for e in events}
        last_surveyed = _last_surveyed(session, customers)
        open_tasks = _open_tasks(session, customers)

        fresh: dict[str, tuple[ContactEvent, Decision, FollowupTask | None]] = {}
        for event in events:
            if event.event_id in earlier or event.event_id in fresh:
                continue
            customer = event.customer.id
            state = CustomerState(
                last_surveyed_at=last_surveyed.get(customer),
                open_complaints=open_tasks[customer, TaskOrigin.COMPLAINT],
                open_followups=open_tasks[customer, TaskOrigin.DETRACTOR],
            )
            decision = decide(event, state, now, cap)
            if decision.surveyed:
                last_surveyed[customer] = now
            task = None
            if event.kind is ContactKind.COMPLAINT:
                task = _task_row(customer, event, task_due)
                open_tasks[customer, TaskOrigin.COMPLAINT] += 1
            fresh[event.event_id] = (event, decision, task)

        surveyed = {e.customer.id for e, d, _ in fresh.values() if d.surveyed}
        claimed = _claim_survey_slots(session, surveyed, now, cap)
        rows: dict[str, TriggerResult] = {}
        invitation_rows: list[dict[str, Any]] = []
        for event_id, (event, decided, task) in fresh.items():
            decision = decided
            if decided.surveyed and event.customer.id not in claimed:
                # Another worker surveyed this customer since we read the state.
                decision = Decision(False, Reason.RECENTLY_SURVEYED)
            invitation = None
            if decision.surveyed:
                invitation_rows.append(_invitation_row(event, now))
                invitation = _invitation_info(invitation_rows[-1])
            info = DecisionInfo(
                event_id=event_id,
                customer_id=event.customer.id,
                outcome=decision.outcome,
                reason=decision.reason.value,
                invitation_id=invitation.invitation_id if invitation else None,
                decided_at=now,
            )
            rows[event_id] = TriggerResult(info, invitation, task, fresh=True)
        _write(
            session, [e for e, _, _ in fresh.values()], list(rows.values()), invitation_rows, now
        )

        results = []
        for event in events:
            if event.event_id in earlier:
                results.append(earlier[event.event_id])
            else:
                first = rows[event.event_id]
                seen_before = any(r is first for r in results)
                results.append(first if not seen_before else _replayed(first))
        return results


def decide_contact(
    engine: Engine, event: ContactEvent, now: datetime, cap: timedelta, task_due: timedelta
) -> TriggerResult:
    """decide_contacts for one event."""
    return decide_contacts(engine, [event], now, cap, task_due)[0]


def _replayed(result: TriggerResult) -> TriggerResult:
    return TriggerResult(result.decision, result.invitation, result.task, fresh=False)


def _earlier_outcomes(session: Session, event_ids: list[str]) -> dict[str, TriggerResult]:
    decisions = session.execute(
        select(SurveyDecision).where(col(SurveyDecision.event_id).in_(set(event_ids)))
    ).scalars()
    found = {d.event_id: d for d in decisions}
    if not found:
        return {}
    invitation_ids = {d.invitation_id for d in found.values() if d.invitation_id}
    invitations = {
        i.invitation_id: i
        for i in session.execute(
            select(SurveyInvitation).where(col(SurveyInvitation.invitation_id).in_(invitation_ids))
        ).scalars()
    }
    tasks = {
        t.source_id: t
        for t in session.execute(
            select(FollowupTask).where(col(FollowupTask.source_id).in_(set(found)))
        ).scalars()
    }
    results = {}
    for event_id, d in found.items():
        invitation = invitations.get(d.invitation_id) if d.invitation_id else None
        results[event_id] = TriggerResult(
            DecisionInfo(
                d.event_id, d.customer_id, d.outcome, d.reason, d.invitation_id, d.decided_at
            ),
            _invitation_info(_values(invitation)) if invitation else None,
            tasks.get(event_id),
            fresh=False,
        )
    return results


def _last_surveyed(session: Session, customers: set[str]) -> dict[str, datetime]:
    rows = session.execute(
        select(col(CustomerContactState.customer_id), col(CustomerContactState.last_surveyed_at))
        .where(col(CustomerContactState.customer_id).in_(customers))
        .where(col(CustomerContactState.last_surveyed_at).is_not(None))
    ).all()
    return dict(rows)


def _open_tasks(session: Session, customers: set[str]) -> Counter[tuple[str, str]]:
    rows = session.execute(
        select(col(FollowupTask.customer_id), col(FollowupTask.origin), func.count())
        .where(col(FollowupTask.customer_id).in_(customers))
        .where(col(FollowupTask.status) != TaskStatus.CLOSED)
        .group_by(col(FollowupTask.customer_id), col(FollowupTask.origin))
    ).all()
    return Counter({(customer, origin): count for customer, origin, count in rows})


def _claim_survey_slots(
    session: Session, customers: set[str], now: datetime, cap: timedelta
) -> set[str]:
    """Set last_surveyed_at = now for each customer not surveyed within the cap.

    The conditional UPDATE … RETURNING is what keeps two workers from both surveying one
    customer: only the customers it returns may be surveyed.
    """
    if not customers:
        return set()
    insert_many_if_absent(
        session,
        CustomerContactState,
        [{"customer_id": c, "last_surveyed_at": None} for c in sorted(customers)],
    )
    claimed = session.execute(
        update(CustomerContactState)
        .where(col(CustomerContactState.customer_id).in_(customers))
        .where(
            col(CustomerContactState.last_surveyed_at).is_(None)
            | (col(CustomerContactState.last_surveyed_at) <= now - cap)
        )
        .values(last_surveyed_at=now)
        .returning(col(CustomerContactState.customer_id))
    ).scalars()
    return set(claimed)


def _task_row(customer: str, event: ContactEvent, due: timedelta) -> FollowupTask:
    new = task_for_complaint(event.event_id, event.occurred_at, due)
    return FollowupTask(
        task_id=new.task_id,
        origin=new.origin.value,
        source_id=new.source_id,
        customer_id=customer,
        priority=new.priority,
        status=TaskStatus.OPEN.value,
        opened_at=new.opened_at,
        due_at=new.due_at,
    )


def _invitation_row(event: ContactEvent, now: datetime) -> dict[str, Any]:
    if event.customer.email is None:
        raise ValueError("eligibility surveyed a customer without an e-mail address")
    return {
        "invitation_id": invitation_id_for(event.event_id),
        "event_id": event.event_id,
        "customer_id": event.customer.id,
        "email": event.customer.email,
        "name": event.customer.name,
        "locale": (event.customer.locale or "en").lower(),
        "kind": event.kind.value,
        "channel": event.channel.value,
        "partner": event.partner,
        "product": event.product,
        "created_at": now,
        "delivery_status": "pending",
        "delivery_attempts": 0,
    }


def _invitation_info(row: dict[str, Any]) -> InvitationInfo:
    return InvitationInfo(
        invitation_id=row["invitation_id"],
        event_id=row["event_id"],
        customer_id=row["customer_id"],
        locale=row["locale"],
        created_at=row["created_at"],
    )


def _write(
    session: Session,
    events: list[ContactEvent],
    results: list[TriggerResult],
    invitations: list[dict[str, Any]],
    now: datetime,
) -> None:
    insert_many_if_absent(session, ContactEventRow, [_contact_row(e, now) for e in events])
    insert_many_if_absent(
        session,
        SurveyDecision,
        [
            {
                "event_id": r.decision.event_id,
                "customer_id": r.decision.customer_id,
                "outcome": r.decision.outcome,
                "reason": r.decision.reason,
                "invitation_id": r.decision.invitation_id,
                "decided_at": r.decision.decided_at,
            }
            for r in results
        ],
    )
    insert_many_if_absent(session, SurveyInvitation, invitations)
    insert_many_if_absent(session, FollowupTask, [_values(r.task) for r in results if r.task])


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
        "received_at": now,
    }
