"""Opening follow-up tasks: each new task, once per stable id, is routed to a team, given
its SLA due times and first ladder step, handed to a member of the team (round robin or
least loaded) and recorded in its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from models.followup_rules import PRIORITY_NAMES, FollowupRules
from models.sla import next_escalation_at, sla_times
from models.store.engine import insert_many_if_absent, transaction
from models.store.tables import FollowupTask, StaffUser
from models.store.task_events import SYSTEM_ACTOR, record_event
from models.task_lifecycle import ACTIVE_STATUSES, NewTask, TaskStatus


def _task_row(rules: FollowupRules, task: NewTask, team: str) -> dict[str, Any]:
    times = sla_times(rules, team, task.opened_at)
    s = task.subject
    first_step = next_escalation_at(rules, team, task.opened_at, TaskStatus.OPEN, 0)
    return {
        "task_id": task.task_id,
        "origin": task.origin.value,
        "source_id": task.source_id,
        "customer_id": s.customer_id,
        "priority": task.priority,
        "status": TaskStatus.OPEN.value,
        "team": team,
        "assignee": None,
        "opened_at": task.opened_at,
        "first_contact_due_at": times.first_contact_due_at,
        "due_at": times.closure_due_at,
        "sla_due_at": times.first_contact_due_at,
        "escalation_level": 0,
        "next_escalation_at": first_step,
        "failed_attempts": 0,
        "nps": task.nps,
        "csat": task.csat,
        "ces": task.ces,
        "comment": task.comment,
        "partner": s.partner,
        "product": s.product,
        "channel": s.channel,
        "region": s.region,
        "language": s.language,
        "name": s.name,
        "email": s.email,
        "phone": s.phone,
        "timezone": s.timezone,
        "version": 0,
    }


def open_tasks_in(
    session: Session, rules: FollowupRules, new: Sequence[NewTask], now: datetime
) -> list[tuple[FollowupTask, bool]]:
    """Open each task unless one with its stable id exists: route it to a team, set its SLA,
    hand it to a member of the team, and record what happened. Per task the stored row and
    whether it is new."""
    ids = list(dict.fromkeys(t.task_id for t in new))
    if not ids:
        return []
    existing = set(
        session.execute(
            select(col(FollowupTask.task_id)).where(col(FollowupTask.task_id).in_(ids))
        ).scalars()
    )
    rows: dict[str, dict[str, Any]] = {}
    for task in new:
        if task.task_id not in existing and task.task_id not in rows:
            rows[task.task_id] = _task_row(rules, task, rules.team_for(task.attributes()))
    insert_many_if_absent(session, FollowupTask, list(rows.values()))
    stored = {
        t.task_id: t
        for t in session.execute(
            select(FollowupTask)
            .where(col(FollowupTask.task_id).in_(ids))
            .execution_options(populate_existing=True)
        ).scalars()
    }
    # A task another worker opened between our read and our insert already has history.
    fresh = {task_id for task_id in rows if stored[task_id].version == 0}
    for task_id in rows:
        task = stored[task_id]
        if task_id not in fresh:
            continue
        record_event(
            session,
            rules,
            task,
            "task_opened",
            None,
            SYSTEM_ACTOR,
            now,
            reason=f"{task.origin} → team {task.team}",
            details={"priority_name": PRIORITY_NAMES.get(task.priority, str(task.priority))},
            at=task.opened_at,
        )
        member = _pick_member(session, rules, task.team, now)
        if member is not None:
            previous = TaskStatus(task.status)
            task.assignee = member.username
            task.status = TaskStatus.ASSIGNED.value
            record_event(
                session,
                rules,
                task,
                "task_assigned",
                previous,
                SYSTEM_ACTOR,
                now,
                reason=rules.teams[task.team].assignment,  # a member means a known team
                details={"assignee": member.username},
            )
    return [(stored[i], i in fresh) for i in ids]


def open_tasks(
    engine: Engine, rules: FollowupRules, new: Sequence[NewTask], now: datetime
) -> list[tuple[FollowupTask, bool]]:
    """open_tasks_in, in its own transaction."""
    with transaction(engine) as session:
        return open_tasks_in(session, rules, new, now)


def _members(session: Session, team: str) -> list[StaffUser]:
    return list(
        session.execute(
            select(StaffUser)
            .where(col(StaffUser.team) == team)
            .where(col(StaffUser.active).is_(True))
            .where(col(StaffUser.role).in_(("staff", "lead")))
            .order_by(col(StaffUser.username))
            .with_for_update()
        ).scalars()
    )


def _pick_member(
    session: Session, rules: FollowupRules, team: str, now: datetime
) -> StaffUser | None:
    """The team member who gets the next task: round robin (longest since their last
    assignment) or least loaded (fewest active tasks, then longest since the last one).
    Staff are preferred over leads; None when the team has nobody or assigns by hand."""
    spec = rules.teams.get(team)
    if spec is None or spec.assignment == "none":
        return None
    members = _members(session, team)
    staff = [m for m in members if m.role == "staff"] or members
    if not staff:
        return None
    oldest = datetime.min.replace(tzinfo=UTC)

    def since_last(m: StaffUser) -> tuple[datetime, str]:
        return (m.last_assigned_at or oldest, m.username)

    if spec.assignment == "least_loaded":
        load = dict(
            session.execute(
                select(col(FollowupTask.assignee), func.count())
                .where(col(FollowupTask.assignee).in_([m.username for m in staff]))
                .where(col(FollowupTask.status).in_([s.value for s in ACTIVE_STATUSES]))
                .group_by(col(FollowupTask.assignee))
            ).all()
        )
        chosen = min(staff, key=lambda m: (load.get(m.username, 0), *since_last(m)))
    else:
        chosen = min(staff, key=since_last)
    # Strictly later than every earlier pick, so a batch of tasks opened at one instant
    # still goes round the team instead of back to the first name.
    latest = max((m.last_assigned_at for m in members if m.last_assigned_at), default=now)
    chosen.last_assigned_at = max(now, latest + timedelta(microseconds=1))
    return chosen
