"""NPS, CSAT, CES and response-rate counts per period and dimensions, kept up to date
incrementally in the transactions that score an answer and issue a survey.

Every figure is a count or a sum, so a late answer adds to the period it belongs to, any
roll-up (all partners, a quarter) is a SUM, and a recomputation from the raw rows gives the
same numbers (rebuild_aggregates does exactly that). An answer is counted once: only the
transaction that sets its scored_at adds it; an invitation once: only the one that inserts
it. Rows are upserted in key order, so concurrent workers do not deadlock on them.

Periods are the day, ISO week (from Monday) and month of the timestamp in the reporting
time zone, stored in bi_settings so every worker buckets alike (UTC when unset).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, delete, select
from sqlmodel import Session, SQLModel, col

from models.scoring import NpsCategory, csat_satisfied, nps_category
from models.store.engine import dialect_insert, transaction
from models.store.tables import (
    AGGREGATE_DIMENSIONS,
    AggregateInvitations,
    AggregateScores,
    BiSetting,
    ContactEvent,
    SurveyInvitation,
    SurveyResponse,
)

REPORT_TIMEZONE = "report_timezone"
SCORE_COUNTERS = (
    "responses",
    "nps_n",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
    *(f"nps_{i}" for i in range(11)),
    "csat_n",
    "csat_top2",
    "ces_n",
    "ces_sum",
)
INVITATION_COUNTERS = ("invited", "responded")
_CHUNK = 500

# (grain, period_start, programme, partner, channel, touchpoint, product, team)
Key = tuple[str, date, str, str, str, str, str, str]


@dataclass(frozen=True)
class Dims:
    """Where an answer or survey belongs: '' for what is not known."""

    programme: str = ""
    partner: str = ""
    channel: str = ""
    touchpoint: str = ""
    product: str = ""
    team: str = ""

    def values(self) -> tuple[str, str, str, str, str, str]:
        return (
            self.programme,
            self.partner,
            self.channel,
            self.touchpoint,
            self.product,
            self.team,
        )


def periods(at: datetime, zone: ZoneInfo) -> list[tuple[str, date]]:
    """The day, ISO week (Monday) and month *at* falls in, in *zone*."""
    day = at.astimezone(zone).date()
    return [
        ("day", day),
        ("week", day - timedelta(days=day.weekday())),
        ("month", day.replace(day=1)),
    ]


def score_counts(nps: int | None, csat: int | None, ces: int | None) -> Counter[str]:
    """What one answer adds to its rows."""
    counts: Counter[str] = Counter(responses=1)
    if nps is not None:
        counts["nps_n"] += 1
        counts[f"nps_{nps}"] += 1
        category = nps_category(nps)
        counts[
            {
                NpsCategory.PROMOTER: "nps_promoters",
                NpsCategory.PASSIVE: "nps_passives",
                NpsCategory.DETRACTOR: "nps_detractors",
            }[category]
        ] += 1
    if csat is not None:
        counts["csat_n"] += 1
        counts["csat_top2"] += int(csat_satisfied(csat))
    if ces is not None:
        counts["ces_n"] += 1
        counts["ces_sum"] += ces
    return counts


def report_zone(session: Session) -> ZoneInfo:
    """The reporting time zone the aggregates are bucketed in (UTC when not set)."""
    value = session.get(BiSetting, REPORT_TIMEZONE)
    return ZoneInfo(value.value if value else "UTC")


def check_zone(name: str) -> ZoneInfo:
    """*name* as a time zone, or ValueError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Amsterdam)"
        ) from None


_INVITATION_DIMS = (
    col(SurveyInvitation.invitation_id),
    col(SurveyInvitation.created_at),
    col(SurveyInvitation.programme),
    col(SurveyInvitation.partner),
    col(SurveyInvitation.channel),
    col(SurveyInvitation.kind),
    col(SurveyInvitation.product),
    col(ContactEvent.inquiry_type),
    col(ContactEvent.team),
)


def _dims(row: Any) -> Dims:
    return Dims(
        programme=row.programme or "",
        partner=row.partner or "",
        channel=row.channel or "",
        touchpoint=row.inquiry_type or row.kind or "",
        product=row.product or "",
        team=row.team or "",
    )


