"""state: disk (and cache memory) per customer of the eligibility state at 1M customers.

customer_contact_state is what cxloop keeps per customer for the contact cap (one row:
customer_id, last_surveyed_at). Rows go in in random customer order, as customers arrive in
production, so the primary-key B-tree has the page splits it would have. SQLite through
cxloop's engine and types (Core executemany), PostgreSQL with COPY (same column types).
The worker keeps no per-customer state in memory: what must fit in RAM to keep the state hot
is the database cache, i.e. these same bytes. The baseline is the payload itself
(customer id + an 8-byte timestamp).
"""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from models.store.engine import make_engine
from models.store.schema import create_schema
from models.store.tables import CustomerContactState
from tests.benchmarks.common import Stack
from tests.benchmarks.report import Figure
from tests.benchmarks.runner_context import Context

NAME = "state"
TARGET = 200
TABLE = "customer_contact_state"


def customer_ids(n: int, shape: str, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    if shape == "uuid":
        ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]
    else:
        ids = [f"C-{i:07d}" for i in range(n)]
    rng.shuffle(ids)
    return ids


def last_surveyed(n: int, seed: int = 9) -> list[datetime]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [now - timedelta(seconds=rng.randint(0, 400 * 86_400)) for _ in range(n)]


def sqlite_sizes(path: str) -> dict[str, int]:
    """File bytes (database + WAL, after a checkpoint), pages, and the table's and its
    primary-key index's bytes from dbstat."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        objects = connection.execute(
            "SELECT name, sum(pgsize) FROM dbstat WHERE name = ? OR name LIKE ? GROUP BY name",
            (TABLE, f"sqlite_autoindex_{TABLE}%"),
        ).fetchall()
    finally:
        connection.close()
    files = sum(p.stat().st_size for p in Path(path).parent.glob(Path(path).name + "*"))
    return {
        "file_bytes": files,
        "page_size": page_size,
        "page_count": pages,
        **{f"dbstat:{name}": int(size) for name, size in objects},
    }


def fill_sqlite(url: str, ids: list[str], stamps: list[datetime]) -> tuple[dict[str, Any], float]:
    engine = make_engine(url)
    try:
        create_schema(engine)
        path = make_url(url).database
        assert path is not None
        before = sqlite_sizes(path)
        table = CustomerContactState.__table__  # type: ignore[attr-defined]
        started = time.perf_counter()
        for start in range(0, len(ids), 10_000):
            rows = [
                {"customer_id": c, "last_surveyed_at": t}
                for c, t in zip(
                    ids[start : start + 10_000], stamps[start : start + 10_000], strict=True
                )
            ]
            with engine.begin() as connection:
                connection.execute(insert(table), rows)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    after = sqlite_sizes(path)
    return {"before": before, "after": after}, seconds


def fill_postgres(url: str, ids: list[str], stamps: list[datetime]) -> tuple[dict[str, Any], float]:
    engine = make_engine(url)
    try:
        create_schema(engine)
    finally:
        engine.dispose()
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    sizes_sql = (
        f"SELECT pg_total_relation_size('{TABLE}'), pg_relation_size('{TABLE}'), "
        f"pg_indexes_size('{TABLE}')"
    )
    with psycopg.connect(conninfo, autocommit=True) as connection:
        before = connection.execute(sizes_sql).fetchone()
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {TABLE} (customer_id, last_surveyed_at) FROM STDIN") as copy,
        ):
            for row in zip(ids, stamps, strict=True):
                copy.write_row(row)
        seconds = time.perf_counter() - started
        connection.execute(f"VACUUM ANALYZE {TABLE}")  # steady state: visibility/free-space maps
        after = connection.execute(sizes_sql).fetchone()
    assert before is not None and after is not None
    names = ("total_bytes", "heap_bytes", "index_bytes")
    return {
        "before": dict(zip(names, before, strict=True)),
        "after": dict(zip(names, after, strict=True)),
    }, seconds


def run(ctx: Context) -> list[Figure]:
    n = ctx.pick(quick=100_000, full=1_000_000)
    stamps = last_surveyed(n)
    figures = []
    with Stack(ctx.workdir / NAME) as stack:
        for shape in ("short", "uuid"):
            ids = customer_ids(n, shape)
            payload = sum(len(i) for i in ids) / n + 8
            id_note = "ids like C-0001234" if shape == "short" else "UUID ids (36 chars)"
            url = f"sqlite:///{stack.workdir / f'state-{shape}.db'}"
            sizes, seconds = fill_sqlite(url, ids, stamps)
            per = (sizes["after"]["file_bytes"] - sizes["before"]["file_bytes"]) / n
            figures.append(_figure("sqlite", shape, id_note, n, per, payload, sizes, seconds))
            with ctx.pg.database("cxbench_state") as pg_url:
                sizes, seconds = fill_postgres(pg_url, ids, stamps)
            per = (sizes["after"]["total_bytes"] - sizes["before"]["total_bytes"]) / n
            figures.append(_figure("postgres", shape, id_note, n, per, payload, sizes, seconds))
    return figures


def _figure(
    db: str,
    shape: str,
    id_note: str,
    n: int,
    per: float,
    payload: float,
    sizes: dict[str, Any],
    seconds: float,
) -> Figure:
    what = "file growth" if db == "sqlite" else "pg_total_relation_size"
    return Figure(
        key=f"state.{db}.{shape}_ids.bytes_per_customer",
        label=f"state: {TABLE} in {db}, {n:,} customers, {id_note}",
        value=per,
        unit="bytes/customer",
        ratio=per / payload,
        ratio_to=f"payload ({payload:.0f} B: id + timestamp)",
        target=f"≤ {TARGET} B/customer",
        passed=per <= TARGET,
        higher_is_better=False,
        details={
            "customers": n,
            "measured_as": what,
            "insert_rows_per_s": round(n / seconds),
            "total_mb": round(per * n / 2**20, 1),
            **sizes,
        },
    )
