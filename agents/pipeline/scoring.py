"""scoring: put each answer in its NPS category and CSAT box, on the answer row and a topic;
CES and the full answers pass through."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import faust
import structlog

from agents.consume import consume_batches, decode_or_dead_letter, send_to_dead_letters
from agents.runtime import Runtime
from models.scoring import ces_score, csat_satisfied, nps_category
from models.store.surveys import record_scores
from streams.records import (
    DeadLetterReason,
    ScoredResponse,
    SurveyResponse,
    dead_letter_reason,
)

log = structlog.get_logger("cxloop.scoring")

_NOT_FOUND = dead_letter_reason(DeadLetterReason.NOT_FOUND, "survey response not in the database")


def score(response: SurveyResponse) -> ScoredResponse:
    """The scored form of an answer; raises ValueError for a score out of range."""
    return ScoredResponse(
        response_id=response.response_id,
        invitation_id=response.invitation_id,
        customer_id=response.customer_id,
        submitted_at=response.submitted_at,
        nps=response.nps,
        nps_category=nps_category(response.nps) if response.nps is not None else None,
        csat=response.csat,
        csat_satisfied=csat_satisfied(response.csat) if response.csat is not None else None,
        ces=ces_score(response.ces) if response.ces is not None else None,
        answers=response.answers,
    )


async def handle_responses(rt: Runtime, events: Sequence[faust.EventT[bytes]]) -> None:
    scored = await decode_or_dead_letter(
        rt, events, lambda raw: score(SurveyResponse.from_bytes(raw))
    )
    if not scored:
        return
    found = await rt.db(
        record_scores,
        rt.engine,
        [(s.response_id, s.nps_category, s.csat_satisfied) for _, s in scored],
        rt.clock(),
    )
    for event, s in scored:
        if s.response_id not in found:
            await send_to_dead_letters(rt, event, _NOT_FOUND, customer_id=s.customer_id)
    await asyncio.gather(
        *(
            rt.send(rt.topics.scored_responses, s.customer_id, s.to_bytes())
            for _, s in scored
            if s.response_id in found
        )
    )
    categories = Counter(s.nps_category or "none" for _, s in scored if s.response_id in found)
    log.info("responses_scored", **{f"nps_{c}": n for c, n in sorted(categories.items())})


def register(app: faust.App, rt: Runtime) -> None:
    @app.agent(rt.topics.survey_responses, name="scoring")
    async def scoring(stream: faust.StreamT[bytes]) -> None:
        await consume_batches(rt, "scoring", stream, handle_responses)
