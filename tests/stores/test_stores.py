"""The SQL stores on SQLite and PostgreSQL: batches, replays and concurrent writers."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from models.contact_events import ContactEvent
from models.followup_rules import load_followup_rules
from models.rules import load_rules
from models.store.decisions import decide_contacts
from models.store.surveys import (
    AlreadyAnsweredError,
    claim_delivery,
    finish_delivery,
    record_response,
)
from models.tokens import hash_token, new_token
from tests.factories import read_contact_event

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CAP = timedelta(days=180)
DUE = load_followup_rules()  # what opens complaint tasks
RULES = load_rules()  # the demo rules: surveys at once, window always open, 180-day cap


def event(n: int, customer: str, kind: str = "purchase", at: datetime = NOW) -> ContactEvent:
    return read_contact_event(f"e-{n}", kind, at - timedelta(minutes=5), customer, channel="web")


def count(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql)).all()]


def test_a_batch_with_repeats_surveys_each_customer_once(engine: Engine) -> None:
    batch = [event(i, f"C-{i % 7}") for i in range(40)] + [event(3, "C-3")]  # e-3 twice
    results = decide_contacts(engine, batch, NOW, RULES, DUE)
    assert len(results) == len(batch)
    assert results[-1].decision is results[3].decision
    assert results[-1].fresh is False
    decisions = {r.decision.event_id: r.decision for r in results}
    surveyed = Counter(d.customer_id for d in decisions.values() if d.outcome == "surveyed")
    assert set(surveyed.values()) == {1}
    assert len(surveyed) == 7
    assert count(engine, "SELECT count(*) FROM survey_decisions") == [(40,)]
    assert count(engine, "SELECT count(*) FROM survey_invitations") == [(7,)]
    # The whole batch again: nothing new, the same outcomes.
    again = decide_contacts(engine, batch, NOW + timedelta(days=1), RULES, DUE)
    assert [r.decision.reason for r in again] == [r.decision.reason for r in results]
    assert not any(r.fresh for r in again)
    assert count(engine, "SELECT count(*) FROM survey_decisions") == [(40,)]


def test_the_cap_ends_and_a_complaint_blocks(engine: Engine) -> None:
    decide_contacts(engine, [event(1, "C-1")], NOW, RULES, DUE)
    almost = NOW + CAP - timedelta(seconds=1)
    later = decide_contacts(engine, [event(2, "C-1", at=almost)], almost, RULES, DUE)
    assert later[0].decision.reason == "recently_surveyed"
    complaint = decide_contacts(
        engine, [event(3, "C-1", kind="complaint", at=NOW + CAP)], NOW + CAP, RULES, DUE
    )
    assert complaint[0].decision.reason == "open_complaint"
    assert complaint[0].task is not None
    after = decide_contacts(engine, [event(4, "C-1", at=NOW + CAP)], NOW + CAP, RULES, DUE)
    assert after[0].decision.reason == "open_complaint"
    assert count(engine, "SELECT origin, status FROM followup_tasks") == [("complaint", "open")]


def test_concurrent_workers_never_survey_one_customer_twice(engine: Engine) -> None:
    """Two 'workers' decide overlapping batches for the same customers at the same time."""
    customers = [f"C-{i}" for i in range(50)]
    start = threading.Barrier(4)

    def worker(offset: int) -> None:
        start.wait()
        for round_ in range(5):
            batch = [event(offset * 1000 + round_ * 100 + i, c) for i, c in enumerate(customers)]
            decide_contacts(engine, batch, NOW, RULES, DUE)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    surveyed = count(
        engine,
        "SELECT customer_id, count(*) FROM survey_decisions WHERE outcome = 'surveyed' "
        "GROUP BY customer_id",
    )
    assert sorted(surveyed) == sorted((c, 1) for c in customers)
    assert count(engine, "SELECT count(*) FROM survey_decisions") == [(4 * 5 * 50,)]


def test_fifty_parallel_answers_to_one_token_store_exactly_one(engine: Engine) -> None:
    [result] = decide_contacts(engine, [event(1, "C-1")], NOW, RULES, DUE)
    assert result.invitation is not None
    token = new_token()
    claim_delivery(engine, result.invitation.invitation_id, hash_token(token), NOW, CAP)
    finish_delivery(engine, result.invitation.invitation_id, "sent", NOW)
    start = threading.Barrier(50)

    def answer(score: int) -> str:
        start.wait()
        try:
            record_response(engine, hash_token(token), score % 11, None, None, NOW)
        except AlreadyAnsweredError:
            return "409"
        return "201"

    with ThreadPoolExecutor(50) as pool:
        outcomes = Counter(pool.map(answer, range(50)))
    assert outcomes == {"201": 1, "409": 49}
    assert count(engine, "SELECT count(*) FROM survey_responses") == [(1,)]


def test_a_survey_due_at_once_goes_out_before_a_later_complaint_in_the_same_batch(
    engine: Engine,
) -> None:
    # One contact after another, as if each were its own batch: the purchase's survey is
    # due at once, so the complaint that follows it in the batch cannot cancel it.
    batch = [event(1, "C-1"), event(2, "C-1", kind="complaint"), event(3, "C-2")]
    results = decide_contacts(engine, batch, NOW, RULES, DUE)
    assert [r.decision.reason for r in results] == ["surveyed", "open_complaint", "surveyed"]
    assert count(engine, "SELECT count(*) FROM survey_invitations") == [(2,)]
    assert count(engine, "SELECT count(*) FROM survey_timers") == [(0,)]
    assert count(engine, "SELECT origin, status FROM followup_tasks") == [("complaint", "open")]
