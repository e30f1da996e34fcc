"""The phone call list in SQL, on SQLite and PostgreSQL: what interviewers see, the answers
they enter (one per invitation, left for the response outbox) and calls that fail."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from models.store.call_list import (
    MAX_NO_ANSWERS,
    CallClosedError,
    CallExpiredError,
    CallUnknownError,
    OpenCall,
    call_to_make,
    open_calls,
    record_call_attempt,
    record_interview,
)
from models.store.engine import transaction
from models.store.surveys import AlreadyAnsweredError, unpublished_responses
from models.store.tables import CustomerConsent, SurveyInvitation

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ANSWERS = {"nps": 2, "reason": "Te duur."}


def invitation(n: int, **overrides: Any) -> SurveyInvitation:
    values: dict[str, Any] = {
        "invitation_id": f"inv-{n}",
        "event_id": f"evt-{n}",
        "customer_id": f"C-{n}",
        "phone": f"+31 6 0000 00{n:02d}",
        "name": f"Klant {n}",
        "locale": "nl",
        "kind": "first_invoice",
        "channel": "web",
        "partner": "CBG Connect",
        "programme": "relationship",
        "template": "relationship",
        "survey_channel": "phone",
        "created_at": NOW - timedelta(hours=n),
        "expires_at": NOW + timedelta(days=7),
    }
    values.update(overrides)
    return SurveyInvitation(**values)


def add(engine: Engine, *rows: Any) -> None:
    with transaction(engine) as session:
        session.add_all(rows)


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql), params).all()]


def interview(engine: Engine, invitation_id: str, at: datetime = NOW) -> Any:
    return record_interview(
        engine, invitation_id, ANSWERS, 2, None, None, "Te duur.", "Jan Interviewer", at
    )


def test_open_calls_are_unanswered_open_phone_surveys_oldest_first(engine: Engine) -> None:
    add(
        engine,
        invitation(1),
        invitation(3),
        invitation(2),
        invitation(4, survey_channel="email", email="c-4@example.nl", phone=None),
        invitation(5, expires_at=NOW),  # expires now: too late
        invitation(6, delivery_status="failed", delivery_error="refused"),
        invitation(7, answered_at=NOW - timedelta(minutes=1)),
        invitation(8),  # opted out of phone surveys after the decision
        CustomerConsent(
            customer_id="C-8",
            channel="phone",
            status="opted_out",
            changed_at=NOW - timedelta(minutes=5),
            source="test",
            consent_id="k-8",
            recorded_at=NOW,
        ),
    )
    calls = open_calls(engine, NOW, limit=10)
    assert [c.invitation_id for c in calls] == ["inv-3", "inv-2", "inv-1"]
    first = calls[0]
    assert (first.name, first.phone, first.locale, first.company) == (
        "Klant 3",
        "+31 6 0000 0003",
        "nl",
        "CBG Connect",
    )
    assert (first.programme, first.template, first.attempts) == ("relationship", "relationship", 0)
    assert first.expires_at == NOW + timedelta(days=7)
    assert "email" not in {f.name for f in fields(OpenCall)}
    assert [c.invitation_id for c in open_calls(engine, NOW, limit=2)] == ["inv-3", "inv-2"]


def test_an_interview_is_stored_once_and_left_for_the_outbox(engine: Engine) -> None:
    add(engine, invitation(1))
    response = interview(engine, "inv-1")
    assert (response.customer_id, response.nps, response.comment) == ("C-1", 2, "Te duur.")
    assert response.answers == ANSWERS
    assert response.interviewer == "Jan Interviewer"
    [stored] = unpublished_responses(engine, NOW + timedelta(seconds=1))
    assert stored.response_id == response.response_id
    assert stored.published_at is None
    assert rows(
        engine, "SELECT delivery_status, answered_at IS NOT NULL FROM survey_invitations"
    ) == [("sent", True)]
    assert open_calls(engine, NOW, limit=10) == []
    with pytest.raises(AlreadyAnsweredError):
        interview(engine, "inv-1", NOW + timedelta(minutes=1))
    with pytest.raises(AlreadyAnsweredError):
        call_to_make(engine, "inv-1", NOW)
    assert rows(engine, "SELECT count(*) FROM survey_responses") == [(1,)]


def test_only_open_phone_surveys_take_answers(engine: Engine) -> None:
    add(
        engine,
        invitation(1, survey_channel="email", email="c-1@example.nl", phone=None),
        invitation(2, expires_at=NOW - timedelta(seconds=1)),
    )
    for missing in ("inv-1", "inv-404"):
        with pytest.raises(CallUnknownError):
            interview(engine, missing)
        with pytest.raises(CallUnknownError):
            record_call_attempt(engine, missing, "no_answer", "Jan", NOW)
    with pytest.raises(CallExpiredError):
        interview(engine, "inv-2")
    with pytest.raises(CallExpiredError):
        record_call_attempt(engine, "inv-2", "refused", "Jan", NOW)
    assert rows(engine, "SELECT count(*) FROM survey_responses") == [(0,)]
    assert rows(engine, "SELECT delivery_attempts FROM survey_invitations ORDER BY 1") == [
        (0,),
        (0,),
    ]


def test_three_unanswered_calls_take_the_customer_off_the_list(engine: Engine) -> None:
    add(engine, invitation(1))
    for n in range(1, MAX_NO_ANSWERS):
        attempt = record_call_attempt(engine, "inv-1", "no_answer", "Jan", NOW)
        assert (attempt.attempts, attempt.closed) == (n, False)
        [call] = open_calls(engine, NOW, limit=10)
        assert call.attempts == n
    last = record_call_attempt(engine, "inv-1", "no_answer", "Piet", NOW)
    assert (last.attempts, last.closed) == (MAX_NO_ANSWERS, True)
    [(status, error, attempts)] = rows(
        engine, "SELECT delivery_status, delivery_error, delivery_attempts FROM survey_invitations"
    )
    assert (status, attempts) == ("failed", MAX_NO_ANSWERS)
    assert error.startswith("no_answer")
    assert open_calls(engine, NOW, limit=10) == []
    with pytest.raises(CallClosedError):
        interview(engine, "inv-1")
    with pytest.raises(CallClosedError):
        record_call_attempt(engine, "inv-1", "no_answer", "Jan", NOW)


@pytest.mark.parametrize("outcome", ["refused", "wrong_number"])
def test_a_refusal_or_wrong_number_closes_the_call_at_once(engine: Engine, outcome: str) -> None:
    add(engine, invitation(1), invitation(2))
    attempt = record_call_attempt(engine, "inv-1", outcome, "Jan", NOW)
    assert (attempt.attempts, attempt.closed) == (1, True)
    [(status, error)] = rows(
        engine,
        "SELECT delivery_status, delivery_error FROM survey_invitations WHERE invitation_id = :i",
        i="inv-1",
    )
    assert status == "failed"
    assert error.startswith(outcome)
    assert [c.invitation_id for c in open_calls(engine, NOW, limit=10)] == ["inv-2"]


def test_an_unknown_outcome_or_interviewer_is_refused(engine: Engine) -> None:
    add(engine, invitation(1))
    with pytest.raises(ValueError, match="outcome"):
        record_call_attempt(engine, "inv-1", "busy", "Jan", NOW)
    with pytest.raises(ValueError, match="interviewer"):
        record_call_attempt(engine, "inv-1", "no_answer", "   ", NOW)
    assert rows(engine, "SELECT delivery_attempts, delivery_status FROM survey_invitations") == [
        (0, "pending")
    ]


def test_two_interviewers_entering_one_call_at_once_store_one_answer(engine: Engine) -> None:
    add(engine, invitation(1))
    start = threading.Barrier(8)

    def enter(_: int) -> str:
        start.wait()
        try:
            interview(engine, "inv-1")
        except AlreadyAnsweredError:
            return "refused"
        return "stored"

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(enter, range(8)))
    assert outcomes == ["refused"] * 7 + ["stored"]
    assert rows(engine, "SELECT count(*) FROM survey_responses") == [(1,)]
