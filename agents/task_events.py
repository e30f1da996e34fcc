"""The followup-tasks stream's events, built from a stored task."""

from __future__ import annotations

from datetime import datetime

from models.tables import FollowupTask
from streams.records import FollowupTaskEvent


def task_event(
    event_type: str, task: FollowupTask, at: datetime, action_type: str | None = None
) -> FollowupTaskEvent:
    """An event about *task* as it is now."""
    return FollowupTaskEvent(
        event_type=event_type,
        task_id=task.task_id,
        customer_id=task.customer_id,
        origin=task.origin,
        priority=task.priority,
        status=task.status,
        due_at=task.due_at,
        occurred_at=at,
        action_type=action_type,
    )
