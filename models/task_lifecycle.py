"""Follow-up tasks: which answers open one, its priority, and how actions move it.

Lifecycle: open → assigned → contacted → customer_informed → closed, plus unreachable
(after the configured number of failed call attempts) and cancelled. A contacted customer
can be reached again from unreachable; closed and cancelled are final.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from models.errors import CxloopError
from models.followup_rules import FollowupRules

# Task ids derive from what opened the task, so a replay opens the same task, not a new one.
_TASK_NAMESPACE = uuid.UUID("6f1d3c2e-6a55-4e7b-9a59-3d1f2b7c8e10")


class TaskOrigin(StrEnum):
    DETRACTOR = "detractor"  # NPS at or below the detractor threshold
    UNHAPPY = "unhappy"  # CSAT or CES at or below its threshold, NPS not a detractor
    COMPLAINT = "complaint"


class TaskStatus(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    CONTACTED = "contacted"
    CUSTOMER_INFORMED = "customer_informed"
    CLOSED = "closed"
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({TaskStatus.CLOSED, TaskStatus.CANCELLED})
# Statuses in which a task still waits for its first contact with the customer.
BEFORE_CONTACT = frozenset({TaskStatus.OPEN, TaskStatus.ASSIGNED})
# Statuses the escalation ladder watches (unreachable waits for the customer, not staff).
ACTIVE_STATUSES = frozenset(
    {TaskStatus.OPEN, TaskStatus.ASSIGNED, TaskStatus.CONTACTED, TaskStatus.CUSTOMER_INFORMED}
)


class ActionType(StrEnum):
    ASSIGN = "assign"  # to a member of staff (details.assignee); a lead's reassign too
    CALL_ATTEMPT = "call_attempt"  # reached the customer
    NO_ANSWER = "no_answer"  # a failed call attempt
    RESOLVED = "resolved"  # what was done about the cause (note)
    CUSTOMER_INFORMED = "customer_informed"  # what the customer was told (note)
    CLOSE = "close"  # root cause (details.root_cause), structural fix
    CANCEL = "cancel"  # no follow-up needed (note says why); leads and admins
    NOTE = "note"  # a remark, no change of status


ACTION_LABELS = {
    ActionType.CALL_ATTEMPT: "Called: reached the customer",
    ActionType.NO_ANSWER: "Called: no answer",
    ActionType.RESOLVED: "Resolved: what was done",
    ActionType.CUSTOMER_INFORMED: "Customer informed: what they were told",
    ActionType.CLOSE: "Close with root cause",
    ActionType.NOTE: "Note",
    ActionType.ASSIGN: "Assign",
    ActionType.CANCEL: "Cancel (no follow-up needed)",
}

# The statuses an action may be taken from.
_ALLOWED_FROM: dict[ActionType, frozenset[TaskStatus]] = {
    ActionType.ASSIGN: frozenset(
        {
            TaskStatus.OPEN,
            TaskStatus.ASSIGNED,
            TaskStatus.CONTACTED,
            TaskStatus.CUSTOMER_INFORMED,
            TaskStatus.UNREACHABLE,
        }
    ),
    ActionType.CALL_ATTEMPT: frozenset(
        {TaskStatus.OPEN, TaskStatus.ASSIGNED, TaskStatus.CONTACTED, TaskStatus.UNREACHABLE}
    ),
    ActionType.NO_ANSWER: frozenset({TaskStatus.OPEN, TaskStatus.ASSIGNED, TaskStatus.CONTACTED}),
    ActionType.RESOLVED: frozenset({TaskStatus.CONTACTED, TaskStatus.CUSTOMER_INFORMED}),
    ActionType.CUSTOMER_INFORMED: frozenset({TaskStatus.CONTACTED, TaskStatus.CUSTOMER_INFORMED}),
    ActionType.CLOSE: frozenset({TaskStatus.CUSTOMER_INFORMED, TaskStatus.UNREACHABLE}),
    ActionType.CANCEL: frozenset(
        {TaskStatus.OPEN, TaskStatus.ASSIGNED, TaskStatus.CONTACTED, TaskStatus.UNREACHABLE}
    ),
    ActionType.NOTE: frozenset(TaskStatus) - FINAL_STATUSES,
}


class TaskClosedError(CxloopError, ValueError):
    """An action arrived for a task that is already closed or cancelled."""


class TransitionInvalidError(CxloopError, ValueError):
    """The action is not possible in the task's current status."""


def allowed_actions(status: TaskStatus) -> list[ActionType]:
    """The actions possible in *status*, in form order."""
    return [a for a in ActionType if status in _ALLOWED_FROM[a]]


