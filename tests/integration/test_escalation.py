"""The escalation ladder end to end: `cxloop up` with the real broker and SMTP server, and a
worker clock the test moves forward (CXLOOP_CLOCK_OFFSET_FILE) to reach each SLA step.

The team works around the clock, so business time is elapsed time whatever the weekday:
first contact is due 10 h after opening (reminder at 7.5 h, lead at 10 h, manager at
20 h); closure 40 h after opening (its reminder at 30 h).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import wait_for
from tests.factories import add_staff_user
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop, running_loop
from tests.harness.topics import read_from_start

FOLLOWUP_RULES = """
version = "escalation-e2e"

[sla]
first_contact = "10 business hours"
closure = "40 business hours"

[routing]
default_team = "care"

[[team]]
name = "care"
timezone = "Europe/Amsterdam"
days = "mon-sun"
from = "00:00"
to = "24:00"
assignment = "round_robin"
lead_email = "care-lead@example.com"
manager_email = "care-manager@example.com"
"""
ALICE = "alice@example.com"
LEAD = "care-lead@example.com"
MANAGER = "care-manager@example.com"
HOUR = 3600


@dataclass
class Drill:
    """A running loop and the file that moves its worker's clock."""

    loop: RunningLoop
    clock_file: Path

    def jump_to(self, hours: float) -> None:
        """Run the worker's clock *hours* ahead of real time."""
        self.clock_file.write_text(f"{hours * HOUR:.0f}\n")

    def task_events(self) -> list[dict[str, Any]]:
        """Every record on followup-tasks so far."""
        records = asyncio.run(
            read_from_start(
                self.loop.bootstrap, ["followup-tasks"], limit_s=5, quiet_s=0.5, poll_ms=100
            )
        )
        return [orjson.loads(r.value) for r in records]

    def wait_for_event(self, task_id: str, event_type: str, **details: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for event in self.task_events():
                if (
                    event["task_id"] == task_id
                    and event["event_type"] == event_type
                    and details.items() <= (event["details"] or {}).items()
                ):
                    return event
            return None

        event = wait_for(found, 30, f"{event_type} {details} for task {task_id[:8]}")
        assert isinstance(event, dict)
        return event

    def mails(self, to: str, task_id: str) -> list[str]:
        """Subjects of the mails to *to* about *task_id*."""
        return [
            str(m["Subject"]) for m in self.loop.mails_to(to) if task_id[:8] in str(m["Subject"])
        ]

    def wait_for_mail(self, to: str, task_id: str, word: str) -> None:
        wait_for(
            lambda: any(word in s for s in self.mails(to, task_id)),
            30,
            f"a {word} mail to {to} about task {task_id[:8]}",
        )

    def open_complaint(self, n: int, hours_ahead: float = 0) -> str:
        """Publish a complaint (as if made at worker time) and wait for its assigned task."""
        occurred = datetime.now(UTC) + timedelta(hours=hours_ahead)
        self.loop.emit(
            contact_event(n, customer=f"C-{n}", kind="complaint", occurred_at=occurred.isoformat())
        )
        found = wait_for(
            lambda: self.loop.rows(
                "SELECT task_id, assignee, status FROM followup_tasks WHERE customer_id = :c",
                c=f"C-{n}",
            ),
            30,
            f"the task for complaint {n}",
        )
        assert isinstance(found, list) and len(found) == 1
        task_id, assignee, status = found[0]
        assert (assignee, status) == ("alice", "assigned")
        return str(task_id)


@pytest.fixture
def drill(tmp_path: Path, database_url: str) -> Iterator[Drill]:
    clock_file = tmp_path / "clock-offset"
    clock_file.write_text("0\n")
    rules_file = tmp_path / "followup.toml"
    rules_file.write_text(FOLLOWUP_RULES)
    env = {
        "CXLOOP_CLOCK_OFFSET_FILE": str(clock_file),
        "CXLOOP_FOLLOWUP_FILE": str(rules_file),
    }
    with running_loop(tmp_path, database_url=database_url, env=env) as loop:
        engine = loop.engine()
        try:
            add_staff_user(engine, "alice", "care", email=ALICE, created_at=datetime.now(UTC))
        finally:
            engine.dispose()
        yield Drill(loop, clock_file)


def ladder_of(events: list[dict[str, Any]], task_id: str) -> list[tuple[str, int | None]]:
    return [
        (e["event_type"], (e["details"] or {}).get("level"))
        for e in events
        if e["task_id"] == task_id
    ]


def test_reminder_then_lead_then_manager_each_once(drill: Drill) -> None:
    task_id = drill.open_complaint(1)
    opened = drill.wait_for_event(task_id, "task_opened")
    assert (opened["team"], opened["status"], opened["priority"]) == ("care", "open", 0)
    assigned = drill.wait_for_event(task_id, "task_assigned")
    assert assigned["assignee"] == "alice"
    assert drill.mails(ALICE, task_id) == []  # nothing is due yet

    drill.jump_to(8)  # 80 % of first contact
    reminder = drill.wait_for_event(task_id, "task_reminder", level=1)
    assert reminder["details"] == {"sla": "first_contact", "level": 1, "step": "reminder"}
    drill.wait_for_mail(ALICE, task_id, "Reminder")
    assert drill.mails(LEAD, task_id) == []

    drill.jump_to(11)  # past the breach
    drill.wait_for_event(task_id, "task_escalated", level=2)
    drill.wait_for_mail(LEAD, task_id, "Overdue")
    assert drill.mails(MANAGER, task_id) == []

    drill.jump_to(21)  # past twice the SLA
    drill.wait_for_event(task_id, "task_escalated", level=3)
    drill.wait_for_mail(MANAGER, task_id, "Escalation")

    # A second complaint, opened at the worker's time, reaches its own reminder only after
    # many more ladder ticks: whatever the first task would get twice is there by then.
    second = drill.open_complaint(2, hours_ahead=21)
    drill.jump_to(29.5)
    drill.wait_for_event(second, "task_reminder", level=1)
    drill.wait_for_mail(ALICE, second, "Reminder")

    events = drill.task_events()
    counts = Counter(e["event_id"] for e in events)
    assert set(counts.values()) == {1}, counts
    assert ladder_of(events, task_id) == [
        ("task_opened", None),
        ("task_assigned", None),
        ("task_reminder", 1),
        ("task_escalated", 2),
        ("task_escalated", 3),
    ]
    assert [e["seq"] for e in events if e["task_id"] == task_id] == [1, 2, 3, 4, 5]
    assert len(drill.mails(ALICE, task_id)) == 1
    assert len(drill.mails(LEAD, task_id)) == 1
    assert len(drill.mails(MANAGER, task_id)) == 1
    assert drill.loop.rows(
        "SELECT to_address, status FROM staff_notifications ORDER BY created_at"
    ) == [(ALICE, "sent"), (LEAD, "sent"), (MANAGER, "sent"), (ALICE, "sent")]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_task_contacted_before_the_breach_is_not_escalated(drill: Drill) -> None:
    task_id = drill.open_complaint(1)
    drill.jump_to(8)
    drill.wait_for_event(task_id, "task_reminder", level=1, sla="first_contact")
    drill.wait_for_mail(ALICE, task_id, "Reminder")

    with drill.loop.staff() as staff:
        accepted = staff.post(
            f"/api/tasks/{task_id}/actions",
            json={"type": "call_attempt", "note": "Reached her", "actor": "alice"},
            headers={"Idempotency-Key": f"call-{task_id}"},
        )
    assert accepted.status_code == 202, accepted.text
    called = drill.wait_for_event(task_id, "task_action_recorded")
    assert (called["from_status"], called["status"]) == ("assigned", "contacted")

    # Past the first-contact breach and its manager step, up to the closure reminder.
    drill.jump_to(31)
    drill.wait_for_event(task_id, "task_reminder", level=1, sla="closure")
    wait_for(
        lambda: len(drill.mails(ALICE, task_id)) == 2, 30, "the closure reminder mail to alice"
    )

    assert ladder_of(drill.task_events(), task_id) == [
        ("task_opened", None),
        ("task_assigned", None),
        ("task_reminder", 1),
        ("task_action_recorded", None),
        ("task_reminder", 1),
    ]
    assert drill.mails(LEAD, task_id) == []
    assert drill.mails(MANAGER, task_id) == []
    assert drill.loop.rows("SELECT status, escalation_level FROM followup_tasks") == [
        ("contacted", 1)
    ]
