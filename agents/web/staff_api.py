"""The staff API on /api: the inbox as JSON. Tasks (with the inbox's filters), one task
with contact details, history and the actions the caller may take, its events, structural
fixes, and actions (checked here, applied by closure).

Callers: `Authorization: Bearer <token>` with the global staff token (an integration with
admin rights, actor "api") or a user's own API token (`cxloop staff token`), or the inbox's
session cookie with an X-CSRF-Token header on writes. Without one of them every endpoint
answers 401; another team's task is 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import faust
import structlog
from faust.web import Request, Response

from agents.runtime import Runtime
from agents.web.pages.inbox import FilterInvalidError, parse_filters
from agents.web.requests import CxView, JsonInvalidError, json_object, route
from agents.web.staff_access import Caller, api_caller, publish_action, vet, visible_task
from models.followup_rules import PRIORITY_NAMES
from models.passwords import same_secret
from models.staff_roles import ActionRequestInvalidError, Viewer
from models.store.tables import FollowupTask, FollowupTaskHistory, StructuralFix
from models.store.task_events import task_history
from models.store.task_queries import is_overdue, list_structural_fixes, list_tasks

log = structlog.get_logger("cxloop.staff_api")

_IDEMPOTENCY_NAMESPACE = uuid.UUID("5a0f9f7e-2f44-4a55-9b7c-8c1f0d2e3b64")
_IDEMPOTENCY_KEY_MAX = 200
_LIST_MAX = 500
_NO_STORE = {"Cache-Control": "no-store"}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def task_json(task: FollowupTask, now: datetime) -> dict[str, object]:
    """A task in a list: no contact details beyond the customer's name."""
    return {
        "task_id": task.task_id,
        "customer_id": task.customer_id,
        "name": task.name,
        "origin": task.origin,
        "priority": task.priority,
        "priority_name": PRIORITY_NAMES.get(task.priority),
        "status": task.status,
        "team": task.team,
        "assignee": task.assignee,
        "opened_at": _iso(task.opened_at),
        "first_contact_due_at": _iso(task.first_contact_due_at),
        "due_at": _iso(task.due_at),
        "sla_due_at": _iso(task.sla_due_at),
        "overdue": is_overdue(task, now),
        "escalation_level": task.escalation_level,
        "failed_attempts": task.failed_attempts,
        "closed_at": _iso(task.closed_at),
        "partner": task.partner,
        "product": task.product,
        "channel": task.channel,
        "region": task.region,
        "language": task.language,
        "version": task.version,
    }


def event_json(event: FollowupTaskHistory) -> dict[str, object]:
    return {
        "event_id": event.event_id,
        "seq": event.seq,
        "event_type": event.event_type,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor": event.actor,
        "note": event.reason,
        "details": event.details,
        "occurred_at": _iso(event.occurred_at),
    }


def fix_json(fix: StructuralFix) -> dict[str, object]:
    return {
        "fix_id": fix.fix_id,
        "title": fix.title,
        "root_cause": fix.root_cause,
        "status": fix.status,
        "created_at": _iso(fix.created_at),
    }


def task_detail_json(
    task: FollowupTask, events: list[FollowupTaskHistory], viewer: Viewer, now: datetime
) -> dict[str, object]:
    """One task with what staff need to call the customer back, and its history."""
    return {
        **task_json(task, now),
        "contact": {
            "name": task.name,
            "email": task.email,
            "phone": task.phone,
            "timezone": task.timezone,
        },
        "nps": task.nps,
        "csat": task.csat,
        "ces": task.ces,
        "comment": task.comment,
        "resolution": task.resolution,
        "told_customer": task.told_customer,
        "root_cause": task.root_cause,
        "needs_structural_fix": task.needs_structural_fix,
        "structural_fix_id": task.structural_fix_id,
        "contacted_at": _iso(task.contacted_at),
        "informed_at": _iso(task.informed_at),
        "events": [event_json(e) for e in events],
        "allowed_actions": [a.value for a in viewer.possible_actions(task)],
    }


async def task_or_refusal(view: CxView, caller: Caller, task_id: str) -> FollowupTask | Response:
    """The task when *caller* may see it; otherwise the 404 or 403 answer."""
    task = await visible_task(view.rt, caller.viewer, task_id)
    if isinstance(task, FollowupTask):
        return task
    if task.status == 403:
        log.info("api_request_refused", status=403, role=caller.viewer.role)
    return view.json({"error": task.code}, status=task.status)


async def task_with_events(
    view: CxView, request: Request, task_id: str
) -> tuple[Viewer, FollowupTask, list[FollowupTaskHistory]] | Response:
    """Who asks, the task and its history, when the caller may see the task; otherwise
    the 401, 404 or 403 answer."""
    caller = await api_caller(view.rt, request)
    if caller is None:
        return view.unauthorised()
    task = await task_or_refusal(view, caller, task_id)
    if not isinstance(task, FollowupTask):
        return task
    events = await view.rt.db_for_request(task_history, view.rt.engine, task.task_id)
    return caller.viewer, task, events


