"""timers: the scheduler's tick with a million pending survey timers.

A tick asks for the timers due now (models.store.survey_timers.fire_due_timers). With the
due_at index it reads only those; a full scan would grow with the pending count. The
benchmark fills survey_timers with N timers due in the future (random, up to a year out)
plus 500 due now, and times (a) an idle tick (nothing due) and (b) a tick that fires the
500, at N = 10,000 and N = 1,000,000 (quick: 100,000). The ratio large/small near 1× shows
the cost does not grow with what is pending. SQLite and PostgreSQL, same code.
"""

from __future__ import annotations

import random
import statistics
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, text

from models.rules import load_rules
from models.store.engine import make_engine
from models.store.schema import create_schema
from models.store.survey_timers import fire_due_timers
from models.store.tables import SurveyDecision, SurveyTimer
from tests.benchmarks.report import Figure
from tests.benchmarks.runner_context import Context

NAME = "timers"
DUE_NOW = 500
TARGET_RATIO = 2.0
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _rows(n: int, due_now: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    timers, decisions = [], []
    for i in range(n + due_now):
        due = (
            NOW - timedelta(seconds=rng.randint(1, 3600))
            if i < due_now
            else NOW + timedelta(seconds=rng.randint(60, 365 * 86_400))
        )
        decision_id = f"d-{seed}-{i:08d}"
        customer = f"C-{i:08d}"
        timers.append(
            {
                "decision_id": decision_id,
                "customer_id": customer,
                "programme": "transactional",
                "rule": "after-contact",
                "episode": f"event:e-{i}",
                "event_id": f"e-{i}",
                "repeat": 0,
                "first_due_at": due,
                "due_at": due,
                "email": f"c{i}@example.nl",
                "phone": None,
                "name": None,
                "locale": "nl",
                "timezone": None,
                "kind": "purchase",
                "channel": "web",
                "partner": None,
                "product": None,
            }
        )
        decisions.append(
            {
                "decision_id": decision_id,
                "event_id": f"e-{i}",
                "customer_id": customer,
                "programme": "transactional",
                "rule": "after-contact",
                "rules_version": "bench",
                "repeat": 0,
                "outcome": "pending",
                "reason": "scheduled",
                "due_at": due,
                "invitation_id": None,
                "decided_at": NOW - timedelta(days=1),
                "resolved_at": None,
            }
        )
    return timers, decisions


def _fill(engine: Engine, n: int, seed: int) -> None:
    create_schema(engine)
    timers, decisions = _rows(n, DUE_NOW, seed)
    for start in range(0, len(timers), 20_000):
        with engine.begin() as connection:
            connection.execute(insert(SurveyDecision.__table__), decisions[start : start + 20_000])  # type: ignore[attr-defined]
            connection.execute(insert(SurveyTimer.__table__), timers[start : start + 20_000])  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def _time_ticks(engine: Engine) -> dict[str, Any]:
    rules = load_rules()
    idle_before = NOW - timedelta(hours=2)  # before every due timer: an idle tick
    idle = []
    for _ in range(20):
        started = time.perf_counter()
        result = fire_due_timers(engine, rules, idle_before)
        idle.append(time.perf_counter() - started)
        assert not result.reasons
    started = time.perf_counter()
    fired = fire_due_timers(engine, rules, NOW, limit=DUE_NOW)
    firing = time.perf_counter() - started
    assert sum(fired.reasons.values()) == DUE_NOW, fired.reasons
    return {"idle_ms": statistics.median(idle) * 1000, "fire_500_ms": firing * 1000}


def _plan(engine: Engine) -> str:
    sql = "SELECT decision_id FROM survey_timers WHERE due_at <= :t ORDER BY due_at LIMIT 500"
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(text("EXPLAIN QUERY PLAN " + sql), {"t": NOW}).all()
            return "; ".join(str(r[-1]) for r in rows)
        rows = connection.execute(text("EXPLAIN " + sql), {"t": NOW}).all()
        return "; ".join(str(r[0]).strip() for r in rows[:3])


def run(ctx: Context) -> list[Figure]:
    small, large = 10_000, ctx.pick(quick=100_000, full=1_000_000)
    figures = []
    for db in ("sqlite", "postgres"):
        measured: dict[int, dict[str, Any]] = {}
        plan = ""
        # A first pass with nothing else pending warms SQLAlchemy's statement caches, so
        # the first measured size does not pay for compiling the firing statements.
        for n in (0, small, large):
            with ExitStack() as stack:
                url = (
                    f"sqlite:///{ctx.workdir / f'timers-{db}-{n}.db'}"
                    if db == "sqlite"
                    else stack.enter_context(ctx.pg.database(f"cxbench_timers_{n}"))
                )
                engine = make_engine(url)
                stack.callback(engine.dispose)
                _fill(engine, n, seed=n)
                measured[n] = _time_ticks(engine)
                plan = _plan(engine)
        for what, label in (("idle_ms", "idle tick"), ("fire_500_ms", "tick firing 500")):
            ratio = measured[large][what] / measured[small][what]
            figures.append(
                Figure(
                    key=f"timers.{db}.{what}",
                    label=f"timers: {label}, {large:,} pending ({db})",
                    value=measured[large][what],
                    unit="ms",
                    ratio=ratio,
                    ratio_to=f"the same with {small:,} pending ({measured[small][what]:.2f} ms)",
                    target=f"≤ {TARGET_RATIO}× (no full scan)",
                    passed=ratio <= TARGET_RATIO,
                    higher_is_better=False,
                    details={
                        "pending": large,
                        "plan": plan,
                        **{str(k): v for k, v in measured.items()},
                    },
                )
            )
    return figures