def add_answers(session: Session, response_ids: Collection[str], now: datetime) -> None:
    """Count these answers (each once: call it only for answers just scored) in agg_scores
    by when they were given, and as responded in agg_invitations by when their survey was
    issued."""
    if not response_ids:
        return
    zone = report_zone(session)
    scores: dict[Key, Counter[str]] = defaultdict(Counter)
    responded: dict[Key, Counter[str]] = defaultdict(Counter)
    ids = list(response_ids)
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(
                col(SurveyResponse.submitted_at),
                col(SurveyResponse.nps),
                col(SurveyResponse.csat),
                col(SurveyResponse.ces),
                *_INVITATION_DIMS,
            )
            .join(
                SurveyInvitation,
                col(SurveyInvitation.invitation_id) == col(SurveyResponse.invitation_id),
            )
            .outerjoin(ContactEvent, col(ContactEvent.event_id) == col(SurveyInvitation.event_id))
            .where(col(SurveyResponse.response_id).in_(ids[start : start + _CHUNK]))
        ).all()
        for row in rows:
            dims = _dims(row).values()
            counts = score_counts(row.nps, row.csat, row.ces)
            for grain, period in periods(row.submitted_at, zone):
                scores[(grain, period, *dims)].update(counts)
            for grain, period in periods(row.created_at, zone):
                responded[(grain, period, *dims)]["responded"] += 1
    _upsert(session, AggregateScores, scores, now)
    _upsert(session, AggregateInvitations, responded, now)


def add_invitations(session: Session, invitation_ids: Collection[str], now: datetime) -> None:
    """Count these surveys (each once: call it only for invitations just inserted) as
    invited in agg_invitations by when they were issued."""
    if not invitation_ids:
        return
    zone = report_zone(session)
    invited: dict[Key, Counter[str]] = defaultdict(Counter)
    ids = list(invitation_ids)
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(*_INVITATION_DIMS)
            .outerjoin(ContactEvent, col(ContactEvent.event_id) == col(SurveyInvitation.event_id))
            .where(col(SurveyInvitation.invitation_id).in_(ids[start : start + _CHUNK]))
        ).all()
        for row in rows:
            dims = _dims(row).values()
            for grain, period in periods(row.created_at, zone):
                invited[(grain, period, *dims)]["invited"] += 1
    _upsert(session, AggregateInvitations, invited, now)


def _upsert(
    session: Session,
    model: type[SQLModel],
    increments: Mapping[Key, Counter[str]],
    now: datetime,
) -> None:
    if not increments:
        return
    counters = SCORE_COUNTERS if model is AggregateScores else INVITATION_COUNTERS
    key_columns = ("grain", "period_start", *AGGREGATE_DIMENSIONS)
    rows = [
        {
            **dict(zip(key_columns, key, strict=True)),
            **{c: counts.get(c, 0) for c in counters},
            "updated_at": now,
        }
        for key, counts in sorted(increments.items())  # one lock order for every worker
    ]
    table = model.__table__  # type: ignore[attr-defined]  # set by SQLModel
    insert = dialect_insert(session, model)
    statement = insert.on_conflict_do_update(
        index_elements=list(key_columns),
        set_={
            **{c: table.c[c] + insert.excluded[c] for c in counters},
            "updated_at": insert.excluded.updated_at,
        },
    )
    session.connection().execute(statement, rows)


def rebuild_aggregates(engine: Engine, now: datetime, zone_name: str | None = None) -> int:
    """Recount every aggregate from the raw rows in one transaction (optionally in another
    reporting time zone, which is then kept). Returns the number of answers counted."""
    with transaction(engine) as session:
        if zone_name is not None:
            check_zone(zone_name)
            session.merge(BiSetting(key=REPORT_TIMEZONE, value=zone_name))
            session.flush()
        session.execute(delete(AggregateScores))
        session.execute(delete(AggregateInvitations))
        invitations = list(session.execute(select(col(SurveyInvitation.invitation_id))).scalars())
        add_invitations(session, invitations, now)
        answers = list(
            session.execute(
                select(col(SurveyResponse.response_id)).where(
                    col(SurveyResponse.scored_at).is_not(None)
                )
            ).scalars()
        )
        add_answers(session, answers, now)
        return len(answers)
