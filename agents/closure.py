"""closure: record staff actions on tasks; a task closes when the customer is informed."""

from __future__ import annotations

import faust
import structlog

from agents.consume import consume
from agents.dead_letters import send_to_dead_letters
from agents.runtime import Runtime
from agents.task_events import task_event
from models.followup import ActionType, TaskClosed
from models.task_store import TaskNotFound, apply_action
from streams.records import FollowupAction

log = structlog.get_logger("cxloop.closure")


async def handle_action(rt: Runtime, event: faust.EventT[bytes]) -> None:
    try:
        action = FollowupAction.from_bytes(event.value)
        action_type = ActionType(action.type)
    except (ValueError, TypeError) as exc:
        await send_to_dead_letters(rt, event, f"invalid follow-up action: {exc}")
        return
    structlog.contextvars.bind_contextvars(
        action_id=action.action_id, task_id=action.task_id, customer_id=action.customer_id
    )
    try:
        result = await rt.db(
            apply_action,
            rt.engine,
            action.action_id,
            action.task_id,
            action_type,
            action.note,
            action.actor,
            rt.clock(),
        )
    except (TaskNotFound, TaskClosed) as exc:
        await send_to_dead_letters(rt, event, f"follow-up action not applicable: {exc!r}")
        return
    task = result.task
    kind = "task_closed" if task.status == "closed" else "task_action_recorded"
    update = task_event(kind, task, result.action.recorded_at, action_type=action_type.value)
    await rt.send(rt.topics.followup_tasks, task.customer_id, update.to_bytes())
    log.info(kind, action_type=action_type.value, status=task.status, replay=not result.fresh)


def register(app: faust.App, rt: Runtime) -> None:
    @app.agent(rt.topics.followup_actions, name="closure")
    async def closure(stream: faust.StreamT[bytes]) -> None:
        await consume(rt, "closure", stream, handle_action)
