"""reports: what the incremental aggregates cost on the write path and save on the read path.

cxloop counts every scored answer and issued survey into agg_scores/agg_invitations (per
day, ISO week and month and per programme, partner, channel, touchpoint, product, team) in
the transaction that scores or issues it (models.store.aggregates), and the reports sum those rows.

Seed: N scored answers (100,000; quick 20,000) on 2N surveys issued over 365 days, 20
partners, 5 channels, 6 touchpoints, 3 programmes, raw rows inserted with Core executemany,
then models.store.aggregates.rebuild_aggregates fills the aggregates (its time is a figure). Plus W
answered but not yet scored surveys of the last 3 days for the write path.

1. Write: models.store.surveys.record_scores on batches of 500 of the W answers, alternating
   batches with the aggregates and with models.store.surveys.add_answers patched to a no-op
   (the same UPDATEs without the aggregates); answers/s with ÷ without.
2. Read: score_rows(by=["partner"]) over 90 days, and by week over 365 days, against a
   brute-force GROUP BY over survey_responses JOIN survey_invitations LEFT JOIN
   contact_events (and survey_invitations LEFT JOIN survey_responses for invited/responded)
   giving the same counters; the two are checked equal. Median of 5 after a warm-up.
3. Dashboard: models.store.reports.dashboard_data for 90 days by week, and
   models.dashboard.render_dashboard on its result.

SQLite (a file, as cxloop's default) and PostgreSQL, same code.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest import mock

from sqlalchemy import Date, Engine, and_, case, cast, func, insert, select, text
from sqlalchemy.sql.elements import ColumnElement

import models.store.surveys
from agents.web.pages.dashboard import render_dashboard
from models.reports import Period
from models.scoring import csat_satisfied, nps_category
from models.store.aggregates import SCORE_COUNTERS, rebuild_aggregates
from models.store.engine import make_engine
from models.store.reports import dashboard_data, score_rows
from models.store.schema import create_schema
from models.store.surveys import record_scores
from models.store.tables import AggregateInvitations, AggregateScores
from models.store.tables import ContactEvent as _ContactEvent
from models.store.tables import SurveyInvitation as _SurveyInvitation
from models.store.tables import SurveyResponse as _SurveyResponse
from tests.benchmarks.report import Figure
from tests.benchmarks.runner_context import Context

NAME = "reports"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BATCH = 500
REPEATS = 5
TARGET_WRITE = 0.5  # with aggregates ≥ 0.5× the answers/s without
TARGET_READ = 0.2  # aggregates ≤ 0.2× the time of the scan
TARGET_DASHBOARD_MS = 1000.0
PARTNERS = [f"partner-{i:02d}" for i in range(20)]
CHANNELS = ["phone", "email", "chat", "shop", "web"]
TOUCHPOINTS = ["billing", "fault", "order", "delivery", "move", "contract"]
PROGRAMMES = ["transactional", "support", "relationship"]

EVENTS = _ContactEvent.__table__  # type: ignore[attr-defined]
INVITATIONS = _SurveyInvitation.__table__  # type: ignore[attr-defined]
RESPONSES = _SurveyResponse.__table__  # type: ignore[attr-defined]


# --- seed -----------------------------------------------------------------------------------


def _rows(
    n: int, unscored: int, seed: int = 11
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Contact events and surveys (2n over 365 days, *unscored* more in the last 3 days) and
    their answers: n scored, *unscored* not yet."""
    rng = random.Random(seed)
    events, invitations, responses = [], [], []
    answered = set(rng.sample(range(2 * n), n))
    for i in range(2 * n + unscored):
        recent = i >= 2 * n
        created = NOW - timedelta(
            seconds=rng.randint(3600, 3 * 86_400)
            if recent
            else rng.randint(3 * 86_400, 365 * 86_400)
        )
        occurred = created - timedelta(minutes=rng.randint(5, 600))
        partner, channel = rng.choice(PARTNERS), rng.choice(CHANNELS)
        programme, touchpoint = rng.choice(PROGRAMMES), rng.choice(TOUCHPOINTS)
        customer = f"C-{rng.randrange(10 * n):08d}"
        events.append(
            {
                "event_id": f"e-{i}",
                "occurred_at": occurred,
                "kind": "inquiry",
                "channel": channel,
                "customer_id": customer,
                "locale": "nl",
                "partner": partner,
                "product": None,
                "case_id": None,
                "region": None,
                "inquiry_type": touchpoint,
                "team": None,
                "received_at": occurred,
            }
        )
        invitations.append(
            {
                "invitation_id": f"inv-{i:08d}",
                "event_id": f"e-{i}",
                "customer_id": customer,
                "email": f"c{i}@example.nl",
                "locale": "nl",
                "kind": "inquiry",
                "channel": channel,
                "partner": partner,
                "programme": programme,
                "rule": "after-contact",
                "created_at": created,
                "delivery_status": "sent",
                "sent_at": created,
            }
        )
        if not recent and i not in answered:
            continue
        submitted = min(created + timedelta(seconds=rng.randint(60, 2 * 86_400)), NOW)
        nps = rng.choice([0, 2, 4, 5, 6, 6, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10])
        csat = rng.choice([None, 1, 2, 3, 4, 4, 5, 5])
        ces = rng.choice([None, None, 2, 4, 5, 6, 7])
        responses.append(
            {
                "response_id": f"r-{i:08d}",
                "invitation_id": f"inv-{i:08d}",
                "customer_id": customer,
                "nps": nps,
                "csat": csat,
                "ces": ces,
                "answers": {"nps": nps},
                "submitted_at": submitted,
                "published_at": submitted,
                "nps_category": None if recent else nps_category(nps).value,
                "csat_satisfied": None if recent or csat is None else csat_satisfied(csat),
                "scored_at": None if recent else submitted + timedelta(seconds=30),
            }
        )
    return events, invitations, responses


