"""inbox: the staff inbox on /inbox. Staff sign in (or a trusted SSO proxy names them),
work their team's tasks soonest-due first, and record actions; an action is checked and
published to followup-actions (agents.web.staff_access), where closure applies it. Open
pages poll a small JSON endpoint and update themselves when the task or the list changes.

Who may see and do what is models.staff_roles; what the pages show is
agents.web.pages.inbox.
No user name, customer detail or note is logged.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any, ClassVar
from urllib.parse import quote

import faust
import structlog
from faust.web import Request, Response

from agents.runtime import Runtime
from agents.web.pages.inbox import (
    SECURITY_HEADERS,
    FilterInvalidError,
    PageChrome,
    action_form,
    cookie,
    form_values,
    list_page,
    live_script,
    login_page,
    message_page,
    parse_filters,
    safe_next,
    task_page,
    task_rows,
    team_zone,
    timeline_lines,
)
from agents.web.requests import CxView, form_fields, route
from agents.web.staff_access import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Caller,
    cookie_secure,
    find_caller,
    proxy_mode,
    publish_action,
    session_cookies,
    session_ttl,
    staff_headers,
    token_cookie,
    vet,
    visible_task,
)
from models.json_checks import NUL
from models.passwords import same_secret
from models.sign_in_throttle import SignInThrottle
from models.staff_roles import ActionRequestInvalidError, Viewer
from models.store.customer_history import customer_history
from models.store.staff_accounts import (
    assignable_users,
    authenticate,
    end_session,
    start_session,
)
from models.store.tables import FollowupTask
from models.store.task_events import task_history
from models.store.task_queries import (
    list_structural_fixes,
    list_tasks,
    tasks_version,
)
from models.task_lifecycle import ActionType
from models.tokens import new_token

log = structlog.get_logger("cxloop.inbox")

BASE = "/inbox"
LOGIN = f"{BASE}/login"
LOGIN_COOKIE = "cxloop_staff_login"  # the sign-in form's CSRF token (double submit)
LIST_LIMIT = 500
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,80}$")
_FORM_NAMESPACE = uuid.UUID("c6f4d7a0-2b1e-4f3c-8a5d-9e0b1c2d3e4f")
_OTHER_TEAM = "This task belongs to another team."
_NUL_NAME = "The user name contains a NUL character. Please type it again."
_THROTTLED = "Too many failed sign-ins for this user name. Try again in a quarter of an hour."
_PROBLEMS = {
    "forbidden": "Your role may not do this.",
    "task_closed": "The task is closed already.",
    "not_possible_now": "This is not possible in the task's current status.",
}


def _form_details(form: dict[str, str], viewer: Viewer) -> dict[str, Any]:
    """The details of the action the form asks for, and only those."""
    kind = form.get("type", "")
    if kind == ActionType.ASSIGN.value:
        who = form.get("assignee", "").strip()
        return {"assignee": viewer.username if who == "me" else who}
    if kind == ActionType.CLOSE.value:
        details: dict[str, Any] = {
            "root_cause": form.get("root_cause", ""),
            "needs_structural_fix": bool(form.get("needs_structural_fix")),
        }
        if form.get("structural_fix_id"):
            details["structural_fix_id"] = form["structural_fix_id"]
        if form.get("structural_fix_title", "").strip():
            details["structural_fix_title"] = form["structural_fix_title"]
        return details
    return {}


# --- answers ------------------------------------------------------------------------------


def respond(
    view: CxView,
    page: str,
    status: int = 200,
    cookies: tuple[str, ...] = (),
    caller: Caller | None = None,
) -> Response:
    return view.html(page, status=status, headers=staff_headers(view.rt, cookies, caller))


def redirect(view: CxView, to: str, cookies: tuple[str, ...] = ()) -> Response:
    out = staff_headers(view.rt, cookies)
    out["Location"] = to
    return view.text("", status=303, headers=out)


def chrome(rt: Runtime, caller: Caller) -> PageChrome:
    v = caller.viewer
    poll_ms = int(rt.settings.inbox_poll_s * 1000)
    return PageChrome(
        caller.display_name, v.role, v.team, caller.csrf, caller.session_id is not None, poll_ms
    )


def not_signed_in(view: CxView, request: Request) -> Response:
    """GET of a page: off to sign in (password mode); otherwise 401."""
    proxy = proxy_mode(view.rt)
    if not proxy and request.method == "GET":
        target = safe_next(str(request.rel_url))
        query = "" if target == BASE else f"?next={quote(target, safe='/')}"
        return redirect(view, f"{LOGIN}{query}")
    page = message_page(
        title="Not signed in",
        message="Sign in to use the follow-up inbox"
        + (" (your account must be known to the inbox)." if proxy else "."),
    )
    return respond(view, page, 401)


def json_unauthorised(view: CxView) -> Response:
    return view.json({"error": "unauthorised"}, status=401, headers=dict(SECURITY_HEADERS))


def refused(view: CxView, caller: Caller, status: int, title: str, message: str) -> Response:
    log.info("inbox_request_refused", status=status, role=caller.viewer.role)
    page = message_page(title=title, message=message, chrome=chrome(view.rt, caller))
    return respond(view, page, status)


async def task_or_refusal(view: CxView, caller: Caller, task_id: str) -> FollowupTask | Response:
    """The task when *caller* may see it; otherwise the 404 or 403 page."""
    task = await visible_task(view.rt, caller.viewer, task_id)
    if isinstance(task, FollowupTask):
        return task
    if task.status == 404:
        return refused(view, caller, 404, "No such task", "There is no such task.")
    return refused(view, caller, 403, "Not your team's task", _OTHER_TEAM)


async def render_task(
    rt: Runtime,
    caller: Caller,
    task: FollowupTask,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
) -> str:
    viewer = caller.viewer
    zone = team_zone(rt.followup, task.team)
    events = await rt.db_for_request(task_history, rt.engine, task.task_id)
    history = await rt.db_for_request(customer_history, rt.engine, task.customer_id, task.task_id)
    fixes = await rt.db_for_request(list_structural_fixes, rt.engine)
    members = await rt.db_for_request(
        assignable_users, rt.engine, None if viewer.is_admin else viewer.team
    )
    form = action_form(
        viewer,
        task,
        rt.followup,
        fixes=fixes,
        members=members,
        nonce=secrets.token_urlsafe(16),
        values=values,
        errors=errors,
    )
    return task_page(
        chrome=chrome(rt, caller),
        task=task,
        rules=rt.followup,
        now=rt.clock(),
        events=events,
        timeline=timeline_lines(history, zone),
        form=form,
        notice=notice,
    )


# --- views --------------------------------------------------------------------------------


class Login(CxView):
    """GET the sign-in form; POST user name and password → a session → the inbox."""

    throttle: ClassVar[SignInThrottle]  # failed sign-ins of this worker

    async def get(self, request: Request) -> Response:
        if proxy_mode(self.rt):
            return redirect(self, BASE)
        token = token_cookie(request, LOGIN_COOKIE) or new_token()
        page = login_page(csrf=token, next_url=safe_next(request.query.get("next")))
        return respond(self, page, cookies=(self._login_cookie(token),))

    async def post(self, request: Request) -> Response:
        structlog.contextvars.clear_contextvars()
        rt = self.rt
        if proxy_mode(rt):
            return json_unauthorised(self)
        form = form_values(form_fields(await request.post()))
        next_url = safe_next(form.get("next"))
        expected = token_cookie(request, LOGIN_COOKIE) or ""
        if not same_secret(form.get(CSRF_FIELD), expected):
            log.info("staff_sign_in_refused", reason="csrf")
            return self._form(next_url, "The sign-in form expired. Please try again.", 403)
        username = form.get("username", "")[:100]
        if NUL in username:  # no user has one, and PostgreSQL could not look it up
            log.info("staff_sign_in_refused", reason="nul_character")
            return self._form(next_url, _NUL_NAME, 422)
        if self.throttle.blocked(username, rt.clock()):
            log.info("staff_sign_in_refused", reason="throttled")
            return self._form(next_url, _THROTTLED, 429, username)
        user = await rt.db_for_request(authenticate, rt.engine, username, form.get("password", ""))
        if user is None:
            self.throttle.failed(username, rt.clock())
            log.info("staff_sign_in_refused", reason="credentials")
            return self._form(next_url, "That user name and password do not match.", 401, username)
        self.throttle.succeeded(username)
        old = token_cookie(request, SESSION_COOKIE)
        if old is not None:  # a new id at every sign-in: no session fixation
            await rt.db_for_request(end_session, rt.engine, old)
        ttl = session_ttl(rt)
        started = await rt.db_for_request(start_session, rt.engine, user.username, rt.clock(), ttl)
        log.info("staff_signed_in", role=user.role, team=user.team)
        cookies = (
            *session_cookies(rt, started.session_id, int(ttl.total_seconds())),
            self._login_cookie("", 0),
        )
        return redirect(self, next_url, cookies)

    def _form(self, next_url: str, error: str, status: int, username: str = "") -> Response:
        token = new_token()
        page = login_page(csrf=token, next_url=next_url, username=username, error=error)
        return respond(self, page, status, cookies=(self._login_cookie(token),))

    def _login_cookie(self, token: str, max_age: int = 3600) -> str:
        secure = cookie_secure(self.rt)
        return cookie(
            LOGIN_COOKIE, token, path=LOGIN, secure=secure, max_age=max_age, same_site="Strict"
        )


class Logout(CxView):
    async def post(self, request: Request) -> Response:
        caller = await find_caller(self.rt, request)
        if caller is None:
            return json_unauthorised(self)
        form = form_values(form_fields(await request.post()))
        if not same_secret(form.get(CSRF_FIELD), caller.csrf):
            return refused(self, caller, 403, "Forbidden", "Reload the page and try again.")
        if caller.session_id is None:  # proxy mode: the proxy signs people out
            return redirect(self, BASE)
        await self.rt.db_for_request(end_session, self.rt.engine, caller.session_id)
        log.info("staff_signed_out", role=caller.viewer.role)
        return redirect(self, LOGIN, session_cookies(self.rt, "", 0))


class LiveScript(CxView):
    """The polling script of the list and task pages (signed-in pages only)."""

    async def get(self, request: Request) -> Response:
        if await find_caller(self.rt, request) is None:
            return json_unauthorised(self)
        return self.bytes(
            live_script().encode("utf-8"),
            content_type="text/javascript",
            headers={**SECURITY_HEADERS, "Cache-Control": "private, max-age=300"},
        )


class Poll(CxView):
    """GET ?<the list's filters> → {"version"}: changes whenever the list may have."""

    async def get(self, request: Request) -> Response:
        rt = self.rt
        caller = await find_caller(rt, request)
        if caller is None:
            return json_unauthorised(self)
        try:
            query = parse_filters(
                request.query, caller.viewer, list(rt.followup.teams), default_status="active"
            )
        except FilterInvalidError as exc:
            body = {"error": "invalid_filter", "fields": exc.fields}
            return self.json(body, status=exc.status, headers=dict(SECURITY_HEADERS))
        version = await rt.db_for_request(tasks_version, rt.engine, query.where, rt.clock())
        return self.json({"version": version}, headers=dict(SECURITY_HEADERS))


