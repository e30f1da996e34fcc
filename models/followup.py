"""Follow-up tasks: which answers open one, priority, due time, and how actions move them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from models.scoring import NpsCategory

# Task ids derive from what opened the task, so a replay opens the same task, not a new one.
_TASK_NAMESPACE = uuid.UUID("6f1d3c2e-6a55-4e7b-9a59-3d1f2b7c8e10")


class TaskOrigin(StrEnum):
    DETRACTOR = "detractor"
    COMPLAINT = "complaint"


class TaskStatus(StrEnum):
    OPEN = "open"
    CONTACTED = "contacted"
    RESOLVED = "resolved"
    CLOSED = "closed"


class ActionType(StrEnum):
    CALLED = "called"
    RESOLVED = "resolved"
    CUSTOMER_INFORMED = "customer_informed"


class TaskClosed(ValueError):
    """An action arrived for a task that is already closed."""


@dataclass(frozen=True)
class NewTask:
    task_id: str
    origin: TaskOrigin
    source_id: str
    priority: int
    opened_at: datetime
    due_at: datetime


def task_id_for(origin: TaskOrigin, source_id: str) -> str:
    """The stable task id for what opened it (a response id or a complaint event id)."""
    return str(uuid.uuid5(_TASK_NAMESPACE, f"{origin}:{source_id}"))


def priority_for_nps(score: int) -> int:
    """0 is the highest priority: scores 0–3 are urgent (0), 4–6 normal (1)."""
    return 0 if score <= 3 else 1


def task_for_answer(
    response_id: str, nps: int | None, category: str | None, answered_at: datetime, due: timedelta
) -> NewTask | None:
    """The task a scored answer opens: every detractor gets one."""
    if nps is None or category != NpsCategory.DETRACTOR:
        return None
    return NewTask(
        task_id=task_id_for(TaskOrigin.DETRACTOR, response_id),
        origin=TaskOrigin.DETRACTOR,
        source_id=response_id,
        priority=priority_for_nps(nps),
        opened_at=answered_at,
        due_at=answered_at + due,
    )


def task_for_complaint(event_id: str, occurred_at: datetime, due: timedelta) -> NewTask:
    """A complaint opens a high-priority task directly, without a survey."""
    return NewTask(
        task_id=task_id_for(TaskOrigin.COMPLAINT, event_id),
        origin=TaskOrigin.COMPLAINT,
        source_id=event_id,
        priority=0,
        opened_at=occurred_at,
        due_at=occurred_at + due,
    )


_NEXT_STATUS = {
    ActionType.CALLED: TaskStatus.CONTACTED,
    ActionType.RESOLVED: TaskStatus.RESOLVED,
    ActionType.CUSTOMER_INFORMED: TaskStatus.CLOSED,
}


def status_after(current: TaskStatus, action: ActionType) -> TaskStatus:
    """The task's status after *action*. The loop closes when the customer is informed."""
    if current is TaskStatus.CLOSED:
        raise TaskClosed("task is already closed")
    return _NEXT_STATUS[action]
