"""cxloop's SQL tables: operational state and what the BI team reads, in one schema.

Rows are written by the agent whose decision they record (the README's table says which),
always keyed on a stable id, so replays update or skip rows instead of duplicating them.
Timestamps are UTC with time zone (UTCDateTime): timestamptz on PostgreSQL, ISO 8601 text with
+00:00 on SQLite.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
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
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeEngine
from sqlmodel import Field, SQLModel

from models.store.errors import StoreError


class TimestampNaiveError(StoreError, ValueError):
    """A datetime without a time zone was given for a timestamp column."""


# How SQLite stores a timestamp: ISO 8601 text with its offset, always UTC, always with
# microseconds, e.g. 2026-12-04T17:05:00.123456+00:00. One fixed width and one offset keep
# SQLite's text comparison (range filters, ORDER BY, due timers) in time order, BI tools
# read the offset instead of guessing a zone, and SQLite's date functions accept it.
# Migration 0003_utc_iso_timestamps rewrote older rows (`2026-12-04 17:05:00.123456`).
SQLITE_TIMESTAMP_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02dT%(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d+00:00"
)

_SQLITE_TIMESTAMP = sqlite.DATETIME(  # type: ignore[no-untyped-call]  # no annotations in SA
    timezone=True, storage_format=SQLITE_TIMESTAMP_FORMAT
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamp with time zone, stored in UTC: timestamptz on PostgreSQL, ISO 8601 text
    with +00:00 on SQLite (SQLITE_TIMESTAMP_FORMAT); read back aware in UTC on both.

    Aware datetimes in any zone are converted to UTC on the way in. Naive ones are refused
    (TimestampNaiveError) rather than taken as UTC: every timestamp cxloop writes comes from
    an aware clock or an aware wire field, so a naive one is a bug whose zone nobody knows.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLITE_TIMESTAMP)
        return dialect.type_descriptor(self.impl_instance)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise TimestampNaiveError(
                f"naive datetime {value.isoformat()}: cxloop stores only aware timestamps"
            )
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        # SQLite parses its text with datetime.fromisoformat: aware for the stored format,
        # naive only for a value written before 0003 (UTC then too).
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Meanings several tables share (a field's description becomes its column's comment).
_CUSTOMER_ID = "customer's id in the source systems (pseudonymous personal data)"
_PROGRAMME = "survey programme (name in the survey rules file)"
_PARTNER = "business partner the contact concerns; null if none"
_PRODUCT = "product the contact concerns; null if none"
_KIND = "contact kind, e.g. purchase, inquiry, support_contact, complaint, cancellation"
_CONTACT_KIND = "kind of the contact surveyed (as contact_events.kind)"
_CONTACT_CHANNEL = "channel of the contact surveyed (as contact_events.channel)"
_MAIL_STATUS = "pending | sending | sent | failed | unknown (maybe sent) | cancelled"
_LINK_DIGEST = "SHA-256 (hex) of the link's token, never the token; null until sent"
_STAFF_USER = "staff user (staff_users.username; personal data)"
_TASK_EVENT = "task event it is about (followup_task_events.event_id)"


def _utc(*, nullable: bool, description: str) -> Any:
    """A UTC timestamp column; *description* becomes its comment (what it means for BI)."""
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable), description=description)


class ContactEvent(SQLModel, table=True):
    """A customer contact as received on contact-events (no e-mail address or name kept)."""

    __tablename__ = "contact_events"
    __table_args__ = (
        Index("ix_contact_events_occurred", "occurred_at"),
        Index("ix_contact_events_case", "case_id", "occurred_at"),
    )

    event_id: str = Field(
        primary_key=True, max_length=200, description="contact event id from the source system"
    )
    occurred_at: datetime = _utc(nullable=False, description="when the contact happened")
    kind: str = Field(max_length=40, description=_KIND)
    channel: str = Field(
        max_length=20,
        description="channel of the contact: phone | email | chat | shop | web | social",
    )
    customer_id: str = Field(index=True, max_length=200, description=_CUSTOMER_ID)
    locale: str | None = Field(
        default=None,
        max_length=10,
        description="customer's language as sent (e.g. nl); null if not given",
    )
    partner: str | None = Field(default=None, max_length=200, description=_PARTNER)
    product: str | None = Field(default=None, max_length=200, description=_PRODUCT)
    case_id: str | None = Field(
        default=None,
        max_length=200,
        description="case id in the source system: contacts about one issue share it; null if none",
    )
    region: str | None = Field(
        default=None,
        max_length=100,
        description="customer's region (customer.region), for task routing; null if not given",
    )
    inquiry_type: str | None = Field(
        default=None,
        max_length=40,
        description="inquiry type (e.g. billing, fault, order), for reporting; null if not given",
    )
    team: str | None = Field(
        default=None, max_length=40, description="team that handled the contact; null if not given"
    )
    received_at: datetime = _utc(nullable=False, description="when cxloop recorded the contact")


class CustomerContactState(SQLModel, table=True):
    """Per-customer eligibility state: when the customer was last surveyed."""

    __tablename__ = "customer_contact_state"

    customer_id: str = Field(primary_key=True, max_length=200, description=_CUSTOMER_ID)
    last_surveyed_at: datetime | None = _utc(
        nullable=True,
        description="when any programme last surveyed the customer (global cap); null = never",
    )


class CustomerProgrammeState(SQLModel, table=True):
    """Per customer and programme: when that programme last surveyed the customer (cooldown)."""

    __tablename__ = "customer_programme_state"

    customer_id: str = Field(primary_key=True, max_length=200, description=_CUSTOMER_ID)
    programme: str = Field(primary_key=True, max_length=100, description=_PROGRAMME)
    last_surveyed_at: datetime = _utc(
        nullable=False, description="when this programme last surveyed the customer (cooldown)"
    )


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

    decision_id: str = Field(
        primary_key=True,
        max_length=64,
        description="decision id (UUID derived from event, programme and repeat)",
    )
    event_id: str = Field(
        index=True, max_length=200, description="contact decided on (contact_events.event_id)"
    )
    customer_id: str = Field(max_length=200, description=_CUSTOMER_ID)
    programme: str | None = Field(
        default=None,
        max_length=100,
        description="survey programme that decided; null when no programme's rule matched",
    )
    rule: str | None = Field(
        default=None,
        max_length=100,
        description="rule of the programme that matched; null when none matched",
    )
    rules_version: str = Field(
        max_length=120,
        description="survey rules file in force: <version>@<first 12 hex of its SHA-256>",
    )
    repeat: int = Field(
        default=0,
        description="0 = the contact's own decision; n = n-th repeat of a repeating rule",
    )
    outcome: str = Field(max_length=20, description="pending | surveyed | suppressed")
    reason: str = Field(
        max_length=40,
        description="reason code, e.g. scheduled, surveyed, sampled_out, opted_out (see README)",
    )
    due_at: datetime | None = _utc(
        nullable=True,
        description="when the survey is or was due (moves if deferred); null if never scheduled",
    )
    invitation_id: str | None = Field(
        default=None,
        max_length=64,
        description="survey sent (survey_invitations.invitation_id); null unless surveyed",
    )
    decided_at: datetime = _utc(nullable=False, description="when the decision was recorded")
    resolved_at: datetime | None = _utc(
        nullable=True, description="when the outcome became final; null while pending"
    )


class SurveyTimer(SQLModel, table=True):
    """A pending decision's timer: when it is due, and what the survey needs then.

    Deleted when the decision resolves. Due timers are found through the due_at index,
    so a million pending timers cost no full scan per tick.
    """

    __tablename__ = "survey_timers"
    __table_args__ = (Index("ix_survey_timers_customer_programme", "customer_id", "programme"),)

    decision_id: str = Field(
        primary_key=True,
        max_length=64,
        description="the pending decision (survey_decisions.decision_id)",
    )
    customer_id: str = Field(max_length=200, description=_CUSTOMER_ID)
    programme: str = Field(max_length=100, description=_PROGRAMME)
    rule: str = Field(max_length=100, description="rule of the programme that started the timer")
    episode: str = Field(
        max_length=220,
        description="what a later contact replaces: case:<case_id>, customer or event:<event_id>",
    )
    event_id: str = Field(
        max_length=200, description="contact that started it (contact_events.event_id)"
    )
    repeat: int = Field(
        default=0, description="0 = the contact's own survey; n = n-th repeat of a repeating rule"
    )
    first_due_at: datetime = _utc(
        nullable=False, description="when the survey first fell due (expiry counts from it)"
    )
    due_at: datetime = Field(
        sa_column=Column(UTCDateTime(), nullable=False, index=True),
        description="when the survey is due now (later than first_due_at if deferred)",
    )
    email: str | None = Field(
        default=None, max_length=320, description="personal data: the customer's e-mail address"
    )
    phone: str | None = Field(
        default=None, max_length=40, description="personal data: the customer's phone number"
    )
    name: str | None = Field(
        default=None, max_length=200, description="personal data: the customer's name"
    )
    locale: str = Field(
        max_length=10, description="survey language: customer's locale, lower case (en if none)"
    )
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="customer's IANA time zone; null = the survey rules' default",
    )
    kind: str = Field(max_length=40, description=_CONTACT_KIND)
    channel: str = Field(max_length=20, description=_CONTACT_CHANNEL)
    partner: str | None = Field(default=None, max_length=200, description=_PARTNER)
    product: str | None = Field(default=None, max_length=200, description=_PRODUCT)


class SurveyInvitation(SQLModel, table=True):
    """A survey sent (or to be sent) to one customer, and its e-mail delivery; for a phone
    survey delivery_attempts counts unanswered calls and 'failed' means not reachable."""

    __tablename__ = "survey_invitations"
    __table_args__ = (
        CheckConstraint(
            "delivery_status IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')",
            name="ck_invitation_delivery_status",
        ),
        CheckConstraint("survey_channel IN ('email', 'phone')", name="ck_invitation_channel"),
        Index("ix_survey_invitations_created", "created_at"),
    )

    invitation_id: str = Field(
        primary_key=True, max_length=64, description="survey id (UUID derived from the decision)"
    )
    event_id: str = Field(
        index=True, max_length=200, description="contact surveyed (contact_events.event_id)"
    )
    customer_id: str = Field(index=True, max_length=200, description=_CUSTOMER_ID)
    email: str | None = Field(
        default=None,
        max_length=320,
        description="personal data: e-mail address surveyed; null for a phone survey",
    )
    phone: str | None = Field(
        default=None,
        max_length=40,
        description="personal data: phone number to call; null for an e-mail survey",
    )
    name: str | None = Field(
        default=None, max_length=200, description="personal data: the customer's name"
    )
    locale: str = Field(max_length=10, description="survey language (lower case, e.g. nl)")
    kind: str = Field(max_length=40, description=_CONTACT_KIND)
    channel: str = Field(max_length=20, description=_CONTACT_CHANNEL)
    partner: str | None = Field(default=None, max_length=200, description=_PARTNER)
    product: str | None = Field(default=None, max_length=200, description=_PRODUCT)
    programme: str | None = Field(
        default=None, max_length=100, description="survey programme that issued it"
    )
    rule: str | None = Field(
        default=None, max_length=100, description="rule of the programme that matched the contact"
    )
    template: str = Field(
        default="transactional",
        max_length=100,
        description="survey template: transactional | support | relationship | complaint_handling",
    )
    survey_channel: str = Field(
        default="email", max_length=10, description="how the survey is taken: email | phone"
    )
    decision_id: str | None = Field(
        default=None,
        max_length=64,
        description="decision that issued it (survey_decisions.decision_id)",
    )
    reminders_planned: int = Field(
        default=0, description="reminders to send while unanswered (0-3; 0 for phone surveys)"
    )
    reminder_gap_s: int = Field(
        default=0, description="seconds from sending to the first reminder, and between reminders"
    )
    reminders_sent: int = Field(default=0, description="reminders created so far")
    next_reminder_at: datetime | None = Field(
        default=None,
        sa_column=Column(UTCDateTime(), nullable=True, index=True),
        description="when the next reminder is due; null when none is",
    )
    created_at: datetime = _utc(nullable=False, description="when the survey was issued")
    token_hash: str | None = Field(
        default=None, unique=True, max_length=64, description=_LINK_DIGEST
    )
    expires_at: datetime | None = _utc(
        nullable=True, description="when the survey link expires (programme expiry after sending)"
    )
    delivery_status: str = Field(
        default="pending",
        max_length=20,
        description=_MAIL_STATUS + "; phone: sent = interviewed",
    )
    delivery_attempts: int = Field(
        default=0, description="e-mail send attempts; phone: calls without an interview"
    )
    delivery_error: str | None = Field(
        default=None,
        max_length=500,
        description="last error or stop reason; phone: call outcome, interviewer (personal data)",
    )
    sent_at: datetime | None = _utc(
        nullable=True, description="when the e-mail went out; phone: when the interview was taken"
    )
    answered_at: datetime | None = _utc(
        nullable=True, description="when the survey was answered; null = not answered"
    )


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

    reminder_id: str = Field(
        primary_key=True,
        max_length=64,
        description="reminder id (UUID derived from invitation and number)",
    )
    invitation_id: str = Field(
        foreign_key="survey_invitations.invitation_id",
        max_length=64,
        description="survey it reminds of (survey_invitations.invitation_id)",
    )
    number: int = Field(description="1 for the survey's first reminder, 2 for the second, etc.")
    created_at: datetime = _utc(nullable=False, description="when the reminder fell due")
    token_hash: str | None = Field(
        default=None, unique=True, max_length=64, description=_LINK_DIGEST
    )
    delivery_status: str = Field(default="pending", max_length=20, description=_MAIL_STATUS)
    delivery_attempts: int = Field(default=0, description="e-mail send attempts")
    delivery_error: str | None = Field(
        default=None,
        max_length=500,
        description="last delivery error, or why it was cancelled (answered, expired, opted_out)",
    )
    sent_at: datetime | None = _utc(nullable=True, description="when the e-mail went out")


class SurveyResponse(SQLModel, table=True):
    """A customer's answer; one per invitation."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        CheckConstraint("nps IS NULL OR (nps BETWEEN 0 AND 10)", name="ck_response_nps"),
        CheckConstraint("csat IS NULL OR (csat BETWEEN 1 AND 5)", name="ck_response_csat"),
        CheckConstraint("ces IS NULL OR (ces BETWEEN 1 AND 7)", name="ck_response_ces"),
        Index("ix_survey_responses_unpublished", "published_at"),
        Index("ix_survey_responses_submitted", "submitted_at"),
    )

    response_id: str = Field(primary_key=True, max_length=64, description="answer id (UUID)")
    invitation_id: str = Field(
        unique=True,
        foreign_key="survey_invitations.invitation_id",
        description="survey answered (survey_invitations.invitation_id)",
    )
    customer_id: str = Field(index=True, max_length=200, description=_CUSTOMER_ID)
    nps: int | None = Field(default=None, description="NPS score 0-10; null if not answered")
    csat: int | None = Field(
        default=None, description="CSAT score 1-5 (5 = very satisfied); null if not answered"
    )
    ces: int | None = Field(
        default=None, description="CES score 1-7 (7 = easiest); null if not answered"
    )
    comment: str | None = Field(
        default=None,
        max_length=4000,
        description="personal data: the customer's open comment (free text); null if none",
    )
    # nps/csat/ces/comment above are the headline values taken from answers (validated by
    # models.survey_templates), kept as columns for BI and scoring.
    answers: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, default=dict),
        description="every answer by question id (JSON); free text in it is personal data",
    )
    submitted_at: datetime = _utc(nullable=False, description="when the answer was submitted")
    interviewer: str | None = Field(
        default=None,
        max_length=200,
        description="personal data: interviewer who took a phone survey; null if answered online",
    )
    published_at: datetime | None = _utc(
        nullable=True, description="when put on the survey-responses topic; null = not yet"
    )
    nps_category: str | None = Field(
        default=None,
        max_length=10,
        description="promoter (9-10) | passive (7-8) | detractor (0-6); null without NPS",
    )
    csat_satisfied: bool | None = Field(
        default=None, description="true for CSAT 4-5 (top-2 box), false for 1-3; null without CSAT"
    )
    scored_at: datetime | None = _utc(
        nullable=True, description="when scored and counted in agg_scores; null = not yet"
    )


