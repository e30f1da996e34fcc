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
    region: str | None = Field(default=None, max_length=100)  # customer.region, for routing
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


TASK_STATUSES = (
    "open",
    "assigned",
    "contacted",
    "customer_informed",
    "closed",
    "unreachable",
    "cancelled",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class FollowupTask(SQLModel, table=True):
    """Work for service staff: call back an unhappy customer or handle a complaint.

    The customer's contact details are kept here (staff must call them back); they are
    shown in the inbox and never logged. first_contact_due_at and due_at (closure) are SLA
    due times in business hours of the team's calendar; sla_due_at is whichever applies now
    (the inbox sorts by it) and next_escalation_at when the ladder's next step is due.
    """

    __tablename__ = "followup_tasks"
    __table_args__ = (
        CheckConstraint("priority BETWEEN 0 AND 3", name="ck_task_priority"),
        CheckConstraint(_in("status", TASK_STATUSES), name="ck_task_status"),
        CheckConstraint("escalation_level BETWEEN 0 AND 3", name="ck_task_escalation"),
        Index("ix_followup_tasks_customer_status", "customer_id", "status"),
        Index("ix_followup_tasks_team_status_sla", "team", "status", "sla_due_at"),
        Index("ix_followup_tasks_assignee_status", "assignee", "status"),
    )

    task_id: str = Field(primary_key=True, max_length=64)
    origin: str = Field(max_length=20)  # detractor | unhappy | complaint
    source_id: str = Field(unique=True, max_length=200)
    customer_id: str = Field(max_length=200)
    priority: int
    status: str = Field(default="open", max_length=20)
    team: str = Field(default="service", max_length=40)
    assignee: str | None = Field(default=None, max_length=100)
    opened_at: datetime = _utc(nullable=False)
    first_contact_due_at: datetime | None = _utc(nullable=True)
    due_at: datetime = _utc(nullable=False)  # closure due
    sla_due_at: datetime | None = _utc(nullable=True)
    escalation_level: int = 0  # of the current SLA: 1 reminded, 2 lead, 3 manager
    next_escalation_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )
    failed_attempts: int = 0
    contacted_at: datetime | None = _utc(nullable=True)
    informed_at: datetime | None = _utc(nullable=True)
    closed_at: datetime | None = _utc(nullable=True)
    resolution: str | None = Field(default=None, max_length=4000)  # what was done
    told_customer: str | None = Field(default=None, max_length=4000)
    root_cause: str | None = Field(default=None, max_length=40)
    needs_structural_fix: bool | None = None
    structural_fix_id: str | None = Field(
        default=None, foreign_key="structural_fixes.fix_id", max_length=64
    )
    # What opened it, for routing, the inbox and BI.
    nps: int | None = None
    csat: int | None = None
    ces: int | None = None
    comment: str | None = Field(default=None, max_length=4000)
    partner: str | None = Field(default=None, max_length=200)
    product: str | None = Field(default=None, max_length=200)
    channel: str | None = Field(default=None, max_length=20)
    region: str | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, max_length=10)
    # How to reach the customer (personal data: shown to staff, never logged).
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    timezone: str | None = Field(default=None, max_length=64)
    # Recovery: the first answer to a survey after closure, and whether it is no longer
    # a detractor (the BI team's "recovered detractors").
    recovery_response_id: str | None = Field(default=None, max_length=64)
    recovery_nps: int | None = None
    recovered: bool | None = None
    version: int = 0  # bumped on every change; the inbox's live view compares it


