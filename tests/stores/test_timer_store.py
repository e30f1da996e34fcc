"""Timers in SQL with a controlled clock: a survey due outside its send window waits for
the window (on SQLite and PostgreSQL), then fires once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from models.contact_events import ContactEvent
from models.followup_rules import load_followup_rules
from models.rules import parse_rules
from models.store.decisions import decide_contacts
from models.store.survey_timers import fire_due_timers
from tests.factories import read_contact_event

RULES = parse_rules(
    b"""
version = "window"

[defaults]
timezone = "Europe/Amsterdam"
window = { days = "mon-fri", from = "09:00", to = "18:00" }

[[programme]]
name = "transactional"
template = "transactional"

  [[programme.rule]]
  name = "after-purchase"
  on = ["purchase"]
  delay = "2h"
"""
)
FRIDAY_5PM = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # 17:00 in Amsterdam
MONDAY_9AM = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 in Amsterdam
DUE = load_followup_rules()  # what opens complaint tasks


def purchase(n: int, customer: str, at: datetime) -> ContactEvent:
    return read_contact_event(f"e-{n}", "purchase", at, customer, channel="web")


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql)).all()]


def test_a_survey_due_after_hours_waits_for_monday_and_then_fires_once(engine: Engine) -> None:
    decide_contacts(
        engine, [purchase(i, f"C-{i}", FRIDAY_5PM) for i in range(3)], FRIDAY_5PM, RULES, DUE
    )
    due_friday_7pm = FRIDAY_5PM + timedelta(hours=2)
    assert fire_due_timers(engine, RULES, due_friday_7pm - timedelta(seconds=1)).deferred == 0

    deferred = fire_due_timers(engine, RULES, due_friday_7pm)
    assert (deferred.deferred, sum(deferred.reasons.values())) == (3, 0)
    assert rows(engine, "SELECT DISTINCT reason, outcome FROM survey_decisions") == [
        ("outside_window_deferred", "pending")
    ]
    due = rows(engine, "SELECT DISTINCT due_at FROM survey_timers")
    assert len(due) == 1 and _aware(due[0][0]) == MONDAY_9AM
    assert fire_due_timers(engine, RULES, MONDAY_9AM - timedelta(seconds=1)).reasons == {}

    fired = fire_due_timers(engine, RULES, MONDAY_9AM)
    assert fired.reasons == {"surveyed": 3}
    assert len(fired.invitations) == 3
    assert rows(engine, "SELECT count(*) FROM survey_timers") == [(0,)]
    assert fire_due_timers(engine, RULES, MONDAY_9AM + timedelta(days=1)).reasons == {}
    assert rows(engine, "SELECT count(*) FROM survey_invitations") == [(3,)]


def _aware(value: Any) -> datetime:
    # SQLite hands back text or a naive datetime through raw SQL; both are UTC.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
