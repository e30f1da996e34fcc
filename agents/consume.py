"""The loop every agent runs: one event at a time, and no event lost to a bug. Bad input
goes to the dead-letters topic with reason, place and original bytes."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TypeVar

import faust
import structlog

from agents.runtime import Runtime, bind_event
from streams.records import DeadLetter

log = structlog.get_logger("cxloop.consume")
dead_letter_log = structlog.get_logger("cxloop.dead_letters")

T = TypeVar("T")

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


_NAMESPACE = uuid.UUID("c7a4e7f0-0d7b-4f83-a1f4-9d4b8b2d6e55")


def dead_letter_id(topic: str, partition: int, offset: int) -> str:
    """Stable id of the message at one place in the log: a replay finds the same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{topic}/{partition}/{offset}"))


async def send_to_dead_letters(rt: Runtime, event: faust.EventT[bytes], reason: str) -> None:
    """Put the event's original bytes on dead-letters with *reason*."""
    message = event.message
    raw = message.value if isinstance(message.value, bytes) else bytes(message.value or b"")
    key = message.key if isinstance(message.key, bytes) else None
    letter = DeadLetter(
        dead_letter_id=dead_letter_id(message.topic, message.partition, message.offset),
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=reason,
        original_b64=base64.b64encode(raw).decode("ascii"),
        key_b64=base64.b64encode(key).decode("ascii") if key is not None else None,
        received_at=rt.clock(),
    )
    await rt.send(rt.topics.dead_letters, letter.dead_letter_id, letter.to_bytes())
    dead_letter_log.warning(
        "event_dead_lettered", reason=reason, dead_letter_id=letter.dead_letter_id
    )


async def decode_or_dead_letter(
    rt: Runtime,
    events: Sequence[faust.EventT[bytes]],
    decode: Callable[[bytes], T],
    what: str,
    refusals: tuple[type[Exception], ...] = (ValueError, TypeError),
) -> list[tuple[faust.EventT[bytes], T]]:
    """Each event with its decoded value; an event *decode* refuses (raises one of
    *refusals*) goes to dead-letters as "invalid <what>: <why>"."""
    decoded: list[tuple[faust.EventT[bytes], T]] = []
    for event in events:
        try:
            decoded.append((event, decode(event.value)))
        except refusals as exc:
            await send_to_dead_letters(rt, event, f"invalid {what}: {exc}")
    return decoded
