"""followup agent in Faust's test harness: one task per detractor, announced on followup-tasks."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select, text

from agents.pipeline import task_opening as followup
from models.contact_events import parse_contact_event
from models.followup_rules import load_followup_rules
from models.rules import load_rules
from models.store.decisions import decide_contact
from models.store.engine import transaction
from models.store.tables import FollowupTask
from models.task_lifecycle import TaskOrigin, task_id_for
from streams import records
from tests.agents.conftest import NOW, Harness, contact, settled

SUBMITTED = datetime(2026, 11, 23, 8, 30, tzinfo=timezone(timedelta(hours=1)))


def scored_response(
    response_id: str, nps: int | None, category: str | None, customer: str = "C-1"
) -> bytes:
    return records.ScoredResponse(
        response_id=response_id,
        invitation_id=f"inv-{response_id}",
        customer_id=customer,
        submitted_at=SUBMITTED,
        nps=nps,
        nps_category=category,
    ).to_bytes()


def rows(h: Harness, sql: str) -> list[tuple[Any, ...]]:
    with h.rt.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql)).all()]


def tasks(h: Harness) -> list[tuple[Any, ...]]:
    return rows(
        h,
        "SELECT task_id, origin, source_id, customer_id, priority, status FROM followup_tasks"
        " ORDER BY source_id",
    )


def task_times(h: Harness) -> tuple[datetime, datetime | None, datetime]:
    with transaction(h.rt.engine) as session:
        (task,) = session.scalars(select(FollowupTask)).all()
    return task.opened_at, task.first_contact_due_at, task.due_at


def task_events(h: Harness) -> list[tuple[Any, ...]]:
    """The task events waiting in the outbox for followup-tasks."""
    return rows(h, "SELECT task_id, seq, event_type, to_status FROM followup_task_events")


@pytest.mark.parametrize(("nps", "priority"), [(0, 0), (3, 0), (4, 1), (6, 1)])
async def test_a_detractor_gets_one_task_due_in_business_days(
    harness: Callable[..., Harness], nps: int, priority: int
) -> None:
    h = harness(followup)
    async with h.agent("followup").test_context() as agent:
        await agent.put(scored_response("r-1", nps, "detractor"), key=b"C-1")
        await settled(h, lambda: bool(task_events(h)), "the task event")
    task_id = task_id_for(TaskOrigin.DETRACTOR, "r-1")
    assert tasks(h) == [(task_id, "detractor", "r-1", "C-1", priority, "open")]
    opened_at, first_contact, closure = task_times(h)
    assert opened_at == SUBMITTED
    # Monday 08:30 Amsterdam, team hours 08:30-17:00: two working days end Tuesday 17:00,
    # five end Friday 17:00 (16:00 UTC).
    assert first_contact == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert closure == datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    assert task_events(h) == [(task_id, 1, "task_opened", "open")]
    assert h.sent_to("dead-letters") == []


async def test_a_low_csat_opens_a_task_too(harness: Callable[..., Harness]) -> None:
    h = harness(followup)
    value = records.ScoredResponse(
        response_id="r-1",
        invitation_id="inv-r-1",
        customer_id="C-1",
        submitted_at=SUBMITTED,
        csat=1,
        csat_satisfied=False,
    ).to_bytes()
    async with h.agent("followup").test_context() as agent:
        await agent.put(value, key=b"C-1")
        await settled(h, lambda: bool(task_events(h)), "the task event")
    assert [row[1:] for row in tasks(h)] == [("unhappy", "r-1", "C-1", 0, "open")]


async def test_the_same_detractor_twice_opens_one_task(harness: Callable[..., Harness]) -> None:
    h = harness(followup)
    value = scored_response("r-1", 5, "detractor")
    async with h.agent("followup").test_context() as agent:
        await agent.put(value, key=b"C-1")
        await agent.put(value, key=b"C-1")  # redelivered
        await agent.put(scored_response("r-2", 1, "detractor", customer="C-2"), key=b"C-2")
        await settled(h, lambda: len(tasks(h)) == 2, "the next answer's task")
    task_id = task_id_for(TaskOrigin.DETRACTOR, "r-1")
    assert tasks(h)[0] == (task_id, "detractor", "r-1", "C-1", 1, "open")
    # One task_opened event per task: the replay adds nothing to the outbox.
    assert sorted(row[2] for row in task_events(h)) == ["task_opened", "task_opened"]


@pytest.mark.parametrize(
    ("nps", "category"), [(10, "promoter"), (9, "promoter"), (7, "passive"), (None, None)]
)
async def test_no_task_for_an_answer_that_is_not_a_detractor(
    harness: Callable[..., Harness], nps: int | None, category: str | None
) -> None:
    h = harness(followup)
    async with h.agent("followup").test_context() as agent:
        await agent.put(scored_response("r-1", nps, category), key=b"C-1")
        await agent.put(scored_response("r-2", 1, "detractor", customer="C-2"), key=b"C-2")
        await settled(h, lambda: bool(task_events(h)), "the next answer's task event")
    assert [row[2:4] for row in tasks(h)] == [("r-2", "C-2")]
    assert h.sent_to("dead-letters") == []


async def test_bad_input_is_dead_lettered_and_the_next_answer_flows(
    harness: Callable[..., Harness],
) -> None:
    h = harness(followup)
    bad = b'{"response_id": "r-0", "nps": 1}'
    async with h.agent("followup").test_context() as agent:
        await agent.put(bad, key=b"C-1")
        await agent.put(scored_response("r-1", 1, "detractor"), key=b"C-1")
        await settled(h, lambda: bool(task_events(h)), "the next answer's task event")
    letters = h.sent_to("dead-letters")
    assert len(letters) == 1
    assert letters[0]["reason"].startswith("invalid_field: ")
    assert letters[0]["source_topic"] == "scored-responses"
    assert base64.b64decode(letters[0]["original_b64"]) == bad
    assert [row[2] for row in tasks(h)] == ["r-1"]


async def test_a_timestamp_without_offset_is_dead_lettered_not_a_crash(
    harness: Callable[..., Harness],
) -> None:
    h = harness(followup)
    naive = (
        b'{"response_id": "r-0", "invitation_id": "inv-r-0", "customer_id": "C-1",'
        b' "submitted_at": "2026-11-23T08:30:00", "nps": 1, "nps_category": "detractor"}'
    )
    async with h.agent("followup").test_context() as agent:
        await agent.put(naive, key=b"C-1")
        await settled(
            h,
            lambda: bool(h.sent) or agent.crash_reason is not None,
            "the dead letter, or the agent's crash",
        )
        assert agent.crash_reason is None, f"the agent crashed: {agent.crash_reason!r}"
        await agent.put(scored_response("r-1", 1, "detractor"), key=b"C-1")
        await settled(h, lambda: bool(task_events(h)), "the next answer's task event")
    letters = h.sent_to("dead-letters")
    assert len(letters) == 1
    assert base64.b64decode(letters[0]["original_b64"]) == naive
    assert [row[2] for row in tasks(h)] == ["r-1"]


async def test_a_detractor_is_routed_on_the_contact_it_answered(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    rules = tmp_path / "followup.toml"
    rules.write_text(
        'version = "t"\n'
        '[[team]]\nname = "service"\n[[team]]\nname = "north"\nassignment = "none"\n'
        '[[route]]\nteam = "north"\nwhen = { region = ["noord"], language = ["nl"] }\n'
    )
    h = harness(followup, followup_file=rules)
    h.rt.followup = load_followup_rules(rules)
    raw = orjson.loads(contact(1))
    raw["customer"] = {"id": "C-1", "email": "anna@example.nl", "locale": "nl", "region": "noord"}
    event = parse_contact_event(orjson.dumps(raw))
    result = decide_contact(h.rt.engine, event, NOW, load_rules(), h.rt.followup)
    assert result.invitation is not None
    value = records.ScoredResponse(
        response_id="r-1",
        invitation_id=result.invitation.invitation_id,
        customer_id="C-1",
        submitted_at=SUBMITTED,
        nps=2,
        nps_category="detractor",
    ).to_bytes()
    async with h.agent("followup").test_context() as agent:
        await agent.put(value, key=b"C-1")
        await settled(h, lambda: bool(tasks(h)), "the task")
    assert rows(
        h, "SELECT team, region, language, partner, email, assignee FROM followup_tasks"
    ) == [("north", "noord", "nl", "Partner A", "anna@example.nl", None)]