class FollowupTaskHistory(SQLModel, table=True):
    """Every change to a task (opened, assigned, action, reminder, escalation, closed):
    who, when and why. Also the outbox of the followup-tasks stream: published_at is set
    once the event is on the topic."""

    __tablename__ = "followup_task_events"
    __table_args__ = (
        UniqueConstraint("task_id", "seq"),
        Index("ix_followup_task_events_unpublished", "published_at", "created_at"),
    )

    event_id: str = Field(primary_key=True, max_length=64)
    task_id: str = Field(foreign_key="followup_tasks.task_id", max_length=64)
    seq: int  # 1, 2, 3 … per task
    event_type: str = Field(max_length=40)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    actor: str = Field(max_length=200)  # a staff user name, or "cxloop" for the system
    reason: str | None = Field(default=None, max_length=4000)
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict)
    )
    occurred_at: datetime = _utc(nullable=False)
    created_at: datetime = _utc(nullable=False)
    # The event as published on followup-tasks and to webhooks, taken when it happened:
    # the task's team, assignee and due times then, not when the relay got to it.
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict)
    )
    published_at: datetime | None = _utc(nullable=True)
    lease_until: datetime | None = _utc(nullable=True)  # a relay is publishing it


class FollowupAction(SQLModel, table=True):
    """What staff did on a task, in order; the action id makes a replay a no-op."""

    __tablename__ = "followup_actions"

    action_id: str = Field(primary_key=True, max_length=64)
    task_id: str = Field(index=True, foreign_key="followup_tasks.task_id")
    type: str = Field(max_length=30)
    note: str = Field(default="", max_length=4000)
    actor: str = Field(max_length=200)
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict)
    )
    recorded_at: datetime = _utc(nullable=False)


class StructuralFix(SQLModel, table=True):
    """The outer loop: a structural fix of a root cause, linked from the tasks it covers."""

    __tablename__ = "structural_fixes"

    fix_id: str = Field(primary_key=True, max_length=64)
    title: str = Field(max_length=200)
    root_cause: str = Field(max_length=40)
    status: str = Field(default="open", max_length=20)  # open | done
    created_by: str = Field(max_length=100)
    created_at: datetime = _utc(nullable=False)


STAFF_ROLES = ("staff", "lead", "admin")


class StaffUser(SQLModel, table=True):
    """A person who works follow-up tasks: staff and leads belong to a team, admins see all."""

    __tablename__ = "staff_users"
    __table_args__ = (CheckConstraint(_in("role", STAFF_ROLES), name="ck_staff_role"),)

    username: str = Field(primary_key=True, max_length=100)
    display_name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    role: str = Field(max_length=10)
    team: str | None = Field(default=None, max_length=40, index=True)
    password_hash: str | None = Field(default=None, max_length=200)  # argon2id
    api_token_hash: str | None = Field(default=None, unique=True, max_length=64)
    active: bool = True
    last_assigned_at: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc(nullable=False)


class StaffSession(SQLModel, table=True):
    """A signed-in inbox session; the cookie holds a random id, the row its hash."""

    __tablename__ = "staff_sessions"

    session_hash: str = Field(primary_key=True, max_length=64)
    username: str = Field(foreign_key="staff_users.username", max_length=100, index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _utc(nullable=False)
    expires_at: datetime = _utc(nullable=False)


class StaffNotification(SQLModel, table=True):
    """An e-mail to staff (SLA reminder, escalation), sent by an outbox sweeper."""

    __tablename__ = "staff_notifications"
    __table_args__ = (Index("ix_staff_notifications_due", "status", "next_attempt_at"),)

    notification_id: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(max_length=64)  # the task event it tells about
    to_address: str = Field(max_length=320)
    subject: str = Field(max_length=300)
    body: str = Field(max_length=20000)
    status: str = Field(default="pending", max_length=20)  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = _utc(nullable=False)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _utc(nullable=False)
    sent_at: datetime | None = _utc(nullable=True)


class WebhookDelivery(SQLModel, table=True):
    """One task event for one webhook endpoint, retried with backoff until delivered."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    delivery_id: str = Field(primary_key=True, max_length=64)  # the webhook-id header
    webhook: str = Field(max_length=40)
    event_id: str = Field(max_length=64)
    payload: str = Field(max_length=100000)  # the exact JSON body that is signed
    status: str = Field(default="pending", max_length=20)  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = _utc(nullable=False)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _utc(nullable=False)
    delivered_at: datetime | None = _utc(nullable=True)


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
