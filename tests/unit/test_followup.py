"""Follow-up tasks: which answers open one, priority, due time, ids and transitions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from models.followup import (
    ActionType,
    TaskClosed,
    TaskOrigin,
    TaskStatus,
    status_after,
    task_for_answer,
    task_for_complaint,
    task_id_for,
)
from models.scoring import nps_category

ANSWERED = datetime(2026, 11, 20, 10, 15, tzinfo=timezone(timedelta(hours=1)))
DUE = timedelta(hours=48)

aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-7))]),
)
dues = st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=60))
source_ids = st.text(min_size=1, max_size=80)


# ---------------------------------------------------------------------------- detractor answers


@pytest.mark.parametrize("score", range(11))
def test_only_detractors_get_a_task(score: int) -> None:
    task = task_for_answer("r-1", score, nps_category(score), ANSWERED, DUE)
    if score <= 6:
        assert task is not None
        assert task.origin is TaskOrigin.DETRACTOR
        assert task.source_id == "r-1"
    else:
        assert task is None


@pytest.mark.parametrize(
    ("score", "priority"), [(s, 0) for s in range(4)] + [(s, 1) for s in range(4, 7)]
)
def test_detractor_priority(score: int, priority: int) -> None:
    task = task_for_answer("r-1", score, "detractor", ANSWERED, DUE)
    assert task is not None
    assert task.priority == priority


def test_answer_without_nps_gets_no_task() -> None:
    # A CSAT-only answer has no NPS and no category.
    assert task_for_answer("r-1", None, None, ANSWERED, DUE) is None


def test_category_string_from_the_wire_is_understood() -> None:
    # ScoredResponse carries the category as a plain string, not the enum.
    task = task_for_answer("r-1", 2, "detractor", ANSWERED, DUE)
    assert task is not None
    assert task.priority == 0


@given(
    score=st.integers(min_value=0, max_value=6),
    answered_at=aware_datetimes,
    due=dues,
    response_id=source_ids,
)
def test_detractor_task_is_due_after_the_answer(
    score: int, answered_at: datetime, due: timedelta, response_id: str
) -> None:
    task = task_for_answer(response_id, score, "detractor", answered_at, due)

    assert task is not None
    assert task.opened_at == answered_at
    assert task.due_at - task.opened_at == due
    assert task.due_at.utcoffset() == answered_at.utcoffset()
    assert task.task_id == task_id_for(TaskOrigin.DETRACTOR, response_id)


# ---------------------------------------------------------------------------- complaints


@given(occurred_at=aware_datetimes, due=dues, event_id=source_ids)
def test_complaint_task_is_urgent_and_due_after_the_complaint(
    occurred_at: datetime, due: timedelta, event_id: str
) -> None:
    task = task_for_complaint(event_id, occurred_at, due)

    assert task.priority == 0
    assert task.origin is TaskOrigin.COMPLAINT
    assert task.source_id == event_id
    assert task.opened_at == occurred_at
    assert task.due_at == occurred_at + due


# ---------------------------------------------------------------------------- task ids


@given(source_id=source_ids, score=st.integers(min_value=0, max_value=6))
def test_task_id_is_stable_for_the_same_source(source_id: str, score: int) -> None:
    first = task_for_answer(source_id, score, "detractor", ANSWERED, DUE)
    # A replay, later and with another due time, must land on the same task.
    again = task_for_answer(source_id, score, "detractor", ANSWERED + DUE, 2 * DUE)
    assert first is not None and again is not None
    assert first.task_id == again.task_id
    assert uuid.UUID(first.task_id).version == 5

    complaint = task_for_complaint(source_id, ANSWERED, DUE)
    assert complaint.task_id == task_for_complaint(source_id, ANSWERED + DUE, DUE).task_id


@given(a=source_ids, b=source_ids)
def test_task_ids_differ_for_different_sources(a: str, b: str) -> None:
    assume(a != b)
    assert task_id_for(TaskOrigin.DETRACTOR, a) != task_id_for(TaskOrigin.DETRACTOR, b)
    assert task_id_for(TaskOrigin.COMPLAINT, a) != task_id_for(TaskOrigin.COMPLAINT, b)


@given(source_id=source_ids)
def test_task_ids_differ_for_different_origins(source_id: str) -> None:
    # A response id and a complaint event id that happen to be equal are different tasks.
    answer = task_for_answer(source_id, 0, "detractor", ANSWERED, DUE)
    complaint = task_for_complaint(source_id, ANSWERED, DUE)
    assert answer is not None
    assert answer.task_id != complaint.task_id


def test_task_ids_do_not_collide_across_many_sources() -> None:
    ids = {task_id_for(origin, f"src-{i}") for origin in TaskOrigin for i in range(5000)}
    assert len(ids) == 2 * 5000


# ---------------------------------------------------------------------------- transitions

# The loop: called → contacted, resolved → resolved, customer told → closed.
NEXT = {
    ActionType.CALLED: TaskStatus.CONTACTED,
    ActionType.RESOLVED: TaskStatus.RESOLVED,
    ActionType.CUSTOMER_INFORMED: TaskStatus.CLOSED,
}


@pytest.mark.parametrize("current", [s for s in TaskStatus if s is not TaskStatus.CLOSED])
@pytest.mark.parametrize("action", list(ActionType))
def test_status_after_action(current: TaskStatus, action: ActionType) -> None:
    assert status_after(current, action) is NEXT[action]


@pytest.mark.parametrize("action", list(ActionType))
def test_action_on_closed_task_raises(action: ActionType) -> None:
    with pytest.raises(TaskClosed, match="closed"):
        status_after(TaskStatus.CLOSED, action)


def test_task_closed_is_a_value_error() -> None:
    # Agents dead-letter ValueErrors as bad input rather than retrying them.
    assert issubclass(TaskClosed, ValueError)


def test_the_whole_loop_ends_closed_and_then_refuses_actions() -> None:
    status = TaskStatus.OPEN
    for action in (ActionType.CALLED, ActionType.RESOLVED, ActionType.CUSTOMER_INFORMED):
        status = status_after(status, action)
    assert status is TaskStatus.CLOSED
    with pytest.raises(TaskClosed):
        status_after(status, ActionType.CALLED)


def test_action_types_are_the_wire_strings() -> None:
    # FollowupAction.type carries these; the staff API accepts exactly them.
    assert {a.value for a in ActionType} == {"called", "resolved", "customer_informed"}
