"""Who may use the staff inbox and the staff API, and what each of them may do.

Passwords are argon2id hashes (argon2-cffi), rehashed on sign-in when the parameters
change. API tokens and session ids are random; only their SHA-256 is stored, so a copy of
the database signs nobody in. A session carries its own CSRF token and an expiry.

Rights: an admin sees and acts on every task; staff and leads see their team's tasks.
Staff may take a task (assign it to themselves) but not give it to someone else or cancel
it; leads may do both within their team; admins everywhere.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from models.followup_rules import FollowupRules
from models.store.engine import transaction
from models.store.tables import STAFF_ROLES, FollowupTask, StaffSession, StaffUser
from models.task_lifecycle import FINAL_STATUSES, ActionType, TaskStatus, allowed_actions
from models.tokens import hash_token, new_token

Role = Literal["staff", "lead", "admin"]
API_ACTOR = "api"  # the actor of actions sent with the global staff token
TOKEN_PREFIX = "cxs_"  # noqa: S105 - marks a staff API token, not a secret
NOTE_MAX = 4000
FIX_TITLE_MAX = 200
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,99}$")
_PASSWORD_MIN = 10
_PASSWORD_MAX = 1024  # argon2 hashes anything, but a megabyte "password" is an attack

_HASHER = PasswordHasher()  # argon2id with the library's recommended parameters


@cache
def dummy_hash() -> str:
    """Verified against when the user is unknown, so a wrong name costs as long as a wrong
    password (made on first use: no work at import time)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


class StaffUserError(ValueError):
    """A staff user cannot be created or changed as asked (the message says why)."""


class StaffUserExists(StaffUserError):
    """A staff user with this name exists already."""


class UnknownStaffUser(LookupError):
    """No staff user has this name."""


# --- users -------------------------------------------------------------------------------


def normal_username(username: str) -> str:
    """The stored form of a user name (lower case, trimmed); StaffUserError if unusable."""
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise StaffUserError(
            "a user name is 1–100 letters, digits and . _ @ + - (starting with a letter or digit)"
        )
    return name


def check_password_strength(password: str) -> None:
    """StaffUserError when *password* is too short or absurdly long."""
    if len(password) < _PASSWORD_MIN:
        raise StaffUserError(f"a password needs at least {_PASSWORD_MIN} characters")
    if len(password) > _PASSWORD_MAX:
        raise StaffUserError(f"a password has at most {_PASSWORD_MAX} characters")


def _check_role(role: str, team: str | None, teams: Collection[str] | None) -> None:
    if role not in STAFF_ROLES:
        raise StaffUserError(f"role must be one of {list(STAFF_ROLES)}")
    if role != "admin" and not team:
        raise StaffUserError("staff and leads belong to a team")
    if team and teams is not None and team not in teams:
        raise StaffUserError(f"unknown team {team!r}; the rules have {sorted(teams)}")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def create_user(
    engine: Engine,
    username: str,
    role: str,
    now: datetime,
    *,
    team: str | None = None,
    display_name: str | None = None,
    email: str | None = None,
    password: str | None = None,
    teams: Collection[str] | None = None,
) -> StaffUser:
    """Add a staff user; *teams*, when given, are the teams the rules know.

    A user without a password can only sign in with an API token or through the proxy.
    Raises StaffUserExists or StaffUserError."""
    name = normal_username(username)
    _check_role(role, team, teams)
    if password is not None:
        check_password_strength(password)
    user = StaffUser(
        username=name,
        display_name=(display_name or name).strip()[:200] or name,
        email=email.strip() if email else None,
        role=role,
        team=team or None,
        password_hash=hash_password(password) if password is not None else None,
        active=True,
        created_at=now,
    )
    try:
        with transaction(engine) as session:
            if session.get(StaffUser, name) is not None:
                raise StaffUserExists(f"staff user {name!r} exists already")
            session.add(user)
    except IntegrityError:
        raise StaffUserExists(f"staff user {name!r} exists already") from None
    return user


