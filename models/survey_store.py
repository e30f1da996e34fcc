"""Durable survey state in SQL: decisions, invitations, deliveries and answers.

Every function is one short transaction, safe to repeat with the same ids.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

from models.contact_events import ContactEvent
from models.database import insert_if_absent, transaction
from models.eligibility import CustomerState, Decision, Reason, decide
from models.followup import NewTask, TaskOrigin, TaskStatus, task_for_complaint
from models.tables import (
    ContactEvent as ContactEventRow,
)
from models.tables import (
    CustomerContactState,
    FollowupTask,
    SurveyDecision,
    SurveyInvitation,
    SurveyResponse,
)

_INVITATION_NAMESPACE = uuid.UUID("0b8e2a53-3a43-4c55-8f0e-5d2f6f1b9c21")


def invitation_id_for(event_id: str) -> str:
    """The stable invitation id of a contact event's survey."""
    return str(uuid.uuid5(_INVITATION_NAMESPACE, event_id))


@dataclass(frozen=True)
class TriggerResult:
    """What one contact event led to; *fresh* is False when it was decided before."""

    decision: SurveyDecision
    invitation: SurveyInvitation | None
    task: FollowupTask | None
    fresh: bool


def customer_state(session: Session, customer_id: str) -> CustomerState:
    """Eligibility facts of one customer, read inside the caller's transaction."""
    row = session.get(CustomerContactState, customer_id)
    rows = session.execute(
        select(col(FollowupTask.origin), func.count())
        .where(col(FollowupTask.customer_id) == customer_id)
        .where(col(FollowupTask.status) != TaskStatus.CLOSED)
        .group_by(col(FollowupTask.origin))
    ).all()
    open_by_origin: dict[str, int] = dict(rows)
    return CustomerState(
        last_surveyed_at=row.last_surveyed_at if row else None,
        open_complaints=open_by_origin.get(TaskOrigin.COMPLAINT, 0),
        open_followups=open_by_origin.get(TaskOrigin.DETRACTOR, 0),
    )


def decide_contact(
    engine: Engine,
    event: ContactEvent,
    now: datetime,
    cap: timedelta,
    task_due: timedelta,
) -> TriggerResult:
    """Record *event*, decide whether to survey, and record the outcome, in one transaction.

    A second call with the same event id changes nothing and returns the first outcome.
    """
    with transaction(engine) as session:
        existing = session.get(SurveyDecision, event.event_id)
        if existing is not None:
            return _outcome_of(session, existing, fresh=False)
        insert_if_absent(
            session,
            ContactEventRow,
            {
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
            },
        )
        decision = decide(event, customer_state(session, event.customer.id), now, cap)
        if decision.surveyed and not _claim_survey_slot(session, event.customer.id, now, cap):
            decision = Decision(False, Reason.RECENTLY_SURVEYED)
        invitation = _new_invitation(event, now) if decision.surveyed else None
        row = SurveyDecision(
            event_id=event.event_id,
            customer_id=event.customer.id,
            outcome=decision.outcome,
            reason=decision.reason.value,
            invitation_id=invitation.invitation_id if invitation else None,
            decided_at=now,
        )
        session.add(row)
        if invitation is not None:
            session.add(invitation)
        task = None
        if event.kind == "complaint":
            new = task_for_complaint(event.event_id, event.occurred_at, task_due)
            task = open_task_in(session, event.customer.id, new)
        return TriggerResult(row, invitation, task, fresh=True)


