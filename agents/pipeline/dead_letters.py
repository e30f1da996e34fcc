"""The dead-letter sink: every letter on dead-letters becomes a dead_letters row (sending
to dead-letters is agents.consume)."""

from __future__ import annotations

import base64
import hashlib

import faust
import structlog

from agents.consume import (
    PREVIEW_BYTES,
    dead_letter_id,
    reason_code,
    reason_for,
    refusal,
)
from agents.runtime import Runtime, bind_event
from models.json_checks import nul_path
from models.store.dead_letters import REASON_MAX, StoredLetter, record_dead_letter
from streams.records import (
    DEAD_LETTER_SCHEMA_VERSION,
    DeadLetter,
    DeadLetterReason,
    dead_letter_reason,
)

log = structlog.get_logger("cxloop.dead_letters")

_TEXT_LIMITS = {"dead_letter_id": 64, "source_topic": 200, "reason": REASON_MAX}


def _readable(rt: Runtime, event: faust.EventT[bytes]) -> StoredLetter | str:
    """The letter to store, or why it cannot be read as one."""
    refused = refusal(event.value, rt.settings.max_message_bytes)
    if refused is not None:
        return refused
    try:
        letter = DeadLetter.from_bytes(event.value)
        original = base64.b64decode(letter.original_b64, validate=True)
        key = base64.b64decode(letter.key_b64, validate=True) if letter.key_b64 else None
    except (ValueError, TypeError) as exc:
        return reason_for(exc)
    # What the columns cannot hold on PostgreSQL (SQLite would take it): a NUL character
    # from a JSON escape (refusal() saw only raw bytes), text beyond the column's length.
    where = nul_path({name: getattr(letter, name) for name in _TEXT_LIMITS})
    if where is not None:
        return dead_letter_reason(DeadLetterReason.NUL_CHARACTER, where)
    for name, limit in _TEXT_LIMITS.items():
        if not 0 < len(getattr(letter, name)) <= limit and name != "reason":
            detail = f"{name}: must be 1 to {limit} characters"
            return dead_letter_reason(DeadLetterReason.INVALID_FIELD, detail)
    whole = letter.schema_version < DEAD_LETTER_SCHEMA_VERSION  # v1: no size, no digest
    return StoredLetter(
        dead_letter_id=letter.dead_letter_id,
        source_topic=letter.source_topic,
        partition=letter.partition,
        offset=letter.offset,
        reason=letter.reason,
        original=original,
        key=key,
        received_at=letter.received_at,
        # A v1 letter kept the whole original: its size and digest are the bytes' own.
        original_size=len(original) if whole else letter.original_size,
        original_sha256=hashlib.sha256(original).hexdigest() if whole else letter.original_sha256,
    )


def _as_it_came(rt: Runtime, event: faust.EventT[bytes], reason: str) -> StoredLetter:
    """An unreadable letter, stored under its own place on dead-letters."""
    message = event.message
    value = event.value
    raw = bytes(value or b"")
    return StoredLetter(
        dead_letter_id=dead_letter_id(message.topic, message.partition, message.offset),
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=reason,
        original=raw if len(raw) <= rt.settings.max_message_bytes else raw[:PREVIEW_BYTES],
        key=None,
        received_at=rt.clock(),
        original_size=None if value is None else len(raw),
        original_sha256=None if value is None else hashlib.sha256(raw).hexdigest(),
    )


async def store_dead_letter(rt: Runtime, event: faust.EventT[bytes]) -> None:
    """One dead_letters row per bad message; an unreadable letter is stored as it came."""
    readable = _readable(rt, event)
    letter = readable if isinstance(readable, StoredLetter) else _as_it_came(rt, event, readable)
    new = await rt.db(record_dead_letter, rt.engine, letter)
    log.info(
        "dead_letter_stored",
        dead_letter_id=letter.dead_letter_id,
        new=new,
        reason=reason_code(letter.reason),
    )


def register(app: faust.App, rt: Runtime) -> None:
    """The sink for dead letters. It never sends to dead-letters itself: a letter it cannot
    store is a bug, and crashes loudly rather than looping."""

    @app.agent(rt.topics.dead_letters, name="dead_letter_sink")
    async def dead_letter_sink(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            bind_event("dead_letter_sink", event)
            await store_dead_letter(rt, event)
