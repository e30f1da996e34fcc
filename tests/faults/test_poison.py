"""d. Bad input among good events: each bad message is dead-lettered exactly once."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.faults.checker import finish
from tests.faults.conftest import Sizes
from tests.faults.rig import FaultRig
from tests.faults.workload import (
    CONTACT_POISON,
    INTERNAL_POISON,
    PoisonKind,
    Traffic,
    contact_events,
    event_message,
    produce_poison,
)

pytestmark = pytest.mark.faults


def test_poison_is_dead_lettered_once_and_every_good_event_is_decided(
    make_rig: Callable[[str], FaultRig], sqlite_url: str, sizes: Sizes
) -> None:
    rig = make_rig(sqlite_url)
    rig.add_worker().wait_ready()
    rng = random.Random(4)
    events = contact_events(sizes.poison_good_events, sizes.poison_good_events * 2 // 3, seed=4)
    messages = [event_message(e) for e in events]
    # 1 % poison, every kind at least once, at random places among the good events; keyed
    # like good events (or not at all), so they share partitions with good traffic.
    poison_count = max(len(CONTACT_POISON), len(events) // 100)
    poison_at: dict[int, PoisonKind] = {}
    for n in range(poison_count):
        kind = CONTACT_POISON[n % len(CONTACT_POISON)]
        at = rng.randrange(len(messages) + 1)
        value = kind.make(n)
        customer_key = messages[rng.randrange(len(messages))][0]
        # A tombstone (null value) always has a key; other bad input may come without one.
        key = customer_key if value is None else rng.choice([None, customer_key])
        messages.insert(at, (key, value))
        poison_at = {(i + 1 if i >= at else i): k for i, k in poison_at.items()}
        poison_at[at] = kind
    traffic = Traffic(rig, answer_mail=False).feed(messages, per_second=400, poison_at=poison_at)
    # Bad bytes on every other topic an agent reads, while the good traffic flows.
    internal = [
        produce_poison(rig, kind, n, key=b"C-bad") for n, kind in enumerate(INTERNAL_POISON)
    ]

    report = finish(rig, traffic, "d. poison messages", sizes.settle_s, poison=internal)

    assert len(traffic.poison) == poison_count
    assert report.all_zero, report.table()
