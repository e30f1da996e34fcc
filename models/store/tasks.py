"""Durable follow-up state in SQL: tasks, their history, the actions staff record on them,
the escalation ladder, and the outboxes (stream events, staff e-mail, webhooks) that every
change fills in the same transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, func, or_, select, update
from sqlmodel import Session, col

from models.followup_rules import PRIORITY_NAMES, FollowupRules
from models.sla import STEP_NAMES, current_sla, due_steps, next_escalation_at, sla_times
from models.store.engine import claim_attempts, insert_many_if_absent, lock_due, transaction
from models.store.tables import ContactEvent as ContactEventRow
from models.store.tables import (
    FollowupAction,
    FollowupTask,
    FollowupTaskHistory,
    StaffNotification,
    StaffUser,
    StructuralFix,
    SurveyInvitation,
    SurveyResponse,
    WebhookDelivery,
)
from models.task_lifecycle import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    ActionType,
    NewTask,
    TaskStatus,
    TaskSubject,
    status_after,
    task_for_answer,
)

SYSTEM_ACTOR = "cxloop"
_CLAIM_LEASE = timedelta(minutes=1)
_MAX_BACKOFF = timedelta(hours=1)
_EVENT_NAMESPACE = uuid.UUID("0b6f7a51-3c2d-4f1e-9a8b-7c6d5e4f3a21")
_FIX_NAMESPACE = uuid.UUID("9e3c1f0a-5b7d-4a2e-8c6f-1d2b3a4c5e6f")


@dataclass(frozen=True)
class ActionResult:
    """A recorded action and the task after it; *fresh* is False on a replay."""

    task: FollowupTask
    action: FollowupAction
    fresh: bool


class TaskNotFound(LookupError):
    """No task has this id."""


class ActionRefused(ValueError):
    """The action's details are not acceptable (unknown assignee, root cause, …)."""


def event_id_for(task_id: str, seq: int) -> str:
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{task_id}:{seq}"))


# --- opening -----------------------------------------------------------------------------


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


# --- history and outboxes ----------------------------------------------------------------


def task_event_payload(task: FollowupTask, event: FollowupTaskHistory) -> dict[str, Any]:
    """The JSON of a task event, as on followup-tasks and in webhook bodies (no contact
    details or comments: those stay behind the authenticated API)."""

    def iso(at: datetime | None) -> str | None:
        return at.isoformat() if at else None

    return {
        "event_type": event.event_type,
        "event_id": event.event_id,
        "seq": event.seq,
        "task_id": task.task_id,
        "customer_id": task.customer_id,
        "origin": task.origin,
        "priority": task.priority,
        "status": event.to_status,
        "from_status": event.from_status,
        "team": task.team,
        "assignee": task.assignee,
        "actor": event.actor,
        "reason": event.reason if event.event_type in _REASON_IS_PUBLIC else None,
        "details": event.details,
        "action_type": event.details.get("action_type"),
        "due_at": iso(task.due_at),
        "first_contact_due_at": iso(task.first_contact_due_at),
        "sla_due_at": iso(task.sla_due_at),
        "occurred_at": iso(event.occurred_at),
        "schema_version": 2,
    }


# Events whose reason is system text (routing, SLA); staff notes stay off the stream.
_REASON_IS_PUBLIC = frozenset(
    {
        "task_opened",
        "task_assigned",
        "task_reminder",
        "task_escalated",
        "task_unreachable",
        "task_action_refused",
    }
)


