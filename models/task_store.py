"""Durable follow-up state in SQL: tasks and the actions staff record on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import col

from models.database import insert_many_if_absent, transaction
from models.followup import ActionType, NewTask, TaskStatus, status_after
from models.tables import FollowupAction, FollowupTask


@dataclass(frozen=True)
class ActionResult:
    """A recorded action and the task after it; *fresh* is False on a replay."""

    task: FollowupTask
    action: FollowupAction
    fresh: bool


class TaskNotFound(LookupError):
    """No task has this id."""


def new_task_row(customer_id: str, task: NewTask) -> dict[str, Any]:
    """The followup_tasks row that opens *task* for the customer."""
    return {
        "task_id": task.task_id,
        "origin": task.origin.value,
        "source_id": task.source_id,
        "customer_id": customer_id,
        "priority": task.priority,
        "status": TaskStatus.OPEN.value,
        "opened_at": task.opened_at,
        "due_at": task.due_at,
    }


def open_tasks(
    engine: Engine, new: Sequence[tuple[str, NewTask]]
) -> list[tuple[FollowupTask, bool]]:
    """Open each (customer id, task) unless a task with its stable id exists, in one
    transaction; per task the stored row and whether it is new."""
    ids = [task.task_id for _, task in new]
    with transaction(engine) as session:
        existing = set(
            session.execute(
                select(col(FollowupTask.task_id)).where(col(FollowupTask.task_id).in_(ids))
            ).scalars()
        )
        insert_many_if_absent(
            session,
            FollowupTask,
            [new_task_row(customer_id, task) for customer_id, task in new],
        )
        stored = {
            t.task_id: t
            for t in session.execute(
                select(FollowupTask).where(col(FollowupTask.task_id).in_(ids))
            ).scalars()
        }
        return [(stored[i], i not in existing) for i in ids]


def open_task(engine: Engine, customer_id: str, new: NewTask) -> tuple[FollowupTask, bool]:
    """open_tasks for one task."""
    return open_tasks(engine, [(customer_id, new)])[0]


def get_task(engine: Engine, task_id: str) -> FollowupTask:
    with transaction(engine) as session:
        task = session.get(FollowupTask, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task


def list_tasks(engine: Engine, status: str | None = None, limit: int = 500) -> list[FollowupTask]:
    """Tasks, soonest due first; 'open' means every status but closed."""
    query = select(FollowupTask).order_by(col(FollowupTask.due_at)).limit(limit)
    if status == "open":
        query = query.where(col(FollowupTask.status) != TaskStatus.CLOSED)
    elif status:
        query = query.where(col(FollowupTask.status) == status)
    with transaction(engine) as session:
        return list(session.execute(query).scalars())


def apply_action(
    engine: Engine,
    action_id: str,
    task_id: str,
    action_type: ActionType,
    note: str,
    actor: str,
    now: datetime,
) -> ActionResult:
    """Record an action and move the task; a replayed action id changes nothing.

    Raises TaskNotFound, or models.followup.TaskClosed for an action on a closed task.
    """
    with transaction(engine) as session:
        existing = session.get(FollowupAction, action_id)
        task = session.get(FollowupTask, task_id, with_for_update=True)
        if task is None:
            raise TaskNotFound(task_id)
        if existing is not None:
            return ActionResult(task, existing, fresh=False)
        task.status = status_after(TaskStatus(task.status), action_type).value
        if task.status == TaskStatus.CLOSED:
            task.closed_at = now
        action = FollowupAction(
            action_id=action_id,
            task_id=task_id,
            type=action_type.value,
            note=note,
            actor=actor,
            recorded_at=now,
        )
        session.add(action)
        return ActionResult(task, action, fresh=True)
