"""Durable survey state in SQL: invitation deliveries, answers and their scores.

Every function is one short transaction, safe to repeat with the same ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlmodel import Session, col

from models.store.aggregates import add_answers
from models.store.consent import opted_out
from models.store.engine import transaction
from models.store.errors import StoreError
from models.store.survey_tokens import invitation_by_token
from models.store.tables import (
    SurveyAnswer,
    SurveyInvitation,
    SurveyReminder,
    SurveyResponse,
)

# --- e-mail delivery: at most one mail per invitation ---------------------------------


class DeliveryDoneError(StoreError):
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


@dataclass(frozen=True)
class Claims:
    """The outcome of claiming a batch: what to send now, what needs nothing, what is unknown."""

    claimed: dict[str, DeliveryClaim]
    done: dict[str, str]  # invitation id → status that needs no mail
    missing: set[str]


def claim_deliveries(
    engine: Engine, tokens: dict[str, str], now: datetime, ttl: timedelta
) -> Claims:
    """Mark each invitation (id → hash of the token about to go out) as being sent.

    Only 'pending' invitations are claimed. One found in 'sending' was interrupted between
    claim and outcome: it may have reached the customer, so it becomes 'unknown' and is
    not sent again (at most once). One whose customer has opted out of e-mail since the
    decision becomes 'cancelled' ('opted out'): consent is checked here, at send time.
    """
    with transaction(engine) as session:
        rows = {
            row.invitation_id: row
            for row in session.execute(
                select(SurveyInvitation)
                .where(col(SurveyInvitation.invitation_id).in_(tokens))
                .with_for_update()
            ).scalars()
        }
        refused = opted_out(
            session,
            {row.customer_id for row in rows.values() if row.delivery_status == "pending"},
            "email",
        )
        claimed: dict[str, DeliveryClaim] = {}
        done: dict[str, str] = {}
        for invitation_id, row in rows.items():
            settle_interrupted(row)
            if row.delivery_status == "pending" and (
                row.survey_channel != "email" or row.email is None
            ):
                row.delivery_status = "failed"
                row.delivery_error = "not an e-mail survey"
            if row.delivery_status == "pending" and row.customer_id in refused:
                row.delivery_status = "cancelled"
                row.delivery_error = "opted out"
            if row.delivery_status != "pending" or row.email is None:
                done[invitation_id] = row.delivery_status
                continue
            row.delivery_status = "sending"
            row.delivery_attempts += 1
            row.token_hash = tokens[invitation_id]
            # The programme's expiry (set when the survey was decided) counts from sending.
            lifetime = row.expires_at - row.created_at if row.expires_at else ttl
            row.expires_at = now + lifetime
            claimed[invitation_id] = DeliveryClaim(
                invitation_id=row.invitation_id,
                email=row.email,
                name=row.name,
                locale=row.locale,
                company=row.partner or row.product,
                expires_at=row.expires_at,
                attempt=row.delivery_attempts,
            )
        return Claims(claimed, done, set(tokens) - set(rows))


def claim_delivery(
    engine: Engine, invitation_id: str, token_hash: str, now: datetime, ttl: timedelta
) -> DeliveryClaim:
    """claim_deliveries for one invitation: DeliveryDoneError if it needs no mail, LookupError if
    it does not exist."""
    claims = claim_deliveries(engine, {invitation_id: token_hash}, now, ttl)
    if invitation_id in claims.missing:
        raise LookupError(f"invitation {invitation_id} is not in the database")
    if invitation_id in claims.done:
        raise DeliveryDoneError(claims.done[invitation_id])
    return claims.claimed[invitation_id]


def finish_deliveries(
    engine: Engine, outcomes: dict[str, tuple[str, str | None]], now: datetime
) -> None:
    """Record claimed sends' outcomes (id → (status, error)): 'sent', 'failed' (permanent),
    'unknown' (the server may have it) or 'pending' (to retry with a new token)."""
    with transaction(engine) as session:
        rows = session.execute(
            select(SurveyInvitation)
            .where(col(SurveyInvitation.invitation_id).in_(outcomes))
            .with_for_update()
        ).scalars()
        for row in rows:
            status, error = outcomes[row.invitation_id]
            record_outcome(row, status, error, now)
            wants_reminder = row.reminders_planned > row.reminders_sent and row.reminder_gap_s > 0
            if status == "sent" and wants_reminder:
                row.next_reminder_at = now + timedelta(seconds=row.reminder_gap_s)


def settle_interrupted(row: SurveyInvitation | SurveyReminder) -> None:
    """A mail found 'sending' was claimed and never finished: it may have reached the
    customer, so it becomes 'unknown' and is not sent again (at most once)."""
    if row.delivery_status == "sending":
        row.delivery_status = "unknown"
        row.delivery_error = "interrupted while sending; not retried"


def record_outcome(
    row: SurveyInvitation | SurveyReminder, status: str, error: str | None, now: datetime
) -> None:
    """Record a claimed send's outcome on its invitation or reminder row."""
    row.delivery_status = status
    row.delivery_error = error[:500] if error else None
    if status == "sent":
        row.sent_at = now
    if status == "pending":
        row.token_hash = None  # that token never reached the customer; a retry gets a new one