TASK_STATUSES = (
    "open",
    "assigned",
    "contacted",
    "customer_informed",
    "closed",
    "unreachable",
    "cancelled",
)


_TASK_STATUS = " | ".join(TASK_STATUSES)


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
        Index("ix_followup_tasks_opened", "opened_at"),
    )

    task_id: str = Field(
        primary_key=True,
        max_length=64,
        description="task id (UUID derived from the answer or complaint that opened it)",
    )
    origin: str = Field(
        max_length=20,
        description="what opened it: detractor (NPS) | unhappy (CSAT/CES) | complaint",
    )
    source_id: str = Field(
        unique=True,
        max_length=200,
        description="survey_responses.response_id, or contact_events.event_id for a complaint",
    )
    customer_id: str = Field(max_length=200, description=_CUSTOMER_ID)
    priority: int = Field(description="0 high | 1 normal | 2 low")
    status: str = Field(
        default="open",
        max_length=20,
        description=_TASK_STATUS,
    )
    team: str = Field(
        default="service", max_length=40, description="team the task is routed to (follow-up rules)"
    )
    assignee: str | None = Field(
        default=None,
        max_length=100,
        description="working on it: " + _STAFF_USER + "; null = unassigned",
    )
    opened_at: datetime = _utc(
        nullable=False, description="when the answer was submitted or the complaint happened"
    )
    first_contact_due_at: datetime | None = _utc(
        nullable=True, description="SLA due time of the first contact with the customer"
    )
    due_at: datetime = _utc(nullable=False, description="SLA due time of the task's closure")
    sla_due_at: datetime | None = _utc(
        nullable=True,
        description="due time of the SLA measured now (first contact, then closure)",
    )
    escalation_level: int = Field(
        default=0,
        description="step reached on the current SLA: 0 none, 1 reminded, 2 lead, 3 manager",
    )
    next_escalation_at: datetime | None = Field(
        default=None,
        sa_column=Column(UTCDateTime(), nullable=True, index=True),
        description="when the next escalation step is due; null when none is",
    )
    failed_attempts: int = Field(default=0, description="unanswered calls to the customer")
    contacted_at: datetime | None = _utc(
        nullable=True, description="when staff first reached the customer; null = not yet"
    )
    informed_at: datetime | None = _utc(
        nullable=True, description="when the customer was told what was done; null = not yet"
    )
    closed_at: datetime | None = _utc(
        nullable=True, description="when the task was closed or cancelled; null while active"
    )
    resolution: str | None = Field(
        default=None,
        max_length=4000,
        description="personal data: staff's note of what was done (free text)",
    )
    told_customer: str | None = Field(
        default=None,
        max_length=4000,
        description="personal data: what the customer was told (free text)",
    )
    root_cause: str | None = Field(
        default=None,
        max_length=40,
        description="root cause given at closure (list in the follow-up rules); null until closed",
    )
    needs_structural_fix: bool | None = Field(
        default=None, description="whether the cause needs a structural fix; null until closed"
    )
    structural_fix_id: str | None = Field(
        default=None,
        foreign_key="structural_fixes.fix_id",
        max_length=64,
        description="structural fix it is linked to (structural_fixes.fix_id); null if none",
    )
    # What opened it, for routing, the inbox and BI.
    nps: int | None = Field(
        default=None, description="NPS 0-10 of the answer that opened it; null if none"
    )
    csat: int | None = Field(
        default=None, description="CSAT 1-5 of the answer that opened it; null if none"
    )
    ces: int | None = Field(
        default=None, description="CES 1-7 of the answer that opened it; null if none"
    )
    comment: str | None = Field(
        default=None,
        max_length=4000,
        description="personal data: the customer's comment or complaint text (free text)",
    )
    partner: str | None = Field(default=None, max_length=200, description=_PARTNER)
    product: str | None = Field(default=None, max_length=200, description=_PRODUCT)
    channel: str | None = Field(
        default=None,
        max_length=20,
        description="channel of the contact (as contact_events.channel)",
    )
    region: str | None = Field(
        default=None, max_length=100, description="customer's region (routing); null if not known"
    )
    language: str | None = Field(
        default=None,
        max_length=10,
        description="customer's language (locale, e.g. nl); null if not known",
    )
    # How to reach the customer (shown to staff, never logged).
    name: str | None = Field(
        default=None, max_length=200, description="personal data: the customer's name"
    )
    email: str | None = Field(
        default=None, max_length=320, description="personal data: the customer's e-mail address"
    )
    phone: str | None = Field(
        default=None, max_length=40, description="personal data: the customer's phone number"
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="customer's IANA time zone; null if not known"
    )
    # Recovery: the first answer to a survey after closure (the BI team's "recovered
    # detractors").
    recovery_response_id: str | None = Field(
        default=None,
        max_length=64,
        description="answer to the recovery survey after closure (survey_responses.response_id)",
    )
    recovery_nps: int | None = Field(
        default=None, description="NPS 0-10 of the recovery answer; null if none"
    )
    recovered: bool | None = Field(
        default=None,
        description="recovery answer no longer a detractor (NPS 7+, else CSAT 3+); null = none",
    )
    version: int = Field(  # the inbox's live view compares it
        default=0,
        description="changes so far: seq of the task's latest followup_task_events row",
    )


