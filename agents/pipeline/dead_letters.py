"""The dead-letter sink: every letter on dead-letters becomes a dead_letters row (sending
to dead-letters is agents.consume)."""

from __future__ import annotations

import base64

import faust
import structlog

from agents.consume import dead_letter_id
from agents.runtime import Runtime, bind_event
from models.store.dead_letters import record_dead_letter
from streams.records import DeadLetter

log = structlog.get_logger("cxloop.dead_letters")


async def store_dead_letter(rt: Runtime, event: faust.EventT[bytes]) -> None:
    """One dead_letters row per bad message; an unreadable letter is stored as it came."""
    try:
        letter = DeadLetter.from_bytes(event.value)
        original = base64.b64decode(letter.original_b64, validate=True)
        key = base64.b64decode(letter.key_b64, validate=True) if letter.key_b64 else None
    except (ValueError, TypeError) as exc:
        message = event.message
        letter = DeadLetter(
            dead_letter_id=dead_letter_id(message.topic, message.partition, message.offset),
            source_topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            reason=f"unreadable dead letter: {exc}",
            original_b64="",
            received_at=rt.clock(),
        )
        original, key = bytes(event.value or b""), None
    new = await rt.db(
        record_dead_letter,
        rt.engine,
        letter.dead_letter_id,
        letter.source_topic,
        letter.partition,
        letter.offset,
        letter.reason,
        original,
        key,
        letter.received_at,
    )
    log.info("dead_letter_stored", dead_letter_id=letter.dead_letter_id, new=new)


def register(app: faust.App, rt: Runtime) -> None:
    """The sink for dead letters. It never sends to dead-letters itself: a letter it cannot
    store is a bug, and crashes loudly rather than looping."""

    @app.agent(rt.topics.dead_letters, name="dead_letter_sink")
    async def dead_letter_sink(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            bind_event("dead_letter_sink", event)
            await store_dead_letter(rt, event)
