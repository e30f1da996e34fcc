"""Fault-test fixtures: sizes (short or long run), rigs that always stop, a private PostgreSQL.
The databases (sqlite_url, database_url) are tests/conftest.py's."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.rig import FaultRig
from tests.harness.postgres import ClusterFailedError, PostgresCluster

LONG = os.environ.get("CXLOOP_FAULTS_LONG") == "1"


@dataclass(frozen=True)
class Sizes:
    """How big and how long each scenario is."""

    kill_events: int
    kill_customers: int
    kills: int
    kills_postgres: int  # scenario a again on PostgreSQL
    rebalance_events: int
    rebalance_feed_s: float
    smtp_outage_s: float
    smtp_tempfail_s: float
    smtp_events_per_phase: int
    poison_good_events: int
    replay_events: int
    parallel_answers: int
    parallel_tokens: int
    db_outage_s: float
    db_events: int
    settle_s: float


SHORT = Sizes(
    kill_events=600,
    kill_customers=400,
    kills=3,
    kills_postgres=1,
    rebalance_events=400,
    rebalance_feed_s=6,
    smtp_outage_s=5,
    smtp_tempfail_s=5,
    smtp_events_per_phase=100,
    poison_good_events=600,
    replay_events=200,
    parallel_answers=50,
    parallel_tokens=1,
    db_outage_s=5,
    db_events=300,
    settle_s=90,
)
LONG_SIZES = Sizes(
    kill_events=6000,
    kill_customers=4000,
    kills=10,
    kills_postgres=10,
    rebalance_events=4000,
    rebalance_feed_s=60,
    smtp_outage_s=60,
    smtp_tempfail_s=30,
    smtp_events_per_phase=1000,
    poison_good_events=5000,
    replay_events=2000,
    parallel_answers=50,
    parallel_tokens=10,
    db_outage_s=60,
    db_events=3000,
    settle_s=300,
)


@pytest.fixture
def sizes() -> Sizes:
    return LONG_SIZES if LONG else SHORT


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[[str], FaultRig]]:
    """Start rigs on demand; every process they started is stopped however the test ends."""
    rigs: list[FaultRig] = []

    def make(database_url: str) -> FaultRig:
        rig = FaultRig(tmp_path / f"rig-{len(rigs) + 1}", database_url)
        rig.tmp_path.mkdir(parents=True)
        rigs.append(rig)
        rig.start()
        return rig

    try:
        yield make
    finally:
        for rig in rigs:
            rig.close()


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A private cluster of tests/postgres_cluster.sh, which the test may stop and start;
    no server is a failure."""
    try:
        cluster = PostgresCluster.create("cxloop-faults-pg.")
    except ClusterFailedError as failed:
        pytest.fail(
            "could not start a private PostgreSQL with tests/postgres_cluster.sh "
            f"(install postgresql-15):\n{failed}"
        )
    try:
        yield cluster
    finally:
        cluster.destroy()
