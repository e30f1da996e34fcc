"""The loop every agent runs: one event at a time, and no event lost to a bug. Bad input
goes to the dead-letters topic with reason, place and original bytes.

Every decode path first refuses what no topic takes (refusal): a null value (tombstone),
a message larger than CXLOOP_MAX_MESSAGE_BYTES and a NUL character, whether a raw byte or
a \\u0000 escape in a JSON string. Reasons are "<code>: <detail>" (DeadLetterReason); the log
line names the code only, never a value.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TypeVar

import faust
import orjson
import structlog

from agents.runtime import Runtime, bind_event
from models.json_checks import nul_byte_at, nul_path
from streams.records import DeadLetter, DeadLetterReason, dead_letter_reason
from streams.topics import CUSTOMER_CONSENT

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
        reason = dead_letter_reason(DeadLetterReason.UNEXPECTED, f"{type(exc).__name__} in {agent}")
        await send_to_dead_letters(rt, event, reason)


_NAMESPACE = uuid.UUID("c7a4e7f0-0d7b-4f83-a1f4-9d4b8b2d6e55")


def dead_letter_id(topic: str, partition: int, offset: int) -> str:
    """Stable id of the message at one place in the log: a replay finds the same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{topic}/{partition}/{offset}"))


PREVIEW_BYTES = 64 * 1024  # what a too_large dead letter keeps of the original
_NUL_ESCAPE = b"\\u0000"
_KEY_MAX = 200


def refusal(value: bytes | None, max_bytes: int) -> str | None:
    """Why a message is refused before any decoding (a dead-letter reason), or None.

    Cheap on good input: a length, one byte search for NUL and one for a \\u0000 escape;
    only a message with such an escape is parsed here, to see whether it lands in a string.
    """
    if value is None:
        return dead_letter_reason(DeadLetterReason.NULL_VALUE, "the message has no value")
    size = len(value)
    if size > max_bytes:
        return dead_letter_reason(
            DeadLetterReason.TOO_LARGE,
            f"{size} bytes, more than {max_bytes}; the first {min(size, PREVIEW_BYTES)} kept",
        )
    at = nul_byte_at(value)
    if at is not None:
        return dead_letter_reason(DeadLetterReason.NUL_CHARACTER, f"byte {at}")
    if _NUL_ESCAPE in value:
        try:
            where = nul_path(orjson.loads(value))
        except orjson.JSONDecodeError:
            return None  # not JSON: the decoder says so
        if where is not None:
            return dead_letter_reason(DeadLetterReason.NUL_CHARACTER, where)
    return None


def reason_for(exc: Exception) -> str:
    """The dead-letter reason for a decoder's refusal: its own code when it has one
    (ContactEventInvalidError, RecordInvalidError), else invalid_field."""
    code, detail = getattr(exc, "code", None), getattr(exc, "detail", None)
    if isinstance(code, str) and isinstance(detail, str):
        return f"{code}: {detail}"
    return dead_letter_reason(DeadLetterReason.INVALID_FIELD, str(exc))


def reason_code(reason: str) -> str:
    """The code a reason starts with (what the log shows)."""
    return reason.partition(":")[0]


def _customer_of_key(topic: str, key: object) -> str | None:
    """The customer id a source message's key names: every topic is keyed by customer id,
    customer-consent by '<customer id>|<channel>'. None for no key, or one that cannot be."""
    if not isinstance(key, bytes) or not 0 < len(key) <= _KEY_MAX or b"\x00" in key:
        return None
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if topic == CUSTOMER_CONSENT:
        text = text.rpartition("|")[0]
    return text or None


async def send_to_dead_letters(
    rt: Runtime, event: faust.EventT[bytes], reason: str, customer_id: str | None = None
) -> None:
    """Put the event's original bytes on dead-letters with *reason* (a too_large message:
    its first 64 KiB, with the size and SHA-256 of the whole), keyed by *customer_id*, else
    the customer the source key names, else the dead-letter id."""
    message = event.message
    # A tombstone is a None value on the event (the message may carry b"" for it).
    value = None if event.value is None else message.value
    raw = value if isinstance(value, bytes) else bytes(value or b"")
    kept = raw if len(raw) <= rt.settings.max_message_bytes else raw[:PREVIEW_BYTES]
    key = message.key if isinstance(message.key, bytes) else None
    letter = DeadLetter(
        dead_letter_id=dead_letter_id(message.topic, message.partition, message.offset),
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=reason,
        original_b64=base64.b64encode(kept).decode("ascii"),
        received_at=rt.clock(),
        key_b64=base64.b64encode(key).decode("ascii") if key is not None else None,
        original_size=None if value is None else len(raw),
        original_sha256=None if value is None else hashlib.sha256(raw).hexdigest(),
    )
    partition_key = customer_id or _customer_of_key(message.topic, key) or letter.dead_letter_id
    await rt.send(rt.topics.dead_letters, partition_key, letter.to_bytes())
    dead_letter_log.info(
        "event_dead_lettered", reason=reason_code(reason), dead_letter_id=letter.dead_letter_id
    )


async def decode_or_dead_letter(
    rt: Runtime,
    events: Sequence[faust.EventT[bytes]],
    decode: Callable[[bytes], T],
    refusals: tuple[type[Exception], ...] = (ValueError, TypeError),
) -> list[tuple[faust.EventT[bytes], T]]:
    """Each event with its decoded value. An event refusal() refuses, or *decode* refuses
    (raises one of *refusals*), goes to dead-letters with its reason."""
    decoded: list[tuple[faust.EventT[bytes], T]] = []
    max_bytes = rt.settings.max_message_bytes
    for event in events:
        value = event.value
        refused = refusal(value, max_bytes)
        if refused is not None:
            await send_to_dead_letters(rt, event, refused)
            continue
        try:
            decoded.append((event, decode(value)))
        except refusals as exc:
            await send_to_dead_letters(rt, event, reason_for(exc))
    return decoded


async def keyed_by_customer(
    rt: Runtime,
    decoded: Sequence[tuple[faust.EventT[bytes], T]],
    customer_of: Callable[[T], str],
) -> list[tuple[faust.EventT[bytes], T]]:
    """The decoded events whose message key is their customer id; the others go to
    dead-letters as key_mismatch (a wrong key puts a customer's events on different
    partitions, out of order)."""
    kept: list[tuple[faust.EventT[bytes], T]] = []
    for event, value in decoded:
        customer = customer_of(value)
        if event.message.key == customer.encode("utf-8"):
            kept.append((event, value))
            continue
        reason = dead_letter_reason(
            DeadLetterReason.KEY_MISMATCH, "the message key is not customer.id"
        )
        await send_to_dead_letters(rt, event, reason, customer_id=customer)
    return kept