class TaskList(CxView):
    """The viewer's tasks, soonest SLA due first, filtered by the query."""

    async def get(self, request: Request) -> Response:
        structlog.contextvars.clear_contextvars()
        rt = self.rt
        caller = await find_caller(rt, request)
        if caller is None:
            return not_signed_in(self, request)
        viewer = caller.viewer
        teams = list(rt.followup.teams)
        shown_teams = teams if viewer.is_admin else [viewer.team or ""]
        try:
            query = parse_filters(request.query, viewer, teams, default_status="active")
        except FilterInvalidError as exc:
            page = list_page(
                chrome=chrome(rt, caller),
                rows=[],
                filters=dict.fromkeys(
                    ("status", "priority", "team", "partner", "overdue", "assignee"), ""
                ),
                teams=shown_teams,
                version="",
                error=exc.fields,
            )
            return respond(self, page, exc.status, caller=caller)
        # The version first: a change between the two reads shows up at the next poll.
        version = await rt.db_for_request(tasks_version, rt.engine, query.where, rt.clock())
        now = rt.clock()
        tasks = await rt.db_for_request(list_tasks, rt.engine, query.where, now, LIST_LIMIT)
        page = list_page(
            chrome=chrome(rt, caller),
            rows=task_rows(tasks, rt.followup, now),
            filters=query.values,
            teams=shown_teams,
            version=version,
        )
        return respond(self, page, caller=caller)


