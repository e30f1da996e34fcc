"""The staff API: list follow-up tasks and report actions on them (bearer token)."""

from __future__ import annotations

import uuid

import faust
import orjson
import structlog
from faust.web import Request, Response

from agents.runtime import Runtime
from agents.web_helpers import BadJson, CxView, authorised, json_object
from models.followup import FINAL_STATUSES, ActionType, TaskStatus, allowed_actions
from models.tables import FollowupTask
from models.task_store import TaskFilter, TaskNotFound, get_task, list_tasks
from streams.records import FollowupAction

log = structlog.get_logger("cxloop.staff_api")

_IDEMPOTENCY_NAMESPACE = uuid.UUID("5a0f9f7e-2f44-4a55-9b7c-8c1f0d2e3b64")
_NOTE_MAX = 4000


def task_json(task: FollowupTask) -> dict[str, object]:
    return {
        "task_id": task.task_id,
        "customer_id": task.customer_id,
        "origin": task.origin,
        "priority": task.priority,
        "status": task.status,
        "opened_at": task.opened_at.isoformat(),
        "due_at": task.due_at.isoformat(),
        "closed_at": task.closed_at.isoformat() if task.closed_at else None,
    }


def _allowed_from(action: ActionType) -> set[TaskStatus]:
    return {s for s in TaskStatus if action in allowed_actions(s)}


def register(app: faust.App, rt: Runtime) -> None:
    @app.page("/api/tasks")
    class Tasks(CxView):
        """GET /api/tasks?status=open|contacted|resolved|closed → tasks, soonest due first."""

        async def get(self, request: Request) -> Response:
            if not authorised(rt, request):
                return self.unauthorised()
            status = request.query.get("status") or None
            allowed = {"active", *(s.value for s in TaskStatus)}
            if status is not None and status not in allowed:
                fields = {"status": f"must be one of {sorted(allowed)}"}
                return self.invalid(fields)
            tasks = await rt.db_for_request(list_tasks, rt.engine, TaskFilter(status=status))
            return self.json({"tasks": [task_json(t) for t in tasks]})

    @app.page("/api/tasks/{task_id}/actions")
    class TaskActions(CxView):
        """POST {"type": "called" | "resolved" | "customer_informed", "note": "..."} → 202."""

        async def post(self, request: Request, task_id: str) -> Response:
            structlog.contextvars.clear_contextvars()
            if not authorised(rt, request):
                return self.unauthorised()
            try:
                body = json_object(await request.read())
            except BadJson as exc:
                return self.bad_json(exc)
            fields: dict[str, str] = {}
            try:
                action_type = ActionType(str(body.get("type")))
            except ValueError:
                fields["type"] = f"must be one of {[a.value for a in ActionType]}"
            note = body.get("note", "")
            if not isinstance(note, str) or len(note) > _NOTE_MAX:
                fields["note"] = f"must be a string of at most {_NOTE_MAX} characters"
            details = body.get("details", {})
            if not isinstance(details, dict) or len(orjson.dumps(details)) > _NOTE_MAX:
                fields["details"] = "must be a JSON object"
            actor = body.get("actor", "staff")
            if not isinstance(actor, str) or not 0 < len(actor) <= 200:
                fields["actor"] = "must be a non-empty string of at most 200 characters"
            if fields:
                return self.invalid(fields)
            try:
                task = await rt.db_for_request(get_task, rt.engine, task_id)
            except TaskNotFound:
                return self.json({"error": "task_not_found"}, status=404)
            status = TaskStatus(task.status)
            if status in FINAL_STATUSES or status not in _allowed_from(action_type):
                error = "task_closed" if status in FINAL_STATUSES else "not_possible_now"
                return self.json({"error": error, "task": task_json(task)}, status=409)
            key = request.headers.get("Idempotency-Key")
            action_id = str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, key)) if key else str(uuid.uuid4())
            action = FollowupAction(
                action_id=action_id,
                task_id=task.task_id,
                customer_id=task.customer_id,
                type=action_type.value,
                note=note,
                actor=actor,
                requested_at=rt.clock(),
                details=details,
            )
            await rt.send(rt.topics.followup_actions, task.customer_id, action.to_bytes())
            structlog.contextvars.bind_contextvars(task_id=task.task_id, action_id=action_id)
            log.info("action_accepted", action_type=action_type.value)
            body_out = {"action_id": action_id, "task_id": task.task_id, "type": action_type.value}
            return self.json(body_out, status=202)
