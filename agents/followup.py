"""followup: every detractor gets a task, once, on followup-tasks keyed by customer."""

from __future__ import annotations

from datetime import timedelta

import faust
import structlog

from agents.consume import consume
from agents.dead_letters import send_to_dead_letters
from agents.runtime import Runtime
from agents.task_events import task_event
from models.followup import task_for_answer
from models.task_store import open_task
from streams.records import ScoredResponse

log = structlog.get_logger("cxloop.followup")


async def handle_scored(rt: Runtime, event: faust.EventT[bytes]) -> None:
    try:
        scored = ScoredResponse.from_bytes(event.value)
    except (ValueError, TypeError) as exc:
        await send_to_dead_letters(rt, event, f"invalid scored response: {exc}")
        return
    structlog.contextvars.bind_contextvars(
        response_id=scored.response_id, customer_id=scored.customer_id
    )
    new = task_for_answer(
        scored.response_id,
        scored.nps,
        scored.nps_category,
        scored.submitted_at,
        timedelta(hours=rt.settings.followup_due_hours),
    )
    if new is None:
        log.info("followup_not_needed", nps_category=scored.nps_category)
        return
    task, fresh = await rt.db(open_task, rt.engine, scored.customer_id, new)
    opened = task_event("task_opened", task, task.opened_at)
    await rt.send(rt.topics.followup_tasks, scored.customer_id, opened.to_bytes())
    log.info("task_opened", task_id=task.task_id, priority=task.priority, replay=not fresh)


def register(app: faust.App, rt: Runtime) -> None:
    @app.agent(rt.topics.scored_responses, name="followup")
    async def followup(stream: faust.StreamT[bytes]) -> None:
        await consume(rt, "followup", stream, handle_scored)