def finish_delivery(
    engine: Engine, invitation_id: str, status: str, now: datetime, error: str | None = None
) -> None:
    """finish_deliveries for one invitation."""
    finish_deliveries(engine, {invitation_id: (status, error)}, now)


# --- answers ---------------------------------------------------------------------------


class TokenUnknownError(StoreError, LookupError):
    """No invitation has this token."""


class _InvitationClosedError(StoreError):
    def __init__(self, invitation_id: str, locale: str | None = None) -> None:
        super().__init__(invitation_id)
        self.invitation_id = invitation_id
        self.locale = locale  # the customer's language, for the page that says so


class TokenExpiredError(_InvitationClosedError):
    """The survey link is past its expiry."""


class AlreadyAnsweredError(_InvitationClosedError):
    """The survey was answered before; a token is good for one answer."""


def invitation_for_token(engine: Engine, token_hash: str, now: datetime) -> SurveyInvitation:
    """The open invitation behind a token, or TokenUnknownError / TokenExpiredError /
    AlreadyAnsweredError."""
    with transaction(engine) as session:
        return invitation_for_token_in(session, token_hash, now)


def record_response(
    engine: Engine,
    token_hash: str,
    nps: int | None,
    csat: int | None,
    comment: str | None,
    now: datetime,
    *,
    ces: int | None = None,
    answers: Mapping[str, Any] | None = None,
) -> SurveyResponse:
    """Store the one answer a token allows; the conditional UPDATE makes it exactly one.

    *answers* are all validated answers by question id; nps, csat, ces and comment are the
    headline values taken from them (models.survey_templates.headline).
    """
    with transaction(engine) as session:
        invitation = invitation_for_token_in(session, token_hash, now)
        return store_answer(
            session,
            invitation,
            now,
            nps=nps,
            csat=csat,
            ces=ces,
            comment=comment,
            answers=answers or {},
        )


