"""trigger: decide per contact event whether to survey, and why (one decision per event)."""

from __future__ import annotations

from datetime import timedelta

import faust
import structlog

from agents.consume import consume
from agents.dead_letters import send_to_dead_letters
from agents.runtime import Runtime
from agents.task_events import task_event
from models.contact_events import InvalidContactEvent, parse_contact_event
from models.survey_store import decide_contact
from streams.records import SurveyInvitation

log = structlog.get_logger("cxloop.trigger")


async def handle_contact(rt: Runtime, event: faust.EventT[bytes]) -> None:
    """Decode → decide and record in SQL → send the invitation and any complaint task."""
    try:
        contact = parse_contact_event(event.value)
    except InvalidContactEvent as exc:
        await send_to_dead_letters(rt, event, f"invalid contact event: {exc}")
        return
    structlog.contextvars.bind_contextvars(
        event_id=contact.event_id, customer_id=contact.customer.id
    )
    settings = rt.settings
    result = await rt.db(
        decide_contact,
        rt.engine,
        contact,
        rt.clock(),
        timedelta(days=settings.survey_cap_days),
        timedelta(hours=settings.followup_due_hours),
    )
    # Sent again on a replay: the decision stands, and downstream is idempotent on ids.
    if result.invitation is not None:
        invitation = SurveyInvitation(
            invitation_id=result.invitation.invitation_id,
            event_id=contact.event_id,
            customer_id=contact.customer.id,
            locale=result.invitation.locale,
            created_at=result.invitation.created_at,
        )
        await rt.send(rt.topics.survey_invitations, contact.customer.id, invitation.to_bytes())
    if result.task is not None:
        opened = task_event("task_opened", result.task, result.task.opened_at)
        await rt.send(rt.topics.followup_tasks, contact.customer.id, opened.to_bytes())
    log.info(
        "survey_decided",
        outcome=result.decision.outcome,
        reason=result.decision.reason,
        replay=not result.fresh,
    )


def register(app: faust.App, rt: Runtime) -> None:
    @app.agent(rt.topics.contact_events, name="trigger")
    async def trigger(stream: faust.StreamT[bytes]) -> None:
        await consume(rt, "trigger", stream, handle_contact)
