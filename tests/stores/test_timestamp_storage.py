"""Timestamps BI can trust: on SQLite every timestamp column holds ISO 8601 text in UTC with
microseconds and +00:00 after the real write paths; on SQLite and PostgreSQL the same instant
comes back as an aware UTC datetime, and filters and ordering in SQL compare instants, also
when the bound value is in another zone. Naive datetimes are refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import StatementError
from sqlmodel import Session, SQLModel, col

from models.contact_events import ContactEvent as ContactMessage
from models.contact_events import parse_contact_event
from models.followup_rules import load_followup_rules
from models.rules import load_rules
from models.store.decisions import decide_contacts
from models.store.surveys import claim_delivery, finish_delivery, record_response, record_scores
from models.store.tables import ContactEvent, TimestampNaiveError, UTCDateTime
from models.store.task_actions import ActionCommand, apply_action
from models.task_lifecycle import ActionType
from models.tokens import hash_token, new_token

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# 09:00 in Amsterdam is 08:00 UTC in November: a value that is not converted shows.
NOW = datetime(2026, 11, 23, 9, 0, 0, 250_000, tzinfo=AMSTERDAM)
RULES = load_rules()  # the demo rules: surveys at once, window always open
DUE = load_followup_rules()
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def contact(event_id: str, customer: str, kind: str, at: datetime) -> ContactMessage:
    data: dict[str, Any] = {
        "event_id": event_id,
        "occurred_at": at.isoformat(),
        "kind": kind,
        "channel": "web",
        "customer": {"id": customer, "email": f"{customer.lower()}@example.nl"},
    }
    return parse_contact_event(orjson.dumps(data))


def timestamp_columns() -> list[tuple[str, str]]:
    return [
        (table.name, column.name)
        for table in SQLModel.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, UTCDateTime)
    ]


def run_the_loop(engine: Engine) -> str:
    """A purchase surveyed, mailed, answered as a detractor and scored; a complaint whose
    task staff called back: the write paths of the trigger, mailer, survey page, scoring and
    closure. Returns the complaint's task id."""
    purchase = contact("e-1", "C-1", "purchase", NOW - timedelta(minutes=5))
    complaint = contact("e-2", "C-2", "complaint", NOW - timedelta(minutes=3))
    results = decide_contacts(engine, [purchase, complaint], NOW, RULES, DUE)
    invitation_id = results[0].invitations[0].invitation_id
    task = results[1].task
    assert task is not None
    token = new_token()
    claim_delivery(engine, invitation_id, hash_token(token), NOW, timedelta(days=14))
    finish_delivery(engine, invitation_id, "sent", NOW + timedelta(seconds=1))
    response = record_response(
        engine, hash_token(token), 2, None, "slow", NOW + timedelta(minutes=10)
    )
    record_scores(engine, [(response.response_id, "detractor", None)], NOW + timedelta(minutes=11))
    apply_action(
        engine,
        DUE,
        ActionCommand(
            "a-1",
            task.task_id,
            ActionType.CALL_ATTEMPT,
            "reached",
            "alice",
            NOW + timedelta(hours=1),
            {},
        ),
    )
    return task.task_id


def raw(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql)).all()]


def test_every_timestamp_column_of_the_models_is_a_utc_datetime() -> None:
    """A column declared as a plain DateTime would store naive text on SQLite again."""
    declared = [
        f"{table.name}.{column.name}"
        for table in SQLModel.metadata.tables.values()
        for column in table.columns
        if issubclass(column.type.python_type, datetime)
        and not isinstance(column.type, UTCDateTime)
    ]
    assert declared == []
    assert len(timestamp_columns()) > 40