def _seed(engine: Engine, n: int, unscored: int) -> dict[str, Any]:
    create_schema(engine)
    events, invitations, responses = _rows(n, unscored)
    started = time.perf_counter()
    for table, rows in ((EVENTS, events), (INVITATIONS, invitations), (RESPONSES, responses)):
        for start in range(0, len(rows), 10_000):
            with engine.begin() as connection:
                connection.execute(insert(table), rows[start : start + 10_000])
    seeded = time.perf_counter() - started
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    started = time.perf_counter()
    counted = rebuild_aggregates(engine, NOW)
    rebuild = time.perf_counter() - started
    assert counted == n, (counted, n)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
        agg_rows = {
            model.__tablename__: dict(
                connection.execute(
                    select(model.__table__.c.grain, func.count()).group_by(  # type: ignore[attr-defined]
                        model.__table__.c.grain  # type: ignore[attr-defined]
                    )
                ).all()
            )
            for model in (AggregateScores, AggregateInvitations)
        }
    return {
        "raw_rows": {
            "contact_events": len(events),
            "survey_invitations": len(invitations),
            "survey_responses": len(responses),
        },
        "seed_s": round(seeded, 1),
        "rebuild_s": rebuild,
        "aggregate_rows": agg_rows,
    }


# --- brute force ----------------------------------------------------------------------------


