"""consent agent: changes land in SQL last-writer-wins; bad input goes to the dead letters."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from sqlalchemy import text

from agents.pipeline import consent
from models.store.consent import opted_out_now
from tests.agents.conftest import NOW, Harness, settled
from tests.factories import consent_change_json

# Change c-n of customer C-1, at minutes after an hour before NOW.
change = partial(consent_change_json, since=NOW - timedelta(minutes=60), source="preference_centre")


def rows(h: Harness) -> list[tuple[str, str, str]]:
    with h.rt.engine.connect() as connection:
        return [
            (str(r[0]), str(r[1]), str(r[2]))
            for r in connection.execute(
                text("SELECT channel, status, consent_id FROM customer_consent ORDER BY channel")
            )
        ]


async def test_changes_are_recorded_and_an_older_one_arriving_late_is_ignored(
    harness: Callable[..., Harness],
) -> None:
    h = harness(consent)
    async with h.agent("consent").test_context() as agent:
        await agent.put(change(2, "email", "opted_out", at=10), key=b"C-1|email")
        await agent.put(change(1, "email", "opted_in", at=5), key=b"C-1|email")  # late
        await agent.put(change(3, "all", "opted_out", at=1), key=b"C-1|all")
        await settled(h, lambda: len(rows(h)) == 2, "two consent rows")
        await agent.put(change(2, "email", "opted_out", at=10), key=b"C-1|email")  # replay
        await agent.put(change(4, "phone", "opted_in", at=20), key=b"C-1|phone")
        await settled(h, lambda: len(rows(h)) == 3, "the phone row after the replay")
    assert rows(h) == [
        ("all", "opted_out", "c-3"),
        ("email", "opted_out", "c-2"),
        ("phone", "opted_in", "c-4"),
    ]
    assert opted_out_now(h.rt.engine, ["C-1"], "email") == {"C-1"}
    assert opted_out_now(h.rt.engine, ["C-1"], "phone") == set()
    assert h.sent_to("dead-letters") == []


async def test_bad_changes_are_dead_lettered_with_their_reason(
    harness: Callable[..., Harness],
) -> None:
    h = harness(consent)
    unknown_channel = change(1).replace(b'"email"', b'"fax"')
    naive = change(2).replace(b"+00:00", b"")
    async with h.agent("consent").test_context() as agent:
        await agent.put(b"{not json", key=b"C-1|email")
        await agent.put(unknown_channel, key=b"C-1|fax")
        await agent.put(naive, key=b"C-1|email")
        await agent.put(change(3, "email", "opted_out"), key=b"C-1|email")
        await settled(h, lambda: len(rows(h)) == 1, "the good change after the bad ones")
    letters = h.sent_to("dead-letters")
    assert [letter["source_topic"] for letter in letters] == ["customer-consent"] * 3
    reasons = [letter["reason"] for letter in letters]
    assert all(reason.startswith(("not_json:", "invalid_field:")) for reason in reasons), reasons
    assert "channel" in reasons[1]
    assert "time zone" in reasons[2]
    originals = [base64.b64decode(letter["original_b64"]) for letter in letters]
    assert originals == [b"{not json", unknown_channel, naive]
    assert rows(h) == [("email", "opted_out", "c-3")]


async def test_a_tombstone_does_not_forget_an_opt_out(harness: Callable[..., Harness]) -> None:
    h = harness(consent)
    async with h.agent("consent").test_context() as agent:
        await agent.put(change(1, "email", "opted_out"), key=b"C-1|email")
        await agent.put(None, key=b"C-1|email")
        await settled(
            h, lambda: bool(h.sent_to("dead-letters") and rows(h)), "the change and tombstone"
        )
    assert [letter["reason"] for letter in h.sent_to("dead-letters")] == [
        "null_value: a consent tombstone; send opted_in instead"
    ]
    assert rows(h) == [("email", "opted_out", "c-1")]
