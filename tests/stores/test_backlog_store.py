"""What a starting worker resumes from SQL (models.store.backlog), on SQLite and PostgreSQL:
the counts follow what the trigger wrote, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, text

from models.contact_events import ContactEvent, parse_contact_event
from models.followup_rules import load_followup_rules
from models.rules import parse_rules
from models.store.backlog import Backlog, resume_backlog
from models.store.decisions import decide_contacts

RULES = parse_rules(
    b"""
version = "backlog"

[defaults]
timezone = "Europe/Amsterdam"
window = "always"

[[programme]]
name = "later"
template = "transactional"

  [[programme.rule]]
  name = "after-purchase"
  on = ["purchase"]
  delay = "2h"

[[programme]]
name = "now"
template = "support"

  [[programme.rule]]
  name = "after-support"
  on = ["support_contact"]
  delay = "0"
"""
)
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def contact(n: int, kind: str) -> ContactEvent:
    data: dict[str, Any] = {
        "event_id": f"e-{n}",
        "occurred_at": NOW.isoformat(),
        "kind": kind,
        "channel": "phone",
        "customer": {"id": f"C-{n}", "email": f"c-{n}@example.nl"},
    }
    return parse_contact_event(orjson.dumps(data))


def test_a_fresh_database_has_nothing_to_resume(engine: Engine) -> None:
    backlog = resume_backlog(engine, NOW)
    assert backlog.empty
    assert set(backlog.counts().values()) == {0}


def test_the_backlog_counts_timers_mail_and_task_events_the_trigger_left(engine: Engine) -> None:
    events = [
        *(contact(n, "purchase") for n in range(3)),  # a survey in 2 h: a timer each
        *(contact(n, "support_contact") for n in range(3, 5)),  # surveyed now: mail to send
        contact(5, "complaint"),  # a task at once: its task_opened event to publish
    ]
    decide_contacts(engine, events, NOW, RULES, load_followup_rules())
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE survey_invitations SET delivery_status = 'sending' WHERE event_id = 'e-4'")
        )

    backlog = resume_backlog(engine, NOW)
    assert backlog == Backlog(
        survey_timers=3,
        survey_timers_due=0,
        invitations_to_mail=1,
        invitations_interrupted=1,
        reminders_to_mail=0,
        answers_to_publish=0,
        task_events_to_publish=backlog.task_events_to_publish,
        webhooks_pending=0,
        staff_mail_pending=0,
    )
    assert backlog.task_events_to_publish >= 1
    assert resume_backlog(engine, NOW + timedelta(hours=2)).survey_timers_due == 3

    with engine.begin() as connection:
        connection.execute(text("UPDATE followup_task_events SET published_at = :t"), {"t": NOW})
    assert resume_backlog(engine, NOW).task_events_to_publish == 0