def _week(column: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return func.date(column, "weekday 0", "-6 days")
    return cast(func.date_trunc("week", func.timezone("UTC", column)), Date)


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def brute_force(
    engine: Engine, period: Period, grain: str | None
) -> dict[tuple[tuple[str, ...], date | None], dict[str, int]]:
    """score_rows(by=["partner"], grain=grain)'s counters from the raw rows."""
    dialect = engine.dialect.name
    since = period.since - timedelta(days=period.since.weekday()) if grain else period.since
    until = period.until - timedelta(days=period.until.weekday()) + timedelta(days=7)
    if not grain:
        until = period.until + timedelta(days=1)
    lo = datetime.combine(since, datetime.min.time(), UTC)
    hi = datetime.combine(until, datetime.min.time(), UTC)
    r, i, e = RESPONSES.c, INVITATIONS.c, EVENTS.c
    partner = func.coalesce(i.partner, "").label("partner")

    def one(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    score_group: list[Any] = [partner]
    if grain:
        score_group.append(_week(r.submitted_at, dialect).label("period"))
    scores = (
        select(
            *score_group,
            func.count().label("responses"),
            func.count(r.nps).label("nps_n"),
            one(r.nps >= 9).label("nps_promoters"),
            one(and_(r.nps >= 7, r.nps <= 8)).label("nps_passives"),
            one(r.nps <= 6).label("nps_detractors"),
            *(one(r.nps == k).label(f"nps_{k}") for k in range(11)),
            func.count(r.csat).label("csat_n"),
            one(r.csat >= 4).label("csat_top2"),
            func.count(r.ces).label("ces_n"),
            func.coalesce(func.sum(r.ces), 0).label("ces_sum"),
        )
        .select_from(
            RESPONSES.join(INVITATIONS, i.invitation_id == r.invitation_id).outerjoin(
                EVENTS, e.event_id == i.event_id
            )
        )
        .where(r.scored_at.is_not(None), r.submitted_at >= lo, r.submitted_at < hi)
        .group_by(*score_group)
    )
    invite_group: list[Any] = [partner]
    if grain:
        invite_group.append(_week(i.created_at, dialect).label("period"))
    invited = (
        select(
            *invite_group,
            func.count().label("invited"),
            func.count(r.scored_at).label("responded"),
        )
        .select_from(
            INVITATIONS.outerjoin(RESPONSES, r.invitation_id == i.invitation_id).outerjoin(
                EVENTS, e.event_id == i.event_id
            )
        )
        .where(i.created_at >= lo, i.created_at < hi)
        .group_by(*invite_group)
    )
    result: dict[tuple[tuple[str, ...], date | None], dict[str, int]] = {}
    with engine.connect() as connection:
        for query in (scores, invited):
            for row in connection.execute(query).mappings():
                key = ((row["partner"],), _as_date(row["period"]) if grain else None)
                counts = result.setdefault(key, {})
                counts.update({k: int(v) for k, v in row.items() if k not in ("partner", "period")})
    return result


def _from_aggregates(engine: Engine, period: Period, grain: str | None) -> Any:
    return score_rows(engine, period, by=["partner"], grain=grain)


def _same(rows: Any, brute: dict[tuple[tuple[str, ...], date | None], dict[str, int]]) -> None:
    counters = (*SCORE_COUNTERS, "invited", "responded")
    got = {
        (row.key, row.period): {c: row.counts[c] for c in counters}
        for row in rows
        if any(row.counts[c] for c in counters)
    }
    want = {k: {c: v.get(c, 0) for c in counters} for k, v in brute.items()}
    if got != want:
        wrong = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))[:3]
        raise AssertionError(
            f"aggregates and scan disagree on {len(wrong)}+ groups, e.g. "
            + "; ".join(f"{k}: {got.get(k)} != {want.get(k)}" for k in wrong)
        )


def _median_ms(call: Callable[[], Any]) -> tuple[float, Any]:
    result = call()  # warm-up: statement caches, database cache
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, result


# --- write path -----------------------------------------------------------------------------