class FollowupTaskHistory(SQLModel, table=True):
    """Every change to a task (opened, assigned, action, reminder, escalation, closed):
    who, when and why. Also the outbox of the followup-tasks stream: published_at is set
    once the event is on the topic."""

    __tablename__ = "followup_task_events"
    __table_args__ = (
        UniqueConstraint("task_id", "seq"),
        CheckConstraint(_in("to_status", TASK_STATUSES), name="ck_task_event_status"),
        CheckConstraint("seq >= 1", name="ck_task_event_seq"),
        Index("ix_followup_task_events_unpublished", "published_at", "created_at"),
    )

    event_id: str = Field(
        primary_key=True, max_length=64, description="event id (UUID derived from task and seq)"
    )
    task_id: str = Field(
        foreign_key="followup_tasks.task_id",
        max_length=64,
        description="task changed (followup_tasks.task_id)",
    )
    seq: int = Field(description="number of the change within its task: 1, 2, 3, ...")
    event_type: str = Field(
        max_length=40,
        description="task_opened, task_assigned, task_action_recorded, task_closed, etc. (README)",
    )
    from_status: str | None = Field(
        default=None, max_length=20, description="task status before; null for task_opened"
    )
    to_status: str = Field(max_length=20, description="status after: " + _TASK_STATUS)
    actor: str = Field(
        max_length=200,
        description="who: staff_users.username (personal data), cxloop (system) or api",
    )
    reason: str | None = Field(
        default=None,
        max_length=4000,
        description="why: system text, or the staff note (free text, may hold personal data)",
    )
    details: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, default=dict),
        description="what changed (JSON): action_type, assignee (personal data), SLA step, etc.",
    )
    action_id: str | None = Field(
        default=None,
        max_length=64,
        index=True,
        description="staff action behind it (followup_actions.action_id); null if none",
    )
    occurred_at: datetime = _utc(nullable=False, description="when the change happened")
    created_at: datetime = _utc(nullable=False, description="when the row was written")
    # Taken when it happened: the task's team, assignee and due times then, not when the
    # relay got to it.
    payload: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, default=dict),
        description="the event as published to followup-tasks and webhooks (JSON, no contact data)",
    )
    published_at: datetime | None = _utc(
        nullable=True, description="when put on the followup-tasks topic; null = not yet"
    )
    lease_until: datetime | None = _utc(
        nullable=True, description="a relay is publishing it until then (technical)"
    )


