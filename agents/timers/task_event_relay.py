"""task_event_relay: task events onto followup-tasks.

Every change to a task is stored with its history event in one transaction; this module
puts those events on followup-tasks (keyed by customer, in order per task), as soon as a
change nudges it or every half second. It reads SQL, so a restart loses nothing. The SLA
ladder and its staff e-mails are in agents.timers.escalation.
"""

from __future__ import annotations

import asyncio
import contextlib

import faust
import orjson
import structlog

from agents.runtime import Runtime
from models.store.task_events import claim_unpublished_events, mark_events_published

log = structlog.get_logger("cxloop.task_outbox")

RELAY_BATCH = 500
RELAY_IDLE_S = 0.5  # the longest an event waits when no nudge came


async def relay_once(rt: Runtime) -> int:
    """Publish every waiting task event; the number published."""
    total = 0
    while True:
        claimed = await rt.db(claim_unpublished_events, rt.engine, rt.clock(), RELAY_BATCH)
        if not claimed:
            return total
        for event in claimed:  # in order: one task's events must not overtake
            customer = event.payload["customer_id"]
            await rt.send(rt.topics.followup_tasks, customer, orjson.dumps(event.payload))
        await rt.db(mark_events_published, rt.engine, [e.event_id for e in claimed], rt.clock())
        total += len(claimed)
        if len(claimed) < RELAY_BATCH:
            return total


def register(app: faust.App, rt: Runtime) -> None:
    @app.task  # type: ignore[untyped-decorator]  # faust: untyped
    async def task_event_relay() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.task_events_waiting.wait(), RELAY_IDLE_S)
            rt.task_events_waiting.clear()
            try:
                published = await relay_once(rt)
            except Exception as exc:  # noqa: BLE001 - the events stay stored; next round
                log.warning("task_event_relay_failed", error=type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            if published:
                log.debug("task_events_published", count=published)
