"""inbox: the staff inbox on /inbox. Staff sign in (or a trusted SSO proxy names them),
work their team's tasks soonest-due first, and record actions; an action is checked here
and published to followup-actions, where closure applies it. Open pages poll a small JSON
endpoint and update themselves when the task or the list changes.

Who may see and do what is models.store.staff_accounts; what the pages show is
agents.web.pages.inbox.
No user name, customer detail or note is logged.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import faust
import structlog
from faust.web import Request, Response
from multidict import CIMultiDict

from agents.runtime import Runtime
from agents.web.pages.inbox import (
    SECURITY_HEADERS,
    FilterProblem,
    PageChrome,
    action_form,
    cookie,
    customer_history,
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
)
from agents.web.requests import CxView, form_fields
from models.store.staff_accounts import (
    ActionProblem,
    ActionRequest,
    SignedIn,
    SignInThrottle,
    Viewer,
    assignable_users,
    authenticate,
    end_session,
    get_user,
    parse_action_type,
    same_secret,
    session_user,
    start_session,
    vet_action,
)
from models.store.tables import FollowupTask
from models.store.task_events import task_history
from models.store.task_queries import (
    TaskNotFound,
    get_task,
    list_structural_fixes,
    list_tasks,
    tasks_version,
)
from models.task_lifecycle import ActionType
from models.tokens import looks_like_token, new_token
from streams.records import FollowupAction

log = structlog.get_logger("cxloop.inbox")

BASE = "/inbox"
LOGIN = f"{BASE}/login"
SESSION_COOKIE = "cxloop_staff"
LOGIN_COOKIE = "cxloop_staff_login"  # the sign-in form's CSRF token (double submit)
PROXY_CSRF_COOKIE = "cxloop_staff_csrf"  # proxy mode has no session row to keep one in
SESSION_PATHS = (BASE, "/api")  # the API takes the inbox session too (with X-CSRF-Token)
CSRF_FIELD = "_csrf"
LIST_LIMIT = 500
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,80}$")
_FORM_NAMESPACE = uuid.UUID("c6f4d7a0-2b1e-4f3c-8a5d-9e0b1c2d3e4f")


@dataclass(frozen=True)
class Caller:
    """A signed-in person (or integration): who, the CSRF token their forms and writes must
    carry ("" when none is needed: bearer tokens are not sent by browsers on their own),
    their session id (None in proxy mode or with a bearer token: nothing to sign out of),
    and a CSRF cookie to set when proxy mode just made one."""

    viewer: Viewer
    display_name: str
    csrf: str
    session_id: str | None = None
    new_csrf_cookie: str | None = None


def cookie_secure(rt: Runtime) -> bool:
    setting = rt.settings.cookie_secure
    return rt.settings.public_url.lower().startswith("https://") if setting is None else setting


def proxy_mode(rt: Runtime) -> bool:
    return rt.settings.inbox_auth == "proxy"


def _cookie(request: Request, name: str) -> str | None:
    value = request.cookies.get(name)
    return value if isinstance(value, str) and looks_like_token(value) else None


async def find_caller(rt: Runtime, request: Request) -> Caller | None:
    """Who a browser request comes from: the proxy's user header in proxy mode, else the
    session cookie. None when nobody (active) is signed in."""
    if proxy_mode(rt):
        return await _proxy_caller(rt, request)
    session_id = _cookie(request, SESSION_COOKIE)
    if session_id is None:
        return None
    signed: SignedIn | None = await rt.db_for_request(
        session_user, rt.engine, session_id, rt.clock()
    )
    if signed is None:
        return None
    return Caller(signed.viewer, signed.display_name, signed.csrf_token, session_id)


async def _proxy_caller(rt: Runtime, request: Request) -> Caller | None:
    name = request.headers.get(rt.settings.inbox_proxy_header, "").strip()
    if not name:
        return None
    user = await rt.db_for_request(get_user, rt.engine, name)
    if user is None or not user.active:
        return None
    csrf = _cookie(request, PROXY_CSRF_COOKIE)
    if csrf is not None:
        return Caller(Viewer.of(user), user.display_name, csrf)
    fresh = new_token()
    return Caller(Viewer.of(user), user.display_name, fresh, new_csrf_cookie=fresh)


async def load_task(rt: Runtime, task_id: str) -> FollowupTask | None:
    try:
        return await rt.db_for_request(get_task, rt.engine, task_id)
    except TaskNotFound:
        return None


async def publish_action(
    rt: Runtime, task: FollowupTask, action: ActionRequest, actor: str, action_id: str
) -> None:
    """Put a checked action on followup-actions for closure to apply."""
    record = FollowupAction(
        action_id=action_id,
        task_id=task.task_id,
        customer_id=task.customer_id,
        type=action.type.value,
        note=action.note,
        actor=actor,
        requested_at=rt.clock(),
        details=action.details,
    )
    await rt.send(rt.topics.followup_actions, task.customer_id, record.to_bytes())
    structlog.contextvars.bind_contextvars(
        task_id=task.task_id, customer_id=task.customer_id, action_id=action_id
    )
    log.info("action_sent", action_type=action.type.value, team=task.team)


async def vet(
    rt: Runtime,
    viewer: Viewer,
    task: FollowupTask,
    type_value: object,
    note: object,
    details: object,
) -> ActionRequest:
    """vet_action with what it needs from the database; ActionProblem when refused."""
    action = parse_action_type(type_value)
    assignee = None
    if action is ActionType.ASSIGN and isinstance(details, dict):
        name = details.get("assignee")
        if isinstance(name, str) and name.strip():
            assignee = await rt.db_for_request(get_user, rt.engine, name)
    fix_ids: set[str] = set()
    if (
        action is ActionType.CLOSE
        and isinstance(details, dict)
        and details.get("structural_fix_id")
    ):
        fixes = await rt.db_for_request(list_structural_fixes, rt.engine)
        fix_ids = {f.fix_id for f in fixes}
    return vet_action(
        viewer,
        task,
        action,
        note,
        details,
        root_causes=rt.followup.tasks.root_causes,
        assignee=assignee,
        fix_ids=fix_ids,
    )


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


def register(app: faust.App, rt: Runtime) -> None:
    secure = cookie_secure(rt)
    ttl = timedelta(hours=rt.settings.inbox_session_hours)
    poll_ms = int(rt.settings.inbox_poll_s * 1000)
    teams = list(rt.followup.teams)
    throttle = SignInThrottle()

    def headers(cookies: tuple[str, ...], caller: Caller | None) -> CIMultiDict[str]:
        out = CIMultiDict(SECURITY_HEADERS)
        for value in cookies:
            out.add("Set-Cookie", value)
        if caller is not None and caller.new_csrf_cookie:
            for path in SESSION_PATHS:
                value = cookie(
                    PROXY_CSRF_COOKIE,
                    caller.new_csrf_cookie,
                    path=path,
                    secure=secure,
                    max_age=int(ttl.total_seconds()),
                )
                out.add("Set-Cookie", value)
        return out

    def respond(
        view: CxView,
        page: str,
        status: int = 200,
        cookies: tuple[str, ...] = (),
        caller: Caller | None = None,
    ) -> Response:
        return view.html(page, status=status, headers=headers(cookies, caller))

    def redirect(view: CxView, to: str, cookies: tuple[str, ...] = ()) -> Response:
        out = headers(cookies, None)
        out["Location"] = to
        return view.text("", status=303, headers=out)

    def session_cookies(value: str, max_age: int) -> tuple[str, ...]:
        return tuple(
            cookie(SESSION_COOKIE, value, path=p, secure=secure, max_age=max_age)
            for p in SESSION_PATHS
        )

    def chrome(caller: Caller) -> PageChrome:
        v = caller.viewer
        return PageChrome(
            caller.display_name, v.role, v.team, caller.csrf, caller.session_id is not None, poll_ms
        )

    def not_signed_in(view: CxView, request: Request) -> Response:
        """GET of a page: off to sign in (password mode); otherwise 401."""
        if not proxy_mode(rt) and request.method == "GET":
            target = safe_next(str(request.rel_url))
            query = "" if target == BASE else f"?next={quote(target, safe='/')}"
            return redirect(view, f"{LOGIN}{query}")
        page = message_page(
            title="Not signed in",
            message="Sign in to use the follow-up inbox"
            + (" (your account must be known to the inbox)." if proxy_mode(rt) else "."),
        )
        return respond(view, page, 401)

    def json_unauthorised(view: CxView) -> Response:
        return view.json({"error": "unauthorised"}, status=401, headers=dict(SECURITY_HEADERS))

    def refused(view: CxView, caller: Caller, status: int, title: str, message: str) -> Response:
        log.info("inbox_request_refused", status=status, role=caller.viewer.role)
        return respond(
            view, message_page(title=title, message=message, chrome=chrome(caller)), status
        )

    async def visible_task(view: CxView, caller: Caller, task_id: str) -> FollowupTask | Response:
        """The task when *caller* may see it; otherwise the 404 or 403 page."""
        task = await load_task(rt, task_id)
        if task is None:
            return refused(view, caller, 404, "No such task", "There is no such task.")
        if not caller.viewer.can_see(task):
            return refused(view, caller, 403, "Not your team's task", _OTHER_TEAM)
        return task

    async def render_task(
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
        timeline = await rt.db_for_request(
            customer_history, rt.engine, task.customer_id, task.task_id, zone
        )
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
            chrome=chrome(caller),
            task=task,
            rules=rt.followup,
            now=rt.clock(),
            events=events,
            timeline=timeline,
            form=form,
            notice=notice,
        )

    # The fixed paths first: the router takes the first route that matches.
    @app.page(LOGIN)
    class Login(CxView):
        """GET the sign-in form; POST user name and password → a session → the inbox."""

        async def get(self, request: Request) -> Response:
            if proxy_mode(rt):
                return redirect(self, BASE)
            token = _cookie(request, LOGIN_COOKIE) or new_token()
            page = login_page(csrf=token, next_url=safe_next(request.query.get("next")))
            return respond(self, page, cookies=(self._login_cookie(token),))

        async def post(self, request: Request) -> Response:
            structlog.contextvars.clear_contextvars()
            if proxy_mode(rt):
                return json_unauthorised(self)
            form = form_values(form_fields(await request.post()))
            next_url = safe_next(form.get("next"))
            expected = _cookie(request, LOGIN_COOKIE) or ""
            if not same_secret(form.get(CSRF_FIELD), expected):
                log.info("staff_sign_in_refused", reason="csrf")
                return self._form(next_url, "The sign-in form expired. Please try again.", 403)
            username = form.get("username", "")[:100]
            if throttle.blocked(username, rt.clock()):
                log.info("staff_sign_in_refused", reason="throttled")
                return self._form(next_url, _THROTTLED, 429, username)
            user = await rt.db_for_request(
                authenticate, rt.engine, username, form.get("password", "")
            )
            if user is None:
                throttle.failed(username, rt.clock())
                log.info("staff_sign_in_refused", reason="credentials")
                return self._form(
                    next_url, "That user name and password do not match.", 401, username
                )
            throttle.succeeded(username)
            old = _cookie(request, SESSION_COOKIE)
            if old is not None:  # a new id at every sign-in: no session fixation
                await rt.db_for_request(end_session, rt.engine, old)
            started = await rt.db_for_request(
                start_session, rt.engine, user.username, rt.clock(), ttl
            )
            log.info("staff_signed_in", role=user.role, team=user.team)
            cookies = (
                *session_cookies(started.session_id, int(ttl.total_seconds())),
                self._login_cookie("", 0),
            )
            return redirect(self, next_url, cookies)

        def _form(self, next_url: str, error: str, status: int, username: str = "") -> Response:
            token = new_token()
            page = login_page(csrf=token, next_url=next_url, username=username, error=error)
            return respond(self, page, status, cookies=(self._login_cookie(token),))

        def _login_cookie(self, token: str, max_age: int = 3600) -> str:
            return cookie(
                LOGIN_COOKIE, token, path=LOGIN, secure=secure, max_age=max_age, same_site="Strict"
            )

    @app.page(f"{BASE}/logout")
    class Logout(CxView):
        async def post(self, request: Request) -> Response:
            caller = await find_caller(rt, request)
            if caller is None:
                return json_unauthorised(self)
            form = form_values(form_fields(await request.post()))
            if not same_secret(form.get(CSRF_FIELD), caller.csrf):
                return refused(self, caller, 403, "Forbidden", "Reload the page and try again.")
            if caller.session_id is None:  # proxy mode: the proxy signs people out
                return redirect(self, BASE)
            await rt.db_for_request(end_session, rt.engine, caller.session_id)
            log.info("staff_signed_out", role=caller.viewer.role)
            return redirect(self, LOGIN, session_cookies("", 0))

    @app.page(f"{BASE}/live.js")
    class LiveScript(CxView):
        """The polling script of the list and task pages (signed-in pages only)."""

        async def get(self, request: Request) -> Response:
            if await find_caller(rt, request) is None:
                return json_unauthorised(self)
            return self.bytes(
                live_script().encode("utf-8"),
                content_type="text/javascript",
                headers={**SECURITY_HEADERS, "Cache-Control": "private, max-age=300"},
            )

    @app.page(f"{BASE}/poll")
    class Poll(CxView):
        """GET ?<the list's filters> → {"version"}: changes whenever the list may have."""

        async def get(self, request: Request) -> Response:
            caller = await find_caller(rt, request)
            if caller is None:
                return json_unauthorised(self)
            try:
                query = parse_filters(request.query, caller.viewer, teams, default_status="active")
            except FilterProblem as exc:
                body = {"error": "invalid_filter", "fields": exc.fields}
                return self.json(body, status=exc.status, headers=dict(SECURITY_HEADERS))
            version = await rt.db_for_request(tasks_version, rt.engine, query.where, rt.clock())
            return self.json({"version": version}, headers=dict(SECURITY_HEADERS))

    @app.page(BASE)
    class TaskList(CxView):
        """The viewer's tasks, soonest SLA due first, filtered by the query."""

        async def get(self, request: Request) -> Response:
            structlog.contextvars.clear_contextvars()
            caller = await find_caller(rt, request)
            if caller is None:
                return not_signed_in(self, request)
            viewer = caller.viewer
            shown_teams = teams if viewer.is_admin else [viewer.team or ""]
            try:
                query = parse_filters(request.query, viewer, teams, default_status="active")
            except FilterProblem as exc:
                page = list_page(
                    chrome=chrome(caller),
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
                chrome=chrome(caller),
                rows=task_rows(tasks, rt.followup, now),
                filters=query.values,
                teams=shown_teams,
                version=version,
            )
            return respond(self, page, caller=caller)

    @app.page(f"{BASE}/tasks/{{task_id}}/state")
    class TaskState(CxView):
        """GET → {"status", "version"}: the open task page reloads its parts on a change."""

        async def get(self, request: Request, task_id: str) -> Response:
            caller = await find_caller(rt, request)
            if caller is None:
                return json_unauthorised(self)
            task = await load_task(rt, task_id)
            if task is None:
                return self.json({"error": "task_not_found"}, status=404)
            if not caller.viewer.can_see(task):
                return self.json({"error": "forbidden"}, status=403)
            body = {"status": task.status, "version": str(task.version)}
            return self.json(body, headers=dict(SECURITY_HEADERS))

    @app.page(f"{BASE}/tasks/{{task_id}}/actions")
    class TaskActions(CxView):
        """POST the action form → 303 back to the task (sent), or the form with what to fix."""

        async def post(self, request: Request, task_id: str) -> Response:
            structlog.contextvars.clear_contextvars()
            caller = await find_caller(rt, request)
            if caller is None:
                return json_unauthorised(self)
            form = form_values(form_fields(await request.post()))
            if not same_secret(form.get(CSRF_FIELD), caller.csrf):
                log.info("inbox_request_refused", status=403, reason="csrf")
                return refused(self, caller, 403, "Forbidden", "Reload the page and try again.")
            task = await visible_task(self, caller, task_id)
            if not isinstance(task, FollowupTask):
                return task
            details = _form_details(form, caller.viewer)
            try:
                action = await vet(
                    rt, caller.viewer, task, form.get("type"), form.get("note", ""), details
                )
            except ActionProblem as exc:
                log.info("inbox_action_refused", status=exc.status, code=exc.code)
                errors = exc.fields or {"type": _PROBLEMS.get(exc.code, exc.code)}
                page = await render_task(caller, task, values=form, errors=errors)
                return respond(self, page, exc.status, caller=caller)
            nonce = form.get("_nonce", "")
            key = nonce if _NONCE.fullmatch(nonce) else secrets.token_urlsafe(16)
            action_id = str(uuid.uuid5(_FORM_NAMESPACE, f"{caller.viewer.username}:{key}"))
            await publish_action(rt, task, action, caller.viewer.username, action_id)
            return redirect(self, f"{BASE}/tasks/{task.task_id}?sent={action.type.value}")

    @app.page(f"{BASE}/tasks/{{task_id}}")
    class TaskPage(CxView):
        """One task with the customer's history and the forms to act on it."""

        async def get(self, request: Request, task_id: str) -> Response:
            structlog.contextvars.clear_contextvars()
            caller = await find_caller(rt, request)
            if caller is None:
                return not_signed_in(self, request)
            task = await visible_task(self, caller, task_id)
            if not isinstance(task, FollowupTask):
                return task
            page = await render_task(caller, task, notice=request.query.get("sent"))
            return respond(self, page, caller=caller)


_OTHER_TEAM = "This task belongs to another team."
_THROTTLED = "Too many failed sign-ins for this user name. Try again in a quarter of an hour."
_PROBLEMS = {
    "forbidden": "Your role may not do this.",
    "task_closed": "The task is closed already.",
    "not_possible_now": "This is not possible in the task's current status.",
}