class FollowupAction(SQLModel, table=True):
    """What staff did on a task, in order; the action id makes a replay a no-op."""

    __tablename__ = "followup_actions"

    action_id: str = Field(
        primary_key=True,
        max_length=64,
        description="action id (UUID; from Idempotency-Key if given)",
    )
    task_id: str = Field(
        index=True,
        foreign_key="followup_tasks.task_id",
        description="task acted on (followup_tasks.task_id)",
    )
    type: str = Field(
        max_length=30,
        description="assign | call_attempt | no_answer | resolved | customer_informed | close "
        "| cancel | note | refused",
    )
    note: str = Field(
        default="",
        max_length=4000,
        description="personal data: the staff member's note (free text); '' if none",
    )
    actor: str = Field(
        max_length=200,
        description="who: staff_users.username (personal data), or api for an integration",
    )
    details: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, default=dict),
        description="the action's details (JSON): assignee (personal data), root_cause, etc.",
    )
    recorded_at: datetime = _utc(nullable=False, description="when the action was applied")


class StructuralFix(SQLModel, table=True):
    """The outer loop: a structural fix of a root cause, linked from the tasks it covers."""

    __tablename__ = "structural_fixes"
    __table_args__ = (CheckConstraint("status IN ('open', 'done')", name="ck_fix_status"),)

    fix_id: str = Field(
        primary_key=True, max_length=64, description="fix id (UUID derived from cause and title)"
    )
    title: str = Field(max_length=200, description="what is to be fixed (staff-written title)")
    root_cause: str = Field(
        max_length=40, description="root cause it fixes (as followup_tasks.root_cause)"
    )
    status: str = Field(default="open", max_length=20, description="open | done")
    created_by: str = Field(max_length=100, description="created by: " + _STAFF_USER)
    created_at: datetime = _utc(nullable=False, description="when the fix was created")


