"""Answers reach survey-responses through an outbox: stored first, then published, and
re-published by a timer if the first publish did not make it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import faust
import structlog

from agents.runtime import Runtime
from models.store.surveys import mark_published, unpublished_responses
from models.store.tables import SurveyResponse as SurveyResponseRow
from streams.records import SurveyResponse

log = structlog.get_logger("cxloop.response_outbox")

RELAY_INTERVAL_S = 2.0
RELAY_GRACE = timedelta(seconds=5)


async def publish_response(
    rt: Runtime, row: SurveyResponseRow, db: Callable[..., Awaitable[Any]] | None = None
) -> None:
    """Put a stored answer on survey-responses and mark it published (through *db*, by
    default the runtime's patient one)."""
    record = SurveyResponse(
        response_id=row.response_id,
        invitation_id=row.invitation_id,
        customer_id=row.customer_id,
        submitted_at=row.submitted_at,
        nps=row.nps,
        csat=row.csat,
        ces=row.ces,
        answers=row.answers or {},
    )
    await rt.send(rt.topics.survey_responses, row.customer_id, record.to_bytes())
    await (db or rt.db)(mark_published, rt.engine, row.response_id, rt.clock())


async def publish_or_defer(rt: Runtime, row: SurveyResponseRow) -> None:
    """Publish a just-stored answer within a web request's patience; on any failure leave it
    to the relay below (the answer is stored, so the caller's request has succeeded)."""
    try:
        await publish_response(rt, row, rt.db_for_request)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the answer to the outbox relay
        log.warning("response_publish_deferred", error=type(exc).__name__)


def register(app: faust.App, rt: Runtime) -> None:
    @app.timer(interval=RELAY_INTERVAL_S, on_leader=True, name="response_outbox_relay")  # type: ignore[untyped-decorator]  # faust's timer is untyped
    async def relay() -> None:
        rows = await rt.db(unpublished_responses, rt.engine, rt.clock() - RELAY_GRACE)
        for row in rows:
            await publish_response(rt, row)
        if rows:
            log.info("responses_republished", count=len(rows))
