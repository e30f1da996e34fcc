"""scoring: put each answer in its NPS category and CSAT box, on the answer row and a topic."""

from __future__ import annotations

import faust
import structlog

from agents.consume import consume
from agents.dead_letters import send_to_dead_letters
from agents.runtime import Runtime
from models.scoring import csat_satisfied, nps_category
from models.survey_store import record_score
from streams.records import ScoredResponse, SurveyResponse

log = structlog.get_logger("cxloop.scoring")


async def handle_response(rt: Runtime, event: faust.EventT[bytes]) -> None:
    try:
        response = SurveyResponse.from_bytes(event.value)
        category = nps_category(response.nps) if response.nps is not None else None
        satisfied = csat_satisfied(response.csat) if response.csat is not None else None
    except (ValueError, TypeError) as exc:
        await send_to_dead_letters(rt, event, f"invalid survey response: {exc}")
        return
    structlog.contextvars.bind_contextvars(
        response_id=response.response_id, customer_id=response.customer_id
    )
    stored = await rt.db(
        record_score, rt.engine, response.response_id, category, satisfied, rt.clock()
    )
    if stored is None:
        await send_to_dead_letters(rt, event, "survey response not found in the database")
        return
    scored = ScoredResponse(
        response_id=response.response_id,
        invitation_id=response.invitation_id,
        customer_id=response.customer_id,
        submitted_at=response.submitted_at,
        nps=response.nps,
        nps_category=category,
        csat=response.csat,
        csat_satisfied=satisfied,
    )
    await rt.send(rt.topics.scored_responses, response.customer_id, scored.to_bytes())
    log.info("response_scored", nps_category=category, csat_satisfied=satisfied)


def register(app: faust.App, rt: Runtime) -> None:
    @app.agent(rt.topics.survey_responses, name="scoring")
    async def scoring(stream: faust.StreamT[bytes]) -> None:
        await consume(rt, "scoring", stream, handle_response)