@sqlite_only
def test_sqlite_stores_every_timestamp_as_iso_8601_utc_with_its_offset(engine: Engine) -> None:
    run_the_loop(engine)

    filled = set()
    for table, column in timestamp_columns():
        for value, kind in raw(
            engine,
            f"SELECT {column}, typeof({column}) FROM {table} WHERE {column} IS NOT NULL",  # noqa: S608
        ):
            assert kind == "text", (table, column, value)
            assert ISO_UTC.match(value), (table, column, value)
            filled.add(f"{table}.{column}")
    assert {
        "contact_events.occurred_at",
        "contact_events.received_at",
        "customer_contact_state.last_surveyed_at",
        "survey_decisions.decided_at",
        "survey_decisions.resolved_at",
        "survey_invitations.created_at",
        "survey_invitations.expires_at",
        "survey_invitations.sent_at",
        "survey_invitations.answered_at",
        "survey_responses.submitted_at",
        "survey_responses.scored_at",
        "followup_tasks.opened_at",
        "followup_tasks.due_at",
        "followup_tasks.contacted_at",
        "followup_task_events.occurred_at",
        "followup_actions.recorded_at",
        "agg_scores.updated_at",
        "agg_invitations.updated_at",
    } <= filled
    # Converted to UTC, not the Amsterdam wall time with another offset.
    assert raw(engine, "SELECT received_at FROM contact_events WHERE event_id = 'e-1'") == [
        ("2026-11-23T08:00:00.250000+00:00",)
    ]
    assert raw(engine, "SELECT sent_at FROM survey_invitations") == [
        ("2026-11-23T08:00:01.250000+00:00",)
    ]
    # SQLite's own date functions read the offset (what a BI query on SQLite would use).
    assert raw(
        engine,
        "SELECT datetime(contacted_at), strftime('%s', contacted_at) - strftime('%s', opened_at) "
        "FROM followup_tasks",
    ) == [("2026-11-23 09:00:00", 3780)]
    # The lineage view hands BI the same text.
    lineage = raw(
        engine,
        "SELECT contact_occurred_at, invitation_sent_at, response_submitted_at "
        "FROM bi_lineage WHERE contact_event_id = 'e-1'",
    )
    assert lineage == [
        (
            "2026-11-23T07:55:00.250000+00:00",
            "2026-11-23T08:00:01.250000+00:00",
            "2026-11-23T08:10:00.250000+00:00",
        )
    ]


def test_the_same_instant_comes_back_aware_in_utc(engine: Engine) -> None:
    given = datetime(
        2026, 12, 4, 22, 35, 0, 123_456, tzinfo=timezone(timedelta(hours=5, minutes=30))
    )
    with Session(engine) as session:
        session.add(
            ContactEvent(
                event_id="e-1",
                occurred_at=given,
                kind="purchase",
                channel="web",
                customer_id="C-1",
                received_at=given.astimezone(AMSTERDAM),
            )
        )
        session.commit()
    with Session(engine) as session:
        row = session.get(ContactEvent, "e-1")
        assert row is not None
        core = session.execute(
            select(col(ContactEvent.occurred_at), col(ContactEvent.received_at))
        ).one()
        earliest = session.execute(select(func.min(col(ContactEvent.occurred_at)))).scalar_one()
    for value in (row.occurred_at, row.received_at, *core, earliest):
        assert value == given
        assert value.tzinfo is UTC
        assert (value.hour, value.microsecond) == (17, 123_456)


def test_filters_and_ordering_compare_instants_given_in_any_zone(engine: Engine) -> None:
    # Either side of midnight UTC; the bound value is midnight UTC said in Amsterdam.
    times = {
        "late": datetime(2026, 12, 4, 23, 30, tzinfo=UTC),
        "early": datetime(2026, 12, 5, 0, 30, tzinfo=UTC),
        "later": datetime(2026, 12, 5, 10, 0, tzinfo=UTC),
    }
    with Session(engine) as session:
        for name, at in times.items():
            session.add(
                ContactEvent(
                    event_id=name,
                    occurred_at=at,
                    kind="purchase",
                    channel="web",
                    customer_id="C-1",
                    received_at=at,
                )
            )
        session.commit()
    midnight = datetime(2026, 12, 5, 1, 0, tzinfo=AMSTERDAM)
    with Session(engine) as session:
        since = session.execute(
            select(col(ContactEvent.event_id))
            .where(col(ContactEvent.occurred_at) >= midnight)
            .order_by(col(ContactEvent.occurred_at).desc())
        ).scalars()
        assert list(since) == ["later", "early"]
        before = session.execute(
            select(col(ContactEvent.event_id)).where(
                col(ContactEvent.occurred_at) < midnight.astimezone(timezone(timedelta(hours=-8)))
            )
        ).scalars()
        assert list(before) == ["late"]


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            ContactEvent(
                event_id="e-1",
                occurred_at=datetime(2026, 12, 4, 17, 5),
                kind="purchase",
                channel="web",
                customer_id="C-1",
                received_at=NOW,
            )
        )
        with pytest.raises(StatementError) as refused:
            session.commit()
    assert isinstance(refused.value.orig, TimestampNaiveError)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM contact_events")).scalar() == 0