def update_user(
    engine: Engine,
    username: str,
    *,
    role: str | None = None,
    team: str | None = None,
    display_name: str | None = None,
    email: str | None = None,
    active: bool | None = None,
    teams: Collection[str] | None = None,
) -> StaffUser:
    """Change what is given; deactivating ends the user's sessions and API token."""
    with transaction(engine) as session:
        user = session.get(StaffUser, normal_username(username), with_for_update=True)
        if user is None:
            raise UnknownStaffUser(username)
        new_role = role or user.role
        new_team = team if team is not None else user.team
        _check_role(new_role, new_team, teams)
        user.role, user.team = new_role, new_team
        if display_name is not None:
            user.display_name = display_name.strip()[:200] or user.username
        if email is not None:
            user.email = email.strip() or None
        if active is not None:
            user.active = active
        if user.active is False:
            user.api_token_hash = None
            session.execute(delete(StaffSession).where(col(StaffSession.username) == user.username))
        session.add(user)
        return user


def set_password(engine: Engine, username: str, password: str) -> None:
    """Replace the user's password; their sessions end (a changed password is a reset)."""
    check_password_strength(password)
    hashed = hash_password(password)
    with transaction(engine) as session:
        user = session.get(StaffUser, normal_username(username), with_for_update=True)
        if user is None:
            raise UnknownStaffUser(username)
        user.password_hash = hashed
        session.add(user)
        session.execute(delete(StaffSession).where(col(StaffSession.username) == user.username))


def get_user(engine: Engine, username: str) -> StaffUser | None:
    try:
        name = normal_username(username)
    except StaffUserError:
        return None
    with transaction(engine) as session:
        return session.get(StaffUser, name)


def list_users(engine: Engine) -> list[StaffUser]:
    """Every staff user by name (the same order on SQLite and PostgreSQL)."""
    with transaction(engine) as session:
        return list(session.execute(select(StaffUser).order_by(col(StaffUser.username))).scalars())


def assignable_users(engine: Engine, team: str | None) -> list[StaffUser]:
    """Active staff and leads a task can be given to: of *team*, or of every team (None)."""
    query = (
        select(StaffUser)
        .where(col(StaffUser.active).is_(True))
        .where(col(StaffUser.role).in_(("staff", "lead")))
        .where(col(StaffUser.team).is_not(None))
    )
    if team is not None:
        query = query.where(col(StaffUser.team) == team)
    with transaction(engine) as session:
        return list(
            session.execute(query.order_by(col(StaffUser.team), col(StaffUser.username))).scalars()
        )


def authenticate(engine: Engine, username: str, password: str) -> StaffUser | None:
    """The active user with this name and password, or None. An unknown, inactive or
    password-less user costs one argon2 verification like a known one, so timing does not
    tell which names exist. A hash made with older parameters is replaced."""
    user = get_user(engine, username)
    stored = user.password_hash if user is not None and user.active else None
    matches = _verify(stored or dummy_hash(), password[:_PASSWORD_MAX])
    if not matches or user is None or stored is None:
        return None
    if _HASHER.check_needs_rehash(stored):
        _rehash(engine, user.username, stored, password)
    return user


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _rehash(engine: Engine, username: str, old: str, password: str) -> None:
    with transaction(engine) as session:
        session.execute(
            update(StaffUser)
            .where(col(StaffUser.username) == username)
            .where(col(StaffUser.password_hash) == old)  # unless it was changed meanwhile
            .values(password_hash=hash_password(password))
        )


# --- API tokens --------------------------------------------------------------------------


def issue_api_token(engine: Engine, username: str) -> str:
    """A new API token for an active user (the old one stops working); shown once."""
    token = TOKEN_PREFIX + new_token()
    with transaction(engine) as session:
        user = session.get(StaffUser, normal_username(username), with_for_update=True)
        if user is None or not user.active:
            raise UnknownStaffUser(username)
        user.api_token_hash = hash_token(token)
        session.add(user)
    return token


