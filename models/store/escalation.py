"""The SLA escalation ladder and the staff e-mail outbox: escalate_due records every due
reminder and escalation step as a task event and queues the e-mails it calls for; the
sweeper claims those e-mails and records whether each was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.followup_rules import PRIORITY_NAMES, FollowupRules
from models.sla import STEP_NAMES, current_sla, due_steps, next_escalation_at
from models.store.engine import (
    OUTBOX_LEASE,
    claim_attempts,
    insert_many_if_absent,
    lock_due,
    transaction,
)
from models.store.tables import FollowupTask, FollowupTaskHistory, StaffNotification, StaffUser
from models.store.task_events import SYSTEM_ACTOR, record_event, short_hash
from models.task_lifecycle import TaskStatus

_MAX_BACKOFF = timedelta(hours=1)


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
            "notification_id": short_hash(f"{event.event_id}:{address}"),
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


def claim_notifications(engine: Engine, now: datetime, limit: int = 50) -> list[StaffNotification]:
    """Pending staff e-mails that are due, locked and pushed a minute ahead so a second
    sweeper does not take them while this one sends."""
    with transaction(engine) as session:
        return claim_attempts(session, StaffNotification, now, OUTBOX_LEASE, limit)


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
                row.next_attempt_at = now + min(OUTBOX_LEASE * 2**row.attempts, _MAX_BACKOFF)
        session.add(row)