STAFF_ROLES = ("staff", "lead", "admin")


class StaffUser(SQLModel, table=True):
    """A person who works follow-up tasks: staff and leads belong to a team, admins see all."""

    __tablename__ = "staff_users"
    __table_args__ = (CheckConstraint(_in("role", STAFF_ROLES), name="ck_staff_role"),)

    username: str = Field(
        primary_key=True, max_length=100, description="personal data: sign-in name (lower case)"
    )
    display_name: str = Field(
        max_length=200, description="personal data: the name shown in the inbox"
    )
    email: str | None = Field(
        default=None,
        max_length=320,
        description="personal data: e-mail for SLA reminders and escalations; null if none",
    )
    role: str = Field(
        max_length=10, description="staff | lead | admin (admins see every team's tasks)"
    )
    team: str | None = Field(
        default=None,
        max_length=40,
        index=True,
        description="team (follow-up rules); null for an admin without a team",
    )
    password_hash: str | None = Field(
        default=None,
        max_length=200,
        description="argon2id hash of the password (secret); null = no password sign-in",
    )
    api_token_hash: str | None = Field(
        default=None,
        unique=True,
        max_length=64,
        description="SHA-256 (hex) of the personal API token (secret); null = none",
    )
    active: bool = Field(default=True, description="false once deactivated: cannot sign in")
    last_assigned_at: datetime | None = _utc(
        nullable=True, description="when a task was last assigned to them automatically"
    )
    created_at: datetime = _utc(nullable=False, description="when the account was created")


