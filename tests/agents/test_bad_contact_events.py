"""The contact-event catalogue in Faust's test harness, on SQLite and PostgreSQL: every class
of bad event is dead-lettered with its exact reason code and stored by the sink, the trigger
keeps running, the good event after each bad one is decided, and nothing is logged above
info (no traceback, no value)."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import text
from structlog.testing import capture_logs

from agents.consume import PREVIEW_BYTES, dead_letter_id
from agents.pipeline import dead_letters, trigger
from models.contact_events import ContactEventInvalidError
from streams.records import DeadLetterReason
from tests.agents.conftest import NOW, Harness, settled
from tests.bad_contact_events import CATALOGUE, catalogue_messages

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def customer(i: int) -> str:
    return f"C-bad-{i}"


def test_the_catalogue_is_large_and_its_codes_are_dead_letter_reasons() -> None:
    assert len(CATALOGUE) >= 50
    assert len({entry.name for entry in CATALOGUE}) == len(CATALOGUE)
    codes = {entry.code for entry in CATALOGUE}
    assert codes <= {reason.value for reason in DeadLetterReason}
    for required in (
        "null_value",
        "key_mismatch",
        "duplicate_key",
        "occurred_in_future",
        "too_large",
        "nul_character",
    ):
        assert required in codes


def test_contact_event_refusals_use_dead_letter_reason_codes() -> None:
    refusal = ContactEventInvalidError("duplicate_key", "kind appears twice")
    assert DeadLetterReason(refusal.code) is DeadLetterReason.DUPLICATE_KEY
    assert str(refusal) == "duplicate_key: kind appears twice"


async def test_every_bad_contact_event_is_dead_lettered_with_its_code(
    harness: Callable[..., Harness], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness(trigger, dead_letters, database_url=database_url)
    messages = catalogue_messages(NOW, customer, NOW - timedelta(hours=1))
    caplog.set_level(logging.WARNING)
    with capture_logs() as logs:
        async with h.agent("trigger").test_context() as agent:
            for _, (bad_key, bad_value), (good_key, good_value) in messages:
                await agent.put(bad_value, key=bad_key)  # offset 2i
                await agent.put(good_value, key=good_key)  # offset 2i + 1
            await settled(
                h,
                lambda: len(decided(h)) == len(messages) or agent.crash_reason is not None,
                "every good event decided",
                limit_s=60,
            )
            assert agent.crash_reason is None, f"the trigger crashed: {agent.crash_reason!r}"
    assert decided(h) == {f"evt-good-{i}" for i in range(len(messages))}

    sent = [(key, value) for topic, key, value in h.sent if topic == "dead-letters"]
    assert len(sent) == len(messages)
    by_offset = {value["offset"]: (key, value) for key, value in sent}
    assert set(by_offset) == {2 * i for i in range(len(messages))}
    for i, (entry, (_, bad_value), _) in enumerate(messages):
        key, letter = by_offset[2 * i]
        code, _, detail = letter["reason"].partition(": ")
        assert code == entry.code, (entry.name, letter["reason"])
        assert entry.detail is None or entry.detail in detail, (entry.name, letter["reason"])
        assert "\x00" not in letter["reason"], entry.name
        assert key == customer(i), entry.name  # keyed by the customer, like the source
        original = base64.b64decode(letter["original_b64"])
        if bad_value is None:
            assert (original, letter["original_size"]) == (b"", None)
        else:
            kept = bad_value if code != "too_large" else bad_value[:PREVIEW_BYTES]
            assert original == kept, entry.name
            assert letter["original_size"] == len(bad_value)
            assert letter["original_sha256"] == hashlib.sha256(bad_value).hexdigest()

    # The sink stores every letter on this database (PostgreSQL too: no NUL, no overflow).
    async with h.agent("dead_letter_sink").test_context() as sink:
        for key, letter in sent:
            await sink.put(orjson.dumps(letter), key=key.encode())
        await settled(h, lambda: len(stored(h)) == len(messages), "every dead letter stored")
        assert sink.crash_reason is None
    rows = stored(h)
    for i, (entry, (_, bad_value), _) in enumerate(messages):
        row = rows[dead_letter_id("contact-events", by_offset[2 * i][1]["partition"], 2 * i)]
        assert row["reason"].partition(":")[0] == entry.code, entry.name
        assert row["source_topic"] == "contact-events"
        assert row["original_size"] == (None if bad_value is None else len(bad_value))
        if entry.code == "too_large":
            assert bad_value is not None
            assert len(bytes(row["original"])) == PREVIEW_BYTES
            assert row["original_size"] == len(bad_value)

    # One info line per dead letter, naming the code only; nothing above info, no values.
    lettered = [e for e in logs if e["event"] == "event_dead_lettered"]
    assert sorted(e["reason"] for e in lettered) == sorted(entry.code for entry, _, _ in messages)
    assert all(e["log_level"] == "info" for e in lettered)
    assert [e for e in logs if e["log_level"] not in ("debug", "info")] == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    shown = repr(logs)
    for secret in ("Anna", "example.nl", "no engineer"):
        assert secret not in shown


def decided(h: Harness) -> set[str]:
    with h.rt.engine.connect() as connection:
        found = connection.execute(text("SELECT DISTINCT event_id FROM survey_decisions"))
        return {str(row[0]) for row in found}


def stored(h: Harness) -> dict[str, dict[str, object]]:
    with h.rt.engine.connect() as connection:
        found = connection.execute(text("SELECT * FROM dead_letters"))
        return {str(row.dead_letter_id): dict(row._mapping) for row in found}
