"""followup: every detractor gets a task, once, on followup-tasks keyed by customer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import faust
import structlog

from agents.consume import consume_batches
from agents.dead_letters import decode_or_dead_letter
from agents.runtime import Runtime
from agents.task_events import task_event
from models.followup import NewTask, task_for_answer
from models.task_store import open_tasks
from streams.records import ScoredResponse

log = structlog.get_logger("cxloop.followup")


async def handle_scored(rt: Runtime, events: Sequence[faust.EventT[bytes]]) -> None:
    due = timedelta(hours=rt.settings.followup_due_hours)
    wanted: list[tuple[str, NewTask]] = []
    decoded = await decode_or_dead_letter(rt, events, ScoredResponse.from_bytes, "scored response")
    for _, scored in decoded:
        new = task_for_answer(
            scored.response_id, scored.nps, scored.nps_category, scored.submitted_at, due
        )
        if new is not None:
            wanted.append((scored.customer_id, new))
    if not wanted:
        return
    stored = await rt.db(open_tasks, rt.engine, wanted)
    await asyncio.gather(
        *(
            rt.send(
                rt.topics.followup_tasks,
                task.customer_id,
                task_event("task_opened", task, task.opened_at).to_bytes(),
            )
            for task, _new in stored
        )
    )
    log.info(
        "tasks_opened",
        opened=sum(new for _, new in stored),
        replays=sum(not new for _, new in stored),
    )


def register(app: faust.App, rt: Runtime) -> None:
    @app.agent(rt.topics.scored_responses, name="followup")
    async def followup(stream: faust.StreamT[bytes]) -> None:
        await consume_batches(rt, "followup", stream, handle_scored)