class StaffSession(SQLModel, table=True):
    """A signed-in inbox session; the cookie holds a random id, the row its hash."""

    __tablename__ = "staff_sessions"

    session_hash: str = Field(
        primary_key=True,
        max_length=64,
        description="SHA-256 (hex) of the session cookie's random id (secret)",
    )
    username: str = Field(
        foreign_key="staff_users.username",
        max_length=100,
        index=True,
        description="signed-in " + _STAFF_USER,
    )
    csrf_token: str = Field(max_length=64, description="the session's CSRF token (secret)")
    created_at: datetime = _utc(nullable=False, description="when the user signed in")
    expires_at: datetime = _utc(nullable=False, description="when the session ends")


class StaffNotification(SQLModel, table=True):
    """An e-mail to staff (SLA reminder, escalation), sent by an outbox sweeper."""

    __tablename__ = "staff_notifications"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name="ck_staff_notification_status"
        ),
        Index("ix_staff_notifications_due", "status", "next_attempt_at"),
    )

    notification_id: str = Field(
        primary_key=True,
        max_length=64,
        description="notification id (hash of task event and recipient)",
    )
    event_id: str = Field(max_length=64, description=_TASK_EVENT)
    to_address: str = Field(
        max_length=320, description="personal data: the recipient's e-mail address"
    )
    subject: str = Field(max_length=300, description="e-mail subject")
    body: str = Field(
        max_length=20000,
        description="e-mail text: task id, team, assignee (personal data), status, due time",
    )
    status: str = Field(default="pending", max_length=20, description="pending | sent | failed")
    attempts: int = Field(default=0, description="send attempts so far")
    next_attempt_at: datetime = _utc(
        nullable=False, description="when the next send attempt is due (while pending)"
    )
    last_error: str | None = Field(
        default=None, max_length=500, description="last send error; null if none"
    )
    created_at: datetime = _utc(nullable=False, description="when the e-mail was queued")
    sent_at: datetime | None = _utc(nullable=True, description="when it was sent; null = not yet")


