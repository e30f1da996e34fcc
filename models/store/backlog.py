"""What a starting worker resumes from SQL: the effects that were written down but not yet
carried out (timers, mail, outbox rows, webhooks), counted. Counts only: no ids, no
personal data, so they can be printed and logged."""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import col

from models.store.tables import (
    FollowupTaskHistory,
    StaffNotification,
    SurveyInvitation,
    SurveyReminder,
    SurveyResponse,
    SurveyTimer,
    WebhookDelivery,
)


@dataclass(frozen=True)
class Backlog:
    """Work waiting in SQL when a worker starts."""

    survey_timers: int  # pending surveys (survey_timers rows), due now or later
    survey_timers_due: int  # of those, due now
    invitations_to_mail: int  # e-mail invitations still 'pending'
    invitations_interrupted: int  # 'sending' when a worker stopped: may or may not have gone
    reminders_to_mail: int  # reminders still 'pending'
    answers_to_publish: int  # survey_responses not yet on survey-responses
    task_events_to_publish: int  # followup_task_events not yet on followup-tasks
    webhooks_pending: int  # webhook_deliveries still 'pending'
    staff_mail_pending: int  # staff_notifications still 'pending'

    @property
    def empty(self) -> bool:
        return not any(astuple(self))

    def counts(self) -> dict[str, int]:
        """Every count by field name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def resume_backlog(engine: Engine, now: datetime) -> Backlog:
    """Count what the sweepers and relays will pick up from SQL (one read transaction; the
    invitation counts scan survey_invitations, the others use the outboxes' indexes)."""

    def count(model: type[Any], *where: Any) -> int:
        statement = select(func.count()).select_from(model).where(*where)
        return int(connection.execute(statement).scalar_one())

    with engine.connect() as connection:
        email = col(SurveyInvitation.survey_channel) == "email"
        return Backlog(
            survey_timers=count(SurveyTimer),
            survey_timers_due=count(SurveyTimer, col(SurveyTimer.due_at) <= now),
            invitations_to_mail=count(
                SurveyInvitation, email, col(SurveyInvitation.delivery_status) == "pending"
            ),
            invitations_interrupted=count(
                SurveyInvitation, email, col(SurveyInvitation.delivery_status) == "sending"
            ),
            reminders_to_mail=count(
                SurveyReminder, col(SurveyReminder.delivery_status) == "pending"
            ),
            answers_to_publish=count(SurveyResponse, col(SurveyResponse.published_at).is_(None)),
            task_events_to_publish=count(
                FollowupTaskHistory, col(FollowupTaskHistory.published_at).is_(None)
            ),
            webhooks_pending=count(WebhookDelivery, col(WebhookDelivery.status) == "pending"),
            staff_mail_pending=count(StaffNotification, col(StaffNotification.status) == "pending"),
        )