def status_after(
    current: TaskStatus, action: ActionType, failed_attempts: int, unreachable_after: int
) -> TaskStatus:
    """The task's status after *action*; *failed_attempts* counts this one for no_answer.

    Raises TaskClosedError on a final task and TransitionInvalidError when *action* is not possible.
    """
    if current in FINAL_STATUSES:
        raise TaskClosedError(f"task is already {current.value}")
    if current not in _ALLOWED_FROM[action]:
        raise TransitionInvalidError(f"{action.value} is not possible while the task is {current}")
    if action is ActionType.ASSIGN:
        return TaskStatus.ASSIGNED if current is TaskStatus.OPEN else current
    if action is ActionType.NO_ANSWER:
        gave_up = failed_attempts >= unreachable_after and current in BEFORE_CONTACT
        return TaskStatus.UNREACHABLE if gave_up else current
    return _STATUS_AFTER.get(action, current)


_STATUS_AFTER = {
    ActionType.CALL_ATTEMPT: TaskStatus.CONTACTED,
    ActionType.CUSTOMER_INFORMED: TaskStatus.CUSTOMER_INFORMED,
    ActionType.CLOSE: TaskStatus.CLOSED,
    ActionType.CANCEL: TaskStatus.CANCELLED,
}


@dataclass(frozen=True)
class TaskSubject:
    """Who the task is about and what it concerns: routing attributes and contact details."""

    customer_id: str
    partner: str | None = None
    product: str | None = None
    channel: str | None = None
    region: str | None = None
    language: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class NewTask:
    task_id: str
    origin: TaskOrigin
    source_id: str
    priority: int
    opened_at: datetime
    subject: TaskSubject
    nps: int | None = None
    csat: int | None = None
    ces: int | None = None
    comment: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def customer_id(self) -> str:
        return self.subject.customer_id

    def attributes(self) -> dict[str, str | None]:
        """What routing rules and priority boosts match on."""
        s = self.subject
        return {
            "partner": s.partner,
            "product": s.product,
            "channel": s.channel,
            "region": s.region,
            "language": s.language,
            "origin": self.origin.value,
        }


def task_id_for(origin: TaskOrigin, source_id: str) -> str:
    """The stable task id for what opened it (a response id or a complaint event id)."""
    kind = TaskOrigin.DETRACTOR if origin is TaskOrigin.UNHAPPY else origin
    return str(uuid.uuid5(_TASK_NAMESPACE, f"{kind}:{source_id}"))


def task_for_answer(
    rules: FollowupRules,
    response_id: str,
    answered_at: datetime,
    subject: TaskSubject,
    nps: int | None,
    csat: int | None,
    ces: int | None,
    comment: str | None = None,
) -> NewTask | None:
    """The task a scored answer opens under *rules*, or None for a happy enough customer."""
    spec = rules.tasks
    detractor = nps is not None and spec.nps_detractor_max is not None
    detractor = detractor and nps is not None and nps <= (spec.nps_detractor_max or 0)
    low_csat = csat is not None and spec.csat_max is not None and csat <= spec.csat_max
    hard = ces is not None and spec.ces_max is not None and ces <= spec.ces_max
    if not (detractor or low_csat or hard):
        return None
    high = (nps is not None and detractor and nps <= spec.high_priority_nps_max) or (
        csat is not None and low_csat and csat <= spec.high_priority_csat_max
    )
    origin = TaskOrigin.DETRACTOR if detractor else TaskOrigin.UNHAPPY
    draft = NewTask(
        task_id=task_id_for(origin, response_id),
        origin=origin,
        source_id=response_id,
        priority=0 if high else 1,
        opened_at=answered_at,
        subject=subject,
        nps=nps,
        csat=csat,
        ces=ces,
        comment=comment,
    )
    return _boosted(rules, draft)


def task_for_complaint(
    rules: FollowupRules,
    event_id: str,
    occurred_at: datetime,
    subject: TaskSubject,
    comment: str | None = None,
) -> NewTask | None:
    """A complaint opens a high-priority task directly, without a survey (unless the rules
    turn complaint tasks off)."""
    if not rules.tasks.complaints:
        return None
    return NewTask(
        task_id=task_id_for(TaskOrigin.COMPLAINT, event_id),
        origin=TaskOrigin.COMPLAINT,
        source_id=event_id,
        priority=0,
        opened_at=occurred_at,
        subject=subject,
        comment=comment,
    )


def _boosted(rules: FollowupRules, task: NewTask) -> NewTask:
    boosted = rules.boosted(task.priority, task.attributes())
    if boosted == task.priority:
        return task
    return NewTask(**{**task.__dict__, "priority": boosted})