def _claim_survey_slot(session: Session, customer_id: str, now: datetime, cap: timedelta) -> bool:
    """Move the customer's last-surveyed time to *now* unless another survey is inside the cap.

    The conditional UPDATE is what keeps two workers from both surveying one customer.
    """
    insert_if_absent(
        session, CustomerContactState, {"customer_id": customer_id, "last_surveyed_at": None}
    )
    result = session.execute(
        update(CustomerContactState)
        .where(col(CustomerContactState.customer_id) == customer_id)
        .where(
            (col(CustomerContactState.last_surveyed_at).is_(None))
            | (col(CustomerContactState.last_surveyed_at) <= now - cap)
        )
        .values(last_surveyed_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an UPDATE


def _new_invitation(event: ContactEvent, now: datetime) -> SurveyInvitation:
    if event.customer.email is None:
        raise ValueError("eligibility surveyed a customer without an e-mail address")
    return SurveyInvitation(
        invitation_id=invitation_id_for(event.event_id),
        event_id=event.event_id,
        customer_id=event.customer.id,
        email=str(event.customer.email),
        name=event.customer.name,
        locale=(event.customer.locale or "en").lower(),
        kind=event.kind.value,
        channel=event.channel.value,
        partner=event.partner,
        product=event.product,
        created_at=now,
    )


def _outcome_of(session: Session, decision: SurveyDecision, *, fresh: bool) -> TriggerResult:
    invitation = (
        session.get(SurveyInvitation, decision.invitation_id) if decision.invitation_id else None
    )
    task = session.execute(
        select(FollowupTask).where(col(FollowupTask.source_id) == decision.event_id)
    ).scalar_one_or_none()
    return TriggerResult(decision, invitation, task, fresh=fresh)


def open_task_in(session: Session, customer_id: str, new: NewTask) -> FollowupTask:
    """Open *new* unless a task with its id exists; return the stored task."""
    insert_if_absent(
        session,
        FollowupTask,
        {
            "task_id": new.task_id,
            "origin": new.origin.value,
            "source_id": new.source_id,
            "customer_id": customer_id,
            "priority": new.priority,
            "status": TaskStatus.OPEN.value,
            "opened_at": new.opened_at,
            "due_at": new.due_at,
        },
    )
    task = session.get(FollowupTask, new.task_id)
    if task is None:
        raise LookupError(f"task {new.task_id} vanished inside its own transaction")
    return task


# --- e-mail delivery: at most one mail per invitation ---------------------------------


class DeliveryDone(Exception):
    """The invitation needs no (more) mail: sent, failed for good, or interrupted mid-send."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class DeliveryClaim:
    """The right to send one invitation's mail now, with what the mail needs."""

    invitation_id: str
    email: str
    name: str | None
    locale: str
    company: str | None
    expires_at: datetime
    attempt: int


def claim_delivery(
    engine: Engine, invitation_id: str, token_hash: str, now: datetime, ttl: timedelta
) -> DeliveryClaim:
    """Mark the invitation as being sent, with the hash of the token about to go out.

    Raises DeliveryDone if it was sent or failed before. An invitation found in
    'sending' was interrupted between claim and outcome: it may have reached the
    customer, so it becomes 'unknown' and is not sent again (at most once).
    """
    with transaction(engine) as session:
        row = session.get(SurveyInvitation, invitation_id, with_for_update=True)
        if row is None:
            raise LookupError(f"invitation {invitation_id} is not in the database")
        if row.delivery_status == "sending":
            row.delivery_status = "unknown"
            row.delivery_error = "interrupted while sending; not retried"
        if row.delivery_status != "pending":
            raise DeliveryDone(row.delivery_status)
        row.delivery_status = "sending"
        row.delivery_attempts += 1
        row.token_hash = token_hash
        row.expires_at = now + ttl
        return DeliveryClaim(
            invitation_id=row.invitation_id,
            email=row.email,
            name=row.name,
            locale=row.locale,
            company=row.partner or row.product,
            expires_at=row.expires_at,
            attempt=row.delivery_attempts,
        )


def finish_delivery(
    engine: Engine, invitation_id: str, status: str, now: datetime, error: str | None = None
) -> None:
    """Record the outcome of a claimed send: 'sent', 'failed' (permanent) or 'pending' (retry)."""
    with transaction(engine) as session:
        row = session.get(SurveyInvitation, invitation_id, with_for_update=True)
        if row is None:
            raise LookupError(f"invitation {invitation_id} is not in the database")
        row.delivery_status = status
        row.delivery_error = error[:500] if error else None
        if status == "sent":
            row.sent_at = now
        if status == "pending":
            row.token_hash = None  # that token never reached the customer


# --- answers ---------------------------------------------------------------------------


class TokenUnknown(LookupError):
    """No invitation has this token."""


class _InvitationClosed(Exception):
    def __init__(self, invitation_id: str, locale: str | None = None) -> None:
        super().__init__(invitation_id)
        self.invitation_id = invitation_id
        self.locale = locale  # the customer's language, for the page that says so


class TokenExpired(_InvitationClosed):
    """The survey link is past its expiry."""


class AlreadyAnswered(_InvitationClosed):
    """The survey was answered before; a token is good for one answer."""


def invitation_for_token(engine: Engine, token_hash: str, now: datetime) -> SurveyInvitation:
    """The open invitation behind a token, or TokenUnknown / TokenExpired / AlreadyAnswered."""
    with transaction(engine) as session:
        return invitation_for_token_in(session, token_hash, now)


def record_response(
    engine: Engine,
    token_hash: str,
    nps: int | None,
    csat: int | None,
    comment: str | None,
    now: datetime,
) -> SurveyResponse:
    """Store the one answer a token allows; the conditional UPDATE makes it exactly one."""
    with transaction(engine) as session:
        invitation = invitation_for_token_in(session, token_hash, now)
        claimed = session.execute(
            update(SurveyInvitation)
            .where(col(SurveyInvitation.invitation_id) == invitation.invitation_id)
            .where(col(SurveyInvitation.answered_at).is_(None))
            .values(answered_at=now)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            raise AlreadyAnswered(invitation.invitation_id, invitation.locale)
        response = SurveyResponse(
            response_id=str(uuid.uuid4()),
            invitation_id=invitation.invitation_id,
            customer_id=invitation.customer_id,
            nps=nps,
            csat=csat,
            comment=comment or None,
            submitted_at=now,
        )
        session.add(response)
        return response


def invitation_for_token_in(session: Session, token_hash: str, now: datetime) -> SurveyInvitation:
    row: SurveyInvitation | None = session.execute(
        select(SurveyInvitation).where(col(SurveyInvitation.token_hash) == token_hash)
    ).scalar_one_or_none()
    if row is None:
        raise TokenUnknown(token_hash[:8])
    if row.answered_at is not None:
        raise AlreadyAnswered(row.invitation_id, row.locale)
    if row.expires_at is None or row.expires_at <= now:
        raise TokenExpired(row.invitation_id, row.locale)
    return row


def mark_published(engine: Engine, response_id: str, now: datetime) -> None:
    """The answer is on survey-responses; the outbox relay can forget it."""
    with transaction(engine) as session:
        session.execute(
            update(SurveyResponse)
            .where(col(SurveyResponse.response_id) == response_id)
            .values(published_at=now)
        )


def unpublished_responses(
    engine: Engine, before: datetime, limit: int = 500
) -> list[SurveyResponse]:
    """Answers stored but not yet confirmed on survey-responses (the outbox)."""
    with transaction(engine) as session:
        return list(
            session.execute(
                select(SurveyResponse)
                .where(col(SurveyResponse.published_at).is_(None))
                .where(col(SurveyResponse.submitted_at) < before)
                .order_by(col(SurveyResponse.submitted_at))
                .limit(limit)
            ).scalars()
        )


def record_score(
    engine: Engine,
    response_id: str,
    nps_category: str | None,
    csat_satisfied: bool | None,
    now: datetime,
) -> SurveyResponse | None:
    """Write the score onto the answer (the same values on every replay)."""
    with transaction(engine) as session:
        row = session.get(SurveyResponse, response_id)
        if row is None:
            return None
        row.nps_category = nps_category
        row.csat_satisfied = csat_satisfied
        row.scored_at = row.scored_at or now
        return row
