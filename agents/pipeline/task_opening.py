"""task_opening: answers that call for it open a task, once; its events go to followup-tasks
through the task outbox. Answers to a recovery survey are recorded on the task they follow."""

from __future__ import annotations

from collections.abc import Sequence

import faust
import structlog

from agents.consume import consume_batches, decode_or_dead_letter
from agents.runtime import Runtime
from models.store.answer_tasks import ScoredAnswer, open_tasks_for_answers
from streams.records import ScoredResponse

log = structlog.get_logger("cxloop.followup")


async def handle_scored(rt: Runtime, events: Sequence[faust.EventT[bytes]]) -> None:
    decoded = await decode_or_dead_letter(rt, events, ScoredResponse.from_bytes)
    answers = [
        ScoredAnswer(
            response_id=s.response_id,
            invitation_id=s.invitation_id,
            customer_id=s.customer_id,
            submitted_at=s.submitted_at,
            nps=s.nps,
            csat=s.csat,
            ces=s.ces,
        )
        for _, s in decoded
    ]
    if not answers:
        return
    stored, recovered = await rt.db(
        open_tasks_for_answers, rt.engine, rt.followup, answers, rt.clock()
    )
    opened = sum(new for _, new in stored)
    if opened:
        rt.task_events_waiting.set()
    if stored or recovered:
        log.info("tasks_opened", opened=opened, replays=len(stored) - opened, recovered=recovered)


def register(app: faust.App, rt: Runtime) -> None:
    @app.agent(rt.topics.scored_responses, name="followup")
    async def followup(stream: faust.StreamT[bytes]) -> None:
        await consume_batches(rt, "followup", stream, handle_scored)
