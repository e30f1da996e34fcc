"""The loop every agent runs: one event at a time, and no event lost to a bug."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import faust
import structlog

from agents.pipeline.dead_letters import send_to_dead_letters
from agents.runtime import Runtime, bind_event

log = structlog.get_logger("cxloop.consume")

Handler = Callable[[Runtime, faust.EventT[bytes]], Awaitable[None]]
BatchHandler = Callable[[Runtime, Sequence[faust.EventT[bytes]]], Awaitable[None]]


async def consume(rt: Runtime, agent: str, stream: faust.StreamT[bytes], handle: Handler) -> None:
    """Run *handle* per event. Faust acks an event even when its agent raises, so an
    unexpected error sends the event to the dead letters (to replay after a fix) instead of
    dropping it; with rt.raise_on_bug (tests) it propagates and fails loudly."""
    async for event in stream.events():
        await _guarded(rt, agent, event, partial(handle, rt, event))


async def consume_batches(
    rt: Runtime, agent: str, stream: faust.StreamT[bytes], handle: BatchHandler
) -> None:
    """Run *handle* on batches of up to batch_max_events (one SQL transaction each): the hot
    paths' throughput. Events are acked after their batch. If a batch hits an unexpected
    error it is retried one event at a time, so only the event at fault is dead-lettered."""
    settings = rt.settings
    within = settings.batch_within_ms / 1000
    # StreamT does not declare take_events; faust.Stream has it.
    batches = stream.take_events(settings.batch_max_events, within=within)  # type: ignore[attr-defined]
    async for events in batches:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(agent=agent, batch=len(events))
        try:
            await handle(rt, events)
        except Exception as exc:
            if rt.raise_on_bug:
                raise
            log.exception("batch_failed", error=type(exc).__name__)
            for event in events:
                await _one_by_one(rt, agent, event, handle)


async def _one_by_one(
    rt: Runtime, agent: str, event: faust.EventT[bytes], handle: BatchHandler
) -> None:
    await _guarded(rt, agent, event, partial(handle, rt, [event]))


async def _guarded(
    rt: Runtime, agent: str, event: faust.EventT[bytes], work: Callable[[], Awaitable[None]]
) -> None:
    bind_event(agent, event)
    try:
        await work()
    except Exception as exc:
        if rt.raise_on_bug:
            raise
        log.exception("event_failed", error=type(exc).__name__)
        await send_to_dead_letters(rt, event, f"unexpected {type(exc).__name__} in {agent}")
