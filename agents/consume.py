"""The loop every agent runs: one event at a time, and no event lost to a bug."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import faust
import structlog

from agents.dead_letters import send_to_dead_letters
from agents.runtime import Runtime, bind_event

log = structlog.get_logger("cxloop.consume")

Handler = Callable[[Runtime, faust.EventT[bytes]], Awaitable[None]]


async def consume(rt: Runtime, agent: str, stream: faust.StreamT[bytes], handle: Handler) -> None:
    """Run *handle* per event. Faust acks an event even when its agent raises, so an
    unexpected error sends the event to the dead letters (to replay after a fix) instead of
    dropping it; with rt.raise_on_bug (tests) it propagates and fails loudly."""
    async for event in stream.events():
        bind_event(agent, event)
        try:
            await handle(rt, event)
        except Exception as exc:
            if rt.raise_on_bug:
                raise
            log.exception("event_failed", error=type(exc).__name__)
            await send_to_dead_letters(rt, event, f"unexpected {type(exc).__name__} in {agent}")
