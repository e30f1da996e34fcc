"""e. Every event delivered 1-5 times, then the whole input replayed twice: the same bytes
produced again, and a worker in a new consumer group reading every topic from the start.
After the first pass, nothing new may happen: no decision, mail, answer or task."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.faults.checker import Expected, check, finish
from tests.faults.conftest import Sizes
from tests.faults.rig import FaultRig
from tests.faults.workload import Message, Traffic, contact_events, event_message

pytestmark = pytest.mark.faults

REPLAY_APP_ID = "cxloop-replay"


def _effects(rig: FaultRig) -> dict[str, Any]:
    counts = {
        table: rig.scalar(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed table names
        for table in (
            "contact_events",
            "survey_decisions",
            "customer_contact_state",
            "survey_invitations",
            "survey_responses",
            "followup_tasks",
            "followup_actions",
            "dead_letters",
        )
    }
    counts["delivery"] = sorted(
        rig.rows("SELECT delivery_status, count(*) FROM survey_invitations GROUP BY 1")
    )
    counts["mails"] = len(rig.smtp.received())
    return counts


def test_duplicates_and_replays_have_no_new_effects(
    make_rig: Callable[[str], FaultRig], sqlite_url: str, sizes: Sizes
) -> None:
    rig = make_rig(sqlite_url)
    rig.add_worker().wait_ready()
    rng = random.Random(5)
    events = contact_events(sizes.replay_events, sizes.replay_events * 2 // 3, seed=5)
    # Every event 1-5 times; the copies come later, mixed in with other events.
    placed: list[tuple[float, Message]] = []
    for n, event in enumerate(events):
        for copy in range(rng.randint(1, 5)):
            placed.append((n + (rng.uniform(0, 40) if copy else 0), event_message(event)))
    messages = [message for _, message in sorted(placed, key=lambda p: p[0])]
    traffic = Traffic(rig).start().feed(messages, per_second=400)
    first = finish(rig, traffic, "e. every event 1-5 times", sizes.settle_s)
    assert first.all_zero, first.table()
    before = _effects(rig)

    # Replay 2 starts up (a new consumer group reading every topic from the earliest offset)
    # while replay 1 runs: the same bytes again, first to last.
    second = rig.add_worker(app_id=REPLAY_APP_ID)
    again = Traffic(rig, answer_mail=False).feed(messages, per_second=2000)
    again.wait_fed(120)
    wait_for(rig.caught_up, sizes.settle_s, "the worker to read the replayed input")
    second.wait_ready()
    wait_for(
        lambda: rig.caught_up(group=REPLAY_APP_ID),
        sizes.settle_s,
        "the new consumer group to read every topic to the end",
    )
    wait_for(rig.caught_up, sizes.settle_s, "the first group to read what the second re-sent")

    after = _effects(rig)
    expected = Expected(events=[*traffic.produced, *again.produced], answers=traffic.answers)
    report = check(rig, expected, "e. after replaying the input twice")
    print(report.table())  # noqa: T201 - the counts are this test's output
    print(f"effects before replays: {before}\neffects after replays:  {after}")  # noqa: T201
    assert after == before
    assert report.all_zero, report.table()
