"""`cxloop db`: migrate the database to this cxloop's schema, say where it is, list the
migrations, write the schema docs, and (for developers) autogenerate the next migration.

A bad URL, an unreachable database or a schema this cxloop cannot use is one line on
stderr and exit code 2, never a stack trace; URLs are shown without their password.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import SQLModel

from models.store.engine import make_engine
from models.store.schema import (
    SCHEMA_DOC,
    SchemaError,
    SchemaOutdatedError,
    check_schema,
    current_revision,
    head_revision,
    new_revision,
    revisions,
    schema_markdown,
    upgrade,
)
from streams.settings import get_settings

app = typer.Typer(help="The database schema: migrations and documentation.", no_args_is_help=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", help="SQL database (default: CXLOOP_DATABASE_URL)."),
]
REVISION_ID = re.compile(r"^\d{4}_[a-z0-9_]+$")


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(2)


def safe_url(url: str) -> str | None:
    """*url* with its password masked, for messages; None when it is no URL at all."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return None


@contextmanager
def database(database_url: str | None) -> Iterator[Engine]:
    """An engine on --database-url or CXLOOP_DATABASE_URL; database errors and schema
    errors on it end the command with one line and exit code 2."""
    url = database_url or get_settings().database_url
    shown = safe_url(url)
    if shown is None:  # never echo it: the password could be anywhere in it
        _fail("the database URL (--database-url or CXLOOP_DATABASE_URL) is not a URL")
    try:
        engine = make_engine(url)
    except ArgumentError:
        _fail(f"{shown}: not a database SQLAlchemy knows (sqlite:///… or postgresql+psycopg://…)")
    except ImportError as exc:
        _fail(f"{shown}: no database driver {exc.name or ''} installed")
    try:
        yield engine
    except SchemaError as exc:
        _fail(str(exc))
    except CommandError as exc:
        _fail(f"{shown}: {exc}")
    except SQLAlchemyError as exc:
        _fail(f"cannot use the database {shown}: {_reason(exc)}")
    finally:
        engine.dispose()


def _reason(exc: SQLAlchemyError) -> str:
    """The error's kind and the driver's first line (e.g. "… Connection refused"); driver
    messages name the host and user, never the password."""
    orig = getattr(exc, "orig", None)
    lines = str(orig).strip().splitlines() if orig is not None else []
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def require_schema(engine: Engine) -> None:
    """What a worker does before it starts: create the schema on an empty database, and
    refuse (exit 2, saying to run `cxloop db upgrade`) one at another revision; a worker
    never migrates data, that is an operator's deliberate step."""
    shown = engine.url.render_as_string(hide_password=True)
    try:
        try:
            check_schema(engine)
        except SchemaOutdatedError as exc:
            if exc.current is not None or exc.legacy:
                raise
            upgrade(engine)  # nothing there yet: nothing to migrate
    except SchemaError as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"cannot use the database {shown}: {_reason(exc)}")


@app.command("upgrade")
def upgrade_command(
    revision: Annotated[str, typer.Option(help="Revision to migrate to.")] = "head",
    database_url: DatabaseOption = None,
) -> None:
    """Migrate the database to this cxloop's schema (or to --revision).

    Tables made by a cxloop without migrations are stamped 0001_baseline first when they
    match it exactly."""
    with database(database_url) as engine:
        shown = engine.url.render_as_string(hide_password=True)
        before = current_revision(engine)
        after = upgrade(engine, revision)
    if before == after:
        typer.echo(f"{shown}: already at {after}")
    else:
        typer.echo(f"{shown}: {before or 'no schema'} → {after}")


@app.command()
def current(database_url: DatabaseOption = None) -> None:
    """Print the database's revision and this cxloop's head; exit 1 when it is behind."""
    with database(database_url) as engine:
        at = current_revision(engine)
        head = head_revision()
        typer.echo(f"current: {at or '(none)'}\nhead:    {head}")
        try:
            check_schema(engine)
        except SchemaOutdatedError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None


@app.command()
def history() -> None:
    """List the migrations, oldest first."""
    head = head_revision()
    for revision in revisions():
        mark = "  (head)" if revision.id == head else ""
        typer.echo(f"{revision.id}  {revision.message}{mark}")


@app.command()
def docs(
    output: Annotated[
        str, typer.Option(help="Where to write the Markdown (- for standard output).")
    ] = str(SCHEMA_DOC),
) -> None:
    """Write the schema documentation (tables, columns and their meaning) from the models."""
    text = schema_markdown(SQLModel.metadata)
    if output == "-":
        sys.stdout.write(text)
        return
    Path(output).write_text(text)
    typer.echo(f"wrote {output}", err=True)


@app.command()
def revision(
    message: Annotated[str, typer.Argument(help="What the migration does.")],
    rev_id: Annotated[str, typer.Option(help="Revision id: number and name, e.g. 0002_bi_sink.")],
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Scratch database to compare against, upgraded to head first (default: a "
            "temporary SQLite). Use an empty PostgreSQL: only it sees column comments.",
        ),
    ] = None,
) -> None:
    """For developers: autogenerate the next migration from the models.

    Writes models/store/migrations/versions/<rev-id>.py with what the models have that head
    does not; review and edit it before committing."""
    if not REVISION_ID.match(rev_id):
        _fail(f"revision id {rev_id!r}: four digits, underscore, lower-case name (0002_bi_sink)")
    with tempfile.TemporaryDirectory() as scratch:
        url = database_url or f"sqlite:///{scratch}/scratch.db"
        with database(url) as engine:
            path = new_revision(engine, message, rev_id)
    typer.echo(f"wrote {path}")
