"""`cxloop staff`: add, list and deactivate inbox users, and give them API tokens.

Passwords come from standard input or a hidden prompt and are never echoed or logged; a
new API token is printed once (only its hash is stored).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer
from sqlalchemy import Engine

from agents.cli.db import DatabaseOption, require_schema
from agents.runtime import utc_now
from models.followup_rules import FollowupRulesError, load_followup_rules
from models.passwords import StaffUserError
from models.store.engine import make_engine
from models.store.staff_accounts import (
    StaffUserUnknownError,
    create_user,
    issue_api_token,
    list_users,
    update_user,
)
from streams.settings import get_settings

app = typer.Typer(help="Manage staff inbox users and their API tokens.", no_args_is_help=True)


class RoleName(StrEnum):
    STAFF = "staff"
    LEAD = "lead"
    ADMIN = "admin"


def _engine(database_url: str | None) -> Engine:
    """An engine on the configured database at this cxloop's schema: created on an empty
    database, refused (exit 2) on one that needs `cxloop db upgrade` or cannot be reached."""
    engine = make_engine(database_url or get_settings().database_url)
    require_schema(engine)
    return engine


def _teams() -> list[str]:
    try:
        return list(load_followup_rules(get_settings().followup_file).teams)
    except FollowupRulesError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@app.command()
def add(
    username: Annotated[str, typer.Argument(help="Sign-in name (or the SSO proxy's user).")],
    role: Annotated[RoleName, typer.Option(help="staff, lead or admin.")] = RoleName.STAFF,
    team: Annotated[
        str | None, typer.Option(help="The team (a team of the follow-up rules).")
    ] = None,
    email: Annotated[str | None, typer.Option(help="For SLA reminders.")] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="No password: API token or SSO proxy only.")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Add a staff user; asks for the password unless --password-stdin or --no-password."""
    password = None if no_password else _read_password(password_stdin)
    engine = _engine(database_url)
    try:
        user = create_user(
            engine,
            username,
            role.value,
            utc_now(),
            team=team,
            display_name=name,
            email=email,
            password=password,
            teams=_teams(),
        )
    except StaffUserError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(f"added {user.role} {user.username}" + (f" (team {user.team})" if user.team else ""))


@app.command()
def token(
    username: Annotated[str, typer.Argument(help="Whose token.")],
    database_url: DatabaseOption = None,
) -> None:
    """Print a new API token for USERNAME (once); their previous token stops working."""
    engine = _engine(database_url)
    try:
        secret = issue_api_token(engine, username)
    except (StaffUserUnknownError, StaffUserError):
        typer.echo(f"no active staff user {username!r}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(secret)


@app.command("list")
def list_command(database_url: DatabaseOption = None) -> None:
    """The staff users: name, role, team, active, API token set."""
    engine = _engine(database_url)
    try:
        users = list_users(engine)
    finally:
        engine.dispose()
    for user in users:
        typer.echo(
            "\t".join(
                [
                    user.username,
                    user.role,
                    user.team or "-",
                    "active" if user.active else "inactive",
                    "token" if user.api_token_hash else "-",
                ]
            )
        )


@app.command()
def deactivate(
    username: Annotated[str, typer.Argument(help="Who can no longer sign in.")],
    database_url: DatabaseOption = None,
) -> None:
    """Deactivate USERNAME: their sessions end and their API token stops working."""
    engine = _engine(database_url)
    try:
        update_user(engine, username, active=False)
    except (StaffUserUnknownError, StaffUserError):
        typer.echo(f"no staff user {username!r}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(f"deactivated {username}")
