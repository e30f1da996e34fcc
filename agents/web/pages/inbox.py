"""What the staff inbox shows: the task list and its filters, a task with the customer's
history, the action forms, sign-in, and the cookies that carry a session.

Everything goes through jinja2 with autoescaping; staff-facing text is English. Times are
shown in the task's team time zone (staff work the team's hours).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from agents.errors import AgentError
from agents.rendering import render
from models.followup_rules import PRIORITY_LEVELS, PRIORITY_NAMES, FollowupRules
from models.staff_roles import Viewer
from models.store.customer_history import CustomerHistory
from models.store.tables import (
    FollowupAction,
    FollowupTask,
    FollowupTaskHistory,
    StaffUser,
    StructuralFix,
    SurveyResponse,
)
from models.store.task_queries import TaskFilter, is_overdue
from models.task_lifecycle import ACTION_LABELS, ActionType, TaskStatus, allowed_actions

STATUS_LABELS = {
    TaskStatus.OPEN: "Open",
    TaskStatus.ASSIGNED: "Assigned",
    TaskStatus.CONTACTED: "Contacted",
    TaskStatus.CUSTOMER_INFORMED: "Customer informed",
    TaskStatus.CLOSED: "Closed",
    TaskStatus.UNREACHABLE: "Unreachable",
    TaskStatus.CANCELLED: "Cancelled",
}
ORIGIN_LABELS = {"detractor": "Detractor", "unhappy": "Unhappy", "complaint": "Complaint"}
NOTICES = {
    a.value: f"Sent: {ACTION_LABELS[a]}. The page updates once it is recorded." for a in ActionType
}
_YES = frozenset({"1", "true", "on", "yes"})
_NO = frozenset({"", "0", "false", "off", "no"})
_PARTNER_MAX = 200
# Where a sign-in may send the browser afterwards: inbox pages only (no open redirect).
_NEXT = re.compile(
    r"^/inbox(/tasks/[A-Za-z0-9_-]{1,64}|/dashboard)?(\?[A-Za-z0-9_=&%.+-]{0,500})?$"
)


def status_label(status: str) -> str:
    try:
        return STATUS_LABELS[TaskStatus(status)]
    except ValueError:
        return status


def action_label(action: str) -> str:
    try:
        return ACTION_LABELS[ActionType(action)]
    except ValueError:
        return action


def safe_next(target: object) -> str:
    """*target* when it is an inbox page (or the dashboard), else the task list."""
    return target if isinstance(target, str) and _NEXT.fullmatch(target) else "/inbox"


# --- filters ------------------------------------------------------------------------------


class FilterInvalidError(AgentError, ValueError):
    """A task-list filter is not acceptable: 403 (another team) or 422, a message per field."""

    def __init__(self, status: int, fields: Mapping[str, str]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in fields.items()))
        self.status = status
        self.fields = dict(fields)


@dataclass(frozen=True)
class ListQuery:
    """The filters of a task list as asked (for the form) and as a TaskFilter."""

    where: TaskFilter
    values: dict[str, str]


def parse_filters(
    query: Mapping[str, str],
    viewer: Viewer,
    teams: Collection[str],
    *,
    default_status: str | None = None,
) -> ListQuery:
    """The task filter for a list query (status, priority, team, partner, overdue,
    assignee), limited to what *viewer* may see; FilterInvalidError when a value is unknown
    (422) or names a team the viewer may not see (403)."""
    fields: dict[str, str] = {}
    status = _status(query.get("status"), default_status, fields)
    priority = _priority(query.get("priority"), fields)
    overdue = _flag(query.get("overdue"), "overdue", fields)
    team = (query.get("team") or "").strip() or None
    if team is not None and team not in teams:
        fields["team"] = f"must be one of {sorted(teams)}"
    partner = (query.get("partner") or "").strip() or None
    if partner is not None and len(partner) > _PARTNER_MAX:
        fields["partner"] = f"at most {_PARTNER_MAX} characters"
    assignee = (query.get("assignee") or "").strip().lower() or None
    if assignee == "me":
        assignee = viewer.username
    if fields:
        raise FilterInvalidError(422, fields)
    visible = viewer.visible_teams()
    if team is not None and visible is not None and team not in visible:
        raise FilterInvalidError(403, {"team": "you can only see your own team's tasks"})
    where = TaskFilter(
        teams=(team,) if team else visible,
        status=status,
        priority=priority,
        partner=partner,
        assignee=assignee,
        overdue=overdue,
    )
    values = {
        "status": status or "all",
        "priority": PRIORITY_NAMES.get(priority, "") if priority is not None else "",
        "team": team or "",
        "partner": partner or "",
        "overdue": "1" if overdue else "",
        "assignee": "me" if assignee == viewer.username else (assignee or ""),
    }
    return ListQuery(where, values)


def _status(value: str | None, default: str | None, fields: dict[str, str]) -> str | None:
    value = (value or "").strip() or default
    if value in (None, "all"):
        return None
    allowed = ["active", *(s.value for s in TaskStatus)]
    if value not in allowed:
        fields["status"] = f"must be one of {['all', *allowed]}"
        return None
    return value


def _priority(value: str | None, fields: dict[str, str]) -> int | None:
    value = (value or "").strip().lower()
    if not value:
        return None
    if value in PRIORITY_LEVELS:
        return PRIORITY_LEVELS[value]
    if value.isdigit() and int(value) in PRIORITY_NAMES:
        return int(value)
    fields["priority"] = f"must be one of {list(PRIORITY_LEVELS)}"
    return None


def _flag(value: str | None, name: str, fields: dict[str, str]) -> bool:
    value = (value or "").strip().lower()
    if value in _YES:
        return True
    if value not in _NO:
        fields[name] = "must be true or false"
    return False


def query_string(values: Mapping[str, str]) -> str:
    """The filters as a query string, without empty ones."""
    return urlencode({k: v for k, v in values.items() if v})


# --- times --------------------------------------------------------------------------------


def team_zone(rules: FollowupRules, team: str) -> ZoneInfo:
    spec = rules.teams.get(team)
    return ZoneInfo(spec.timezone) if spec else ZoneInfo("UTC")


def _when(at: datetime | None, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if at else "–"


def _iso(at: datetime | None) -> str:
    return at.astimezone(UTC).isoformat() if at else ""


# --- the list -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRow:
    href: str
    customer: str
    partner: str
    origin: str
    priority: str
    status: str
    team: str
    assignee: str
    due: str
    due_iso: str
    overdue: bool


def task_rows(tasks: Sequence[FollowupTask], rules: FollowupRules, now: datetime) -> list[TaskRow]:
    return [
        TaskRow(
            href=f"/inbox/tasks/{t.task_id}",
            customer=t.name or t.customer_id,
            partner=t.partner or "",
            origin=ORIGIN_LABELS.get(t.origin, t.origin),
            priority=PRIORITY_NAMES.get(t.priority, str(t.priority)),
            status=status_label(t.status),
            team=t.team,
            assignee=t.assignee or "nobody",
            due=_when(t.sla_due_at, team_zone(rules, t.team)),
            due_iso=_iso(t.sla_due_at),
            overdue=is_overdue(t, now),
        )
        for t in tasks
    ]


@dataclass(frozen=True)
class PageChrome:
    """What every signed-in page shows: who, and how to sign out."""

    display_name: str
    role: str
    team: str | None
    csrf: str
    can_sign_out: bool
    poll_ms: int


def list_page(
    *,
    chrome: PageChrome,
    rows: Sequence[TaskRow],
    filters: Mapping[str, str],
    teams: Sequence[str],
    version: str,
    error: Mapping[str, str] | None = None,
) -> str:
    """The task list, soonest SLA due first, with its filter form; it polls for changes."""
    qs = query_string(filters)
    return render(
        "inbox/list.html.j2",
        title="Follow-up tasks",
        chrome=chrome,
        rows=rows,
        filters=filters,
        statuses=[("active", "Active (not closed)"), ("all", "All")]
        + [(s.value, label) for s, label in STATUS_LABELS.items()],
        priorities=[("", "Any"), *((name, name.title()) for name in PRIORITY_LEVELS)],
        teams=teams,
        poll_url="/inbox/poll" + (f"?{qs}" if qs else ""),
        version=version,
        error=error or {},
    )


# --- one task -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryLine:
    at: str
    at_iso: str
    what: str
    detail: str
    note: str = ""


@dataclass(frozen=True)
class ActionForm:
    """The choices of the action forms, for this viewer and the task's status."""

    actions: list[tuple[str, str]]
    root_causes: list[str]
    fixes: list[tuple[str, str]]
    assignees: list[tuple[str, str]]
    can_take: bool
    can_close: bool
    nonce: str
    values: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)