class WebhookDelivery(SQLModel, table=True):
    """One task event for one webhook endpoint, retried with backoff until delivered."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name="ck_webhook_delivery_status"
        ),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    delivery_id: str = Field(
        primary_key=True,
        max_length=64,
        description="delivery id, sent as the webhook-id header (msg_ + hash)",
    )
    webhook: str = Field(
        max_length=40, description="receiving webhook (name in the follow-up rules)"
    )
    event_id: str = Field(max_length=64, description=_TASK_EVENT)
    payload: str = Field(
        max_length=100000,
        description="the exact JSON body that is signed and sent (holds customer_id)",
    )
    status: str = Field(
        default="pending", max_length=20, description="pending | delivered | failed"
    )
    attempts: int = Field(default=0, description="delivery attempts so far")
    next_attempt_at: datetime = _utc(
        nullable=False, description="when the next attempt is due (while pending)"
    )
    last_status: int | None = Field(
        default=None, description="HTTP status of the last attempt; null if no answer came"
    )
    last_error: str | None = Field(
        default=None, max_length=500, description="last attempt's error; null if none"
    )
    created_at: datetime = _utc(nullable=False, description="when the delivery was queued")
    delivered_at: datetime | None = _utc(
        nullable=True, description="when the receiver accepted it (2xx); null = not yet"
    )


class DeadLetter(SQLModel, table=True):
    """Input that could not be processed: where it came from, why, and its bytes."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("source_topic", "partition", "offset"),)

    dead_letter_id: str = Field(
        primary_key=True,
        max_length=64,
        description="dead letter id (UUID derived from topic, partition and offset)",
    )
    source_topic: str = Field(max_length=200, description="Kafka topic the message was read from")
    partition: int = Field(description="partition of source_topic")
    offset: int = Field(description="offset of the message in that partition")
    reason: str = Field(max_length=1000, description="why it could not be processed")
    original: bytes = Field(
        sa_column=Column(LargeBinary, nullable=False),
        description="the message's original bytes (may hold personal data)",
    )
    key: bytes | None = Field(
        default=None,
        sa_column=Column(LargeBinary, nullable=True),
        description="the message's key bytes (often a customer id); null if none",
    )
    received_at: datetime = _utc(nullable=False, description="when it was dead-lettered")
    original_size: int | None = Field(
        default=None,
        description="size of the whole original message in bytes (original holds only the "
        "first 65536 of a too_large one); null for a null value and letters before v2",
    )
    original_sha256: str | None = Field(
        default=None,
        max_length=64,
        description="SHA-256 (hex) of the whole original message; null as for original_size",
    )


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

    customer_id: str = Field(primary_key=True, max_length=200, description=_CUSTOMER_ID)
    channel: str = Field(
        primary_key=True, max_length=10, description="survey channel covered: email | phone | all"
    )
    status: str = Field(max_length=20, description="opted_out | opted_in")
    changed_at: datetime = _utc(nullable=False, description="when the customer made the change")
    source: str = Field(
        max_length=40,
        description="where it came from, e.g. unsubscribe_link, preference_centre, api, import",
    )
    consent_id: str = Field(max_length=64, description="id of the consent change in force")
    recorded_at: datetime = _utc(nullable=False, description="when cxloop stored the change")


class SurveyAnswer(SQLModel, table=True):
    """One answered question of a response, for BI: the response's answers JSON as rows.
    Yes/no answers are 1/0 with 'yes'/'no'; an aspect's score is the question
    'aspects.<aspect>'; open text is only in value_text."""

    __tablename__ = "survey_answers"
    __table_args__ = (Index("ix_survey_answers_question", "question"),)

    response_id: str = Field(
        primary_key=True,
        foreign_key="survey_responses.response_id",
        max_length=64,
        description="answer it belongs to (survey_responses.response_id)",
    )
    question: str = Field(
        primary_key=True,
        max_length=100,
        description="question id of the survey template; aspects.<aspect> for an aspect score",
    )
    value_number: float | None = Field(
        default=None, description="numeric answer (a score; yes/no as 1/0); null for open text"
    )
    value_text: str | None = Field(
        default=None,
        max_length=4000,
        description="text answer: yes or no, or open text (personal data); null for scores",
    )


AGGREGATE_GRAINS = ("day", "week", "month")
AGGREGATE_DIMENSIONS = ("programme", "partner", "channel", "touchpoint", "product", "team")


def _aggregate_key(table: str) -> tuple[Any, ...]:
    return (
        UniqueConstraint("grain", "period_start", *AGGREGATE_DIMENSIONS, name=f"uq_{table}_key"),
        CheckConstraint(_in("grain", AGGREGATE_GRAINS), name=f"ck_{table}_grain"),
        Index(f"ix_{table}_period", "grain", "period_start"),
    )


