"""A customer's survey state in SQL, and the rows of survey timers, decisions and invitations.

The deciding (models.store.decisions) and the firing of due timers
(models.store.survey_timers) both read and write this state: the pending timers of a set of
customers, when each was last surveyed (at all and per programme), their open follow-up
tasks, and the survey_timers, survey_decisions and survey_invitations rows built from the
pure models (models.programmes.Timer, NewDecision).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.programmes import Contact, NewDecision, Timer, invitation_id_for
from models.rules import Rules, approx_timedelta
from models.store.tables import (
    CustomerContactState,
    CustomerProgrammeState,
    FollowupTask,
    SurveyTimer,
)
from models.task_lifecycle import FINAL_STATUSES

__all__ = [
    "InvitationInfo",
    "decision_row",
    "invitation_info",
    "invitation_row",
    "last_surveyed_at",
    "load_pending_timers",
    "open_task_counts",
    "programme_last_surveyed_at",
    "timer_from_row",
    "timer_row",
]


@dataclass(frozen=True, slots=True)
class InvitationInfo:
    """What the survey-invitations (e-mail) or call-list (phone) message carries."""

    invitation_id: str
    event_id: str
    customer_id: str
    locale: str
    created_at: datetime
    programme: str | None = None
    template: str = "transactional"
    survey_channel: str = "email"


def load_pending_timers(session: Session, customers: set[str]) -> list[Timer]:
    """The pending survey timers of *customers*."""
    if not customers:
        return []
    rows = session.execute(
        select(SurveyTimer).where(col(SurveyTimer.customer_id).in_(customers))
    ).scalars()
    return [timer_from_row(r) for r in rows]


def timer_from_row(row: SurveyTimer) -> Timer:
    """The timer a survey_timers row stores."""
    return Timer(
        decision_id=row.decision_id,
        customer_id=row.customer_id,
        programme=row.programme,
        rule=row.rule,
        episode=row.episode,
        event_id=row.event_id,
        repeat=row.repeat,
        first_due_at=row.first_due_at,
        due_at=row.due_at,
        contact=Contact(
            email=row.email,
            phone=row.phone,
            name=row.name,
            locale=row.locale,
            timezone=row.timezone,
            kind=row.kind,
            channel=row.channel,
            partner=row.partner,
            product=row.product,
        ),
    )


def timer_row(t: Timer) -> dict[str, Any]:
    """The survey_timers row of a timer."""
    c = t.contact
    return {
        "decision_id": t.decision_id,
        "customer_id": t.customer_id,
        "programme": t.programme,
        "rule": t.rule,
        "episode": t.episode,
        "event_id": t.event_id,
        "repeat": t.repeat,
        "first_due_at": t.first_due_at,
        "due_at": t.due_at,
        "email": c.email,
        "phone": c.phone,
        "name": c.name,
        "locale": c.locale,
        "timezone": c.timezone,
        "kind": c.kind,
        "channel": c.channel,
        "partner": c.partner,
        "product": c.product,
    }


def last_surveyed_at(session: Session, customers: set[str]) -> dict[str, datetime]:
    """When each of *customers* was last surveyed by any programme (never: absent)."""
    rows = session.execute(
        select(col(CustomerContactState.customer_id), col(CustomerContactState.last_surveyed_at))
        .where(col(CustomerContactState.customer_id).in_(customers))
        .where(col(CustomerContactState.last_surveyed_at).is_not(None))
    ).all()
    return dict(rows)


def programme_last_surveyed_at(
    session: Session, customers: set[str]
) -> defaultdict[str, dict[str, datetime]]:
    """When each of *customers* was last surveyed, per programme."""
    rows = session.execute(
        select(
            col(CustomerProgrammeState.customer_id),
            col(CustomerProgrammeState.programme),
            col(CustomerProgrammeState.last_surveyed_at),
        ).where(col(CustomerProgrammeState.customer_id).in_(customers))
    ).all()
    found: defaultdict[str, dict[str, datetime]] = defaultdict(dict)
    for customer, programme, at in rows:
        found[customer][programme] = at
    return found


def open_task_counts(session: Session, customers: set[str]) -> Counter[tuple[str, str]]:
    """How many follow-up tasks each of *customers* has open, by (customer, origin)."""
    rows = session.execute(
        select(col(FollowupTask.customer_id), col(FollowupTask.origin), func.count())
        .where(col(FollowupTask.customer_id).in_(customers))
        .where(col(FollowupTask.status).notin_([s.value for s in FINAL_STATUSES]))
        .group_by(col(FollowupTask.customer_id), col(FollowupTask.origin))
    ).all()
    return Counter({(customer, origin): count for customer, origin, count in rows})


def decision_row(d: NewDecision, rules: Rules, now: datetime) -> dict[str, Any]:
    """A survey_decisions row: pending while it has a timer, resolved *now* otherwise."""
    return {
        "decision_id": d.decision_id,
        "event_id": d.event_id,
        "customer_id": d.customer_id,
        "programme": d.programme,
        "rule": d.rule,
        "rules_version": rules.label,
        "repeat": d.repeat,
        "outcome": d.reason.outcome,
        "reason": d.reason.value,
        "due_at": d.timer.due_at if d.timer else None,
        "invitation_id": None,
        "decided_at": now,
        "resolved_at": None if d.timer else now,
    }


def invitation_row(rules: Rules, timer: Timer, now: datetime) -> dict[str, Any]:
    """The survey_invitations row a due timer that surveys the customer creates *now*."""
    programme = rules.programme(timer.programme)
    if programme is None:
        raise ValueError("a survey was due for a programme the rules do not have")
    c = timer.contact
    email_survey = programme.channel == "email"
    return {
        "invitation_id": invitation_id_for(timer.decision_id),
        "event_id": timer.event_id,
        "decision_id": timer.decision_id,
        "customer_id": timer.customer_id,
        "email": c.email if email_survey else None,
        "phone": None if email_survey else c.phone,
        "name": c.name,
        "locale": c.locale,
        "kind": c.kind,
        "channel": c.channel,
        "partner": c.partner,
        "product": c.product,
        "programme": programme.name,
        "rule": timer.rule,
        "template": programme.template,
        "survey_channel": programme.channel,
        "created_at": now,
        "expires_at": now + approx_timedelta(programme.expiry),
        "delivery_status": "pending",
        "delivery_attempts": 0,
        "reminders_planned": programme.reminders if email_survey else 0,
        "reminder_gap_s": int(approx_timedelta(programme.reminder_after).total_seconds()),
        "reminders_sent": 0,
    }


def invitation_info(row: dict[str, Any]) -> InvitationInfo:
    """What the invitation message carries, from a survey_invitations row."""
    return InvitationInfo(
        invitation_id=row["invitation_id"],
        event_id=row["event_id"],
        customer_id=row["customer_id"],
        locale=row["locale"],
        created_at=row["created_at"],
        programme=row.get("programme"),
        template=row.get("template") or "transactional",
        survey_channel=row.get("survey_channel") or "email",
    )