def action_choices(viewer: Viewer, task: FollowupTask) -> list[tuple[str, str]]:
    """The actions of the main form: possible now and allowed to the viewer (assigning
    has forms of its own)."""
    return [
        (a.value, ACTION_LABELS[a])
        for a in viewer.possible_actions(task)
        if a is not ActionType.ASSIGN
    ]


def action_form(
    viewer: Viewer,
    task: FollowupTask,
    rules: FollowupRules,
    *,
    fixes: Sequence[StructuralFix],
    members: Sequence[StaffUser],
    nonce: str,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> ActionForm:
    possible = allowed_actions(TaskStatus(task.status))
    may_assign = ActionType.ASSIGN in possible
    me = next((m for m in members if m.username == viewer.username), None)
    assignees = [
        (m.username, f"{m.display_name} ({m.team}, {m.role})")
        for m in members
        if may_assign and viewer.may_reassign and viewer.can_act(task, ActionType.ASSIGN, m)
    ]
    return ActionForm(
        actions=action_choices(viewer, task),
        root_causes=list(rules.tasks.root_causes),
        fixes=[(f.fix_id, f"{f.title} ({f.root_cause})") for f in fixes if f.status == "open"],
        assignees=assignees,
        can_take=may_assign
        and me is not None
        and task.assignee != viewer.username
        and viewer.can_act(task, ActionType.ASSIGN, me),
        can_close=ActionType.CLOSE in possible,
        nonce=nonce,
        values=dict(values or {}),
        errors=dict(errors or {}),
    )


def history_lines(events: Sequence[FollowupTaskHistory], zone: ZoneInfo) -> list[HistoryLine]:
    """This task's events, oldest first."""
    lines = []
    for e in events:
        moved = (
            f"{status_label(e.from_status)} → {status_label(e.to_status)}"
            if e.from_status and e.from_status != e.to_status
            else status_label(e.to_status)
        )
        what = e.event_type.removeprefix("task_").replace("_", " ")
        action = e.details.get("action_type")
        if action:
            what = action_label(str(action))
        extras = [
            f"{key.replace('_', ' ')} {e.details[key]}"
            for key in ("assignee", "root_cause", "failed_attempts", "step")
            if e.details.get(key) not in (None, "")
        ]
        lines.append(
            HistoryLine(
                at=_when(e.occurred_at, zone),
                at_iso=_iso(e.occurred_at),
                what=what,
                detail="; ".join([moved, f"by {e.actor}", *extras]),
                note=e.reason or "",
            )
        )
    return lines


def task_page(
    *,
    chrome: PageChrome,
    task: FollowupTask,
    rules: FollowupRules,
    now: datetime,
    events: Sequence[FollowupTaskHistory],
    timeline: Sequence[HistoryLine],
    form: ActionForm,
    notice: str | None = None,
) -> str:
    """A task: what it is about, how to reach the customer, the customer's history, this
    task's events and the forms to act on it; it polls the task's version."""
    zone = team_zone(rules, task.team)
    fix = task.structural_fix_id or ""
    facts = [
        ("Status", status_label(task.status)),
        ("Priority", PRIORITY_NAMES.get(task.priority, str(task.priority))),
        ("Team", task.team),
        ("Assigned to", task.assignee or "nobody"),
        ("Origin", ORIGIN_LABELS.get(task.origin, task.origin)),
        ("Opened", _when(task.opened_at, zone)),
        ("First contact due", _when(task.first_contact_due_at, zone)),
        ("Closure due", _when(task.due_at, zone)),
        ("Failed call attempts", str(task.failed_attempts)),
    ]
    optional = [
        ("NPS", task.nps),
        ("CSAT", task.csat),
        ("CES", task.ces),
        ("Partner", task.partner),
        ("Product", task.product),
        ("Channel", task.channel),
        ("Region", task.region),
        ("Language", task.language),
        ("What was done", task.resolution),
        ("Customer was told", task.told_customer),
        ("Root cause", task.root_cause),
        ("Structural fix", fix),
    ]
    facts += [(label, str(value)) for label, value in optional if value not in (None, "")]
    return render(
        "inbox/task.html.j2",
        title=f"Task for {task.name or task.customer_id}",
        chrome=chrome,
        task=task,
        status=status_label(task.status),
        facts=facts,
        sla_due=_when(task.sla_due_at, zone),
        sla_due_iso=_iso(task.sla_due_at),
        overdue=is_overdue(task, now),
        history=history_lines(events, zone),
        timeline=timeline,
        form=form,
        notice=NOTICES.get(notice or ""),
        action_url=f"/inbox/tasks/{task.task_id}/actions",
        poll_url=f"/inbox/tasks/{task.task_id}/state",
        page_url=f"/inbox/tasks/{task.task_id}",
        version=str(task.version),
    )


def timeline_lines(history: CustomerHistory, zone: ZoneInfo) -> list[HistoryLine]:
    """The customer's history for staff, oldest first: contacts, surveys, answers with their
    comments, tasks, and the actions on earlier tasks (this task's own are its history)."""
    lines = [
        (e.at, HistoryLine(_when(e.at, zone), _iso(e.at), e.what.title(), e.detail))
        for e in history.timeline
    ]
    lines += [(a.submitted_at, _answer_line(a, zone)) for a in history.answers]
    lines += [(a.recorded_at, _action_line(a, origin, zone)) for a, origin in history.actions]
    lines.sort(key=lambda pair: pair[0])
    return [line for _, line in lines]


def _answer_line(a: SurveyResponse, zone: ZoneInfo) -> HistoryLine:
    scores = [
        f"{name} {value}"
        for name, value in (("NPS", a.nps), ("CSAT", a.csat), ("CES", a.ces))
        if value is not None
    ]
    how = f" (by phone, {a.interviewer})" if a.interviewer else ""
    return HistoryLine(
        _when(a.submitted_at, zone),
        _iso(a.submitted_at),
        "Answer",
        ("answered: " + (", ".join(scores) or "no scores")) + how,
        a.comment or "",
    )


def _action_line(a: FollowupAction, origin: str, zone: ZoneInfo) -> HistoryLine:
    label = action_label(a.type)
    return HistoryLine(
        _when(a.recorded_at, zone),
        _iso(a.recorded_at),
        "Action",
        f"{label} on the earlier {origin} task {a.task_id[:8]}, by {a.actor}",
        a.note,
    )


# --- sign-in and messages -----------------------------------------------------------------


def login_page(*, csrf: str, next_url: str, username: str = "", error: str | None = None) -> str:
    return render(
        "inbox/login.html.j2",
        title="Sign in – follow-up inbox",
        chrome=None,
        csrf=csrf,
        next_url=next_url,
        username=username,
        error=error,
    )


def message_page(*, title: str, message: str, chrome: PageChrome | None = None) -> str:
    """Why a page cannot be shown (not signed in, not your team, no such task)."""
    return render("inbox/message.html.j2", title=title, message=message, chrome=chrome)


@cache
def live_script() -> str:
    """The script that keeps an open list or task page up to date (polling); read once."""
    return (files("agents") / "templates" / "inbox" / "live.js").read_text("utf-8")


# --- headers ------------------------------------------------------------------------------

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def cookie(
    name: str, value: str, *, path: str, secure: bool, max_age: int, same_site: str = "Lax"
) -> str:
    """A Set-Cookie value that scripts cannot read; Max-Age 0 deletes it."""
    text = f"{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}"
    return f"{text}; Secure" if secure else text


def form_values(form: Mapping[str, Any]) -> dict[str, str]:
    """A posted form's single values as text (a repeated name keeps its first value)."""
    out = {}
    for key, value in form.items():
        first = value[0] if isinstance(value, list) and value else value
        out[key] = first if isinstance(first, str) else ""
    return out
