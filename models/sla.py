"""SLA due times and the escalation ladder, in business time of the team's calendar.

A task has two SLAs: first contact (while nobody has reached the customer) and closure
(after that). Each has a ladder of three steps at fractions of its target: a reminder to
the assignee (75 %), escalation to the team lead at breach (100 %) and to a manager at
twice the target (200 %). Both SLAs count from when the task was opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from models.followup_rules import FollowupRules
from models.task_lifecycle import BEFORE_CONTACT, TaskStatus

SlaKind = Literal["first_contact", "closure"]

# Ladder levels: 1 reminder, 2 lead, 3 manager.
STEP_NAMES = {1: "reminder", 2: "lead", 3: "manager"}
TOP_LEVEL = 3


@dataclass(frozen=True)
class SlaTimes:
    first_contact_due_at: datetime
    closure_due_at: datetime


def sla_times(rules: FollowupRules, team: str, opened_at: datetime) -> SlaTimes:
    """When first contact and closure are due for a task of *team* opened at *opened_at*."""
    calendar = rules.calendar(team)
    return SlaTimes(
        calendar.add_business_time(opened_at, rules.sla_amount("first_contact", team)),
        calendar.add_business_time(opened_at, rules.sla_amount("closure", team)),
    )


def current_sla(status: TaskStatus) -> SlaKind | None:
    """The SLA that applies in *status*: first contact before anyone reached the customer,
    closure after; none for unreachable, closed or cancelled tasks."""
    if status in BEFORE_CONTACT:
        return "first_contact"
    if status in (TaskStatus.CONTACTED, TaskStatus.CUSTOMER_INFORMED):
        return "closure"
    return None


def step_fraction(rules: FollowupRules, level: int) -> float:
    return {1: rules.sla.reminder_at, 2: rules.sla.lead_at, 3: rules.sla.manager_at}[level]


def step_at(
    rules: FollowupRules, team: str, opened_at: datetime, kind: SlaKind, level: int
) -> datetime:
    """When ladder step *level* of SLA *kind* is due."""
    amount = rules.sla_amount(kind, team) * step_fraction(rules, level)
    return rules.calendar(team).add_business_time(opened_at, amount)


def next_escalation_at(
    rules: FollowupRules, team: str, opened_at: datetime, status: TaskStatus, level: int
) -> datetime | None:
    """When the next ladder step is due for a task in *status* that reached *level*."""
    kind = current_sla(status)
    if kind is None or level >= TOP_LEVEL:
        return None
    return step_at(rules, team, opened_at, kind, level + 1)


def due_steps(
    rules: FollowupRules,
    team: str,
    opened_at: datetime,
    status: TaskStatus,
    level: int,
    now: datetime,
) -> list[int]:
    """The ladder levels above *level* that are due at *now*, lowest first (a task found
    late gets every step it missed, in order)."""
    kind = current_sla(status)
    if kind is None:
        return []
    return [
        n
        for n in range(level + 1, TOP_LEVEL + 1)
        if step_at(rules, team, opened_at, kind, n) <= now
    ]