def store_answer(
    session: Session,
    invitation: SurveyInvitation,
    now: datetime,
    *,
    nps: int | None,
    csat: int | None,
    ces: int | None,
    comment: str | None,
    answers: Mapping[str, Any],
    interviewer: str | None = None,
    invitation_values: Mapping[str, Any] | None = None,
) -> SurveyResponse:
    """The one answer an invitation allows, inside the caller's transaction: the conditional
    UPDATE of answered_at makes it exactly one (AlreadyAnsweredError otherwise). The row waits
    with published_at NULL for the response outbox to publish it.

    *invitation_values* are further columns to set on the invitation with answered_at.
    """
    claimed = session.execute(
        update(SurveyInvitation)
        .where(col(SurveyInvitation.invitation_id) == invitation.invitation_id)
        .where(col(SurveyInvitation.answered_at).is_(None))
        .values(answered_at=now, **(invitation_values or {}))
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        raise AlreadyAnsweredError(invitation.invitation_id, invitation.locale)
    response = SurveyResponse(
        response_id=str(uuid.uuid4()),
        invitation_id=invitation.invitation_id,
        customer_id=invitation.customer_id,
        nps=nps,
        csat=csat,
        ces=ces,
        comment=comment or None,
        answers=dict(answers),
        submitted_at=now,
        interviewer=interviewer,
    )
    session.add(response)
    session.flush()  # the answer rows refer to it
    rows = answer_rows(response.response_id, answers)
    if rows:
        session.connection().execute(insert(SurveyAnswer.__table__), rows)  # type: ignore[attr-defined]
    return response


def answer_rows(response_id: str, answers: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The survey_answers rows of one response: a number (yes/no as 1/0), a text, or both;
    an aspects answer is one row per aspect ('aspects.speed')."""
    rows: list[dict[str, Any]] = []

    def add(question: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                add(f"{question}.{sub}", inner)
            return
        number: float | None = None
        text: str | None = None
        if isinstance(value, bool):
            number, text = float(value), "yes" if value else "no"
        elif isinstance(value, int | float):
            number = float(value)
        elif value is not None:
            text = str(value)[:4000]
        rows.append(
            {
                "response_id": response_id,
                "question": question[:100],
                "value_number": number,
                "value_text": text,
            }
        )

    for question, value in answers.items():
        add(question, value)
    return rows


def invitation_for_token_in(session: Session, token_hash: str, now: datetime) -> SurveyInvitation:
    """The open invitation behind a token: the invitation's own or one of its reminders'."""
    row = invitation_by_token(session, token_hash)
    if row is None:
        raise TokenUnknownError(token_hash[:8])
    if row.answered_at is not None:
        raise AlreadyAnsweredError(row.invitation_id, row.locale)
    if row.expires_at is None or row.expires_at <= now:
        raise TokenExpiredError(row.invitation_id, row.locale)
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


def record_scores(
    engine: Engine,
    scores: Sequence[tuple[str, str | None, bool | None]],
    now: datetime,
) -> set[str]:
    """Write (response id, NPS category, CSAT verdict) onto the answers in one transaction;
    the same values on every replay. An answer scored for the first time is counted in the
    aggregates in the same transaction (a replay counts nothing). Returns the response ids
    that exist."""
    ids = {response_id for response_id, _, _ in scores}
    with transaction(engine) as session:
        found = set(
            session.execute(
                select(col(SurveyResponse.response_id)).where(
                    col(SurveyResponse.response_id).in_(ids)
                )
            ).scalars()
        )
        # Only the transaction that sets scored_at gets the id back: on PostgreSQL a second
        # worker scoring the same answer waits for the row lock and then matches nothing.
        first_time = set(
            session.execute(
                update(SurveyResponse)
                .where(
                    col(SurveyResponse.response_id).in_(found),
                    col(SurveyResponse.scored_at).is_(None),
                )
                .values(scored_at=now)
                .returning(col(SurveyResponse.response_id))
            ).scalars()
        )
        rows = [
            {"rid": rid, "category": category, "satisfied": satisfied}
            for rid, category, satisfied in scores
            if rid in found
        ]
        if rows:
            # Core executemany on the table, not the ORM bulk update (no identity sync).
            table = SurveyResponse.__table__  # type: ignore[attr-defined]  # set by SQLModel
            session.connection().execute(
                update(table)
                .where(table.c.response_id == bindparam("rid"))
                .values(nps_category=bindparam("category"), csat_satisfied=bindparam("satisfied")),
                rows,
            )
        add_answers(session, first_time, now)
        return found
