"""Staff accounts in the database: users, their API tokens and sessions, demo accounts.

Passwords are argon2id hashes (models.passwords), rehashed on sign-in when the parameters
change. API tokens and session ids are random; only their SHA-256 is stored, so a copy of
the database signs nobody in. A session carries its own CSRF token and an expiry. What each
role may do is models.staff_roles.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from models.followup_rules import FollowupRules
from models.passwords import (
    PASSWORD_MAX,
    StaffUserError,
    check_password_strength,
    dummy_hash,
    hash_password,
    needs_rehash,
    normal_username,
    verify_password,
)
from models.staff_roles import Viewer
from models.store.engine import transaction
from models.store.errors import StoreError
from models.store.tables import STAFF_ROLES, StaffSession, StaffUser
from models.tokens import hash_token, new_token

TOKEN_PREFIX = "cxs_"  # noqa: S105 - marks a staff API token, not a secret


class StaffUserExistsError(StaffUserError):
    """A staff user with this name exists already."""


class StaffUserUnknownError(StoreError, LookupError):
    """No staff user has this name."""


# --- users -------------------------------------------------------------------------------


def _check_role(role: str, team: str | None, teams: Collection[str] | None) -> None:
    if role not in STAFF_ROLES:
        raise StaffUserError(f"role must be one of {list(STAFF_ROLES)}")
    if role != "admin" and not team:
        raise StaffUserError("staff and leads belong to a team")
    if team and teams is not None and team not in teams:
        raise StaffUserError(f"unknown team {team!r}; the rules have {sorted(teams)}")


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
    Raises StaffUserExistsError or StaffUserError."""
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
                raise StaffUserExistsError(f"staff user {name!r} exists already")
            session.add(user)
    except IntegrityError:
        raise StaffUserExistsError(f"staff user {name!r} exists already") from None
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
            raise StaffUserUnknownError(username)
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
            raise StaffUserUnknownError(username)
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
    matches = verify_password(stored or dummy_hash(), password[:PASSWORD_MAX])
    if not matches or user is None or stored is None:
        return None
    if needs_rehash(stored):
        _rehash(engine, user.username, stored, password)
    return user


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
            raise StaffUserUnknownError(username)
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
