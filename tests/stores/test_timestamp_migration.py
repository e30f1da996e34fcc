"""Migration 0003_utc_iso_timestamps: SQLite's old naive timestamp text becomes ISO 8601 with
+00:00, the downgrade writes the old text back, and the values still compare as instants
(a due timer is found due, a later one is not); on PostgreSQL nothing changes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, MetaData, text
from sqlmodel import SQLModel
from typer.testing import CliRunner

from agents.cli.main import cli
from models.contact_events import ContactEvent, parse_contact_event
from models.followup_rules import load_followup_rules
from models.rules import parse_rules
from models.store import schema
from models.store.decisions import decide_contacts
from models.store.engine import make_engine
from models.store.survey_timers import fire_due_timers, next_due_at
from models.store.tables import UTCDateTime

BEFORE = "0002_bi_sink"
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")
OLD = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")  # what cxloop ≤ 0002 wrote
# Surveys two hours after a purchase, in the default window (Mon–Fri 09–18 Amsterdam).
RULES = parse_rules(
    b"""
version = "delay"

[[programme]]
name = "transactional"
template = "transactional"

  [[programme.rule]]
  name = "after-purchase"
  on = ["purchase"]
  delay = "2h"
"""
)
DUE = load_followup_rules()
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Amsterdam


@pytest.fixture
def empty(database_url: str) -> Iterator[Engine]:
    """An engine on a database with nothing in it (schema.upgrade makes what a test needs)."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def purchase(n: int, at: datetime) -> ContactEvent:
    data: dict[str, Any] = {
        "event_id": f"e-{n}",
        "occurred_at": at.isoformat(),
        "kind": "purchase",
        "channel": "web",
        "customer": {"id": f"C-{n}", "email": f"c-{n}@example.nl"},
    }
    return parse_contact_event(orjson.dumps(data))


def raw(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql)).all()]


def stored_timestamps(engine: Engine) -> list[str]:
    """Every non-null value of every timestamp column, as SQLite holds it."""
    values = []
    for table in SQLModel.metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, UTCDateTime):
                values += [
                    v
                    for (v,) in raw(
                        engine,
                        f"SELECT {column.name} FROM {table.name} "  # noqa: S608 - the models' names
                        f"WHERE {column.name} IS NOT NULL",
                    )
                ]
    return values


def test_old_timestamps_are_rewritten_and_a_due_timer_is_still_the_only_one_due(
    empty: Engine,
) -> None:
    schema.upgrade(empty)
    # Surveys due at 11:00 and 12:00 UTC, pending.
    decide_contacts(
        empty, [purchase(1, MONDAY), purchase(2, MONDAY + timedelta(hours=1))], MONDAY, RULES, DUE
    )
    sqlite = empty.dialect.name == "sqlite"

    assert schema.downgrade(empty, BEFORE) == BEFORE
    if sqlite:  # the text cxloop wrote before 0003
        assert raw(empty, "SELECT due_at FROM survey_timers ORDER BY due_at") == [
            ("2026-11-23 11:00:00.000000",),
            ("2026-11-23 12:00:00.000000",),
        ]
        old = stored_timestamps(empty)
        assert len(old) > 10
        assert [v for v in old if not OLD.match(v)] == []
        # Text in neither format (a hand-written insert): another offset, no microseconds.
        with empty.begin() as connection:
            connection.execute(
                text(
                    "UPDATE contact_events SET occurred_at = '2026-11-23 11:00:00+01:00' "
                    "WHERE event_id = 'e-2'"
                )
            )

    assert schema.upgrade(empty) == schema.head_revision()
    if sqlite:
        assert raw(empty, "SELECT due_at FROM survey_timers ORDER BY due_at") == [
            ("2026-11-23T11:00:00.000000+00:00",),
            ("2026-11-23T12:00:00.000000+00:00",),
        ]
        assert raw(empty, "SELECT event_id, occurred_at FROM contact_events ORDER BY 1") == [
            ("e-1", "2026-11-23T09:00:00.000000+00:00"),
            ("e-2", "2026-11-23T10:00:00.000000+00:00"),
        ]
        new = stored_timestamps(empty)
        assert len(new) == len(old)
        assert [v for v in new if not ISO_UTC.match(v)] == []

    # The old text compared with today's parameters would find the 12:00 timer due at 11:00
    # (" " sorts before "T"); rewritten, only the 11:00 one is due.
    at_eleven = fire_due_timers(empty, RULES, MONDAY + timedelta(hours=2))
    assert at_eleven.reasons == {"surveyed": 1}
    assert [i.event_id for i in at_eleven.invitations] == ["e-1"]
    later = next_due_at(empty)
    assert later == MONDAY + timedelta(hours=3)
    assert later is not None and later.tzinfo is UTC
    assert fire_due_timers(empty, RULES, MONDAY + timedelta(hours=3)).reasons == {"surveyed": 1}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rows_an_older_cxloop_wrote_are_rewritten(empty: Engine) -> None:
    schema.upgrade(empty, BEFORE)
    old = MetaData()  # the tables as 0002 reflects them: SQLAlchemy's plain SQLite DATETIME
    old.reflect(empty, only=["contact_events"])
    at = datetime(2026, 3, 2, 9, 30, 0, 5, tzinfo=UTC)
    with empty.begin() as connection:
        connection.execute(
            old.tables["contact_events"].insert(),
            {
                "event_id": "e1",
                "occurred_at": at,
                "kind": "purchase",
                "channel": "web",
                "customer_id": "c1",
                "received_at": at + timedelta(days=400),
            },
        )
    assert raw(empty, "SELECT occurred_at, received_at FROM contact_events") == [
        ("2026-03-02 09:30:00.000005", "2027-04-06 09:30:00.000005")
    ]

    schema.upgrade(empty)

    assert raw(empty, "SELECT occurred_at, received_at FROM contact_events") == [
        ("2026-03-02T09:30:00.000005+00:00", "2027-04-06T09:30:00.000005+00:00")
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_text_that_is_no_timestamp_stops_the_upgrade_and_changes_nothing(
    empty: Engine, database_url: str
) -> None:
    schema.upgrade(empty)
    decide_contacts(empty, [purchase(1, MONDAY)], MONDAY, RULES, DUE)
    schema.downgrade(empty, BEFORE)
    with empty.begin() as connection:
        connection.execute(
            text("UPDATE contact_events SET received_at = 'yesterday' WHERE event_id = 'e-1'")
        )
    before = stored_timestamps(empty)

    result = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", database_url])

    assert result.exit_code == 2, result.output
    assert "contact_events.received_at" in result.stderr
    assert "'yesterday', which is not a timestamp" in result.stderr
    assert "Traceback" not in result.output
    assert schema.current_revision(empty) == BEFORE
    assert stored_timestamps(empty) == before  # the whole migration rolled back