def record_event(
    session: Session,
    rules: FollowupRules,
    task: FollowupTask,
    event_type: str,
    from_status: TaskStatus | None,
    actor: str,
    now: datetime,
    *,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> FollowupTaskHistory:
    """Append an event to the task's history (bumping its version), and queue it for the
    stream (published_at stays empty until the relay puts it on followup-tasks) and for
    every webhook that wants it."""
    task.version += 1
    event = FollowupTaskHistory(
        event_id=event_id_for(task.task_id, task.version),
        task_id=task.task_id,
        seq=task.version,
        event_type=event_type,
        from_status=from_status.value if from_status else None,
        to_status=task.status,
        actor=actor,
        reason=reason,
        details=details or {},
        action_id=(details or {}).get("action_id"),
        occurred_at=at or now,
        created_at=now,
    )
    event.payload = task_event_payload(task, event)
    session.add(task)
    session.add(event)
    hooks = [
        h
        for h in rules.webhooks
        if (h.events is None or event_type in h.events)
        and (h.teams is None or task.team in h.teams)
    ]
    if hooks:
        body = orjson.dumps(event.payload).decode()
        insert_many_if_absent(
            session,
            WebhookDelivery,
            [
                {
                    "delivery_id": "msg_" + _short_hash(f"{h.name}:{event.event_id}"),
                    "webhook": h.name,
                    "event_id": event.event_id,
                    "payload": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for h in hooks
            ],
        )
    return event


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def claim_unpublished_events(
    engine: Engine, now: datetime, limit: int = 500
) -> list[FollowupTaskHistory]:
    """Task events not yet on followup-tasks, leased for a minute to this
    relay (SKIP LOCKED on PostgreSQL) so relays on other workers take others. Each task's
    events come in seq order, and only from its oldest unpublished one: an event whose
    predecessor is still waiting (or leased by another relay) waits for the next round, so
    one task's events never overtake each other, whatever the workers' clocks say. A relay
    that dies mid-way leaves them to be published again after the lease: consumers drop a
    repeated event_id."""
    with transaction(engine) as session:
        candidates = list(
            session.execute(
                select(FollowupTaskHistory)
                .where(col(FollowupTaskHistory.published_at).is_(None))
                .where(
                    or_(
                        col(FollowupTaskHistory.lease_until).is_(None),
                        col(FollowupTaskHistory.lease_until) < now,
                    )
                )
                .order_by(col(FollowupTaskHistory.created_at), col(FollowupTaskHistory.seq))
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if not candidates:
            return []
        task_ids = {e.task_id for e in candidates}
        first_waiting = dict(
            session.execute(
                select(col(FollowupTaskHistory.task_id), func.min(col(FollowupTaskHistory.seq)))
                .where(col(FollowupTaskHistory.task_id).in_(task_ids))
                .where(col(FollowupTaskHistory.published_at).is_(None))
                .group_by(col(FollowupTaskHistory.task_id))
            ).all()
        )
        by_task: dict[str, dict[int, FollowupTaskHistory]] = {}
        for event in candidates:
            by_task.setdefault(event.task_id, {})[event.seq] = event
        events: list[FollowupTaskHistory] = []
        for task_id, mine in by_task.items():  # tasks in order of their oldest candidate
            seq = first_waiting[task_id]
            while seq in mine:
                events.append(mine[seq])
                seq += 1
        for event in events:
            event.lease_until = now + _CLAIM_LEASE
            session.add(event)
        return events


def mark_events_published(engine: Engine, event_ids: Sequence[str], now: datetime) -> None:
    if not event_ids:
        return
    with transaction(engine) as session:
        session.execute(
            update(FollowupTaskHistory)
            .where(col(FollowupTaskHistory.event_id).in_(list(event_ids)))
            .values(published_at=now)
        )


def task_history(engine: Engine, task_id: str) -> list[FollowupTaskHistory]:
    with transaction(engine) as session:
        return list(
            session.execute(
                select(FollowupTaskHistory)
                .where(col(FollowupTaskHistory.task_id) == task_id)
                .order_by(col(FollowupTaskHistory.seq))
            ).scalars()
        )


# --- reading -----------------------------------------------------------------------------


def get_task(engine: Engine, task_id: str) -> FollowupTask:
    with transaction(engine) as session:
        task = session.get(FollowupTask, task_id)
        if task is None:
            raise TaskNotFound(task_id)
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


# --- acting ------------------------------------------------------------------------------


def apply_action(
    engine: Engine,
    rules: FollowupRules,
    action_id: str,
    task_id: str,
    action_type: ActionType,
    note: str,
    actor: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> ActionResult:
    """Record an action, move the task and append its history; a replayed action id changes
    nothing.

    Raises TaskNotFound, models.task_lifecycle.TaskClosed for an action on a closed or cancelled
    task, InvalidTransition for an action its status does not allow, ActionRefused for bad
    details (unknown assignee or root cause).
    """
    details = dict(details or {})
    with transaction(engine) as session:
        # Lock the task first: a second delivery of the same action waits here and then
        # finds the first one's row, instead of inserting the same action id again.
        task = session.get(FollowupTask, task_id, with_for_update=True)
        if task is None:
            raise TaskNotFound(task_id)
        existing = session.get(FollowupAction, action_id)
        if existing is not None:
            return ActionResult(task, existing, fresh=False)
        previous = TaskStatus(task.status)
        failed = task.failed_attempts + (1 if action_type is ActionType.NO_ANSWER else 0)
        status = status_after(previous, action_type, failed, rules.tasks.unreachable_after)
        event_details: dict[str, Any] = {"action_type": action_type.value, "action_id": action_id}
        _apply_details(session, rules, task, action_type, note, details, actor, now, event_details)
        if action_type is ActionType.NO_ANSWER:
            task.failed_attempts = failed
            event_details["failed_attempts"] = failed
        task.status = status.value
        if status is TaskStatus.CLOSED or status is TaskStatus.CANCELLED:
            task.closed_at = now
        _update_sla(rules, task, previous, status)
        action = FollowupAction(
            action_id=action_id,
            task_id=task_id,
            type=action_type.value,
            note=note,
            actor=actor,
            details=details,
            recorded_at=now,
        )
        session.add(action)
        record_event(
            session,
            rules,
            task,
            _event_type(action_type, status),
            previous,
            actor,
            now,
            reason=note or None,
            details=event_details,
        )
        if status is TaskStatus.UNREACHABLE and previous is not TaskStatus.UNREACHABLE:
            record_event(
                session,
                rules,
                task,
                "task_unreachable",
                status,
                SYSTEM_ACTOR,
                now,
                reason=f"{failed} failed call attempts",
                details={"failed_attempts": failed},
            )
        return ActionResult(task, action, fresh=True)


def _apply_details(
    session: Session,
    rules: FollowupRules,
    task: FollowupTask,
    action_type: ActionType,
    note: str,
    details: dict[str, Any],
    actor: str,
    now: datetime,
    event_details: dict[str, Any],
) -> None:
    """What an action records on the task besides its status; ActionRefused on bad details."""
    match action_type:
        case ActionType.ASSIGN:
            assignee = str(details.get("assignee") or "")
            user = session.get(StaffUser, assignee)
            if user is None or not user.active or not user.team:
                raise ActionRefused(f"unknown or inactive staff member {assignee!r}")
            if user.team != task.team:
                event_details["from_team"] = task.team
                task.team = user.team
                _reschedule(rules, task)
            event_details["assignee"] = assignee
            event_details["previous_assignee"] = task.assignee
            task.assignee = assignee
        case ActionType.CALL_ATTEMPT:
            task.contacted_at = task.contacted_at or now
        case ActionType.RESOLVED:
            task.resolution = note or task.resolution
        case ActionType.CUSTOMER_INFORMED:
            if not note.strip():
                raise ActionRefused("say what the customer was told")
            task.told_customer = note
            task.informed_at = now
        case ActionType.CLOSE:
            _close(session, task, details, actor, now, event_details, rules)
        case ActionType.CANCEL:
            if not note.strip():
                raise ActionRefused("say why no follow-up is needed")


def record_refusal(
    engine: Engine,
    rules: FollowupRules,
    action_id: str,
    task_id: str,
    action_type: str,
    actor: str,
    reason: str,
    now: datetime,
) -> bool:
    """Record on the task that an action was refused (two people acting at once, a status
    that moved on): an action row of type 'refused' and a task_action_refused event, so the
    inbox shows it. False for an unknown task or a replayed action id."""
    with transaction(engine) as session:
        task = session.get(FollowupTask, task_id, with_for_update=True)
        if task is None or session.get(FollowupAction, action_id) is not None:
            return False
        details = {"action_type": action_type, "action_id": action_id, "refused": reason[:500]}
        session.add(
            FollowupAction(
                action_id=action_id,
                task_id=task_id,
                type="refused",
                note="",
                actor=actor,
                details=details,
                recorded_at=now,
            )
        )
        record_event(
            session,
            rules,
            task,
            "task_action_refused",
            TaskStatus(task.status),
            actor,
            now,
            reason=reason[:500],
            details=details,
        )
        return True


def _event_type(action: ActionType, status: TaskStatus) -> str:
    if status is TaskStatus.CLOSED:
        return "task_closed"
    if status is TaskStatus.CANCELLED:
        return "task_cancelled"
    if action is ActionType.ASSIGN:
        return "task_assigned"
    return "task_action_recorded"


def _close(
    session: Session,
    task: FollowupTask,
    details: dict[str, Any],
    actor: str,
    now: datetime,
    event_details: dict[str, Any],
    rules: FollowupRules,
) -> None:
    cause = str(details.get("root_cause") or "")
    if cause not in rules.tasks.root_causes:
        raise ActionRefused(f"root_cause must be one of {rules.tasks.root_causes}")
    task.root_cause = cause
    task.needs_structural_fix = bool(details.get("needs_structural_fix"))
    event_details["root_cause"] = cause
    event_details["needs_structural_fix"] = task.needs_structural_fix
    fix_id = details.get("structural_fix_id")
    title = str(details.get("structural_fix_title") or "").strip()
    if fix_id:
        if session.get(StructuralFix, str(fix_id)) is None:
            raise ActionRefused(f"no structural fix {fix_id!r}")
    elif title and task.needs_structural_fix:
        fix_id = str(uuid.uuid5(_FIX_NAMESPACE, f"{cause}:{title.lower()}"))
        insert_many_if_absent(
            session,
            StructuralFix,
            [
                {
                    "fix_id": fix_id,
                    "title": title[:200],
                    "root_cause": cause,
                    "status": "open",
                    "created_by": actor,
                    "created_at": now,
                }
            ],
        )
    if fix_id:
        task.needs_structural_fix = True
        task.structural_fix_id = str(fix_id)
        event_details["structural_fix_id"] = str(fix_id)


def _reschedule(rules: FollowupRules, task: FollowupTask) -> None:
    """Due times and the next ladder step on the task's (new) team calendar."""
    times = sla_times(rules, task.team, task.opened_at)
    task.first_contact_due_at, task.due_at = times.first_contact_due_at, times.closure_due_at
    kind = current_sla(TaskStatus(task.status))
    if kind is not None:
        task.sla_due_at = task.first_contact_due_at if kind == "first_contact" else task.due_at
    task.next_escalation_at = next_escalation_at(
        rules, task.team, task.opened_at, TaskStatus(task.status), task.escalation_level
    )


def _update_sla(
    rules: FollowupRules, task: FollowupTask, previous: TaskStatus, status: TaskStatus
) -> None:
    """Move the task to the SLA its new status is measured against; the ladder restarts
    when it moves from first contact to closure."""
    if current_sla(previous) == current_sla(status):
        return
    kind = current_sla(status)
    if kind is None:
        task.next_escalation_at = None
        return
    task.sla_due_at = task.first_contact_due_at if kind == "first_contact" else task.due_at
    task.escalation_level = 0
    task.next_escalation_at = next_escalation_at(rules, task.team, task.opened_at, status, 0)


def list_structural_fixes(engine: Engine) -> list[StructuralFix]:
    with transaction(engine) as session:
        return list(
            session.execute(
                select(StructuralFix).order_by(col(StructuralFix.created_at).desc())
            ).scalars()
        )


# --- escalation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EscalationResult:
    events: int
    notifications: int
    tasks: int


def escalate_due(
    engine: Engine, rules: FollowupRules, now: datetime, limit: int = 200
) -> EscalationResult:
    """Take every task whose next ladder step is due (through the next_escalation_at
    index, SKIP LOCKED on PostgreSQL), record each due step as an event and queue its
    e-mails, and set the next step."""
    events = notifications = 0
    with transaction(engine) as session:
        tasks = lock_due(session, FollowupTask, FollowupTask.next_escalation_at, now, limit)
        for task in tasks:
            status = TaskStatus(task.status)
            steps = due_steps(rules, task.team, task.opened_at, status, task.escalation_level, now)
            kind = current_sla(status)
            for level in steps:
                task.escalation_level = level
                event = record_event(
                    session,
                    rules,
                    task,
                    "task_reminder" if level == 1 else "task_escalated",
                    status,
                    SYSTEM_ACTOR,
                    now,
                    reason=f"{kind} SLA: {STEP_NAMES[level]} step",
                    details={"sla": kind, "level": level, "step": STEP_NAMES[level]},
                )
                events += 1
                if rules.sla.email:
                    notifications += _notify(session, rules, task, event, level, kind or "", now)
            task.next_escalation_at = next_escalation_at(
                rules, task.team, task.opened_at, status, task.escalation_level
            )
            session.add(task)
    return EscalationResult(events, notifications, len(tasks))


def _recipients(
    session: Session, rules: FollowupRules, task: FollowupTask, level: int
) -> list[str]:
    team = rules.teams.get(task.team)
    if level == 1:
        if task.assignee:
            user = session.get(StaffUser, task.assignee)
            if user is not None and user.email:
                return [user.email]
        level = 2  # nobody to remind: the lead hears it
    role = "lead" if level == 2 else "admin"
    configured = (team.lead_email if level == 2 else team.manager_email) if team else None
    if configured:
        return [configured]
    query = (
        select(col(StaffUser.email))
        .where(col(StaffUser.role) == role)
        .where(col(StaffUser.active).is_(True))
        .where(col(StaffUser.email).is_not(None))
    )
    if role == "lead":
        query = query.where(col(StaffUser.team) == task.team)
    return sorted({e for e in session.execute(query).scalars() if e})


def _notify(
    session: Session,
    rules: FollowupRules,
    task: FollowupTask,
    event: FollowupTaskHistory,
    level: int,
    kind: str,
    now: datetime,
) -> int:
    sla_name = "first contact" if kind == "first_contact" else "closure"
    due = task.first_contact_due_at if kind == "first_contact" else task.due_at
    words = {
        1: ("Reminder", f"75 % of the {sla_name} time has passed"),
        2: ("Overdue", f"the {sla_name} SLA was breached"),
        3: ("Escalation", f"twice the {sla_name} SLA has passed"),
    }[level]
    subject = f"[cxloop] {words[0]}: follow-up task {task.task_id[:8]} ({task.team})"
    body = (
        f"{words[1].capitalize()} for follow-up task {task.task_id}.\n\n"
        f"Team: {task.team}\nAssigned to: {task.assignee or 'nobody'}\n"
        f"Status: {task.status}\nPriority: {PRIORITY_NAMES.get(task.priority, task.priority)}\n"
        f"Opened: {task.opened_at.isoformat()}\n"
        f"{sla_name.capitalize()} due: {due.isoformat() if due else '-'}\n\n"
        "Open the staff inbox to act on it.\n"
    )
    rows = [
        {
            "notification_id": _short_hash(f"{event.event_id}:{address}"),
            "event_id": event.event_id,
            "to_address": address,
            "subject": subject,
            "body": body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for address in _recipients(session, rules, task, level)
    ]
    insert_many_if_absent(session, StaffNotification, rows)
    return len(rows)


# --- notifications outbox -----------------------------------------------------------------


def claim_notifications(engine: Engine, now: datetime, limit: int = 50) -> list[StaffNotification]:
    """Pending staff e-mails that are due, locked and pushed a minute ahead so a second
    sweeper does not take them while this one sends."""
    with transaction(engine) as session:
        return claim_attempts(session, StaffNotification, now, _CLAIM_LEASE, limit)


def finish_notification(
    engine: Engine, notification_id: str, now: datetime, error: str | None, final: bool
) -> None:
    """Record a sent e-mail, or a failure (retried with backoff unless *final*)."""
    with transaction(engine) as session:
        row = session.get(StaffNotification, notification_id, with_for_update=True)
        if row is None:
            return
        if error is None:
            row.status, row.sent_at, row.last_error = "sent", now, None
        else:
            row.last_error = error[:500]
            if final:
                row.status = "failed"
            else:
                row.next_attempt_at = now + min(_CLAIM_LEASE * 2**row.attempts, _MAX_BACKOFF)
        session.add(row)


# --- answers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredAnswer:
    response_id: str
    invitation_id: str
    customer_id: str
    submitted_at: datetime
    nps: int | None
    csat: int | None
    ces: int | None


RECOVERY_KIND = "followup_closed"


def open_tasks_for_answers(
    engine: Engine, rules: FollowupRules, answers: Sequence[ScoredAnswer], now: datetime
) -> tuple[list[tuple[FollowupTask, bool]], int]:
    """Open the tasks unhappy answers call for (routing on the survey's partner, product,
    channel and language; the customer's contact details from the invitation), and record
    answers to recovery surveys on the task they follow up. The tasks with whether each is
    new, and how many recovery answers were recorded."""
    if not answers:
        return [], 0
    with transaction(engine) as session:
        invitations = {
            i.invitation_id: i
            for i in session.execute(
                select(SurveyInvitation).where(
                    col(SurveyInvitation.invitation_id).in_({a.invitation_id for a in answers})
                )
            ).scalars()
        }
        regions = dict(
            session.execute(
                select(col(ContactEventRow.event_id), col(ContactEventRow.region)).where(
                    col(ContactEventRow.event_id).in_({i.event_id for i in invitations.values()})
                )
            ).all()
        )
        comments = dict(
            session.execute(
                select(col(SurveyResponse.response_id), col(SurveyResponse.comment)).where(
                    col(SurveyResponse.response_id).in_({a.response_id for a in answers})
                )
            ).all()
        )
        new: list[NewTask] = []
        recovered = 0
        for answer in answers:
            invitation = invitations.get(answer.invitation_id)
            if invitation is not None and invitation.kind == RECOVERY_KIND:
                recovered += _record_recovery(session, invitation, answer)
                continue
            subject = _answer_subject(answer.customer_id, invitation, regions)
            task = task_for_answer(
                rules,
                answer.response_id,
                answer.submitted_at,
                subject,
                answer.nps,
                answer.csat,
                answer.ces,
                comments.get(answer.response_id),
            )
            if task is not None:
                new.append(task)
        return open_tasks_in(session, rules, new, now), recovered


def _answer_subject(
    customer_id: str, invitation: SurveyInvitation | None, regions: dict[str, str | None]
) -> TaskSubject:
    if invitation is None:
        return TaskSubject(customer_id=customer_id)
    return TaskSubject(
        customer_id=customer_id,
        partner=invitation.partner,
        product=invitation.product,
        channel=invitation.channel,
        region=regions.get(invitation.event_id),
        language=invitation.locale,
        name=invitation.name,
        email=invitation.email,
        phone=invitation.phone,
    )


def _record_recovery(session: Session, invitation: SurveyInvitation, answer: ScoredAnswer) -> int:
    """The recovery survey's contact event id is 'recovery:<task id>' (see recovery_event)."""
    task_id = invitation.event_id.removeprefix("recovery:")
    task = session.get(FollowupTask, task_id, with_for_update=True)
    if task is None or task.recovery_response_id is not None:
        return 0
    task.recovery_response_id = answer.response_id
    task.recovery_nps = answer.nps
    if answer.nps is not None:
        task.recovered = answer.nps > 6
    elif answer.csat is not None:
        task.recovered = answer.csat > 2
    session.add(task)
    return 1


def recovery_event(task: FollowupTask, now: datetime) -> dict[str, Any] | None:
    """The contact event a closed task publishes so the survey rules can re-survey the
    customer (a 'recovery' programme on kind followup_closed); None when the customer was
    never informed (closed as unreachable) or cannot be reached at all."""
    if task.informed_at is None or not (task.email or task.phone):
        return None
    customer: dict[str, Any] = {"id": task.customer_id}
    for key in ("email", "phone", "name", "timezone"):
        if getattr(task, key):
            customer[key] = getattr(task, key)
    if task.language:
        customer["locale"] = task.language
    event: dict[str, Any] = {
        "event_id": f"recovery:{task.task_id}",
        "occurred_at": (task.closed_at or now).isoformat(),
        "kind": RECOVERY_KIND,
        "channel": "phone",
        "customer": customer,
        "case_id": task.task_id,
    }
    if task.partner:
        event["partner"] = task.partner
    if task.product:
        event["product"] = task.product
    return event
