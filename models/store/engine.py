"""Engines for SQLite (embedded default) and PostgreSQL (production), transactions and the
insert and claim helpers the store modules share (the schema is models.store.schema)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, event, select
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel, col, create_engine

from models.store import tables  # noqa: F401 - registers the tables on SQLModel.metadata

_Row = TypeVar("_Row", bound=SQLModel)


def make_engine(url: str) -> Engine:
    """An engine for *url*; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
            hide_parameters=True,  # error messages must not carry addresses or comments
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # Take the write lock when a transaction starts: a read-then-write transaction
        # that upgrades later can fail with SQLITE_BUSY despite the busy timeout.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        connect_args={"connect_timeout": 5},
        hide_parameters=True,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def dialect_insert(session: Session, model: type[SQLModel]) -> PgInsert | SqliteInsert:
    """A Core INSERT into *model*'s table with the dialect's ON CONFLICT clauses."""
    dialect = session.get_bind().dialect.name
    table = model.__table__  # type: ignore[attr-defined]  # Core, not the ORM's bulk insert
    if dialect == "postgresql":
        return pg_insert(table)
    if dialect == "sqlite":
        return sqlite_insert(table)
    raise NotImplementedError(f"no ON CONFLICT insert for {dialect}")


def _insert_ignoring_conflicts(session: Session, model: type[SQLModel]) -> Any:
    return dialect_insert(session, model).on_conflict_do_nothing()


def insert_if_absent(session: Session, table: type[SQLModel], values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on any unique key; True when the row was new."""
    statement = _insert_ignoring_conflicts(session, table).values(**values)
    result = session.connection().execute(statement)
    return bool(result.rowcount)


def in_key_order(table: type[SQLModel], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """*rows* sorted by the table's primary key: two transactions inserting the same new keys
    then take their locks in one order and cannot deadlock on each other (PostgreSQL makes
    a second insert of a key wait for the first transaction's end)."""
    keys = [c.name for c in table.__table__.primary_key.columns]  # type: ignore[attr-defined]
    if any(row.get(k) is None for row in rows for k in keys):
        return rows  # generated keys: nobody else can insert them
    return sorted(rows, key=lambda row: tuple(row[k] for k in keys))


def insert_many_if_absent(
    session: Session, table: type[SQLModel], rows: list[dict[str, Any]]
) -> None:
    """The same for many rows in one executemany (rows that exist are left as they are),
    in key order."""
    if rows:
        statement = _insert_ignoring_conflicts(session, table)
        session.connection().execute(statement, in_key_order(table, rows))


def insert_many_returning_new(
    session: Session, table: type[SQLModel], rows: list[dict[str, Any]], key: str
) -> list[Any]:
    """insert_many_if_absent that returns the *key* of the rows it inserted: those, and only
    those, are new (a concurrent insert of the same key returns it to one caller only)."""
    if not rows:
        return []
    statement = _insert_ignoring_conflicts(session, table).returning(
        table.__table__.c[key]  # type: ignore[attr-defined]  # set by SQLModel
    )
    return list(session.connection().execute(statement, in_key_order(table, rows)).scalars())


def lock_due(
    session: Session, model: type[_Row], due: Any, now: datetime, limit: int
) -> list[_Row]:
    """Up to *limit* rows of *model* whose *due* column is at or before *now*, soonest
    first, locked for this transaction. On PostgreSQL, SKIP LOCKED lets sweepers work side
    by side without taking one row twice; SQLite serialises writers anyway."""
    return list(
        session.execute(
            select(model)
            .where(col(due) <= now)
            .order_by(col(due))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


# How long a claimed outbox row stays with its sweeper before another may take it.
OUTBOX_LEASE = timedelta(minutes=1)


def claim_attempts(
    session: Session, outbox: type[Any], now: datetime, lease: timedelta, limit: int, *where: Any
) -> list[Any]:
    """Up to *limit* pending rows of an outbox table (status, attempts, next_attempt_at) that
    are due, soonest first, each counted as an attempt and pushed *lease* ahead, so no other
    sweeper takes it while this one works on it (SKIP LOCKED on PostgreSQL; SQLite
    serialises writers). *where* narrows the rows further."""
    rows = list(
        session.execute(
            select(outbox)
            .where(col(outbox.status) == "pending", col(outbox.next_attempt_at) <= now, *where)
            .order_by(col(outbox.next_attempt_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = now + lease
        session.add(row)
    return rows
