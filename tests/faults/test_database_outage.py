"""g. PostgreSQL stopped while events flow, then started again: the worker waits instead
of crashing (its process stays up, /health answers) and no row is lost or doubled."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import wait_for
from tests.faults.checker import finish
from tests.faults.conftest import Sizes
from tests.faults.rig import FaultRig
from tests.faults.workload import Traffic, contact_events
from tests.harness.postgres import PostgresCluster

pytestmark = [pytest.mark.faults, pytest.mark.postgres]


def _health(url: str) -> int | str:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


def test_database_outage_neither_crashes_the_worker_nor_loses_rows(
    make_rig: Callable[[str], FaultRig], own_postgres: PostgresCluster, sizes: Sizes
) -> None:
    rig = make_rig(own_postgres.url)
    worker = rig.add_worker()
    worker.wait_ready()
    events = contact_events(sizes.db_events, sizes.db_events * 2 // 3, seed=7)
    traffic = Traffic(rig).start()
    traffic.feed_events(events, per_second=len(events) / (sizes.db_outage_s + 3))
    wait_for(lambda: rig.scalar("SELECT count(*) FROM survey_decisions") > 0, 60, "first decisions")

    rig.engine.dispose()  # the test's own connections would die with the server
    own_postgres.stop()
    back_at = time.monotonic() + sizes.db_outage_s
    health = []
    while time.monotonic() < back_at:  # hold the outage, watching the worker
        assert worker.alive, f"worker died during the outage:\n{worker.log_tail()}"
        health.append(_health(worker.web))
        time.sleep(0.5)
    decided_during_outage = traffic.fed
    own_postgres.start()

    report = finish(rig, traffic, "g. PostgreSQL down and up", sizes.settle_s)
    print(f"/health during the outage: {sorted(set(map(str, health)))}")  # noqa: T201
    assert worker.alive and worker.incarnation == 1, "the worker restarted or died"
    assert decided_during_outage > 0
    assert set(health) == {200}, f"/health during the outage: {health}"
    assert report.all_zero, report.table()
