"""Who a staff request comes from, and what they may do: the caller of the inbox, the
dashboard and the staff API (a session cookie, a trusted SSO proxy's header, or a bearer
token), the cookies and headers that carry a session and its CSRF token, the task access
check, and an action checked and published to followup-actions, where closure applies it.

What each role may do is models.staff_roles; the accounts and sessions are
models.store.staff_accounts. No user name, customer detail or note is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from faust.web import Request
from multidict import CIMultiDict

from agents.runtime import Runtime
from agents.web.pages.inbox import SECURITY_HEADERS, cookie
from agents.web.requests import bearer_token, staff_token_ok
from models.json_checks import NUL
from models.staff_roles import API_ACTOR, ActionRequest, Viewer, parse_action_type, vet_action
from models.store.staff_accounts import SignedIn, get_user, session_user, user_for_token
from models.store.tables import FollowupTask
from models.store.task_queries import TaskUnknownError, get_task, list_structural_fixes
from models.task_lifecycle import ActionType
from models.tokens import looks_like_token, new_token
from streams.records import FollowupAction

log = structlog.get_logger("cxloop.inbox")

SESSION_COOKIE = "cxloop_staff"
PROXY_CSRF_COOKIE = "cxloop_staff_csrf"  # proxy mode has no session row to keep one in
SESSION_PATHS = ("/inbox", "/api")  # the API takes the inbox session too (with X-CSRF-Token)
CSRF_FIELD = "_csrf"


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


def session_ttl(rt: Runtime) -> timedelta:
    """How long an inbox session (and proxy mode's CSRF cookie) lasts."""
    return timedelta(hours=rt.settings.inbox_session_hours)


def token_cookie(request: Request, name: str) -> str | None:
    """The cookie *name* when it holds something shaped like a token; otherwise None."""
    value = request.cookies.get(name)
    return value if isinstance(value, str) and looks_like_token(value) else None


# --- who asks ------------------------------------------------------------------------------


async def find_caller(rt: Runtime, request: Request) -> Caller | None:
    """Who a browser request comes from: the proxy's user header in proxy mode, else the
    session cookie. None when nobody (active) is signed in."""
    if proxy_mode(rt):
        return await _proxy_caller(rt, request)
    session_id = token_cookie(request, SESSION_COOKIE)
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
    csrf = token_cookie(request, PROXY_CSRF_COOKIE)
    if csrf is not None:
        return Caller(Viewer.of(user), user.display_name, csrf)
    fresh = new_token()
    return Caller(Viewer.of(user), user.display_name, fresh, new_csrf_cookie=fresh)


async def api_caller(rt: Runtime, request: Request) -> Caller | None:
    """A bearer token (global or a user's) or else the inbox session; a wrong bearer token
    is 401 even next to a session cookie."""
    if not request.headers.get("Authorization"):
        return await find_caller(rt, request)
    given = bearer_token(request)
    if not given:
        return None
    if staff_token_ok(rt, given):
        return Caller(Viewer(API_ACTOR, "admin", None), API_ACTOR, csrf="")
    user = await rt.db_for_request(user_for_token, rt.engine, given)
    if user is None:
        return None
    return Caller(Viewer.of(user), user.display_name, csrf="")


# --- session cookies -----------------------------------------------------------------------


def staff_headers(
    rt: Runtime, cookies: tuple[str, ...] = (), caller: Caller | None = None
) -> CIMultiDict[str]:
    """The security headers of a staff page, with *cookies* to set and the CSRF cookie
    proxy mode just made for *caller*."""
    out = CIMultiDict(SECURITY_HEADERS)
    for value in cookies:
        out.add("Set-Cookie", value)
    if caller is not None and caller.new_csrf_cookie:
        secure = cookie_secure(rt)
        max_age = int(session_ttl(rt).total_seconds())
        for path in SESSION_PATHS:
            value = cookie(
                PROXY_CSRF_COOKIE,
                caller.new_csrf_cookie,
                path=path,
                secure=secure,
                max_age=max_age,
            )
            out.add("Set-Cookie", value)
    return out


def session_cookies(rt: Runtime, value: str, max_age: int) -> tuple[str, ...]:
    """The session cookie *value* on every path that takes the session (Max-Age 0 ends it)."""
    secure = cookie_secure(rt)
    return tuple(
        cookie(SESSION_COOKIE, value, path=p, secure=secure, max_age=max_age) for p in SESSION_PATHS
    )


# --- tasks and actions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a caller gets no task: *status* 404 (*code* task_not_found) or 403 (forbidden)."""

    status: int
    code: str


async def load_task(rt: Runtime, task_id: str) -> FollowupTask | None:
    try:
        return await rt.db_for_request(get_task, rt.engine, task_id)
    except TaskUnknownError:
        return None


async def visible_task(rt: Runtime, viewer: Viewer, task_id: str) -> FollowupTask | Refusal:
    """The task when *viewer* may see it; otherwise why not."""
    task = await load_task(rt, task_id)
    if task is None:
        return Refusal(404, "task_not_found")
    if not viewer.can_see(task):
        return Refusal(403, "forbidden")
    return task


async def vet(
    rt: Runtime,
    viewer: Viewer,
    task: FollowupTask,
    type_value: object,
    note: object,
    details: object,
) -> ActionRequest:
    """vet_action with what it needs from the database; ActionRequestInvalidError when refused."""
    action = parse_action_type(type_value)
    assignee = None
    if action is ActionType.ASSIGN and isinstance(details, dict):
        name = details.get("assignee")
        if isinstance(name, str) and name.strip() and NUL not in name:
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
