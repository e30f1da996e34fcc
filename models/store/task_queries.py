"""Reading tasks for the inbox and the API: one task, a filtered list (soonest SLA due
first), whether a task is overdue, the fingerprint the inbox polls, and the structural
fixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import col

from models.store.engine import transaction
from models.store.errors import StoreError
from models.store.tables import FollowupTask, StructuralFix
from models.task_lifecycle import ACTIVE_STATUSES, FINAL_STATUSES, TaskStatus


class TaskUnknownError(StoreError, LookupError):
    """No task has this id."""


def get_task(engine: Engine, task_id: str) -> FollowupTask:
    with transaction(engine) as session:
        task = session.get(FollowupTask, task_id)
        if task is None:
            raise TaskUnknownError(task_id)
        return task


@dataclass(frozen=True)
class TaskFilter:
    """What a task list shows. *teams* None means every team (admins)."""

    teams: tuple[str, ...] | None = None
    status: str | None = None  # a status, or "active" (not closed/cancelled), or None = all
    priority: int | None = None
    partner: str | None = None
    assignee: str | None = None
    overdue: bool = False
    customer_id: str | None = None


def list_tasks(
    engine: Engine, where: TaskFilter, now: datetime, limit: int = 500
) -> list[FollowupTask]:
    """Tasks matching *where*, soonest SLA due first (tasks without a running SLA last)."""
    query = select(FollowupTask)
    if where.teams is not None:
        query = query.where(col(FollowupTask.team).in_(where.teams))
    if where.status == "active":
        query = query.where(col(FollowupTask.status).notin_([s.value for s in FINAL_STATUSES]))
    elif where.status:
        query = query.where(col(FollowupTask.status) == where.status)
    if where.priority is not None:
        query = query.where(col(FollowupTask.priority) == where.priority)
    if where.partner:
        query = query.where(col(FollowupTask.partner) == where.partner)
    if where.assignee:
        query = query.where(col(FollowupTask.assignee) == where.assignee)
    if where.customer_id:
        query = query.where(col(FollowupTask.customer_id) == where.customer_id)
    if where.overdue:
        query = query.where(*_overdue(now))
    query = query.order_by(
        col(FollowupTask.sla_due_at).is_(None),
        col(FollowupTask.sla_due_at),
        col(FollowupTask.priority),
        col(FollowupTask.opened_at),
    ).limit(limit)
    with transaction(engine) as session:
        return list(session.execute(query).scalars())


def _overdue(now: datetime) -> tuple[Any, ...]:
    """is_overdue below, as SQL conditions."""
    return (
        col(FollowupTask.sla_due_at) < now,
        col(FollowupTask.status).in_([s.value for s in ACTIVE_STATUSES]),
    )


def is_overdue(task: FollowupTask, now: datetime) -> bool:
    return (
        task.sla_due_at is not None
        and task.sla_due_at < now
        and TaskStatus(task.status) in ACTIVE_STATUSES
    )


def tasks_version(engine: Engine, where: TaskFilter, now: datetime) -> str:
    """A fingerprint of the tasks *where* selects (ids and versions): the inbox polls it and
    reloads its list only when it changes."""
    query = select(
        func.count(),
        func.coalesce(func.sum(col(FollowupTask.version)), 0),
        func.max(col(FollowupTask.opened_at)),
    )
    if where.teams is not None:
        query = query.where(col(FollowupTask.team).in_(where.teams))
    overdue = select(func.count()).where(*_overdue(now))
    if where.teams is not None:
        overdue = overdue.where(col(FollowupTask.team).in_(where.teams))
    with transaction(engine) as session:
        count, versions, newest = session.execute(query).one()
        late = session.execute(overdue).scalar_one()
    # The overdue count changes the fingerprint when a task passes its due time, so the
    # inbox marks it without any other change to the task.
    return f"{count}-{versions}-{newest.isoformat() if newest else ''}-{late}"


def list_structural_fixes(engine: Engine) -> list[StructuralFix]:
    with transaction(engine) as session:
        return list(
            session.execute(
                select(StructuralFix).order_by(col(StructuralFix.created_at).desc())
            ).scalars()
        )
