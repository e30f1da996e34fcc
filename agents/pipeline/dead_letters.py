"""Dead letters: bad input goes to the dead-letters topic with reason, place and bytes."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

import faust
import structlog

from agents.runtime import Runtime, bind_event
from models.store.dead_letters import record_dead_letter
from streams.records import DeadLetter

log = structlog.get_logger("cxloop.dead_letters")

_NAMESPACE = uuid.UUID("c7a4e7f0-0d7b-4f83-a1f4-9d4b8b2d6e55")

T = TypeVar("T")


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
    log.warning("event_dead_lettered", reason=reason, dead_letter_id=letter.dead_letter_id)


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
