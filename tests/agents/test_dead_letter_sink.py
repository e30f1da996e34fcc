"""dead_letter_sink agent in Faust's test harness: one dead_letters row per bad message."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from agents.consume import dead_letter_id
from agents.pipeline import dead_letters
from models.store.engine import transaction
from models.store.tables import DeadLetter as DeadLetterRow
from streams import records
from tests.agents.conftest import NOW, Harness, settled

RECEIVED = NOW - timedelta(seconds=30)


def letter(
    offset: int,
    original: bytes = b'{"event_id": "x"}',
    key: bytes | None = b"C-9",
    reason: str = "occurred_at: Field required",
    **overrides: Any,
) -> bytes:
    """A dead letter as send_to_dead_letters writes it, for contact-events/0/*offset*."""
    fields: dict[str, Any] = {
        "dead_letter_id": dead_letter_id("contact-events", 0, offset),
        "source_topic": "contact-events",
        "partition": 0,
        "offset": offset,
        "reason": reason,
        "original_b64": base64.b64encode(original).decode("ascii"),
        "key_b64": base64.b64encode(key).decode("ascii") if key is not None else None,
        "received_at": RECEIVED,
    }
    fields.update(overrides)
    return records.DeadLetter(**fields).to_bytes()


def stored(h: Harness) -> list[DeadLetterRow]:
    with transaction(h.rt.engine) as session:
        query = select(DeadLetterRow).order_by(
            col(DeadLetterRow.source_topic), col(DeadLetterRow.offset)
        )
        return list(session.scalars(query).all())


def rows_of(h: Harness) -> list[tuple[Any, ...]]:
    return [
        (r.dead_letter_id, r.source_topic, r.partition, r.offset, r.reason, r.original, r.key)
        for r in stored(h)
    ]


async def test_a_dead_letter_is_stored_with_its_original_bytes(
    harness: Callable[..., Harness],
) -> None:
    h = harness(dead_letters)
    async with h.agent("dead_letter_sink").test_context() as agent:
        await agent.put(letter(7), key=b"C-9")
        await settled(h, lambda: len(stored(h)) == 1, "the dead letter row")
    (row,) = stored(h)
    assert (row.dead_letter_id, row.source_topic, row.partition, row.offset) == (
        dead_letter_id("contact-events", 0, 7),
        "contact-events",
        0,
        7,
    )
    assert row.reason == "occurred_at: Field required"
    assert row.original == b'{"event_id": "x"}'
    assert row.key == b"C-9"
    assert row.received_at == RECEIVED
    assert h.sent == []  # the sink never sends a dead letter round again


async def test_a_dead_letter_without_a_key_is_stored_without_one(
    harness: Callable[..., Harness],
) -> None:
    h = harness(dead_letters)
    async with h.agent("dead_letter_sink").test_context() as agent:
        await agent.put(letter(3, key=None), key=None)
        await settled(h, lambda: len(stored(h)) == 1, "the dead letter row")
    (row,) = stored(h)
    assert (row.offset, row.original, row.key) == (3, b'{"event_id": "x"}', None)


async def test_the_same_dead_letter_twice_is_one_row(harness: Callable[..., Harness]) -> None:
    h = harness(dead_letters)
    async with h.agent("dead_letter_sink").test_context() as agent:
        await agent.put(letter(7), key=b"C-9")
        await agent.put(letter(7), key=b"C-9")  # redelivered
        await agent.put(letter(8, original=b"next"), key=b"C-9")
        await settled(h, lambda: any(r.offset == 8 for r in stored(h)), "the next dead letter")
    assert [(r[3], r[5]) for r in rows_of(h)] == [(7, b'{"event_id": "x"}'), (8, b"next")]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xfe not json at all", "not_utf8"),
        (b'{"dead_letter_id": "d-1"}', "invalid_field"),
        (letter(9, original_b64="!!! not base64 !!!"), "invalid_field"),
    ],
    ids=["not-json", "missing-fields", "bad-base64"],
)
async def test_an_unreadable_dead_letter_is_stored_as_it_came(
    harness: Callable[..., Harness], raw: bytes, code: str
) -> None:
    h = harness(dead_letters)
    async with h.agent("dead_letter_sink").test_context() as agent:
        await agent.put(letter(1), key=b"C-9")  # offset 0 on dead-letters
        await agent.put(raw, key=b"C-9")  # offset 1 on dead-letters
        await settled(h, lambda: len(stored(h)) == 2, "both rows")
    rows = {r.source_topic: r for r in stored(h)}
    assert set(rows) == {"contact-events", "dead-letters"}
    unreadable = rows["dead-letters"]
    assert unreadable.dead_letter_id == dead_letter_id("dead-letters", 0, 1)
    assert (unreadable.partition, unreadable.offset) == (0, 1)
    assert unreadable.reason.startswith(f"{code}: ")
    assert unreadable.original == raw
    assert unreadable.received_at == NOW
    assert rows["contact-events"].original == b'{"event_id": "x"}'
    assert h.sent == []


async def test_two_unreadable_dead_letters_are_two_rows(harness: Callable[..., Harness]) -> None:
    h = harness(dead_letters)
    async with h.agent("dead_letter_sink").test_context() as agent:
        await agent.put(b"garbage one", key=None)
        await agent.put(b"garbage two", key=None)
        await settled(h, lambda: len(stored(h)) == 2, "both rows")
    assert [(r[1], r[3], r[5]) for r in rows_of(h)] == [
        ("dead-letters", 0, b"garbage one"),
        ("dead-letters", 1, b"garbage two"),
    ]


async def test_a_dead_letter_of_an_empty_message_keeps_its_source_and_reason(
    harness: Callable[..., Harness],
) -> None:
    h = harness(dead_letters)
    async with h.agent("dead_letter_sink").test_context() as agent:
        await agent.put(letter(4, original=b"", reason="payload is empty"), key=b"C-9")
        await settled(h, lambda: len(stored(h)) == 1, "the dead letter row")
    assert [(r[1], r[3], r[4], r[5]) for r in rows_of(h)] == [
        ("contact-events", 4, "payload is empty", b"")
    ]


async def test_a_dead_letter_with_a_timestamp_without_offset_is_stored(
    harness: Callable[..., Harness],
) -> None:
    h = harness(dead_letters)
    naive = letter(5, received_at=datetime(2026, 11, 23, 8, 59))
    async with h.agent("dead_letter_sink").test_context() as agent:
        await agent.put(naive, key=b"C-9")
        await settled(
            h,
            lambda: bool(stored(h)) or agent.crash_reason is not None,
            "the dead letter row, or the sink's crash",
        )
        assert agent.crash_reason is None, f"the sink crashed: {agent.crash_reason!r}"
    # Not a valid letter (our records carry aware timestamps), so it is kept as it came:
    # under its own place on dead-letters, with the bytes and the reason.
    [row] = rows_of(h)
    assert row[1] == "dead-letters"
    assert "received_at: timestamp without time zone" in row[4]
    assert row[5] == naive