class TaskState(CxView):
    """GET → {"status", "version"}: the open task page reloads its parts on a change."""

    async def get(self, request: Request, task_id: str) -> Response:
        caller = await find_caller(self.rt, request)
        if caller is None:
            return json_unauthorised(self)
        task = await visible_task(self.rt, caller.viewer, task_id)
        if not isinstance(task, FollowupTask):
            return self.json({"error": task.code}, status=task.status)
        body = {"status": task.status, "version": str(task.version)}
        return self.json(body, headers=dict(SECURITY_HEADERS))


class TaskActions(CxView):
    """POST the action form → 303 back to the task (sent), or the form with what to fix."""

    async def post(self, request: Request, task_id: str) -> Response:
        structlog.contextvars.clear_contextvars()
        rt = self.rt
        caller = await find_caller(rt, request)
        if caller is None:
            return json_unauthorised(self)
        form = form_values(form_fields(await request.post()))
        if not same_secret(form.get(CSRF_FIELD), caller.csrf):
            log.info("inbox_request_refused", status=403, reason="csrf")
            return refused(self, caller, 403, "Forbidden", "Reload the page and try again.")
        task = await task_or_refusal(self, caller, task_id)
        if not isinstance(task, FollowupTask):
            return task
        details = _form_details(form, caller.viewer)
        try:
            action = await vet(
                rt, caller.viewer, task, form.get("type"), form.get("note", ""), details
            )
        except ActionRequestInvalidError as exc:
            log.info("inbox_action_refused", status=exc.status, code=exc.code)
            errors = exc.fields or {"type": _PROBLEMS.get(exc.code, exc.code)}
            page = await render_task(rt, caller, task, values=form, errors=errors)
            return respond(self, page, exc.status, caller=caller)
        nonce = form.get("_nonce", "")
        key = nonce if _NONCE.fullmatch(nonce) else secrets.token_urlsafe(16)
        action_id = str(uuid.uuid5(_FORM_NAMESPACE, f"{caller.viewer.username}:{key}"))
        await publish_action(rt, task, action, caller.viewer.username, action_id)
        return redirect(self, f"{BASE}/tasks/{task.task_id}?sent={action.type.value}")


class TaskPage(CxView):
    """One task with the customer's history and the forms to act on it."""

    async def get(self, request: Request, task_id: str) -> Response:
        structlog.contextvars.clear_contextvars()
        caller = await find_caller(self.rt, request)
        if caller is None:
            return not_signed_in(self, request)
        task = await task_or_refusal(self, caller, task_id)
        if not isinstance(task, FollowupTask):
            return task
        page = await render_task(self.rt, caller, task, notice=request.query.get("sent"))
        return respond(self, page, caller=caller)


def register(app: faust.App, rt: Runtime) -> None:
    # The fixed paths first: the router takes the first route that matches.
    route(app, LOGIN, Login, rt, throttle=SignInThrottle())
    route(app, f"{BASE}/logout", Logout, rt)
    route(app, f"{BASE}/live.js", LiveScript, rt)
    route(app, f"{BASE}/poll", Poll, rt)
    route(app, BASE, TaskList, rt)
    route(app, f"{BASE}/tasks/{{task_id}}/state", TaskState, rt)
    route(app, f"{BASE}/tasks/{{task_id}}/actions", TaskActions, rt)
    route(app, f"{BASE}/tasks/{{task_id}}", TaskPage, rt)