class _AggregateKey(SQLModel):
    """The key columns both aggregate tables share (not a table itself)."""

    aggregate_id: int | None = Field(
        default=None, primary_key=True, description="row id (generated; no meaning)"
    )
    grain: str = Field(max_length=5, description="day, week or month")
    period_start: date = Field(description="first day of the period (reporting time zone)")
    programme: str = Field(default="", max_length=100, description="survey programme")
    partner: str = Field(default="", max_length=200, description="business partner")
    channel: str = Field(default="", max_length=20, description="channel of the contact")
    touchpoint: str = Field(
        default="", max_length=40, description="inquiry type of the contact, else its kind"
    )
    product: str = Field(default="", max_length=200, description="product of the contact")
    team: str = Field(default="", max_length=40, description="team that handled the contact")


class AggregateScores(_AggregateKey, table=True):
    """NPS, CSAT and CES counts per period and dimensions, kept up to date as answers are
    scored (also late ones; a replay adds nothing). A period is the day, ISO week (starting
    Monday) or month of the answer in the reporting time zone (bi_settings). '' in a
    dimension means not known. Figures are sums, so any roll-up is a SUM over rows."""

    __tablename__ = "agg_scores"
    __table_args__ = (
        *_aggregate_key("agg_scores"),
        CheckConstraint(
            "nps_n = nps_promoters + nps_passives + nps_detractors", name="ck_agg_scores_nps"
        ),
        CheckConstraint("csat_top2 BETWEEN 0 AND csat_n", name="ck_agg_scores_csat"),
        CheckConstraint("nps_n >= 0 AND csat_n >= 0 AND ces_n >= 0", name="ck_agg_scores_n"),
    )

    responses: int = Field(default=0, description="answers scored in the period")
    nps_n: int = Field(default=0, description="answers with an NPS score")
    nps_promoters: int = Field(default=0, description="NPS 9-10")
    nps_passives: int = Field(default=0, description="NPS 7-8")
    nps_detractors: int = Field(default=0, description="NPS 0-6")
    nps_0: int = Field(default=0, description="answers with NPS 0")
    nps_1: int = Field(default=0, description="answers with NPS 1")
    nps_2: int = Field(default=0, description="answers with NPS 2")
    nps_3: int = Field(default=0, description="answers with NPS 3")
    nps_4: int = Field(default=0, description="answers with NPS 4")
    nps_5: int = Field(default=0, description="answers with NPS 5")
    nps_6: int = Field(default=0, description="answers with NPS 6")
    nps_7: int = Field(default=0, description="answers with NPS 7")
    nps_8: int = Field(default=0, description="answers with NPS 8")
    nps_9: int = Field(default=0, description="answers with NPS 9")
    nps_10: int = Field(default=0, description="answers with NPS 10")
    csat_n: int = Field(default=0, description="answers with a CSAT score (1-5)")
    csat_top2: int = Field(default=0, description="CSAT 4 or 5 (top-2 box)")
    ces_n: int = Field(default=0, description="answers with a CES score (1-7)")
    ces_sum: int = Field(default=0, description="sum of CES scores (mean = ces_sum / ces_n)")
    updated_at: datetime = Field(
        sa_column=Column(UTCDateTime(), nullable=False),
        description="when an answer last changed this row",
    )


class AggregateInvitations(_AggregateKey, table=True):
    """Surveys issued per period (of the invitation's creation) and dimensions, and how
    many of them were answered: the response rate is responded / invited. An answer that
    comes in weeks later counts in the period its survey was issued."""

    __tablename__ = "agg_invitations"
    __table_args__ = (
        *_aggregate_key("agg_invitations"),
        CheckConstraint("invited >= 0 AND responded >= 0", name="ck_agg_invitations_n"),
    )

    invited: int = Field(default=0, description="surveys issued (e-mail or phone)")
    responded: int = Field(default=0, description="of those, answered")
    updated_at: datetime = Field(
        sa_column=Column(UTCDateTime(), nullable=False),
        description="when an invitation or answer last changed this row",
    )


class BiSetting(SQLModel, table=True):
    """Settings the aggregates depend on, shared by every worker (report_timezone)."""

    __tablename__ = "bi_settings"

    key: str = Field(
        primary_key=True,
        max_length=40,
        description="setting name: report_timezone (time zone the aggregates' periods use)",
    )
    value: str = Field(max_length=200, description="setting value, e.g. an IANA time zone name")


def _comment_columns_from_descriptions() -> None:
    """A field's description becomes its column's comment: PostgreSQL keeps it as COMMENT ON
    COLUMN, which BI tools show next to the column, and the schema docs print it."""
    pending = list(SQLModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        table = getattr(model, "__table__", None)
        if table is None:
            continue
        for name, info in model.model_fields.items():
            if info.description and name in table.c and not table.c[name].comment:
                table.c[name].comment = info.description


_comment_columns_from_descriptions()
