"""cxloop's SQL tables: operational state and what the BI team reads, in one schema.

Rows are written by the agent whose decision they record (the README's table says which),
always keyed on a stable id, so replays update or skip rows instead of duplicating them.
Timestamps are UTC with time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Index,
    LargeBinary,
    TypeDecorator,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamp with time zone, stored in UTC; SQLite gets it back aware, like PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: cxloop stores only aware timestamps")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc(*, nullable: bool) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


class ContactEvent(SQLModel, table=True):
    """A customer contact as received on contact-events (no e-mail address or name kept)."""

    __tablename__ = "contact_events"

    event_id: str = Field(primary_key=True, max_length=200)
    occurred_at: datetime = _utc(nullable=False)
    kind: str = Field(max_length=40)
    channel: str = Field(max_length=20)
    customer_id: str = Field(index=True, max_length=200)
    locale: str | None = Field(default=None, max_length=10)
    partner: str | None = Field(default=None, max_length=200)
    product: str | None = Field(default=None, max_length=200)
    case_id: str | None = Field(default=None, max_length=200)
    received_at: datetime = _utc(nullable=False)


class CustomerContactState(SQLModel, table=True):
    """Per-customer eligibility state: when the customer was last surveyed."""

    __tablename__ = "customer_contact_state"

    customer_id: str = Field(primary_key=True, max_length=200)
    last_surveyed_at: datetime | None = _utc(nullable=True)


class CustomerProgrammeState(SQLModel, table=True):
    """Per customer and programme: when that programme last surveyed the customer (cooldown)."""

    __tablename__ = "customer_programme_state"

    customer_id: str = Field(primary_key=True, max_length=200)
    programme: str = Field(primary_key=True, max_length=100)
    last_surveyed_at: datetime = _utc(nullable=False)


class SurveyDecision(SQLModel, table=True):
    """One decision per contact event and programme (and per repeat of a repeating rule):
    pending while its timer waits, then surveyed or suppressed, with one reason code, the
    programme, the rule and the rules version that applied."""

    __tablename__ = "survey_decisions"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('pending', 'surveyed', 'suppressed')", name="ck_decision_outcome"
        ),
        Index("ix_survey_decisions_customer_decided", "customer_id", "decided_at"),
    )

    decision_id: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(index=True, max_length=200)
    customer_id: str = Field(max_length=200)
    programme: str | None = Field(default=None, max_length=100)
    rule: str | None = Field(default=None, max_length=100)
    rules_version: str = Field(max_length=120)
    repeat: int = 0  # 0 for the event's own decision, n for the n-th repeat
    outcome: str = Field(max_length=20)
    reason: str = Field(max_length=40)
    due_at: datetime | None = _utc(nullable=True)
    invitation_id: str | None = Field(default=None, max_length=64)
    decided_at: datetime = _utc(nullable=False)
    resolved_at: datetime | None = _utc(nullable=True)


class SurveyTimer(SQLModel, table=True):
    """A pending decision's timer: when it is due, and what the survey needs then.

    Deleted when the decision resolves. Due timers are found through the due_at index,
    so a million pending timers cost no full scan per tick.
    """

    __tablename__ = "survey_timers"
    __table_args__ = (Index("ix_survey_timers_customer_programme", "customer_id", "programme"),)

    decision_id: str = Field(primary_key=True, max_length=64)
    customer_id: str = Field(max_length=200)
    programme: str = Field(max_length=100)
    rule: str = Field(max_length=100)
    episode: str = Field(max_length=220)  # what a later event on the same episode replaces
    event_id: str = Field(max_length=200)
    repeat: int = 0
    first_due_at: datetime = _utc(nullable=False)
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    locale: str = Field(max_length=10)
    timezone: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=40)
    channel: str = Field(max_length=20)
    partner: str | None = Field(default=None, max_length=200)
    product: str | None = Field(default=None, max_length=200)


class SurveyInvitation(SQLModel, table=True):
    """A survey sent (or to be sent) to one customer, and its e-mail delivery; for a phone
    survey delivery_attempts counts unanswered calls and 'failed' means not reachable."""

    __tablename__ = "survey_invitations"
    __table_args__ = (
        CheckConstraint(
            "delivery_status IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')",
            name="ck_invitation_delivery_status",
        ),
    )

    invitation_id: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(index=True, max_length=200)
    customer_id: str = Field(index=True, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    locale: str = Field(max_length=10)
    kind: str = Field(max_length=40)
    channel: str = Field(max_length=20)
    partner: str | None = Field(default=None, max_length=200)
    product: str | None = Field(default=None, max_length=200)
    programme: str | None = Field(default=None, max_length=100)
    rule: str | None = Field(default=None, max_length=100)
    template: str = Field(default="transactional", max_length=100)
    survey_channel: str = Field(default="email", max_length=10)  # 'email' or 'phone'
    decision_id: str | None = Field(default=None, max_length=64)
    reminders_planned: int = 0
    reminder_gap_s: int = 0
    reminders_sent: int = 0
    next_reminder_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )
    created_at: datetime = _utc(nullable=False)
    token_hash: str | None = Field(default=None, unique=True, max_length=64)
    expires_at: datetime | None = _utc(nullable=True)
    delivery_status: str = Field(default="pending", max_length=20)
    delivery_attempts: int = 0
    delivery_error: str | None = Field(default=None, max_length=500)
    sent_at: datetime | None = _utc(nullable=True)
    answered_at: datetime | None = _utc(nullable=True)


class SurveyReminder(SQLModel, table=True):
    """A reminder mail to a customer who has not answered; its link is a token of its own."""

    __tablename__ = "survey_reminders"
    __table_args__ = (
        CheckConstraint(
            "delivery_status IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')",
            name="ck_reminder_delivery_status",
        ),
        UniqueConstraint("invitation_id", "number"),
    )

    reminder_id: str = Field(primary_key=True, max_length=64)
    invitation_id: str = Field(foreign_key="survey_invitations.invitation_id", max_length=64)
    number: int
    created_at: datetime = _utc(nullable=False)
    token_hash: str | None = Field(default=None, unique=True, max_length=64)
    delivery_status: str = Field(default="pending", max_length=20)
    delivery_attempts: int = 0
    delivery_error: str | None = Field(default=None, max_length=500)
    sent_at: datetime | None = _utc(nullable=True)


class SurveyResponse(SQLModel, table=True):
    """A customer's answer; one per invitation."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        CheckConstraint("nps IS NULL OR (nps BETWEEN 0 AND 10)", name="ck_response_nps"),
        CheckConstraint("csat IS NULL OR (csat BETWEEN 1 AND 5)", name="ck_response_csat"),
        CheckConstraint("ces IS NULL OR (ces BETWEEN 1 AND 7)", name="ck_response_ces"),
        Index("ix_survey_responses_unpublished", "published_at"),
    )

    response_id: str = Field(primary_key=True, max_length=64)
    invitation_id: str = Field(unique=True, foreign_key="survey_invitations.invitation_id")
    customer_id: str = Field(index=True, max_length=200)
    nps: int | None = None
    csat: int | None = None
    ces: int | None = None
    comment: str | None = Field(default=None, max_length=4000)
    # Every validated answer by question id (models.survey_templates); nps/csat/ces/comment
    # above are the headline values taken from it, kept as columns for BI and scoring.
    answers: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict)
    )
    submitted_at: datetime = _utc(nullable=False)
    # Who entered the answer for a phone survey; None when the customer answered online.
    interviewer: str | None = Field(default=None, max_length=200)
    published_at: datetime | None = _utc(nullable=True)
    nps_category: str | None = Field(default=None, max_length=10)
    csat_satisfied: bool | None = None
    scored_at: datetime | None = _utc(nullable=True)


