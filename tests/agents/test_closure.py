"""closure agent in Faust's test harness: staff actions move a task through its lifecycle
until the loop is closed; every change lands in the task's history (the stream's outbox)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import text

from agents.pipeline import closure
from agents.timers.task_event_relay import relay_once
from models.store.engine import transaction
from models.store.tables import FollowupTask
from models.store.tasks import open_tasks
from models.task_lifecycle import TaskSubject, task_for_answer
from streams import records
from tests.agents.conftest import NOW, Harness, settled


def opened(h: Harness, response_id: str = "r-1", customer: str = "C-1") -> str:
    """A detractor task, opened the way the followup agent opens it; its id."""
    subject = TaskSubject(customer_id=customer, email="anna@example.nl", language="nl")
    new = task_for_answer(
        h.rt.followup, response_id, NOW - timedelta(hours=2), subject, 2, None, None
    )
    assert new is not None
    [(task, fresh)] = open_tasks(h.rt.engine, h.rt.followup, [new], NOW)
    assert fresh
    return task.task_id


def action(
    action_id: str,
    task_id: str,
    kind: str,
    customer: str = "C-1",
    note: str = "done",
    **details: Any,
) -> bytes:
    return records.FollowupAction(
        action_id=action_id,
        task_id=task_id,
        customer_id=customer,
        type=kind,
        note=note,
        actor="agent-7",
        requested_at=NOW - timedelta(minutes=1),
        details=details,
    ).to_bytes()


def task(h: Harness, task_id: str) -> FollowupTask:
    with transaction(h.rt.engine) as session:
        row = session.get(FollowupTask, task_id)
    assert row is not None
    return row


def rows(h: Harness, sql: str) -> list[tuple[Any, ...]]:
    with h.rt.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql)).all()]


def actions(h: Harness) -> list[tuple[Any, ...]]:
    return rows(h, "SELECT action_id, task_id, type, note, actor FROM followup_actions ORDER BY 1")


def history(h: Harness) -> list[tuple[Any, ...]]:
    return rows(
        h,
        "SELECT seq, event_type, from_status, to_status, actor FROM followup_task_events"
        " ORDER BY seq",
    )


async def test_the_whole_loop_from_call_to_closure(harness: Callable[..., Harness]) -> None:
    h = harness(closure)
    task_id = opened(h)
    async with h.agent("closure").test_context() as agent:
        await agent.put(action("a-1", task_id, "call_attempt", note="reached"), key=b"C-1")
        await settled(h, lambda: task(h, task_id).status == "contacted", "status contacted")
        assert task(h, task_id).closed_at is None
        await agent.put(action("a-2", task_id, "resolved", note="credit note sent"), key=b"C-1")
        await agent.put(
            action("a-3", task_id, "customer_informed", note="told her the credit is on its way"),
            key=b"C-1",
        )
        await settled(
            h, lambda: task(h, task_id).status == "customer_informed", "customer informed"
        )
        await agent.put(action("a-4", task_id, "close", root_cause="billing"), key=b"C-1")
        await settled(h, lambda: task(h, task_id).status == "closed", "status closed")
    closed = task(h, task_id)
    assert (closed.closed_at, closed.root_cause) == (NOW, "billing")
    assert closed.told_customer == "told her the credit is on its way"
    assert closed.resolution == "credit note sent"
    assert [row[2] for row in actions(h)] == [
        "call_attempt",
        "resolved",
        "customer_informed",
        "close",
    ]
    assert history(h) == [
        (1, "task_opened", None, "open", "cxloop"),
        (2, "task_action_recorded", "open", "contacted", "agent-7"),
        (3, "task_action_recorded", "contacted", "contacted", "agent-7"),
        (4, "task_action_recorded", "contacted", "customer_informed", "agent-7"),
        (5, "task_closed", "customer_informed", "closed", "agent-7"),
    ]
    # A closed task tells the survey rules (recovery programme): a followup_closed contact.
    contacts = h.sent_to("contact-events")
    assert [(c["kind"], c["event_id"], c["customer"]["id"]) for c in contacts] == [
        ("followup_closed", f"recovery:{task_id}", "C-1")
    ]
    assert h.sent_to("dead-letters") == []


async def test_task_events_reach_the_stream_in_order_with_the_team(
    harness: Callable[..., Harness],
) -> None:
    h = harness(closure)
    task_id = opened(h)
    async with h.agent("closure").test_context() as agent:
        await agent.put(action("a-1", task_id, "call_attempt"), key=b"C-1")
        await settled(h, lambda: task(h, task_id).status == "contacted", "status contacted")
    assert await relay_once(h.rt) == 2
    events = h.sent_to("followup-tasks")
    assert [(e["event_type"], e["seq"], e["team"], e["status"]) for e in events] == [
        ("task_opened", 1, "service", "open"),
        ("task_action_recorded", 2, "service", "contacted"),
    ]
    assert events[1]["action_type"] == "call_attempt"
    assert "email" not in events[0] and "comment" not in events[0]
    # Each event is the task as it was then: before contact the first-contact SLA ran,
    # after it the closure SLA, although both went out after the call.
    stored = task(h, task_id)
    assert [e["sla_due_at"] for e in events] == [
        stored.first_contact_due_at.isoformat(),
        stored.due_at.isoformat(),
    ]
    for event in events:  # what went out is the documented record
        assert (
            records.FollowupTaskEvent.from_bytes(orjson.dumps(event)).event_id == event["event_id"]
        )
    assert await relay_once(h.rt) == 0  # published once


async def test_a_replayed_action_is_recorded_once(harness: Callable[..., Harness]) -> None:
    h = harness(closure)
    task_id = opened(h)
    called = action("a-1", task_id, "call_attempt")
    async with h.agent("closure").test_context() as agent:
        await agent.put(called, key=b"C-1")
        await agent.put(called, key=b"C-1")  # redelivered
        await agent.put(action("a-2", task_id, "no_answer"), key=b"C-1")
        await settled(h, lambda: len(actions(h)) == 2, "two actions")
    assert [row[:3] for row in actions(h)] == [
        ("a-1", task_id, "call_attempt"),
        ("a-2", task_id, "no_answer"),
    ]
    assert len(history(h)) == 3
    assert h.sent_to("dead-letters") == []


async def test_three_failed_calls_make_a_task_unreachable(
    harness: Callable[..., Harness],
) -> None:
    h = harness(closure)
    task_id = opened(h)
    async with h.agent("closure").test_context() as agent:
        for n in range(3):
            await agent.put(action(f"a-{n}", task_id, "no_answer"), key=b"C-1")
        await settled(h, lambda: task(h, task_id).status == "unreachable", "unreachable")
    assert task(h, task_id).failed_attempts == 3
    assert [row[1] for row in history(h)][-1] == "task_unreachable"


async def test_an_action_on_an_unknown_task_is_dead_lettered(
    harness: Callable[..., Harness],
) -> None:
    h = harness(closure)
    task_id = opened(h)
    stray = action("a-1", "no-such-task", "call_attempt")
    async with h.agent("closure").test_context() as agent:
        await agent.put(stray, key=b"C-1")
        await agent.put(action("a-2", task_id, "call_attempt"), key=b"C-1")
        await settled(h, lambda: task(h, task_id).status == "contacted", "the next action")
    letters = h.sent_to("dead-letters")
    assert len(letters) == 1
    assert letters[0]["reason"] == "not_found: follow-up task unknown"
    assert letters[0]["source_topic"] == "followup-actions"
    assert base64.b64decode(letters[0]["original_b64"]) == stray
    assert [row[0] for row in actions(h)] == ["a-2"]


async def test_actions_the_status_does_not_allow_are_recorded_as_refused(
    harness: Callable[..., Harness],
) -> None:
    h = harness(closure)
    task_id = opened(h)
    too_early = action("a-1", task_id, "close", root_cause="billing")
    no_cause = action("a-3", task_id, "close", root_cause="bad luck")
    async with h.agent("closure").test_context() as agent:
        await agent.put(too_early, key=b"C-1")
        await agent.put(action("a-2", task_id, "call_attempt"), key=b"C-1")
        await agent.put(action("a-2b", task_id, "customer_informed", note="told"), key=b"C-1")
        await agent.put(no_cause, key=b"C-1")
        await agent.put(no_cause, key=b"C-1")  # redelivered: still one refusal
        await settled(h, lambda: len(actions(h)) == 4, "four actions")
    assert h.sent_to("dead-letters") == []
    refused = rows(
        h,
        "SELECT seq, reason FROM followup_task_events WHERE event_type = 'task_action_refused'"
        " ORDER BY seq",
    )
    assert [seq for seq, _ in refused] == [2, 5]
    assert "not possible while the task is open" in refused[0][1]
    assert "root_cause" in refused[1][1]
    assert [row[2] for row in actions(h)] == [
        "refused",
        "call_attempt",
        "customer_informed",
        "refused",
    ]
    assert task(h, task_id).status == "customer_informed"


async def test_a_new_action_on_a_closed_task_is_refused_and_changes_nothing(
    harness: Callable[..., Harness],
) -> None:
    h = harness(closure)
    task_id = opened(h)
    late = action("a-9", task_id, "call_attempt")
    async with h.agent("closure").test_context() as agent:
        await agent.put(
            action("a-1", task_id, "cancel", note="duplicate of another task"), key=b"C-1"
        )
        await agent.put(late, key=b"C-1")
        await settled(h, lambda: len(actions(h)) == 2, "the refusal")
    assert rows(h, "SELECT type FROM followup_actions WHERE action_id = 'a-9'") == [("refused",)]
    cancelled = task(h, task_id)
    assert (cancelled.status, cancelled.closed_at) == ("cancelled", NOW)
    assert [row[1] for row in history(h)][-1] == "task_action_refused"
    assert h.sent_to("contact-events") == []  # no recovery survey for a cancelled task


async def test_an_unknown_action_type_is_dead_lettered(harness: Callable[..., Harness]) -> None:
    h = harness(closure)
    task_id = opened(h)
    emailed = action("a-1", task_id, "emailed")
    async with h.agent("closure").test_context() as agent:
        await agent.put(emailed, key=b"C-1")
        await agent.put(b"\x00 not json", key=b"C-1")
        await agent.put(action("a-2", task_id, "call_attempt"), key=b"C-1")
        await settled(h, lambda: task(h, task_id).status == "contacted", "the next action")
    letters = h.sent_to("dead-letters")
    assert [base64.b64decode(letter["original_b64"]) for letter in letters] == [
        emailed,
        b"\x00 not json",
    ]
    codes = [letter["reason"].partition(":")[0] for letter in letters]
    assert codes == ["invalid_field", "nul_character"]
    assert "emailed" in letters[0]["reason"]
    assert [row[0] for row in actions(h)] == ["a-2"]