def user_for_token(engine: Engine, token: str) -> StaffUser | None:
    """The active user whose API token this is (looked up by its hash, not compared)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with transaction(engine) as session:
        user = session.execute(
            select(StaffUser).where(col(StaffUser.api_token_hash) == hash_token(token))
        ).scalar_one_or_none()
    return user if user is not None and user.active else None


# --- sessions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    """A session just started: *session_id* goes into the cookie and nowhere else."""

    session_id: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    viewer: Viewer
    csrf_token: str
    display_name: str


def start_session(engine: Engine, username: str, now: datetime, ttl: timedelta) -> NewSession:
    """A new server-side session (expired ones are swept on the way)."""
    session_id = new_token()
    csrf = new_token()
    with transaction(engine) as session:
        session.execute(delete(StaffSession).where(col(StaffSession.expires_at) <= now))
        session.add(
            StaffSession(
                session_hash=hash_token(session_id),
                username=username,
                csrf_token=csrf,
                created_at=now,
                expires_at=now + ttl,
            )
        )
    return NewSession(session_id, csrf, now + ttl)


def session_user(engine: Engine, session_id: str, now: datetime) -> SignedIn | None:
    """Who a session cookie signs in: None when it is unknown, expired or its user is gone."""
    if not session_id or len(session_id) > 200:
        return None
    with transaction(engine) as session:
        row = session.get(StaffSession, hash_token(session_id))
        if row is None or row.expires_at <= now:
            return None
        user = session.get(StaffUser, row.username)
        if user is None or not user.active:
            return None
        return SignedIn(Viewer.of(user), row.csrf_token, user.display_name)


def end_session(engine: Engine, session_id: str) -> None:
    with transaction(engine) as session:
        session.execute(
            delete(StaffSession).where(col(StaffSession.session_hash) == hash_token(session_id))
        )


def same_secret(given: object, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class SignInThrottle:
    """Failed sign-ins per user name, in this process: after *limit* failures within
    *window* the name is refused until the oldest of them is older than the window.
    Remembers at most *names* user names (the least recently failed are forgotten)."""

    def __init__(
        self, limit: int = 10, window: timedelta = timedelta(minutes=15), names: int = 10_000
    ) -> None:
        self.limit = limit
        self.window = window
        self.names = names
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def blocked(self, username: str, now: datetime) -> bool:
        failures = self._recent(username.strip().lower(), now)
        return failures is not None and len(failures) >= self.limit

    def failed(self, username: str, now: datetime) -> None:
        key = username.strip().lower()
        failures = self._recent(key, now)
        if failures is None:
            failures = self._failures[key] = deque(maxlen=self.limit)
        failures.append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > self.names:
            self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._failures.pop(username.strip().lower(), None)

    def _recent(self, key: str, now: datetime) -> deque[datetime] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures


# --- demo --------------------------------------------------------------------------------


def ensure_demo_staff(
    engine: Engine, rules: FollowupRules, now: datetime
) -> list[tuple[str, str, str | None, str]]:
    """When nobody has an account yet: an admin, and per team of *rules* a lead and a member
    of staff, each with a random password. (user name, role, team, password) per account,
    for the caller to show once; [] when accounts exist already."""
    plan: list[tuple[str, str, str | None]] = [("admin", "admin", None)]
    for team in rules.teams:
        plan += [(f"{team}-lead", "lead", team), (f"{team}-staff", "staff", team)]
    made = [(name, role, team, secrets.token_urlsafe(12)) for name, role, team in plan]
    users = [
        StaffUser(
            username=name,
            display_name=name.replace("-", " ").title(),
            email=f"{name}@example.com",
            role=role,
            team=team,
            password_hash=hash_password(password),
            active=True,
            created_at=now,
        )
        for name, role, team, password in made
    ]
    try:
        with transaction(engine) as session:
            if session.execute(select(func.count()).select_from(StaffUser)).scalar_one():
                return []
            session.add_all(users)
    except IntegrityError:  # another process made them first
        return []
    return made


# --- rights ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Who is asking, as far as rights go."""

    username: str
    role: str
    team: str | None

    @classmethod
    def of(cls, user: StaffUser) -> Viewer:
        return cls(user.username, user.role, user.team)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def may_reassign(self) -> bool:
        return self.role in ("lead", "admin")

    def visible_teams(self) -> tuple[str, ...] | None:
        """The teams whose tasks this viewer sees; None for every team."""
        if self.is_admin:
            return None
        return (self.team,) if self.team else ()

    def can_see(self, task: FollowupTask) -> bool:
        return self.is_admin or (self.team is not None and task.team == self.team)

    def can_act(
        self, task: FollowupTask, action: ActionType, assignee: StaffUser | None = None
    ) -> bool:
        """Whether the role allows *action* on *task* (not whether its status does).
        An assign needs the *assignee*: staff may only take a task themselves, leads give
        it to an active member of their team, admins to anyone active in a team."""
        if not self.can_see(task):
            return False
        if action is ActionType.CANCEL:
            return self.may_reassign
        if action is ActionType.ASSIGN:
            return assignee is not None and self._may_give_to(assignee)
        return True

    def possible_actions(self, task: FollowupTask) -> list[ActionType]:
        """What this viewer may do to *task* in its status now; assign when they may give
        it to anyone at all (to whom is checked once they name someone)."""

        def may(action: ActionType) -> bool:
            if action is ActionType.ASSIGN:
                return self.can_see(task) and (self.is_admin or self.team is not None)
            return self.can_act(task, action)

        return [a for a in allowed_actions(TaskStatus(task.status)) if may(a)]

    def _may_give_to(self, assignee: StaffUser) -> bool:
        if not assignee.active or assignee.team is None or assignee.role == "admin":
            return False
        if self.is_admin:
            return True
        if self.role == "lead":
            return assignee.team == self.team
        return assignee.username == self.username and assignee.team == self.team


