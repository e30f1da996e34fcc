"""closure agent in Faust's test harness: staff actions move a task until the loop is closed."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from agents import closure
from models.database import transaction
from models.followup import task_for_answer
from models.tables import FollowupTask
from models.task_store import open_task
from streams import records
from tests.agents.conftest import NOW, Harness, settled


def opened(h: Harness, response_id: str = "r-1", customer: str = "C-1") -> str:
    """A detractor task, opened the way the followup agent opens it; its id."""
    new = task_for_answer(
        response_id, 2, "detractor", NOW - timedelta(hours=2), timedelta(hours=48)
    )
    assert new is not None
    task, fresh = open_task(h.rt.engine, customer, new)
    assert fresh
    return task.task_id


def action(
    action_id: str, task_id: str, kind: str, customer: str = "C-1", note: str = "done"
) -> bytes:
    return records.FollowupAction(
        action_id=action_id,
        task_id=task_id,
        customer_id=customer,
        type=kind,
        note=note,
        actor="agent-7",
        requested_at=NOW - timedelta(minutes=1),
    ).to_bytes()


def task(h: Harness, task_id: str) -> FollowupTask:
    with transaction(h.rt.engine) as session:
        row = session.get(FollowupTask, task_id)
    assert row is not None
    return row


def actions(h: Harness) -> list[tuple[Any, ...]]:
    with h.rt.engine.connect() as connection:
        result = connection.execute(
            text("SELECT action_id, task_id, type, note, actor FROM followup_actions ORDER BY 1")
        )
        return [tuple(r) for r in result.all()]


def task_events(h: Harness) -> list[tuple[str, dict[str, Any]]]:
    return [(key, value) for topic, key, value in h.sent if topic == "followup-tasks"]


async def test_called_resolved_informed_closes_the_loop(harness: Callable[..., Harness]) -> None:
    h = harness(closure)
    task_id = opened(h)
    async with h.agent("closure").test_context() as agent:
        await agent.put(action("a-1", task_id, "called", note="left a message"), key=b"C-1")
        await settled(h, lambda: task(h, task_id).status == "contacted", "status contacted")
        assert task(h, task_id).closed_at is None
        await agent.put(action("a-2", task_id, "resolved"), key=b"C-1")
        await settled(h, lambda: task(h, task_id).status == "resolved", "status resolved")
        assert task(h, task_id).closed_at is None
        await agent.put(action("a-3", task_id, "customer_informed"), key=b"C-1")
        await settled(h, lambda: len(task_events(h)) == 3, "three task events")
    closed = task(h, task_id)
    assert (closed.status, closed.closed_at) == ("closed", NOW)
    assert actions(h) == [
        ("a-1", task_id, "called", "left a message", "agent-7"),
        ("a-2", task_id, "resolved", "done", "agent-7"),
        ("a-3", task_id, "customer_informed", "done", "agent-7"),
    ]
    events = task_events(h)
    assert [key for key, _event in events] == ["C-1"] * 3
    assert [(e["event_type"], e["action_type"], e["status"]) for _key, e in events] == [
        ("task_action_recorded", "called", "contacted"),
        ("task_action_recorded", "resolved", "resolved"),
        ("task_closed", "customer_informed", "closed"),
    ]
    assert {e["task_id"] for _key, e in events} == {task_id}
    assert h.sent_to("dead-letters") == []


async def test_a_replayed_action_is_recorded_once(harness: Callable[..., Harness]) -> None:
    h = harness(closure)
    task_id = opened(h)
    called = action("a-1", task_id, "called")
    informed = action("a-2", task_id, "customer_informed")
    async with h.agent("closure").test_context() as agent:
        await agent.put(called, key=b"C-1")
        await agent.put(called, key=b"C-1")  # redelivered
        await agent.put(informed, key=b"C-1")
        await agent.put(informed, key=b"C-1")  # redelivered after the task closed
        await settled(h, lambda: len(task_events(h)) == 4, "four task events")
    assert [row[:3] for row in actions(h)] == [
        ("a-1", task_id, "called"),
        ("a-2", task_id, "customer_informed"),
    ]
    closed = task(h, task_id)
    assert (closed.status, closed.closed_at) == ("closed", NOW)
    # A replay is not a new action on a closed task: no dead letter, the state re-announced.
    assert h.sent_to("dead-letters") == []
    events = [(e["event_type"], e["status"]) for _key, e in task_events(h)]
    assert events[:3] == [
        ("task_action_recorded", "contacted"),
        ("task_action_recorded", "contacted"),
        ("task_closed", "closed"),
    ]
    assert events[3] == ("task_closed", "closed")


async def test_an_action_on_an_unknown_task_is_dead_lettered(
    harness: Callable[..., Harness],
) -> None:
    h = harness(closure)
    task_id = opened(h)
    stray = action("a-1", "no-such-task", "called")
    async with h.agent("closure").test_context() as agent:
        await agent.put(stray, key=b"C-1")
        await agent.put(action("a-2", task_id, "called"), key=b"C-1")
        await settled(h, lambda: bool(task_events(h)), "the next action's task event")
    letters = h.sent_to("dead-letters")
    assert len(letters) == 1
    assert letters[0]["reason"].startswith("follow-up action not applicable: TaskNotFound(")
    assert letters[0]["source_topic"] == "followup-actions"
    assert base64.b64decode(letters[0]["original_b64"]) == stray
    assert [row[0] for row in actions(h)] == ["a-2"]
    assert [e["task_id"] for _key, e in task_events(h)] == [task_id]


async def test_a_new_action_on_a_closed_task_is_dead_lettered(
    harness: Callable[..., Harness],
) -> None:
    h = harness(closure)
    task_id = opened(h)
    late = action("a-2", task_id, "called")
    async with h.agent("closure").test_context() as agent:
        await agent.put(action("a-1", task_id, "customer_informed"), key=b"C-1")
        await agent.put(late, key=b"C-1")
        await settled(h, lambda: bool(h.sent_to("dead-letters")), "the dead letter")
    letters = h.sent_to("dead-letters")
    assert len(letters) == 1
    assert letters[0]["reason"].startswith("follow-up action not applicable: TaskClosed(")
    assert base64.b64decode(letters[0]["original_b64"]) == late
    assert [row[0] for row in actions(h)] == ["a-1"]
    closed = task(h, task_id)
    assert (closed.status, closed.closed_at) == ("closed", NOW)
    assert [e["event_type"] for _key, e in task_events(h)] == ["task_closed"]


async def test_an_unknown_action_type_is_dead_lettered(harness: Callable[..., Harness]) -> None:
    h = harness(closure)
    task_id = opened(h)
    emailed = action("a-1", task_id, "emailed")
    async with h.agent("closure").test_context() as agent:
        await agent.put(emailed, key=b"C-1")
        await agent.put(b"\x00 not json", key=b"C-1")
        await agent.put(action("a-2", task_id, "called"), key=b"C-1")
        await settled(h, lambda: bool(task_events(h)), "the next action's task event")
    letters = h.sent_to("dead-letters")
    assert [base64.b64decode(letter["original_b64"]) for letter in letters] == [
        emailed,
        b"\x00 not json",
    ]
    assert all(letter["reason"].startswith("invalid follow-up action: ") for letter in letters)
    assert "emailed" in letters[0]["reason"]
    assert [row[0] for row in actions(h)] == ["a-2"]
    assert task(h, task_id).status == "contacted"


async def test_an_action_without_a_note_is_applied(harness: Callable[..., Harness]) -> None:
    h = harness(closure)
    task_id = opened(h)
    async with h.agent("closure").test_context() as agent:
        await agent.put(action("a-1", task_id, "called", note=""), key=b"C-1")
        await agent.put(action("a-2", task_id, "resolved"), key=b"C-1")
        await settled(h, lambda: len(h.sent) == 2, "two outcomes")
    assert h.sent_to("dead-letters") == []
    assert [row[:4] for row in actions(h)] == [
        ("a-1", task_id, "called", ""),
        ("a-2", task_id, "resolved", "done"),
    ]
