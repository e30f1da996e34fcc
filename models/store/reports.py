"""The numbers people steer by, read from the aggregates and the task tables.

Survey figures (NPS, CSAT, CES, response rate) are sums over agg_scores / agg_invitations
rows, so they cost a GROUP BY over a few rows per day and dimension, never a scan of the
answers. NPS and CSAT come with a 95 % margin of error and are "insufficient" below the
minimum n (models.stats). Closed-loop and customer-service figures are read from the task
and contact tables for the period asked. What the rows and figures are is models.reports.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, case, func, select
from sqlmodel import Session, SQLModel, col

from models.dashboard import (
    Breakdown,
    DashboardData,
    Figure,
    TeamTasks,
    TrendPoint,
    estimate_text,
    percent_text,
)
from models.reports import (
    REPORTS,
    ClosedLoop,
    CustomerService,
    Period,
    ReportError,
    ScoreRow,
    Tabular,
    TeamTaskCount,
    as_record,
    ranking,
    share,
)
from models.stats import MIN_N, mean_value, nps_estimate, proportion_estimate
from models.store.aggregates import INVITATION_COUNTERS, SCORE_COUNTERS, report_zone
from models.store.engine import transaction
from models.store.tables import (
    AGGREGATE_DIMENSIONS,
    AGGREGATE_GRAINS,
    AggregateInvitations,
    AggregateScores,
    ContactEvent,
    FollowupTask,
    SurveyAnswer,
    SurveyResponse,
)
from models.task_lifecycle import ACTIVE_STATUSES, TaskStatus

# Contacts with customer service, for the repeat-contact rate.
SERVICE_KINDS = ("inquiry", "support_contact", "complaint", "after_sales")
# Yes/no questions that say whether the customer's question was solved at first contact.
FIRST_CONTACT_QUESTIONS = ("solved_first_contact",)
ANSWER_ORIGINS = ("detractor", "unhappy")  # tasks opened by an answer, not a complaint


def _check(by: Sequence[str], grain: str | None) -> None:
    unknown = [d for d in by if d not in AGGREGATE_DIMENSIONS]
    if unknown:
        raise ReportError(
            f"unknown dimension {unknown[0]!r}; choose from {', '.join(AGGREGATE_DIMENSIONS)}"
        )
    if grain is not None and grain not in AGGREGATE_GRAINS:
        raise ReportError(f"unknown grain {grain!r}; choose from {', '.join(AGGREGATE_GRAINS)}")


def _period_start(day: date, grain: str) -> date:
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def _sums(
    session: Session,
    model: type[SQLModel],
    counters: Sequence[str],
    by: Sequence[str],
    period: Period,
    grain: str | None,
    where: Mapping[str, str],
) -> dict[tuple[tuple[str, ...], date | None], dict[str, int]]:
    table = model.__table__  # type: ignore[attr-defined]  # set by SQLModel
    stored = grain or "day"  # a total over any range is the sum of its days
    group = [table.c[d] for d in by] + ([table.c.period_start] if grain else [])
    query = (
        select(*group, *(func.sum(table.c[c]).label(c) for c in counters))
        .where(
            table.c.grain == stored,
            table.c.period_start >= _period_start(period.since, stored),
            table.c.period_start <= period.until,
        )
        .group_by(*group)
    )
    for dimension, value in where.items():
        query = query.where(table.c[dimension] == value)
    result = {}
    for row in session.execute(query).mappings():
        key = tuple(str(row[d]) for d in by)
        result[(key, row["period_start"] if grain else None)] = {
            c: int(row[c] or 0) for c in counters
        }
    return result


def score_rows(
    engine: Engine,
    period: Period,
    *,
    by: Sequence[str] = (),
    grain: str | None = None,
    where: Mapping[str, str] | None = None,
    min_n: int = MIN_N,
) -> list[ScoreRow]:
    """NPS, CSAT, CES and response rate per group of *by* dimensions (and per *grain*
    period if given) over *period*, filtered by *where* (dimension → value)."""
    where = where or {}
    _check([*by, *where], grain)
    with transaction(engine) as session:
        scores = _sums(session, AggregateScores, SCORE_COUNTERS, by, period, grain, where)
        invitations = _sums(
            session, AggregateInvitations, INVITATION_COUNTERS, by, period, grain, where
        )
    rows = []
    for key_period in sorted(
        set(scores) | set(invitations), key=lambda kp: (kp[1] or date.min, kp[0])
    ):
        counts = {**dict.fromkeys(SCORE_COUNTERS, 0), **scores.get(key_period, {})}
        counts.update(invitations.get(key_period, dict.fromkeys(INVITATION_COUNTERS, 0)))
        rows.append(
            ScoreRow(
                key=key_period[0],
                period=key_period[1],
                counts=counts,
                nps=nps_estimate(
                    counts["nps_promoters"],
                    counts["nps_passives"],
                    counts["nps_detractors"],
                    min_n=min_n,
                ),
                csat=proportion_estimate(counts["csat_top2"], counts["csat_n"], min_n=min_n),
                response_rate=proportion_estimate(
                    min(counts["responded"], counts["invited"]), counts["invited"], min_n=min_n
                ),
                ces_mean=mean_value(counts["ces_sum"], counts["ces_n"], min_n=min_n),
            )
        )
    return rows


def today_in_report_zone(engine: Engine, now: datetime) -> date:
    with transaction(engine) as session:
        return now.astimezone(report_zone(session)).date()


def _zone_bounds(session: Session, period: Period) -> tuple[datetime, datetime]:
    zone = report_zone(session)
    start = datetime.combine(period.since, datetime.min.time(), zone)
    end = datetime.combine(period.until + timedelta(days=1), datetime.min.time(), zone)
    return start, end


# --- closed loop --------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of *values* by linear interpolation; None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def tasks_opened(engine: Engine, period: Period) -> list[FollowupTask]:
    """Every task opened in *period* (complaints too)."""
    with transaction(engine) as session:
        start, end = _zone_bounds(session, period)
        return list(
            session.execute(
                select(FollowupTask).where(
                    col(FollowupTask.opened_at) >= start, col(FollowupTask.opened_at) < end
                )
            ).scalars()
        )


def closed_loop(
    engine: Engine,
    period: Period,
    now: datetime,
    *,
    teams: Sequence[str] | None = None,
    min_n: int = MIN_N,
) -> ClosedLoop:
    """How the follow-up of unhappy customers whose task opened in *period* went."""
    tasks = [t for t in tasks_opened(engine, period) if teams is None or t.team in teams]
    return closed_loop_of(tasks, now, min_n=min_n)


def closed_loop_of(
    tasks: Sequence[FollowupTask], now: datetime, *, min_n: int = MIN_N
) -> ClosedLoop:
    """closed_loop over *tasks* (those opened by an answer count; complaints do not)."""
    tasks = [t for t in tasks if t.origin in ANSWER_ORIGINS]
    decided = in_sla = 0
    to_contact: list[float] = []
    to_close: list[float] = []
    causes: Counter[str] = Counter()
    closed = informed = recovery = recovered = 0
    for task in tasks:
        due = task.first_contact_due_at
        if task.contacted_at is not None:
            decided += 1
            in_sla += due is None or task.contacted_at <= due
            to_contact.append((task.contacted_at - task.opened_at).total_seconds() / 3600)
        elif due is not None and due < now and task.status != TaskStatus.CANCELLED:
            decided += 1
        if task.status == TaskStatus.CLOSED and task.closed_at is not None:
            closed += 1
            informed += task.informed_at is not None
            to_close.append((task.closed_at - task.opened_at).total_seconds() / 3600)
            if task.root_cause:
                causes[task.root_cause] += 1
        if task.recovered is not None:
            recovery += 1
            recovered += task.recovered
    to_contact.sort()
    to_close.sort()
    return ClosedLoop(
        opened=len(tasks),
        first_contact_decided=decided,
        contacted_in_sla=in_sla,
        in_sla=share(in_sla, decided),
        hours_to_contact_median=_percentile(to_contact, 0.5),
        hours_to_contact_p90=_percentile(to_contact, 0.9),
        hours_to_close_median=_percentile(to_close, 0.5),
        hours_to_close_p90=_percentile(to_close, 0.9),
        closed=closed,
        closed_informed=informed,
        informed=share(informed, closed),
        recovery_answers=recovery,
        recovered=proportion_estimate(recovered, recovery, min_n=min_n),
        root_causes=causes.most_common(),
    )


def open_tasks_by_team(engine: Engine, now: datetime) -> list[TeamTaskCount]:
    """Tasks still being worked, and how many of them are past their SLA, per team."""
    active = [s.value for s in ACTIVE_STATUSES]
    with transaction(engine) as session:
        rows = session.execute(
            select(
                col(FollowupTask.team),
                func.count(),
                func.sum(case((col(FollowupTask.sla_due_at) < now, 1), else_=0)),
            )
            .where(col(FollowupTask.status).in_(active))
            .group_by(col(FollowupTask.team))
            .order_by(col(FollowupTask.team))
        ).all()
    return [TeamTaskCount(team, int(n), int(overdue or 0)) for team, n, overdue in rows]


# --- customer service ------------------------------------------------------------------------


def customer_service(
    engine: Engine, period: Period, *, repeat_days: int = 7, min_n: int = MIN_N
) -> CustomerService:
    """Repeat-contact rate and first-contact resolution (from the yes/no answer)."""
    window = timedelta(days=repeat_days)
    with transaction(engine) as session:
        start, end = _zone_bounds(session, period)
        contacts = session.execute(
            select(
                col(ContactEvent.event_id),
                col(ContactEvent.customer_id),
                col(ContactEvent.case_id),
                col(ContactEvent.occurred_at),
            ).where(
                col(ContactEvent.kind).in_(SERVICE_KINDS),
                col(ContactEvent.occurred_at) >= start,
                col(ContactEvent.occurred_at) < end + window,
            )
        ).all()
        answers = session.execute(
            select(col(SurveyAnswer.value_number))
            .join(SurveyResponse, col(SurveyResponse.response_id) == col(SurveyAnswer.response_id))
            .where(
                col(SurveyAnswer.question).in_(FIRST_CONTACT_QUESTIONS),
                col(SurveyAnswer.value_number).is_not(None),
                col(SurveyResponse.submitted_at) >= start,
                col(SurveyResponse.submitted_at) < end,
            )
        ).scalars()
        yes_no = [bool(v) for v in answers]
    later: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for c in contacts:
        later[("customer", c.customer_id)].append(c.occurred_at)
        if c.case_id:
            later[("case", c.case_id)].append(c.occurred_at)
    in_period = [c for c in contacts if start <= c.occurred_at < end]
    repeated = 0
    for c in in_period:
        keys = [("customer", c.customer_id)] + ([("case", c.case_id)] if c.case_id else [])
        if any(c.occurred_at < t <= c.occurred_at + window for k in keys for t in later[k]):
            repeated += 1
    resolved = sum(yes_no)
    return CustomerService(
        contacts=len(in_period),
        repeated=repeated,
        repeat_days=repeat_days,
        repeat_rate=share(repeated, len(in_period)),
        first_contact_answers=len(yes_no),
        first_contact_resolved=resolved,
        first_contact_resolution=proportion_estimate(resolved, len(yes_no), min_n=min_n),
    )


_FIGURES = {
    "nps": ("n", "nps", "nps_moe", "nps_low", "nps_high", "promoters", "passives", "detractors"),
    "csat": ("csat_n", "csat", "csat_moe", "csat_low", "csat_high"),
    "ces": ("ces_n", "ces_mean"),
    "response-rate": ("invited", "responded", "response_rate", "response_rate_moe"),
}


def tabulate(
    engine: Engine,
    report: str,
    period: Period,
    now: datetime,
    *,
    by: Sequence[str] = (),
    grain: str | None = None,
    where: Mapping[str, str] | None = None,
    min_n: int = MIN_N,
) -> Tabular:
    """One of REPORTS as a table; 'partners' is NPS by partner, best first, with a rank.
    *grain* adds a row per period to the survey reports (partners and tasks are totals)."""
    if report not in REPORTS:
        raise ReportError(f"unknown report {report!r}; choose from {', '.join(REPORTS)}")
    if report == "tasks":
        return _task_table(engine, period, now, min_n)
    if report == "partners":
        by, grain = ("partner",), None
    rows = score_rows(engine, period, by=by, grain=grain, where=where, min_n=min_n)
    figures = _FIGURES["nps" if report == "partners" else report]
    leading = (["period_start"] if grain else []) + list(by)
    if report == "partners":
        rows = ranking(rows)
        leading = ["rank", *leading]
    records = []
    for rank, row in enumerate(rows, start=1):
        record = as_record(row, by)
        record["rank"] = rank if row.nps.sufficient else None
        records.append({c: record.get(c) for c in (*leading, *figures)})
    return Tabular([*leading, *figures], records)


def _task_table(engine: Engine, period: Period, now: datetime, min_n: int) -> Tabular:
    columns = [
        "team",
        "open",
        "overdue",
        "opened",
        "contacted_in_sla",
        "hours_to_contact_median",
        "hours_to_contact_p90",
        "closed",
        "hours_to_close_median",
        "hours_to_close_p90",
        "closed_informed",
        "recovered",
    ]
    open_counts = {t.team: t for t in open_tasks_by_team(engine, now)}
    by_team: dict[str, list[FollowupTask]] = defaultdict(list)
    for task in tasks_opened(engine, period):
        by_team[task.team].append(task)
    rows = []
    for team in sorted(set(by_team) | set(open_counts)):
        loop = closed_loop_of(by_team[team], now, min_n=min_n)
        counts = open_counts.get(team, TeamTaskCount(team, 0, 0))
        rows.append(
            {
                "team": team,
                "open": counts.open,
                "overdue": counts.overdue,
                "opened": loop.opened,
                "contacted_in_sla": loop.in_sla,
                "hours_to_contact_median": loop.hours_to_contact_median,
                "hours_to_contact_p90": loop.hours_to_contact_p90,
                "closed": loop.closed,
                "hours_to_close_median": loop.hours_to_close_median,
                "hours_to_close_p90": loop.hours_to_close_p90,
                "closed_informed": loop.informed,
                "recovered": loop.recovered.value,
            }
        )
    return Tabular(columns, rows)


# --- the dashboard ----------------------------------------------------------------------------


def _hours(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} h"


def dashboard_data(
    engine: Engine,
    period: Period,
    grain: str,
    now: datetime,
    *,
    min_n: int = MIN_N,
    repeat_days: int = 7,
) -> DashboardData:
    """Everything the dashboard shows for *period*, its trend per *grain*."""
    _check((), grain)
    overall = score_rows(engine, period, min_n=min_n)
    total = overall[0] if overall else None
    empty = nps_estimate(0, 0, 0, min_n=min_n)

    def breakdown(dimension: str) -> list[Breakdown]:
        rows = ranking(score_rows(engine, period, by=[dimension], min_n=min_n))
        return [
            Breakdown(label=r.key[0], nps=r.nps, csat=r.csat) for r in rows if r.nps.n or r.csat.n
        ]

    loop = closed_loop(engine, period, now, min_n=min_n)
    service = customer_service(engine, period, repeat_days=repeat_days, min_n=min_n)
    closed_loop_figures = [
        Figure(
            "Detractors contacted within SLA",
            "–" if loop.in_sla is None else percent_text(loop.in_sla),
            f"{loop.contacted_in_sla} of {loop.first_contact_decided}",
        ),
        Figure(
            "Time to first contact (median)",
            _hours(loop.hours_to_contact_median),
            f"p90 {_hours(loop.hours_to_contact_p90)}",
        ),
        Figure(
            "Time to closure (median)",
            _hours(loop.hours_to_close_median),
            f"p90 {_hours(loop.hours_to_close_p90)}",
        ),
        Figure(
            "Closed with the customer informed",
            "–" if loop.informed is None else percent_text(loop.informed),
            f"{loop.closed_informed} of {loop.closed}",
        ),
        Figure("Recovered detractors", estimate_text(loop.recovered, "csat", min_n)),
    ]
    service_figures = [
        Figure(
            f"Repeat contacts within {repeat_days} days",
            "–" if service.repeat_rate is None else percent_text(service.repeat_rate),
            f"{service.repeated} of {service.contacts} service contacts",
        ),
        Figure(
            "First-contact resolution",
            estimate_text(service.first_contact_resolution, "csat", min_n),
        ),
        Figure(
            "Response rate",
            estimate_text(total.response_rate, "csat", min_n) if total else "–",
            f"{total.counts['responded']} of {total.counts['invited']} surveys" if total else "",
        ),
    ]
    return DashboardData(
        since=period.since,
        until=period.until,
        grain=grain,
        overall=total.nps if total else empty,
        overall_csat=total.csat if total else empty,
        trend=[
            TrendPoint(period_start=r.period, nps=r.nps)
            for r in score_rows(engine, period, grain=grain, min_n=min_n)
            if r.period is not None and r.nps.n
        ],
        distribution=total.distribution if total else [0] * 11,
        by_channel=breakdown("channel"),
        by_partner=breakdown("partner"),
        by_touchpoint=breakdown("touchpoint"),
        tasks=[TeamTasks(t.team, t.open, t.overdue) for t in open_tasks_by_team(engine, now)],
        root_causes=loop.root_causes,
        closed_loop=closed_loop_figures,
        customer_service=service_figures,
        min_n=min_n,
    )