@contextmanager
def _without_aggregates(on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    with mock.patch.object(models.store.surveys, "add_answers", return_value=None):
        yield


def _write_path(engine: Engine, unscored: int) -> dict[str, Any]:
    with engine.connect() as connection:
        pending = connection.execute(
            select(RESPONSES.c.response_id, RESPONSES.c.nps, RESPONSES.c.csat)
            .where(RESPONSES.c.scored_at.is_(None))
            .order_by(RESPONSES.c.response_id)
        ).all()
    assert len(pending) == unscored, (len(pending), unscored)
    random.Random(3).shuffle(pending)
    scores = [
        (
            rid,
            nps_category(nps).value if nps is not None else None,
            None if csat is None else csat_satisfied(csat),
        )
        for rid, nps, csat in pending
    ]
    batches = [scores[s : s + BATCH] for s in range(0, len(scores), BATCH)]
    seconds = {True: 0.0, False: 0.0}
    answers = {True: 0, False: 0}
    per_batch: dict[bool, list[float]] = {True: [], False: []}
    for index, batch in enumerate(batches):
        with_aggregates = index % 2 == 0
        with _without_aggregates(not with_aggregates):
            started = time.perf_counter()
            found = record_scores(engine, batch, NOW + timedelta(seconds=index))
            elapsed = time.perf_counter() - started
        assert len(found) == len(batch)
        if index < 2:  # one warm-up batch of each
            continue
        seconds[with_aggregates] += elapsed
        answers[with_aggregates] += len(batch)
        per_batch[with_aggregates].append(elapsed * 1000)
    return {
        "with_per_s": answers[True] / seconds[True],
        "without_per_s": answers[False] / seconds[False],
        "batches_measured": {"with": len(per_batch[True]), "without": len(per_batch[False])},
        "batch_ms_median": {
            "with": round(statistics.median(per_batch[True]), 2),
            "without": round(statistics.median(per_batch[False]), 2),
        },
    }


# --- run ------------------------------------------------------------------------------------


def _measure(engine: Engine, n: int, unscored: int) -> dict[str, Any]:
    seed = _seed(engine, n, unscored)
    today = NOW.date()
    reads = {}
    for what, period, grain in (
        ("partner_90d", Period(today - timedelta(days=89), today), None),
        ("partner_by_week_365d", Period(today - timedelta(days=364), today), "week"),
    ):
        agg_ms, rows = _median_ms(lambda p=period, g=grain: _from_aggregates(engine, p, g))
        scan_ms, brute = _median_ms(lambda p=period, g=grain: brute_force(engine, p, g))
        _same(rows, brute)
        reads[what] = {"aggregates_ms": agg_ms, "scan_ms": scan_ms, "groups": len(rows)}
    period = Period(today - timedelta(days=89), today)
    data_ms, data = _median_ms(lambda: dashboard_data(engine, period, "week", NOW))
    render_ms, html = _median_ms(lambda: render_dashboard(data))
    write = _write_path(engine, unscored)
    return {
        **seed,
        "reads": reads,
        "dashboard_data_ms": data_ms,
        "render_ms": render_ms,
        "html_bytes": len(html),
        "write": write,
    }


def run(ctx: Context) -> list[Figure]:
    n = ctx.pick(quick=20_000, full=100_000)
    unscored = ctx.pick(quick=10_000, full=20_000)
    figures = []
    for db in ("sqlite", "postgres"):
        with ExitStack() as stack:
            url = (
                f"sqlite:///{ctx.workdir / 'reports.db'}"
                if db == "sqlite"
                else stack.enter_context(ctx.pg.database("cxbench_reports"))
            )
            engine = make_engine(url)
            stack.callback(engine.dispose)
            m = _measure(engine, n, unscored)
        figures.extend(_figures(db, n, m))
    return figures


def _figures(db: str, n: int, m: dict[str, Any]) -> list[Figure]:
    write = m["write"]
    details = {k: v for k, v in m.items() if k not in ("reads", "write")}
    ratio = write["with_per_s"] / write["without_per_s"]
    figures = [
        Figure(
            key=f"reports.{db}.record_scores.answers_per_s",
            label=f"reports: record_scores with aggregates, batches of {BATCH} ({db})",
            value=write["with_per_s"],
            unit="answers/s",
            ratio=ratio,
            ratio_to=f"without aggregates ({write['without_per_s']:,.0f}/s)",
            target=f"≥ {TARGET_WRITE}×",
            passed=ratio >= TARGET_WRITE,
            details={**write, "scored_answers_in_db": n},
        )
    ]
    labels = {
        "partner_90d": "score_rows by partner, 90 days",
        "partner_by_week_365d": "score_rows by partner and week, 365 days",
    }
    for what, read in m["reads"].items():
        ratio = read["aggregates_ms"] / read["scan_ms"]
        figures.append(
            Figure(
                key=f"reports.{db}.{what}_ms",
                label=f"reports: {labels[what]}, {n:,} answers ({db})",
                value=read["aggregates_ms"],
                unit="ms",
                ratio=ratio,
                ratio_to=f"GROUP BY over the answers ({read['scan_ms']:.1f} ms)",
                target=f"≤ {TARGET_READ}×",
                passed=ratio <= TARGET_READ,
                higher_is_better=False,
                details={**read, **details},
            )
        )
    figures.append(
        Figure(
            key=f"reports.{db}.dashboard_data_ms",
            label=f"reports: dashboard_data, 90 days by week, {n:,} answers ({db})",
            value=m["dashboard_data_ms"],
            unit="ms",
            target=f"≤ {TARGET_DASHBOARD_MS:.0f} ms",
            passed=m["dashboard_data_ms"] <= TARGET_DASHBOARD_MS,
            higher_is_better=False,
            details=details,
        )
    )
    figures.append(
        Figure(
            key=f"reports.{db}.render_dashboard_ms",
            label=f"reports: render_dashboard on that data ({db})",
            value=m["render_ms"],
            unit="ms",
            higher_is_better=False,
            details={"html_bytes": m["html_bytes"]},
        )
    )
    figures.append(
        Figure(
            key=f"reports.{db}.rebuild_s",
            label=f"reports: rebuild_aggregates, {n:,} answers on {2 * n:,} surveys ({db})",
            value=m["rebuild_s"],
            unit="s",
            higher_is_better=False,
            details=details,
        )
    )
    return figures
