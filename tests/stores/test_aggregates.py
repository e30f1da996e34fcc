"""The incremental aggregates equal a brute-force recount of the raw rows, whatever order,
lateness and duplication the answers and surveys arrive in (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlmodel import Session, SQLModel, col

from models.scoring import csat_satisfied, nps_category
from models.store.aggregates import (
    INVITATION_COUNTERS,
    REPORT_TIMEZONE,
    SCORE_COUNTERS,
    add_invitations,
    rebuild_aggregates,
)
from models.store.engine import insert_many_if_absent, insert_many_returning_new, transaction
from models.store.surveys import record_scores, store_answer
from models.store.tables import (
    AGGREGATE_DIMENSIONS,
    AggregateInvitations,
    AggregateScores,
    BiSetting,
    ContactEvent,
    SurveyInvitation,
    SurveyResponse,
)

BASE = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)  # DST in Amsterdam starts on the 29th
ZONE = "Europe/Amsterdam"

surveys = st.lists(
    st.fixed_dictionaries(
        {
            "partner": st.sampled_from([None, "Telco A", "Shop B"]),
            "channel": st.sampled_from(["email", "phone", "shop"]),
            "kind": st.sampled_from(["purchase", "support_contact"]),
            "inquiry_type": st.sampled_from([None, "billing", "fault"]),
            "team": st.sampled_from([None, "service", "billing"]),
            "programme": st.sampled_from(["transactional", "support"]),
            "issued_h": st.integers(0, 24 * 45),  # issued over six weeks
            "answer": st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "nps": st.one_of(st.none(), st.integers(0, 10)),
                        "csat": st.one_of(st.none(), st.integers(1, 5)),
                        "ces": st.one_of(st.none(), st.integers(1, 7)),
                        "after_h": st.integers(0, 24 * 40),  # late answers included
                        "scored_times": st.integers(1, 3),  # replays of the scoring
                    }
                ),
            ),
            "issued_times": st.integers(1, 2),  # a replayed survey decision
        }
    ),
    min_size=1,
    max_size=25,
)


@pytest.fixture
def zoned(engine: Engine) -> Engine:
    with transaction(engine) as session:
        session.add(BiSetting(key=REPORT_TIMEZONE, value=ZONE))
    return engine


def issue(engine: Engine, spec: dict[str, object], now: datetime) -> str:
    """Store a contact and its survey the way the trigger does, and count it."""
    run = uuid.uuid4().hex
    event_id, invitation_id = f"ev-{run}", f"inv-{run}"
    for _ in range(int(spec["issued_times"])):  # type: ignore[call-overload]
        with transaction(engine) as session:
            insert_many_if_absent(
                session,
                ContactEvent,
                [
                    {
                        "event_id": event_id,
                        "occurred_at": now,
                        "kind": spec["kind"],
                        "channel": spec["channel"],
                        "customer_id": f"c-{run}",
                        "partner": spec["partner"],
                        "inquiry_type": spec["inquiry_type"],
                        "team": spec["team"],
                        "received_at": now,
                    }
                ],
            )
            row = {
                "invitation_id": invitation_id,
                "event_id": event_id,
                "customer_id": f"c-{run}",
                "locale": "nl",
                "kind": spec["kind"],
                "channel": spec["channel"],
                "partner": spec["partner"],
                "programme": spec["programme"],
                "created_at": now,
            }
            new = insert_many_returning_new(session, SurveyInvitation, [row], "invitation_id")
            add_invitations(session, new, now)
    return invitation_id


def answer(engine: Engine, invitation_id: str, spec: dict[str, int | None], at: datetime) -> str:
    with transaction(engine) as session:
        invitation = session.get(SurveyInvitation, invitation_id)
        assert invitation is not None
        response = store_answer(
            session,
            invitation,
            at,
            nps=spec["nps"],
            csat=spec["csat"],
            ces=spec["ces"],
            comment=None,
            answers={k: v for k, v in spec.items() if k in ("nps", "csat", "ces") and v},
        )
        return response.response_id


def score(engine: Engine, response_id: str, spec: dict[str, int | None], at: datetime) -> None:
    nps, csat = spec["nps"], spec["csat"]
    record_scores(
        engine,
        [
            (
                response_id,
                nps_category(nps) if nps is not None else None,
                csat_satisfied(csat) if csat is not None else None,
            )
        ],
        at,
    )


def brute_force(
    engine: Engine,
) -> tuple[dict[object, dict[str, int]], dict[object, dict[str, int]]]:
    """Recount from the raw rows, independently of models.store.aggregates."""
    zone = ZoneInfo(ZONE)

    def buckets(at: datetime) -> list[tuple[str, date]]:
        day = at.astimezone(zone).date()
        monday = day - timedelta(days=day.isoweekday() - 1)
        return [("day", day), ("week", monday), ("month", date(day.year, day.month, 1))]

    scores: dict[object, Counter[str]] = defaultdict(Counter)
    invitations: dict[object, Counter[str]] = defaultdict(Counter)
    with transaction(engine) as session:
        rows = session.execute(
            select(SurveyInvitation, ContactEvent, SurveyResponse)
            .join(ContactEvent, col(ContactEvent.event_id) == col(SurveyInvitation.event_id))
            .outerjoin(
                SurveyResponse,
                col(SurveyResponse.invitation_id) == col(SurveyInvitation.invitation_id),
            )
        ).all()
        for invitation, contact, response in rows:
            dims = (
                invitation.programme or "",
                invitation.partner or "",
                invitation.channel or "",
                contact.inquiry_type or invitation.kind,
                invitation.product or "",
                contact.team or "",
            )
            scored = response is not None and response.scored_at is not None
            for bucket in buckets(invitation.created_at):
                invitations[(*bucket, *dims)]["invited"] += 1
                invitations[(*bucket, *dims)]["responded"] += int(scored)
            if not scored:
                continue
            counts: Counter[str] = Counter(responses=1)
            if response.nps is not None:
                counts["nps_n"] += 1
                counts[f"nps_{response.nps}"] += 1
                group = (
                    "promoters"
                    if response.nps >= 9
                    else "passives"
                    if response.nps >= 7
                    else "detractors"
                )
                counts[f"nps_{group}"] += 1
            if response.csat is not None:
                counts["csat_n"] += 1
                counts["csat_top2"] += response.csat >= 4
            if response.ces is not None:
                counts["ces_n"] += 1
                counts["ces_sum"] += response.ces
            for bucket in buckets(response.submitted_at):
                scores[(*bucket, *dims)].update(counts)

    def full(
        table: dict[object, Counter[str]], names: tuple[str, ...]
    ) -> dict[object, dict[str, int]]:
        return {k: {c: v.get(c, 0) for c in names} for k, v in table.items() if any(v.values())}

    return full(scores, SCORE_COUNTERS), full(invitations, ("invited", "responded"))


def read_counts(session: Session, model: type[SQLModel]) -> dict[object, dict[str, int]]:
    """Every row of an aggregate table as key → counters (rows of all zeros left out)."""
    counters = SCORE_COUNTERS if model is AggregateScores else INVITATION_COUNTERS
    table = model.__table__  # type: ignore[attr-defined]  # set by SQLModel
    result: dict[object, dict[str, int]] = {}
    for row in session.execute(select(table)).mappings():
        key = (row["grain"], row["period_start"], *(row[d] for d in AGGREGATE_DIMENSIONS))
        values = {c: int(row[c]) for c in counters}
        if any(values.values()):
            result[key] = values
    return result


def incremental(
    engine: Engine,
) -> tuple[dict[object, dict[str, int]], dict[object, dict[str, int]]]:
    with transaction(engine) as session:
        return (
            dict(read_counts(session, AggregateScores)),
            dict(read_counts(session, AggregateInvitations)),
        )


def run_stream(engine: Engine, specs: list[dict[str, object]], order: list[int]) -> None:
    """Issue every survey, then score the answers in *order* (late ones land in old
    periods), each as often as the spec says."""
    answered: list[tuple[str, dict[str, int | None], datetime]] = []
    for spec in specs:
        issued = BASE + timedelta(hours=int(spec["issued_h"]))  # type: ignore[call-overload]
        invitation_id = issue(engine, spec, issued)
        if spec["answer"] is not None:
            a: dict[str, int | None] = spec["answer"]  # type: ignore[assignment]
            at = issued + timedelta(hours=a["after_h"] or 0)
            answered.append((answer(engine, invitation_id, a, at), a, at))
    for i in order:
        if i < len(answered):
            response_id, a, at = answered[i]
            for _ in range(a["scored_times"] or 1):
                score(engine, response_id, a, at + timedelta(minutes=5))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=surveys, order=st.permutations(list(range(25))))
def test_incremental_equals_recount(
    zoned: Engine, specs: list[dict[str, object]], order: list[int]
) -> None:
    # The database keeps the rows of earlier examples: the recount covers all of them.
    run_stream(zoned, specs, order)
    expected_scores, expected_invitations = brute_force(zoned)
    got_scores, got_invitations = incremental(zoned)
    assert got_scores == expected_scores
    assert got_invitations == expected_invitations


def test_rebuild_equals_incremental_and_moves_time_zone(zoned: Engine) -> None:
    specs = [
        {
            "partner": "Telco A",
            "channel": "email",
            "kind": "purchase",
            "inquiry_type": None,
            "team": "service",
            "programme": "transactional",
            "issued_h": 3,  # 23:00 UTC on the 28th = 00:00 on the 29th in Amsterdam
            "answer": {"nps": 3, "csat": 5, "ces": 2, "after_h": 0, "scored_times": 2},
            "issued_times": 2,
        }
    ]
    run_stream(zoned, specs, [0])
    before = incremental(zoned)
    assert rebuild_aggregates(zoned, BASE) == 1
    assert incremental(zoned) == before
    days = {k[1] for k in before[0] if k[0] == "day"}
    assert days == {date(2026, 3, 29)}
    rebuild_aggregates(zoned, BASE, "UTC")
    after_days = {k[1] for k in incremental(zoned)[0] if k[0] == "day"}
    assert after_days == {date(2026, 3, 28)}
    with pytest.raises(ValueError, match="unknown time zone"):
        rebuild_aggregates(zoned, BASE, "Mars/Olympus")


def test_concurrent_scoring_counts_an_answer_once(zoned: Engine) -> None:
    spec = {
        "partner": "Shop B",
        "channel": "shop",
        "kind": "purchase",
        "inquiry_type": "order",
        "team": None,
        "programme": "transactional",
        "issued_h": 1,
        "answer": None,
        "issued_times": 1,
    }
    answers = []
    for n in range(20):
        invitation_id = issue(zoned, spec, BASE)
        a: dict[str, int | None] = {"nps": n % 11, "csat": None, "ces": None}
        answers.append((answer(zoned, invitation_id, a, BASE), a))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            record_scores(
                zoned,
                [(rid, nps_category(a["nps"] or 0), None) for rid, a in answers],
                BASE + timedelta(hours=1),
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    scores, _ = incremental(zoned)
    month = [v for k, v in scores.items() if k[0] == "month"]
    assert sum(v["nps_n"] for v in month) == 20
    assert brute_force(zoned)[0] == scores
    with transaction(zoned) as session:
        scored = session.execute(
            select(col(SurveyResponse.response_id)).where(
                col(SurveyResponse.scored_at).is_not(None)
            )
        ).all()
    assert len(scored) == 20
