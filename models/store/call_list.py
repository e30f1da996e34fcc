"""Phone surveys in SQL: the call list interviewers work from, and what they enter.

An interviewer's answer is stored like a customer's own (survey_store.record_response): one
answer per invitation through a conditional UPDATE, published_at NULL so the response
outbox puts it on survey-responses, where scoring and follow-up treat it like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Engine, literal, select, tuple_, update
from sqlmodel import Session, col

from models.store.consent import opted_out
from models.store.engine import transaction
from models.store.errors import StoreError
from models.store.surveys import AlreadyAnsweredError, store_answer
from models.store.tables import SurveyInvitation, SurveyResponse, UTCDateTime

CallOutcome = Literal["no_answer", "wrong_number", "refused"]
CALL_OUTCOMES: tuple[str, ...] = get_args(CallOutcome)
MAX_NO_ANSWERS = 3  # after this many unanswered calls the customer leaves the call list
INTERVIEWER_MAX = 200


def phone_invitations(engine: Engine, invitation_ids: Sequence[str]) -> dict[str, SurveyInvitation]:
    """The phone invitations among *invitation_ids*, by id (detached rows)."""
    with Session(engine, expire_on_commit=False) as session:
        rows = session.execute(
            select(SurveyInvitation)
            .where(col(SurveyInvitation.invitation_id).in_(set(invitation_ids)))
            .where(col(SurveyInvitation.survey_channel) == "phone")
        ).scalars()
        return {r.invitation_id: r for r in rows}


# --- the call list -------------------------------------------------------------------------


class CallUnknownError(StoreError, LookupError):
    """No phone survey has this invitation id (an e-mail survey counts as unknown)."""


class CallExpiredError(StoreError):
    """The phone survey is past its expiry."""


class CallClosedError(StoreError):
    """The phone survey left the call list: the customer could not or would not be reached."""

    def __init__(self, invitation_id: str, reason: str | None) -> None:
        super().__init__(invitation_id)
        self.reason = reason


@dataclass(frozen=True)
class OpenCall:
    """What an interviewer needs to make one call, and nothing more (no e-mail address)."""

    invitation_id: str
    customer_id: str
    name: str | None
    phone: str | None
    locale: str
    programme: str | None
    template: str
    company: str | None  # the partner or product the survey is about
    created_at: datetime
    expires_at: datetime
    attempts: int  # unanswered calls so far


_CALL_COLUMNS = (
    col(SurveyInvitation.invitation_id),
    col(SurveyInvitation.customer_id),
    col(SurveyInvitation.name),
    col(SurveyInvitation.phone),
    col(SurveyInvitation.locale),
    col(SurveyInvitation.programme),
    col(SurveyInvitation.template),
    col(SurveyInvitation.partner),
    col(SurveyInvitation.product),
    col(SurveyInvitation.created_at),
    col(SurveyInvitation.expires_at),
    col(SurveyInvitation.delivery_attempts),
    col(SurveyInvitation.delivery_status),
    col(SurveyInvitation.delivery_error),
    col(SurveyInvitation.answered_at),
)


def _open_call(row: Any) -> OpenCall:
    return OpenCall(
        invitation_id=row.invitation_id,
        customer_id=row.customer_id,
        name=row.name,
        phone=row.phone,
        locale=row.locale,
        programme=row.programme,
        template=row.template,
        company=row.partner or row.product,
        created_at=row.created_at,
        expires_at=row.expires_at,
        attempts=row.delivery_attempts,
    )


def open_calls(engine: Engine, now: datetime, limit: int = 200) -> list[OpenCall]:
    """The phone surveys still to be made, oldest first: not answered, not expired, not
    closed as unreachable, and not for a customer who has since opted out of phone surveys."""
    query = (
        select(*_CALL_COLUMNS)
        .where(col(SurveyInvitation.survey_channel) == "phone")
        .where(col(SurveyInvitation.delivery_status) == "pending")
        .where(col(SurveyInvitation.answered_at).is_(None))
        .where(col(SurveyInvitation.expires_at) > now)
        .order_by(col(SurveyInvitation.created_at), col(SurveyInvitation.invitation_id))
        .limit(limit)
    )
    calls: list[OpenCall] = []
    with transaction(engine) as session:
        while len(calls) < limit:
            rows = session.execute(query).all()
            refused = opted_out(session, {r.customer_id for r in rows}, "phone")
            calls.extend(_open_call(r) for r in rows if r.customer_id not in refused)
            if len(rows) < limit:
                break
            # Opted-out customers were skipped: go on after the last row seen (keyset).
            last = rows[-1]
            query = query.where(
                tuple_(col(SurveyInvitation.created_at), col(SurveyInvitation.invitation_id))
                > tuple_(literal(last.created_at, UTCDateTime()), literal(last.invitation_id))
            )
    return calls[:limit]


def _check_open(row: Any, invitation_id: str, now: datetime) -> None:
    if row is None:
        raise CallUnknownError(invitation_id)
    if row.answered_at is not None:
        raise AlreadyAnsweredError(invitation_id, row.locale)
    if row.delivery_status != "pending":
        raise CallClosedError(invitation_id, row.delivery_error)
    if row.expires_at is None or row.expires_at <= now:
        raise CallExpiredError(invitation_id)


def _phone_row(session: Session, invitation_id: str, *, lock: bool) -> Any:
    query = (
        select(*_CALL_COLUMNS)
        .where(col(SurveyInvitation.invitation_id) == invitation_id)
        .where(col(SurveyInvitation.survey_channel) == "phone")
    )
    return session.execute(query.with_for_update() if lock else query).one_or_none()


def call_to_make(engine: Engine, invitation_id: str, now: datetime) -> OpenCall:
    """One open call; CallUnknownError, AlreadyAnsweredError, CallClosedError or
    CallExpiredError otherwise."""
    with transaction(engine) as session:
        row = _phone_row(session, invitation_id, lock=False)
        _check_open(row, invitation_id, now)
        return _open_call(row)


def record_interview(
    engine: Engine,
    invitation_id: str,
    answers: Mapping[str, Any],
    nps: int | None,
    csat: int | None,
    ces: int | None,
    comment: str | None,
    interviewer: str,
    now: datetime,
) -> SurveyResponse:
    """Store the answers an interviewer took on the phone: the one answer the invitation
    allows (a second gets AlreadyAnsweredError), published later by the response outbox.

    *answers* are validated (models.survey_templates.parse_answers) and nps, csat, ces and
    comment the headline values taken from them.
    """
    with transaction(engine) as session:
        row = _phone_row(session, invitation_id, lock=True)
        _check_open(row, invitation_id, now)
        return store_answer(
            session,
            row,
            now,
            nps=nps,
            csat=csat,
            ces=ces,
            comment=comment,
            answers=answers,
            interviewer=_interviewer(interviewer),
            invitation_values={"delivery_status": "sent", "sent_at": now},
        )


@dataclass(frozen=True)
class CallAttempt:
    """An unanswered call as recorded: how many so far, and whether the call list is done."""

    invitation_id: str
    outcome: str
    attempts: int
    closed: bool


def record_call_attempt(
    engine: Engine, invitation_id: str, outcome: str, interviewer: str, now: datetime
) -> CallAttempt:
    """Count a call that did not lead to an interview.

    A refusal or a wrong number closes the survey at once (delivery_status 'failed'); so
    does the MAX_NO_ANSWERS-th unanswered call. Until then the call stays on the list.
    """
    if outcome not in CALL_OUTCOMES:
        raise ValueError(f"outcome must be one of {CALL_OUTCOMES}")
    who = _interviewer(interviewer)
    with transaction(engine) as session:
        row = _phone_row(session, invitation_id, lock=True)
        _check_open(row, invitation_id, now)
        attempts = row.delivery_attempts + 1
        closed = outcome != "no_answer" or attempts >= MAX_NO_ANSWERS
        if outcome == "no_answer":
            error = f"no_answer: {attempts} of {MAX_NO_ANSWERS} calls unanswered (last by {who})"
        else:
            error = f"{outcome} (recorded by {who})"
        session.execute(
            update(SurveyInvitation)
            .where(col(SurveyInvitation.invitation_id) == invitation_id)
            .values(
                delivery_attempts=attempts,
                delivery_status="failed" if closed else "pending",
                delivery_error=error[:500],
            )
        )
        return CallAttempt(invitation_id, outcome, attempts, closed)


def _interviewer(name: str) -> str:
    cleaned = " ".join(name.split())
    if not 0 < len(cleaned) <= INTERVIEWER_MAX:
        raise ValueError(f"interviewer must be 1..{INTERVIEWER_MAX} characters")
    return cleaned