class Tasks(CxView):
    """GET ?status=&priority=&team=&partner=&overdue=&assignee=&limit= → tasks the caller
    may see, soonest SLA due first."""

    async def get(self, request: Request) -> Response:
        rt = self.rt
        caller = await api_caller(rt, request)
        if caller is None:
            return self.unauthorised()
        try:
            query = parse_filters(request.query, caller.viewer, list(rt.followup.teams))
        except FilterInvalidError as exc:
            if exc.status == 403:
                return self.json({"error": "forbidden", "fields": exc.fields}, status=403)
            return self.invalid(exc.fields)
        limit = _limit(request.query)
        if limit is None:
            return self.invalid({"limit": f"must be a whole number from 1 to {_LIST_MAX}"})
        now = rt.clock()
        tasks = await rt.db_for_request(list_tasks, rt.engine, query.where, now, limit)
        body = {"tasks": [task_json(t, now) for t in tasks]}
        return self.json(body, headers=_NO_STORE)


class Fixes(CxView):
    """GET → the structural fixes, newest first (to link one when closing a task)."""

    async def get(self, request: Request) -> Response:
        if await api_caller(self.rt, request) is None:
            return self.unauthorised()
        fixes = await self.rt.db_for_request(list_structural_fixes, self.rt.engine)
        return self.json({"fixes": [fix_json(f) for f in fixes]}, headers=_NO_STORE)


class TaskEvents(CxView):
    """GET → the task's history, oldest first."""

    async def get(self, request: Request, task_id: str) -> Response:
        found = await task_with_events(self, request, task_id)
        if not isinstance(found, tuple):
            return found
        _, task, events = found
        body = {"task_id": task.task_id, "events": [event_json(e) for e in events]}
        return self.json(body, headers=_NO_STORE)


class TaskActions(CxView):
    """POST {"type", "note", "details"} → 202 {"action_id"}; closure applies it. An
    Idempotency-Key header makes a repeated request the same action."""

    async def post(self, request: Request, task_id: str) -> Response:
        structlog.contextvars.clear_contextvars()
        caller = await self._writer(request)
        if not isinstance(caller, Caller):
            return caller
        try:
            body = json_object(await request.read())
        except JsonInvalidError as exc:
            return self.bad_json(exc)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 0 < len(key) <= _IDEMPOTENCY_KEY_MAX:
            return self.invalid({"Idempotency-Key": "1 to 200 characters"})
        task = await task_or_refusal(self, caller, task_id)
        if not isinstance(task, FollowupTask):
            return task
        details = body.get("details", {})
        if details is None:
            details = {}
        try:
            action = await vet(
                self.rt, caller.viewer, task, body.get("type"), body.get("note", ""), details
            )
        except ActionRequestInvalidError as exc:
            log.info("api_action_refused", status=exc.status, code=exc.code)
            return self._problem(exc, task)
        action_id = str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, key)) if key else str(uuid.uuid4())
        await publish_action(self.rt, task, action, caller.viewer.username, action_id)
        accepted = {"action_id": action_id, "task_id": task.task_id, "type": action.type.value}
        return self.json(accepted, status=202)

    async def _writer(self, request: Request) -> Caller | Response:
        """The caller, when they may write: a browser session needs its CSRF token."""
        caller = await api_caller(self.rt, request)
        if caller is None:
            return self.unauthorised()
        if caller.csrf and not same_secret(request.headers.get("X-CSRF-Token"), caller.csrf):
            log.info("api_request_refused", status=403, reason="csrf")
            return self.json({"error": "csrf_failed"}, status=403)
        return caller

    def _problem(self, exc: ActionRequestInvalidError, task: FollowupTask) -> Response:
        if exc.status == 422:
            return self.invalid(exc.fields)
        body: dict[str, Any] = {"error": exc.code}
        if exc.fields:
            body["fields"] = exc.fields
        if exc.status == 409:
            body["task"] = task_json(task, self.rt.clock())
        return self.json(body, status=exc.status)


class TaskDetail(CxView):
    """GET → the task with contact details, history and the caller's possible actions."""

    async def get(self, request: Request, task_id: str) -> Response:
        found = await task_with_events(self, request, task_id)
        if not isinstance(found, tuple):
            return found
        viewer, task, events = found
        body = task_detail_json(task, events, viewer, self.rt.clock())
        return self.json(body, headers=_NO_STORE)


def register(app: faust.App, rt: Runtime) -> None:
    route(app, "/api/tasks", Tasks, rt)
    route(app, "/api/structural-fixes", Fixes, rt)
    route(app, "/api/tasks/{task_id}/events", TaskEvents, rt)
    route(app, "/api/tasks/{task_id}/actions", TaskActions, rt)
    route(app, "/api/tasks/{task_id}", TaskDetail, rt)


def _limit(query: Mapping[str, str]) -> int | None:
    text = query.get("limit", "").strip()
    if not text:
        return _LIST_MAX
    if not text.isdigit() or not 1 <= int(text) <= _LIST_MAX:
        return None
    return int(text)
