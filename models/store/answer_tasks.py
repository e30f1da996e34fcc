"""Survey answers into follow-up: unhappy answers open tasks (routed on the survey's
partner, product, channel and language), answers to a recovery survey are recorded on
the task they follow up, and recovery_event is the contact a closed task publishes so
the survey rules can send that recovery survey.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.contact_events import CONTACT_EVENT_SCHEMA_VERSION
from models.followup_rules import FollowupRules
from models.store.engine import transaction
from models.store.tables import ContactEvent as ContactEventRow
from models.store.tables import FollowupTask, SurveyInvitation, SurveyResponse
from models.store.tasks import open_tasks_in
from models.task_lifecycle import NewTask, TaskSubject, task_for_answer


@dataclass(frozen=True)
class ScoredAnswer:
    response_id: str
    invitation_id: str
    customer_id: str
    submitted_at: datetime
    nps: int | None
    csat: int | None
    ces: int | None


RECOVERY_KIND = "followup_closed"


def open_tasks_for_answers(
    engine: Engine, rules: FollowupRules, answers: Sequence[ScoredAnswer], now: datetime
) -> tuple[list[tuple[FollowupTask, bool]], int]:
    """Open the tasks unhappy answers call for (routing on the survey's partner, product,
    channel and language; the customer's contact details from the invitation), and record
    answers to recovery surveys on the task they follow up. The tasks with whether each is
    new, and how many recovery answers were recorded."""
    if not answers:
        return [], 0
    with transaction(engine) as session:
        invitations = {
            i.invitation_id: i
            for i in session.execute(
                select(SurveyInvitation).where(
                    col(SurveyInvitation.invitation_id).in_({a.invitation_id for a in answers})
                )
            ).scalars()
        }
        regions = dict(
            session.execute(
                select(col(ContactEventRow.event_id), col(ContactEventRow.region)).where(
                    col(ContactEventRow.event_id).in_({i.event_id for i in invitations.values()})
                )
            ).all()
        )
        comments = dict(
            session.execute(
                select(col(SurveyResponse.response_id), col(SurveyResponse.comment)).where(
                    col(SurveyResponse.response_id).in_({a.response_id for a in answers})
                )
            ).all()
        )
        new: list[NewTask] = []
        recovered = 0
        for answer in answers:
            invitation = invitations.get(answer.invitation_id)
            if invitation is not None and invitation.kind == RECOVERY_KIND:
                recovered += _record_recovery(session, invitation, answer)
                continue
            subject = _answer_subject(answer.customer_id, invitation, regions)
            task = task_for_answer(
                rules,
                answer.response_id,
                answer.submitted_at,
                subject,
                answer.nps,
                answer.csat,
                answer.ces,
                comments.get(answer.response_id),
            )
            if task is not None:
                new.append(task)
        return open_tasks_in(session, rules, new, now), recovered


def _answer_subject(
    customer_id: str, invitation: SurveyInvitation | None, regions: dict[str, str | None]
) -> TaskSubject:
    if invitation is None:
        return TaskSubject(customer_id=customer_id)
    return TaskSubject(
        customer_id=customer_id,
        partner=invitation.partner,
        product=invitation.product,
        channel=invitation.channel,
        region=regions.get(invitation.event_id),
        language=invitation.locale,
        name=invitation.name,
        email=invitation.email,
        phone=invitation.phone,
    )


def _record_recovery(session: Session, invitation: SurveyInvitation, answer: ScoredAnswer) -> int:
    """The recovery survey's contact event id is 'recovery:<task id>' (see recovery_event)."""
    task_id = invitation.event_id.removeprefix("recovery:")
    task = session.get(FollowupTask, task_id, with_for_update=True)
    if task is None or task.recovery_response_id is not None:
        return 0
    task.recovery_response_id = answer.response_id
    task.recovery_nps = answer.nps
    if answer.nps is not None:
        task.recovered = answer.nps > 6
    elif answer.csat is not None:
        task.recovered = answer.csat > 2
    session.add(task)
    return 1


def recovery_event(task: FollowupTask, now: datetime) -> dict[str, Any] | None:
    """The contact event a closed task publishes so the survey rules can re-survey the
    customer (a 'recovery' programme on kind followup_closed); None when the customer was
    never informed (closed as unreachable) or cannot be reached at all."""
    if task.informed_at is None or not (task.email or task.phone):
        return None
    customer: dict[str, Any] = {"id": task.customer_id}
    for key in ("email", "phone", "name", "timezone"):
        if getattr(task, key):
            customer[key] = getattr(task, key)
    if task.language:
        customer["locale"] = task.language
    event: dict[str, Any] = {
        "event_id": f"recovery:{task.task_id}",
        "occurred_at": (task.closed_at or now).isoformat(),
        "kind": RECOVERY_KIND,
        "channel": "phone",
        "customer": customer,
        "case_id": task.task_id,
        "schema_version": CONTACT_EVENT_SCHEMA_VERSION,
    }
    if task.partner:
        event["partner"] = task.partner
    if task.product:
        event["product"] = task.product
    return event
