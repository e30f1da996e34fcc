"""Consent in SQL on SQLite and PostgreSQL: last writer wins, replays are no-ops, and the
mailer's claim cancels an opted-out customer's invitation."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine, text

from models.consent import Consent
from models.store.consent import (
    ConsentsRecorded,
    customer_for_token,
    opted_out,
    opted_out_now,
    record_consents,
)
from models.store.engine import transaction
from models.store.surveys import claim_deliveries
from models.store.tables import SurveyInvitation
from tests.factories import consent_change

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


change = partial(consent_change, since=NOW - timedelta(days=1), source="preference_centre")


def stored(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT customer_id, channel, status, consent_id FROM customer_consent "
                    "ORDER BY customer_id, channel"
                )
            )
        ]


def recorded_at(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT recorded_at FROM customer_consent")).scalars())


def test_a_late_older_change_never_overwrites_a_newer_one(engine: Engine) -> None:
    assert record_consents(engine, [change(2, status="opted_in", at=10)], NOW) == (
        ConsentsRecorded(current=1, superseded=0)
    )
    late = record_consents(engine, [change(1, status="opted_out", at=5)], NOW)
    assert late == ConsentsRecorded(current=0, superseded=1)
    assert stored(engine) == [("C-1", "email", "opted_in", "c-2")]
    assert opted_out_now(engine, ["C-1"], "email") == set()
    newer = record_consents(engine, [change(3, status="opted_out", at=11)], NOW)
    assert newer.current == 1
    assert stored(engine) == [("C-1", "email", "opted_out", "c-3")]
    assert opted_out_now(engine, ["C-1"], "email") == {"C-1"}


def test_a_replayed_batch_changes_nothing(engine: Engine) -> None:
    batch = [
        change(1, "email", "opted_out", 0),
        change(2, "email", "opted_in", 3),
        change(3, "all", "opted_out", 1, customer="C-2"),
    ]
    first = record_consents(engine, batch, NOW)
    assert first == ConsentsRecorded(current=2, superseded=1)
    before = stored(engine), recorded_at(engine)
    again = record_consents(engine, list(reversed(batch)), NOW + timedelta(hours=1))
    assert again == first  # the winners are current, the loser still superseded
    assert (stored(engine), recorded_at(engine)) == before  # not even recorded_at moved


@pytest.mark.parametrize("split", [1, 2, 4])
def test_any_order_and_batching_gives_the_same_state(engine: Engine, split: int) -> None:
    changes = [
        change(1, "email", "opted_out", 0),
        change(2, "email", "opted_in", 4),
        change(3, "all", "opted_out", 2),
        change(4, "email", "opted_out", 4),  # a tie with c-2: the opt-out wins
        change(5, "phone", "opted_in", 1),
    ]
    expected = [
        ("C-1", "all", "opted_out", "c-3"),
        ("C-1", "email", "opted_out", "c-4"),
        ("C-1", "phone", "opted_in", "c-5"),
    ]
    for n, order in enumerate(itertools.islice(itertools.permutations(changes), 0, 120, 17)):
        customer = f"P-{n}"
        moved = [Consent(**{**c.__dict__, "customer_id": customer}) for c in order]
        for start in range(0, len(moved), split):
            record_consents(engine, moved[start : start + split], NOW)
        rows = [r for r in stored(engine) if r[0] == customer]
        assert [(*r[1:],) for r in rows] == [e[1:] for e in expected], order


def test_all_channels_and_a_later_channel_opt_in(engine: Engine) -> None:
    record_consents(
        engine,
        [
            change(1, "all", "opted_out", 0, customer="C-all"),
            change(2, "all", "opted_out", 0, customer="C-back"),
            change(3, "email", "opted_in", 1, customer="C-back"),
            change(4, "phone", "opted_out", 0, customer="C-phone"),
        ],
        NOW,
    )
    everyone = ["C-all", "C-back", "C-phone", "C-none"]
    with transaction(engine) as session:  # usable inside the caller's transaction
        assert opted_out(session, everyone, "email") == {"C-all"}
        assert opted_out(session, everyone, "phone") == {"C-all", "C-back", "C-phone"}
    assert opted_out_now(engine, [], "email") == set()


def invitation(engine: Engine, n: int, customer: str, **fields: Any) -> str:
    invitation_id = f"inv-{n}"
    with transaction(engine) as session:
        session.add(
            SurveyInvitation(
                invitation_id=invitation_id,
                event_id=f"e-{n}",
                customer_id=customer,
                email=f"{customer.lower()}@example.nl",
                locale="nl",
                kind="purchase",
                channel="shop",
                created_at=NOW - timedelta(hours=1),
                **fields,
            )
        )
    return invitation_id


def test_an_opted_out_customer_is_cancelled_at_claim_time(engine: Engine) -> None:
    out = invitation(engine, 1, "C-out")
    back = invitation(engine, 2, "C-back")
    other = invitation(engine, 3, "C-other")
    record_consents(
        engine,
        [
            change(1, "email", "opted_out", 0, customer="C-out"),
            change(2, "all", "opted_out", 0, customer="C-back"),
            change(3, "email", "opted_in", 1, customer="C-back"),
            change(4, "phone", "opted_out", 0, customer="C-other"),
        ],
        NOW,
    )
    tokens = {out: "h" * 64, back: "i" * 64, other: "j" * 64}
    claims = claim_deliveries(engine, tokens, NOW, timedelta(days=30))
    assert claims.done == {out: "cancelled"}
    assert set(claims.claimed) == {back, other}
    with transaction(engine) as session:
        row = session.get(SurveyInvitation, out)
        assert row is not None
        assert (row.delivery_status, row.delivery_error) == ("cancelled", "opted out")
        assert row.token_hash is None  # no link was made for it
    # Claimed again (a redelivered invitation): still cancelled, never claimed.
    again = claim_deliveries(engine, {out: "k" * 64}, NOW, timedelta(days=30))
    assert (again.done, again.claimed) == ({out: "cancelled"}, {})


def test_the_token_finds_its_customer_even_after_answer_or_expiry(engine: Engine) -> None:
    invitation(
        engine,
        1,
        "C-1",
        token_hash="a" * 64,
        expires_at=NOW - timedelta(days=1),
        answered_at=NOW - timedelta(days=2),
        delivery_status="sent",
    )
    holder = customer_for_token(engine, "a" * 64)
    assert holder is not None
    assert (holder.customer_id, holder.locale, holder.invitation_id) == ("C-1", "nl", "inv-1")
    assert customer_for_token(engine, "b" * 64) is None
