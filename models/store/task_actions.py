"""Acting on a task: apply_action records a member of staff's action, moves the task
through its lifecycle (assignment, calls, informing the customer, closing with a root
cause and structural fix, cancelling) and appends its history; record_refusal notes an
action that could not be applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from models.followup_rules import FollowupRules
from models.sla import current_sla, next_escalation_at, sla_times
from models.store.engine import insert_many_if_absent, transaction
from models.store.errors import StoreError
from models.store.tables import FollowupAction, FollowupTask, StaffUser, StructuralFix
from models.store.task_events import SYSTEM_ACTOR, record_event
from models.store.task_queries import TaskUnknownError
from models.task_lifecycle import ActionType, TaskStatus, status_after

_FIX_NAMESPACE = uuid.UUID("9e3c1f0a-5b7d-4a2e-8c6f-1d2b3a4c5e6f")


@dataclass(frozen=True)
class ActionCommand:
    """An action a member of staff takes on a task, for apply_action: *action_id* makes it
    idempotent, *at* is when it is recorded, *details* carry what the type needs (assignee,
    root cause, structural fix)."""

    action_id: str
    task_id: str
    action_type: ActionType
    note: str
    actor: str
    at: datetime
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ActionResult:
    """A recorded action and the task after it; *fresh* is False on a replay."""

    task: FollowupTask
    action: FollowupAction
    fresh: bool


class ActionRefusedError(StoreError, ValueError):
    """The action's details are not acceptable (unknown assignee, root cause, …)."""


def apply_action(engine: Engine, rules: FollowupRules, command: ActionCommand) -> ActionResult:
    """Record an action, move the task and append its history; a replayed action id changes
    nothing.

    Raises TaskUnknownError; models.task_lifecycle.TaskClosedError for an action on a closed
    or cancelled task, TransitionInvalidError for an action its status does not allow;
    ActionRefusedError for bad details (unknown assignee or root cause).
    """
    action_id, task_id, action_type = command.action_id, command.task_id, command.action_type
    note, actor, now = command.note, command.actor, command.at
    details = dict(command.details or {})
    with transaction(engine) as session:
        # Lock the task first: a second delivery of the same action waits here and then
        # finds the first one's row, instead of inserting the same action id again.
        task = session.get(FollowupTask, task_id, with_for_update=True)
        if task is None:
            raise TaskUnknownError(task_id)
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
    """What an action records on the task besides its status; ActionRefusedError on bad details."""
    match action_type:
        case ActionType.ASSIGN:
            assignee = str(details.get("assignee") or "")
            user = session.get(StaffUser, assignee)
            if user is None or not user.active or not user.team:
                raise ActionRefusedError(f"unknown or inactive staff member {assignee!r}")
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
                raise ActionRefusedError("say what the customer was told")
            task.told_customer = note
            task.informed_at = now
        case ActionType.CLOSE:
            _close(session, task, details, actor, now, event_details, rules)
        case ActionType.CANCEL:
            if not note.strip():
                raise ActionRefusedError("say why no follow-up is needed")


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
        raise ActionRefusedError(f"root_cause must be one of {rules.tasks.root_causes}")
    task.root_cause = cause
    task.needs_structural_fix = bool(details.get("needs_structural_fix"))
    event_details["root_cause"] = cause
    event_details["needs_structural_fix"] = task.needs_structural_fix
    fix_id = details.get("structural_fix_id")
    title = str(details.get("structural_fix_title") or "").strip()
    if fix_id:
        if session.get(StructuralFix, str(fix_id)) is None:
            raise ActionRefusedError(f"no structural fix {fix_id!r}")
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