# --- action requests ---------------------------------------------------------------------


class ActionProblem(Exception):
    """Why an action request is not accepted: *status* 403, 409 or 422, a stable *code*
    and a message per field."""

    def __init__(self, status: int, code: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.fields = dict(fields or {})


@dataclass(frozen=True)
class ActionRequest:
    """An action as it will be published: checked type, note and details."""

    type: ActionType
    note: str
    details: dict[str, Any]


# Which details each action takes; any other key is a mistake worth telling the caller.
_DETAIL_KEYS: dict[ActionType, frozenset[str]] = {
    ActionType.ASSIGN: frozenset({"assignee"}),
    ActionType.CLOSE: frozenset(
        {"root_cause", "needs_structural_fix", "structural_fix_id", "structural_fix_title"}
    ),
}
# Actions that say nothing without a note.
_NOTE_REQUIRED = {
    ActionType.RESOLVED: "say what was done about the cause",
    ActionType.CUSTOMER_INFORMED: "say what the customer was told",
    ActionType.CANCEL: "say why no follow-up is needed",
    ActionType.NOTE: "write the note",
}


def parse_action_type(value: object) -> ActionType:
    """The action type named by *value*; ActionProblem 422 otherwise."""
    try:
        return ActionType(str(value))
    except ValueError:
        names = [a.value for a in ActionType]
        raise ActionProblem(422, "invalid", {"type": f"must be one of {names}"}) from None


def vet_action(
    viewer: Viewer,
    task: FollowupTask,
    action: ActionType,
    note: object,
    details: object,
    *,
    root_causes: Collection[str],
    assignee: StaffUser | None = None,
    fix_ids: Collection[str] = (),
) -> ActionRequest:
    """Check an action request the way closure would, before it is published: rights (403),
    the task's status (409), then the note and details (422). *assignee* is the user named
    in details.assignee (None when unknown); *fix_ids* the structural fixes that exist."""
    if not viewer.can_see(task):
        raise ActionProblem(403, "forbidden")
    if action is not ActionType.ASSIGN and not viewer.can_act(task, action):
        raise ActionProblem(403, "forbidden", {"type": f"your role may not {action.value}"})
    fields: dict[str, str] = {}
    if not isinstance(details, Mapping):
        fields["details"] = "must be an object"
        details = {}
    clean: dict[str, Any] = {}
    if action is ActionType.ASSIGN:  # rights first: 403 before 409
        clean = _assign_details(viewer, task, details, assignee, fields)
    status = TaskStatus(task.status)
    if status in FINAL_STATUSES:
        raise ActionProblem(409, "task_closed")
    if action not in allowed_actions(status):
        raise ActionProblem(
            409, "not_possible_now", {"type": f"not possible while the task is {status.value}"}
        )
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        fields["note"] = f"must be text of at most {NOTE_MAX} characters"
        note = ""
    text = note.strip()
    if action in _NOTE_REQUIRED and not text:
        fields["note"] = _NOTE_REQUIRED[action]
    unknown = sorted(set(details) - _DETAIL_KEYS.get(action, frozenset()))
    if unknown:
        fields["details"] = f"{action.value} takes no {', '.join(map(str, unknown))}"
    if action is ActionType.CLOSE:
        clean = _close_details(details, root_causes, fix_ids, fields)
    if fields:
        raise ActionProblem(422, "invalid", fields)
    return ActionRequest(action, text, clean)


def _assign_details(
    viewer: Viewer,
    task: FollowupTask,
    details: Mapping[str, Any],
    assignee: StaffUser | None,
    fields: dict[str, str],
) -> dict[str, Any]:
    name = details.get("assignee")
    if not isinstance(name, str) or not name.strip():
        fields["assignee"] = "choose who gets the task"
        return {}
    if assignee is None or not assignee.active or assignee.team is None:
        if viewer.role == "staff" and name.strip().lower() != viewer.username:
            raise ActionProblem(403, "forbidden", {"assignee": "you can only take a task"})
        fields["assignee"] = "not an active member of a team"
        return {}
    if not viewer.can_act(task, ActionType.ASSIGN, assignee):
        why = "you can only take a task" if viewer.role == "staff" else "not in your team"
        raise ActionProblem(403, "forbidden", {"assignee": why})
    return {"assignee": assignee.username}


def _close_details(
    details: Mapping[str, Any],
    root_causes: Collection[str],
    fix_ids: Collection[str],
    fields: dict[str, str],
) -> dict[str, Any]:
    cause = details.get("root_cause")
    if cause not in root_causes:
        fields["root_cause"] = "choose the root cause"
    needs = details.get("needs_structural_fix", False)
    if not isinstance(needs, bool):
        fields["needs_structural_fix"] = "must be true or false"
        needs = False
    fix_id = details.get("structural_fix_id") or None
    title = details.get("structural_fix_title") or ""
    if fix_id is not None and (not isinstance(fix_id, str) or fix_id not in fix_ids):
        fields["structural_fix_id"] = "no such structural fix"
    if not isinstance(title, str) or len(title.strip()) > FIX_TITLE_MAX:
        fields["structural_fix_title"] = f"must be text of at most {FIX_TITLE_MAX} characters"
        title = ""
    title = title.strip()
    if fix_id and title:
        fields["structural_fix_title"] = "choose an existing fix or name a new one, not both"
    if (fix_id or title) and not needs:
        needs = True  # linking a fix says a structural fix is needed
    clean: dict[str, Any] = {"root_cause": cause, "needs_structural_fix": needs}
    if fix_id:
        clean["structural_fix_id"] = fix_id
    elif title:
        clean["structural_fix_title"] = title
    return clean
