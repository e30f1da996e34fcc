"""trigger agent in Faust's test harness: decisions in SQL, invitations sent."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text

from agents.pipeline import trigger
from tests.agents.conftest import Harness, contact, settled


def rows(h: Harness, sql: str) -> list[tuple[object, ...]]:
    with h.rt.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql)).all()]


async def test_surveys_once_per_customer_and_event(harness: Callable[..., Harness]) -> None:
    h = harness(trigger)
    async with h.agent("trigger").test_context() as agent:
        await agent.put(contact(1), key=b"C-1")
        await agent.put(contact(1), key=b"C-1")  # the same event again
        await agent.put(contact(2), key=b"C-1")  # the same customer, within the cap
        await agent.put(contact(3, customer="C-2"), key=b"C-2")
        await settled(h, lambda: len(h.sent_to("survey-invitations")) == 3, "three invitations")
    decisions = rows(h, "SELECT event_id, outcome, reason FROM survey_decisions ORDER BY event_id")
    assert decisions == [
        ("e-1", "surveyed", "surveyed"),
        ("e-2", "suppressed", "recently_surveyed"),
        ("e-3", "surveyed", "surveyed"),
    ]
    invitations = h.sent_to("survey-invitations")
    # e-1 is sent again on its replay (downstream is idempotent), e-3 once.
    assert [i["event_id"] for i in invitations] == ["e-1", "e-1", "e-3"]
    assert invitations[0]["invitation_id"] == invitations[1]["invitation_id"]
    assert invitations[0]["locale"] == "no"
    assert rows(h, "SELECT count(*) FROM survey_invitations") == [(2,)]


async def test_complaint_opens_a_task_instead_of_a_survey(harness: Callable[..., Harness]) -> None:
    h = harness(trigger)
    async with h.agent("trigger").test_context() as agent:
        await agent.put(contact("c", kind="complaint", comment="Third outage"), key=b"C-1")
        await settled(h, lambda: bool(rows(h, "SELECT 1 FROM followup_tasks")), "the task")
    assert rows(h, "SELECT reason FROM survey_decisions") == [("open_complaint",)]
    assert rows(h, "SELECT origin, priority, team, comment FROM followup_tasks") == [
        ("complaint", 0, "complaints", "Third outage")
    ]
    assert rows(h, "SELECT event_type FROM followup_task_events") == [("task_opened",)]
    assert h.rt.task_events_waiting.is_set()  # the relay is told at once
    assert h.sent_to("survey-invitations") == []


async def test_bad_event_goes_to_dead_letters_and_the_next_one_flows(
    harness: Callable[..., Harness],
) -> None:
    h = harness(trigger)
    async with h.agent("trigger").test_context() as agent:
        await agent.put(b'{"event_id": "x"}', key=b"C-9")
        await agent.put(contact(5), key=b"C-1")
        await settled(h, lambda: bool(h.sent_to("survey-invitations")), "the good event")
    letters = h.sent_to("dead-letters")
    assert len(letters) == 1
    assert "occurred_at: Field required" in letters[0]["reason"]
    assert letters[0]["source_topic"] == "contact-events"
    assert rows(h, "SELECT event_id FROM survey_decisions") == [("e-5",)]