class FollowupTask(SQLModel, table=True):
    """Work for service staff: call back a detractor or handle a complaint."""

    __tablename__ = "followup_tasks"
    __table_args__ = (
        CheckConstraint("priority BETWEEN 0 AND 3", name="ck_task_priority"),
        CheckConstraint(
            "status IN ('open', 'contacted', 'resolved', 'closed')", name="ck_task_status"
        ),
        Index("ix_followup_tasks_customer_status", "customer_id", "status"),
    )

    task_id: str = Field(primary_key=True, max_length=64)
    origin: str = Field(max_length=20)
    source_id: str = Field(unique=True, max_length=200)
    customer_id: str = Field(max_length=200)
    priority: int
    status: str = Field(default="open", max_length=20)
    opened_at: datetime = _utc(nullable=False)
    due_at: datetime = _utc(nullable=False)
    closed_at: datetime | None = _utc(nullable=True)


class FollowupAction(SQLModel, table=True):
    """What staff did on a task, in order."""

    __tablename__ = "followup_actions"

    action_id: str = Field(primary_key=True, max_length=64)
    task_id: str = Field(index=True, foreign_key="followup_tasks.task_id")
    type: str = Field(max_length=30)
    note: str = Field(default="", max_length=4000)
    actor: str = Field(max_length=200)
    recorded_at: datetime = _utc(nullable=False)


class DeadLetter(SQLModel, table=True):
    """Input that could not be processed: where it came from, why, and its bytes."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("source_topic", "partition", "offset"),)

    dead_letter_id: str = Field(primary_key=True, max_length=64)
    source_topic: str = Field(max_length=200)
    partition: int
    offset: int
    reason: str = Field(max_length=1000)
    original: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    received_at: datetime = _utc(nullable=False)


class CustomerConsent(SQLModel, table=True):
    """The latest consent change per customer and channel ('email', 'phone' or 'all').

    Last writer wins by changed_at (on a tie an opt-out beats an opt-in, then the larger
    consent_id), so a late or replayed older change never overwrites a newer one.
    """

    __tablename__ = "customer_consent"
    __table_args__ = (
        CheckConstraint("channel IN ('email', 'phone', 'all')", name="ck_consent_channel"),
        CheckConstraint("status IN ('opted_out', 'opted_in')", name="ck_consent_status"),
    )

    customer_id: str = Field(primary_key=True, max_length=200)
    channel: str = Field(primary_key=True, max_length=10)
    status: str = Field(max_length=20)
    changed_at: datetime = _utc(nullable=False)
    source: str = Field(max_length=40)
    consent_id: str = Field(max_length=64)
    recorded_at: datetime = _utc(nullable=False)
