"""What the staff inbox shows of a customer's history next to a task: contacts, surveys and
tasks from the timeline, the customer's answers, and the actions on their earlier tasks
(the task's own actions are its history)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.store.explain import TimelineEntry, customer_timeline
from models.store.tables import FollowupAction, FollowupTask, SurveyResponse

TIMELINE_KINDS = ("contact", "survey", "task")


@dataclass(frozen=True)
class CustomerHistory:
    """A customer's history as read: *timeline* entries of TIMELINE_KINDS, oldest first;
    *answers*; and *actions* on their other tasks, each with that task's origin."""

    timeline: list[TimelineEntry]
    answers: list[SurveyResponse]
    actions: list[tuple[FollowupAction, str]]


def customer_history(engine: Engine, customer_id: str, current_task: str) -> CustomerHistory:
    """The history of *customer_id* beside the task *current_task*."""
    timeline = [e for e in customer_timeline(engine, customer_id) if e.what in TIMELINE_KINDS]
    with Session(engine) as session:
        answers = list(
            session.execute(
                select(SurveyResponse).where(col(SurveyResponse.customer_id) == customer_id)
            ).scalars()
        )
        actions = session.execute(
            select(FollowupAction, col(FollowupTask.origin))
            .join(FollowupTask, col(FollowupTask.task_id) == col(FollowupAction.task_id))
            .where(col(FollowupTask.customer_id) == customer_id)
            .where(col(FollowupTask.task_id) != current_task)
        ).all()
        return CustomerHistory(timeline, answers, [(action, origin) for action, origin in actions])
