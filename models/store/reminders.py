"""Reminders to customers who have not answered, in SQL.

When an invitation's mail goes out, survey_store.finish_deliveries sets its
next_reminder_at (the programme's reminder_after later) if the programme wants reminders.
fire_due_reminders takes due ones through that column's index and either stops them (the
survey was answered, has expired, or the customer opted out), defers them to the send
window, or creates a survey_reminders row for the mailer. Sending claims the reminder
again and re-checks, so a response or opt-out that arrives in between still stops it.
Reminders do not count against the contact-frequency cap.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import col

from models.calendar import in_window, next_open
from models.rules import Rules
from models.store.consent import opted_out
from models.store.engine import insert_many_if_absent, lock_due, transaction
from models.store.surveys import record_outcome, settle_interrupted
from models.store.tables import SurveyInvitation, SurveyReminder

_REMINDER_NAMESPACE = uuid.UUID("2d1c9b8e-51a4-4d0b-9c3e-7a6f0e4b2c55")


def reminder_id_for(invitation_id: str, number: int) -> str:
    """The stable id of an invitation's n-th reminder."""
    return str(uuid.uuid5(_REMINDER_NAMESPACE, f"{invitation_id}|{number}"))


@dataclass(frozen=True, slots=True)
class ReminderInfo:
    """A reminder to mail: what the survey-invitations message carries."""

    reminder_id: str
    invitation_id: str
    event_id: str
    customer_id: str
    locale: str
    number: int
    created_at: datetime
    programme: str | None
    template: str


@dataclass
class RemindersFired:
    due: list[ReminderInfo] = field(default_factory=list)
    stopped: Counter[str] = field(default_factory=Counter)
    deferred: int = 0


def _stop_reason(row: SurveyInvitation, opted: set[str], now: datetime) -> str | None:
    if row.answered_at is not None:
        return "answered"
    if row.expires_at is None or row.expires_at <= now:
        return "expired"
    if row.customer_id in opted:
        return "opted_out"
    if row.delivery_status != "sent":
        return "not_sent"
    return None


def fire_due_reminders(
    engine: Engine, rules: Rules, now: datetime, limit: int = 500
) -> RemindersFired:
    """Create the reminders due by *now* (oldest first, at most *limit*)."""
    result = RemindersFired()
    with transaction(engine) as session:
        rows = lock_due(session, SurveyInvitation, SurveyInvitation.next_reminder_at, now, limit)
        if not rows:
            return result
        opted = opted_out(session, {r.customer_id for r in rows}, "email")
        new: list[dict[str, object]] = []
        for row in rows:
            stop = _stop_reason(row, opted, now)
            programme = rules.programme(row.programme) if row.programme else None
            if stop is None and programme is None and row.programme:
                stop = "programme_removed"
            if stop is not None:
                row.next_reminder_at = None
                result.stopped[stop] += 1
                continue
            if programme is not None and not in_window(programme.window, rules.timezone, now):
                row.next_reminder_at = next_open(programme.window, rules.timezone, now)
                result.deferred += 1
                continue
            row.reminders_sent += 1
            more = row.reminders_sent < row.reminders_planned
            row.next_reminder_at = now + timedelta(seconds=row.reminder_gap_s) if more else None
            reminder_id = reminder_id_for(row.invitation_id, row.reminders_sent)
            new.append(
                {
                    "reminder_id": reminder_id,
                    "invitation_id": row.invitation_id,
                    "number": row.reminders_sent,
                    "created_at": now,
                    "delivery_status": "pending",
                    "delivery_attempts": 0,
                }
            )
            result.due.append(
                ReminderInfo(
                    reminder_id=reminder_id,
                    invitation_id=row.invitation_id,
                    event_id=row.event_id,
                    customer_id=row.customer_id,
                    locale=row.locale,
                    number=row.reminders_sent,
                    created_at=now,
                    programme=row.programme,
                    template=row.template,
                )
            )
        insert_many_if_absent(session, SurveyReminder, new)
    return result


@dataclass(frozen=True)
class ReminderClaim:
    """The right to mail one reminder now, with what the mail needs."""

    reminder_id: str
    invitation_id: str
    number: int
    email: str
    name: str | None
    locale: str
    company: str | None
    expires_at: datetime


@dataclass(frozen=True)
class ReminderClaims:
    """Keyed by (invitation id, reminder number)."""

    claimed: dict[tuple[str, int], ReminderClaim]
    done: dict[tuple[str, int], str]  # → status that needs no mail
    missing: set[tuple[str, int]]


def claim_reminders(
    engine: Engine, tokens: dict[tuple[str, int], str], now: datetime
) -> ReminderClaims:
    """Mark reminders ((invitation id, number) → hash of the token about to go out) as being
    sent; at most once, like invitations, and only while the survey is still open."""
    with transaction(engine) as session:
        wanted = {reminder_id_for(i, n): (i, n) for i, n in tokens}
        pairs = session.execute(
            select(SurveyReminder, SurveyInvitation)
            .join(
                SurveyInvitation,
                col(SurveyInvitation.invitation_id) == col(SurveyReminder.invitation_id),
            )
            .where(col(SurveyReminder.reminder_id).in_(wanted))
            .with_for_update()
        ).all()
        opted = opted_out(session, {inv.customer_id for _, inv in pairs}, "email")
        claimed: dict[tuple[str, int], ReminderClaim] = {}
        done: dict[tuple[str, int], str] = {}
        for reminder, invitation in pairs:
            key = (invitation.invitation_id, reminder.number)
            settle_interrupted(reminder)
            if reminder.delivery_status == "pending":
                stop = _stop_reason(invitation, opted, now)
                if stop is not None or invitation.email is None:
                    reminder.delivery_status = "cancelled"
                    reminder.delivery_error = stop or "no e-mail address"
            if reminder.delivery_status != "pending" or invitation.email is None:
                done[key] = reminder.delivery_status
                continue
            reminder.delivery_status = "sending"
            reminder.delivery_attempts += 1
            reminder.token_hash = tokens[key]
            claimed[key] = ReminderClaim(
                reminder_id=reminder.reminder_id,
                invitation_id=invitation.invitation_id,
                number=reminder.number,
                email=invitation.email,
                name=invitation.name,
                locale=invitation.locale,
                company=invitation.partner or invitation.product,
                expires_at=invitation.expires_at or now,
            )
        found = {r.reminder_id for r, _ in pairs}
        missing = {key for rid, key in wanted.items() if rid not in found}
        return ReminderClaims(claimed, done, missing)


def finish_reminders(
    engine: Engine, outcomes: dict[str, tuple[str, str | None]], now: datetime
) -> None:
    """Record claimed reminder sends' outcomes (reminder id → (status, error))."""
    with transaction(engine) as session:
        rows = session.execute(
            select(SurveyReminder)
            .where(col(SurveyReminder.reminder_id).in_(outcomes))
            .with_for_update()
        ).scalars()
        for row in rows:
            status, error = outcomes[row.reminder_id]
            record_outcome(row, status, error, now)
