"""scoring agent in Faust's test harness: category on the answer row, ScoredResponse sent."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta

import orjson
import pytest

from agents.pipeline import scoring
from models.store.engine import transaction
from models.store.surveys import claim_delivery, finish_delivery, record_response
from models.store.tables import SurveyResponse as ResponseRow
from models.tokens import hash_token
from streams import records
from tests.agents.conftest import NOW, Harness, decided_invitation, settled

SUBMITTED = NOW - timedelta(minutes=5)


def answered(
    h: Harness, n: int, nps: int | None, csat: int | None = None, customer: str = "C-1"
) -> tuple[str, bytes]:
    """An answer stored the way the survey page stores it; its id and its SurveyResponse."""
    engine = h.rt.engine
    invitation_id = decided_invitation(h, n, customer, NOW - timedelta(hours=1)).invitation_id
    token_hash = hash_token(f"token-{n}-{'x' * 30}")
    claim_delivery(engine, invitation_id, token_hash, NOW - timedelta(hours=1), timedelta(days=30))
    finish_delivery(engine, invitation_id, "sent", NOW - timedelta(hours=1))
    row = record_response(engine, token_hash, nps, csat, None, SUBMITTED)
    message = records.SurveyResponse(
        response_id=row.response_id,
        invitation_id=row.invitation_id,
        customer_id=row.customer_id,
        submitted_at=row.submitted_at,
        nps=row.nps,
        csat=row.csat,
    )
    return row.response_id, message.to_bytes()


def response(h: Harness, response_id: str) -> ResponseRow:
    with transaction(h.rt.engine) as session:
        row = session.get(ResponseRow, response_id)
    assert row is not None
    return row


def scored(h: Harness) -> list[tuple[str, dict[str, object]]]:
    return [(key, value) for topic, key, value in h.sent if topic == "scored-responses"]


@pytest.mark.parametrize(
    ("nps", "category"),
    [(0, "detractor"), (3, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"),
     (9, "promoter"), (10, "promoter")],
)  # fmt: skip
async def test_answer_gets_its_category_on_the_row_and_the_topic(
    harness: Callable[..., Harness], nps: int, category: str
) -> None:
    h = harness(scoring)
    response_id, value = answered(h, 1, nps)
    async with h.agent("scoring").test_context() as agent:
        await agent.put(value, key=b"C-1")
        await settled(h, lambda: bool(scored(h)), "the scored response")
    row = response(h, response_id)
    assert (row.nps, row.nps_category, row.csat_satisfied) == (nps, category, None)
    assert row.scored_at == NOW
    assert len(scored(h)) == 1
    key, value_sent = scored(h)[0]
    assert key == "C-1"
    assert value_sent["response_id"] == response_id
    assert value_sent["nps"] == nps
    assert value_sent["nps_category"] == category
    assert value_sent["customer_id"] == "C-1"
    assert h.sent_to("dead-letters") == []


async def test_ces_and_the_answers_pass_through(harness: Callable[..., Harness]) -> None:
    h = harness(scoring)
    response_id, _ = answered(h, 1, nps=None, csat=2)
    answers = {"csat": 2, "ces": 6, "solved_first_contact": False, "comment": "Twee keer gebeld"}
    message = records.SurveyResponse(
        response_id=response_id,
        invitation_id=response(h, response_id).invitation_id,
        customer_id="C-1",
        submitted_at=SUBMITTED,
        csat=2,
        ces=6,
        answers=answers,
    )
    async with h.agent("scoring").test_context() as agent:
        await agent.put(message.to_bytes(), key=b"C-1")
        await settled(h, lambda: bool(scored(h)), "the scored response")
    [(_, value_sent)] = scored(h)
    assert (value_sent["ces"], value_sent["answers"]) == (6, answers)
    assert (value_sent["csat_satisfied"], value_sent["nps_category"]) == (False, None)
    assert value_sent["schema_version"] == 2


async def test_a_ces_out_of_range_is_dead_lettered(harness: Callable[..., Harness]) -> None:
    h = harness(scoring)
    response_id, value = answered(h, 1, nps=None, csat=4)
    bad = orjson.loads(value) | {"ces": 8}
    async with h.agent("scoring").test_context() as agent:
        await agent.put(orjson.dumps(bad), key=b"C-1")
        await settled(h, lambda: bool(h.sent_to("dead-letters")), "the dead letter")
    assert scored(h) == []
    assert response(h, response_id).scored_at is None


@pytest.mark.parametrize(("csat", "satisfied"), [(3, False), (4, True)])
async def test_csat_top_two_box_is_scored(
    harness: Callable[..., Harness], csat: int, satisfied: bool
) -> None:
    h = harness(scoring)
    response_id, value = answered(h, 1, nps=None, csat=csat)
    async with h.agent("scoring").test_context() as agent:
        await agent.put(value, key=b"C-1")
        await settled(h, lambda: bool(scored(h)), "the scored response")
    row = response(h, response_id)
    assert (row.nps_category, row.csat_satisfied) == (None, satisfied)
    assert scored(h)[0][1]["csat_satisfied"] is satisfied


async def test_a_replay_sends_again_and_leaves_the_row_as_it_was(
    harness: Callable[..., Harness],
) -> None:
    h = harness(scoring)
    response_id, value = answered(h, 1, nps=3)
    async with h.agent("scoring").test_context() as agent:
        await agent.put(value, key=b"C-1")
        await settled(h, lambda: len(scored(h)) == 1, "the first scored response")
        first = response(h, response_id)
        h.rt.clock = lambda: NOW + timedelta(hours=1)  # the replay comes later
        await agent.put(value, key=b"C-1")
        await settled(h, lambda: len(scored(h)) == 2, "the replay's scored response")
    again = response(h, response_id)
    assert (again.nps_category, again.csat_satisfied, again.scored_at) == (
        first.nps_category,
        first.csat_satisfied,
        first.scored_at,
    )
    assert again.scored_at == NOW
    # Downstream is idempotent on response_id: the replay sends the same record again.
    assert scored(h)[0] == scored(h)[1]


async def test_an_answer_missing_from_the_database_is_dead_lettered(
    harness: Callable[..., Harness],
) -> None:
    h = harness(scoring)
    missing = records.SurveyResponse(
        response_id="no-such-response",
        invitation_id="no-such-invitation",
        customer_id="C-1",
        submitted_at=SUBMITTED,
        nps=2,
    ).to_bytes()
    response_id, value = answered(h, 1, nps=9)
    async with h.agent("scoring").test_context() as agent:
        await agent.put(missing, key=b"C-1")
        await agent.put(value, key=b"C-1")
        await settled(h, lambda: bool(scored(h)), "the next answer scored")
    letters = h.sent_to("dead-letters")
    assert [letter["reason"] for letter in letters] == [
        "not_found: survey response not in the database"
    ]
    assert letters[0]["source_topic"] == "survey-responses"
    assert base64.b64decode(letters[0]["original_b64"]) == missing
    assert [value["response_id"] for _key, value in scored(h)] == [response_id]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff not json", "not_utf8: not valid UTF-8 at byte 0"),
        (b"[1, 2]", "not_json: not a JSON object but list"),
        (b'{"response_id": "r-1"}', "invalid_field: "),
        (
            b'{"response_id": "r-1", "invitation_id": "i-1", "customer_id": "C-1",'
            b' "submitted_at": "2026-11-23T08:00:00+00:00", "nps": 11}',
            "invalid_field: NPS score must be 0..10, got 11",
        ),
    ],
    ids=["not-json", "not-an-object", "missing-fields", "nps-out-of-range"],
)
async def test_bad_input_is_dead_lettered_and_the_next_answer_flows(
    harness: Callable[..., Harness], raw: bytes, reason: str
) -> None:
    h = harness(scoring)
    response_id, value = answered(h, 1, nps=8)
    async with h.agent("scoring").test_context() as agent:
        await agent.put(raw, key=b"C-1")
        await agent.put(value, key=b"C-1")
        await settled(h, lambda: bool(scored(h)), "the next answer scored")
    letters = h.sent_to("dead-letters")
    assert len(letters) == 1
    assert letters[0]["reason"].startswith(reason)
    assert base64.b64decode(letters[0]["original_b64"]) == raw
    assert [value["response_id"] for _key, value in scored(h)] == [response_id]
    assert response(h, response_id).nps_category == "passive"
