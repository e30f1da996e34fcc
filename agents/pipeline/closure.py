"""closure: record staff actions on tasks and move them through their lifecycle; a task
closes once the customer was told what was done and a root cause is recorded. A closed
task publishes a followup_closed contact, which the survey rules may turn into a recovery
survey."""

from __future__ import annotations

import faust
import orjson
import structlog

from agents.consume import consume, reason_for, refusal, send_to_dead_letters
from agents.runtime import Runtime
from models.store.answer_tasks import recovery_event
from models.store.task_actions import (
    ActionCommand,
    ActionRefusedError,
    apply_action,
    record_refusal,
)
from models.store.task_queries import TaskUnknownError
from models.task_lifecycle import ActionType, TaskClosedError, TaskStatus, TransitionInvalidError
from streams.records import DeadLetterReason, FollowupAction, dead_letter_reason

log = structlog.get_logger("cxloop.closure")

_UNKNOWN_TASK = dead_letter_reason(DeadLetterReason.NOT_FOUND, "follow-up task unknown")


async def handle_action(rt: Runtime, event: faust.EventT[bytes]) -> None:
    refused = refusal(event.value, rt.settings.max_message_bytes)
    if refused is not None:
        await send_to_dead_letters(rt, event, refused)
        return
    try:
        action = FollowupAction.from_bytes(event.value)
        action_type = ActionType(action.type)
    except (ValueError, TypeError) as exc:
        await send_to_dead_letters(rt, event, reason_for(exc))
        return
    structlog.contextvars.bind_contextvars(
        action_id=action.action_id, task_id=action.task_id, customer_id=action.customer_id
    )
    command = ActionCommand(
        action_id=action.action_id,
        task_id=action.task_id,
        action_type=action_type,
        note=action.note,
        actor=action.actor,
        at=rt.clock(),
        details=action.details,
    )
    try:
        result = await rt.db(apply_action, rt.engine, rt.followup, command)
    except TaskUnknownError:
        await send_to_dead_letters(rt, event, _UNKNOWN_TASK, customer_id=action.customer_id)
        return
    except (TaskClosedError, TransitionInvalidError, ActionRefusedError) as exc:
        # Someone else acted first, or the task moved on: not bad input, but news for the
        # member of staff, so it goes on the task's history (and the inbox shows it).
        await rt.db(
            record_refusal,
            rt.engine,
            rt.followup,
            action.action_id,
            action.task_id,
            action_type.value,
            action.actor,
            str(exc),
            rt.clock(),
        )
        rt.task_events_waiting.set()
        log.warning("task_action_refused", action_type=action_type.value, why=type(exc).__name__)
        return
    task = result.task
    rt.task_events_waiting.set()
    if task.status == TaskStatus.CLOSED:
        # Again on a replay: the contact event id is stable, so the trigger decides once.
        contact = recovery_event(task, rt.clock())
        if contact is not None:
            await rt.send(rt.topics.contact_events, task.customer_id, orjson.dumps(contact))
    log.info(
        "task_action_recorded",
        action_type=action_type.value,
        status=task.status,
        replay=not result.fresh,
    )


def register(app: faust.App, rt: Runtime) -> None:
    @app.agent(rt.topics.followup_actions, name="closure")
    async def closure(stream: faust.StreamT[bytes]) -> None:
        await consume(rt, "closure", stream, handle_action)
