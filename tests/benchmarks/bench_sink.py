"""sink: idempotent batched rows/s into SQLite and PostgreSQL (contact_events, survey_decisions).

500 rows per transaction with one Core executemany of INSERT … ON CONFLICT DO NOTHING (the
statement models.store.engine uses), every batch written twice: the second pass must add no row.
The baseline is the database driver alone (sqlite3 / psycopg executemany of the same SQL).
"""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

from models.store.engine import make_engine
from models.store.schema import create_schema
from models.store.tables import ContactEvent, SurveyDecision
from tests.benchmarks.common import Stack
from tests.benchmarks.report import Figure
from tests.benchmarks.runner_context import Context

NAME = "sink"
BATCH = 500
TARGET_PG = 20_000
TABLES: dict[str, Table] = {
    "contact_events": ContactEvent.__table__,  # type: ignore[attr-defined]
    "survey_decisions": SurveyDecision.__table__,  # type: ignore[attr-defined]
}
Rows = list[dict[str, Any]]


def make_rows(n: int, seed: int = 3) -> dict[str, Rows]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    events, decisions = [], []
    reasons = ("surveyed", "recently_surveyed", "no_contact_address", "open_complaint")
    for i in range(n):
        event_id = f"evt-sink-{seed}-{i:09d}"
        customer = f"C-{rng.randrange(100_000):07d}"
        events.append(
            {
                "event_id": event_id,
                "occurred_at": now - timedelta(seconds=rng.randint(1, 86_400)),
                "kind": rng.choice(("purchase", "support_contact", "complaint", "inquiry")),
                "channel": rng.choice(("phone", "email", "shop", "chat")),
                "customer_id": customer,
                "locale": rng.choice(("nl", "en", "bg", "no")),
                "partner": rng.choice(("CBG Connect", "Belcompany", None)),
                "product": rng.choice(("KPN EEN", "Internet+TV", None)),
                "case_id": f"K-{rng.randint(1, 999_999)}",
                "received_at": now,
            }
        )
        reason = rng.choice(reasons)
        decisions.append(
            {
                "decision_id": str(uuid.uuid4()),
                "event_id": event_id,
                "customer_id": customer,
                "rules_version": "bench",
                "repeat": 0,
                "outcome": "surveyed" if reason == "surveyed" else "suppressed",
                "reason": reason,
                "invitation_id": str(uuid.uuid4()) if reason == "surveyed" else None,
                "decided_at": now,
            }
        )
    return {"contact_events": events, "survey_decisions": decisions}


def batches(rows: Rows) -> list[Rows]:
    return [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]


def idempotent_insert(engine: Engine, table: Table) -> Any:
    if engine.dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


def count(engine: Engine, table: Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def server_durability(engine: Engine) -> dict[str, str]:
    """fsync and commit settings: the throwaway test cluster runs with fsync=off."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return {
                name: str(connection.exec_driver_sql(f"SHOW {name}").scalar())
                for name in ("fsync", "synchronous_commit", "full_page_writes")
            }
        return {
            "journal_mode": str(connection.exec_driver_sql("PRAGMA journal_mode").scalar()),
            "synchronous": str(connection.exec_driver_sql("PRAGMA synchronous").scalar()),
        }


def core_pass(engine: Engine, table: Table, rows: Rows) -> float:
    """Write *rows* in 500-row transactions with Core executemany; returns seconds."""
    statement = idempotent_insert(engine, table)
    started = time.perf_counter()
    for batch in batches(rows):
        with engine.begin() as connection:
            connection.execute(statement, batch)
    return time.perf_counter() - started


# --- the driver alone (baseline) --------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    # What cxloop's UTCDateTime stores on SQLite: ISO 8601 in UTC with microseconds and
    # +00:00 (models.store.tables.SQLITE_TIMESTAMP_FORMAT).
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat("T", "microseconds")
    return value


def raw_sqlite_pass(path: str, table: str, rows: Rows) -> float:
    columns = list(rows[0])
    names, marks = ", ".join(columns), ", ".join("?" for _ in columns)
    # Table and column names are this module's constants.
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    try:
        started = time.perf_counter()
        for batch in batches(rows):
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                sql, [tuple(_sqlite_value(r[c]) for c in columns) for r in batch]
            )
            connection.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        connection.close()


def raw_postgres_pass(url: str, table: str, rows: Rows) -> float:
    columns = list(rows[0])
    names, marks = ", ".join(columns), ", ".join("%s" for _ in columns)
    # Table and column names are this module's constants.
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as connection:
        started = time.perf_counter()
        for batch in batches(rows):
            with connection.transaction(), connection.cursor() as cursor:
                cursor.executemany(sql, [tuple(r[c] for c in columns) for r in batch])
        return time.perf_counter() - started


# --- one database --------------------------------------------------------------------------


def measure(
    label: str,
    url: str,
    baseline_url: str,
    raw_pass: Callable[[str, str, Rows], float],
    rows: dict[str, Rows],
    target: float | None,
) -> list[Figure]:
    figures = []
    engine = make_engine(url)
    durability = server_durability(engine)
    base_engine = make_engine(baseline_url)
    try:
        create_schema(engine)
        create_schema(base_engine)
        for name, table in TABLES.items():
            data = rows[name]
            first_s = core_pass(engine, table, data)
            after_first = count(engine, table)
            second_s = core_pass(engine, table, data)
            added_by_second = count(engine, table) - after_first
            raw_target = make_url(baseline_url).database if label == "sqlite" else baseline_url
            assert raw_target is not None
            raw_s = raw_pass(raw_target, name, data)
            rate, raw_rate = len(data) / first_s, len(data) / raw_s
            idempotent = after_first == len(data) and added_by_second == 0
            passed = None if target is None else (rate >= target and idempotent)
            figures.append(
                Figure(
                    key=f"sink.{label}.{name}.rows_per_s",
                    label=f"sink: {name} → {label} (500/txn, ON CONFLICT DO NOTHING)",
                    value=rate,
                    unit="rows/s",
                    ratio=rate / raw_rate,
                    ratio_to=f"raw driver executemany ({raw_rate:,.0f}/s)",
                    target=f"≥ {TARGET_PG:,} rows/s" if target else "",
                    passed=passed,
                    note="" if idempotent else f"NOT idempotent: 2nd pass added {added_by_second}",
                    details={
                        "rows": len(data),
                        "rows_after_first_pass": after_first,
                        "rows_added_by_second_pass": added_by_second,
                        "second_pass_rows_per_s": round(len(data) / second_s),
                        "raw_driver_rows_per_s": round(raw_rate),
                        "batch_rows": BATCH,
                        **durability,
                    },
                )
            )
    finally:
        engine.dispose()
        base_engine.dispose()
    return figures


def run(ctx: Context) -> list[Figure]:
    n = ctx.pick(quick=50_000, full=200_000)
    rows = make_rows(n)
    figures: list[Figure] = []
    with Stack(ctx.workdir / NAME) as stack:
        sqlite_url = f"sqlite:///{stack.workdir / 'sink.db'}"
        sqlite_base = f"sqlite:///{stack.workdir / 'sink-raw.db'}"
        figures += measure("sqlite", sqlite_url, sqlite_base, raw_sqlite_pass, rows, None)
        pg_url = stack.enter_context(ctx.pg.database("cxbench_sink"))
        pg_base = stack.enter_context(ctx.pg.database("cxbench_sink_raw"))
        figures += measure("postgres", pg_url, pg_base, raw_postgres_pass, rows, TARGET_PG)
    return figures
