"""Fault-test fixtures: sizes (short or long run), rigs that always stop, a private PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.faults.harness import FaultRig

LONG = os.environ.get("CXLOOP_FAULTS_LONG") == "1"

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
CLUSTER_SCRIPT = Path(__file__).resolve().parents[1] / "postgres_cluster.sh"


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
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cxloop.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite, then a fresh database on the test PostgreSQL (which must exist)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cxloop.db"
    return str(request.getfixturevalue("postgres_url"))


def _as_postgres(*command: str | Path) -> list[str]:
    # initdb and postgres refuse to run as root, as in tests/postgres_cluster.sh.
    args = [str(c) for c in command]
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class PostgresCluster:
    """A throwaway PostgreSQL cluster of this test alone, which it may stop and start."""

    directory: Path
    url: str

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(
                PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"
            ),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        # The same options as tests/postgres_cluster.sh; the port is in data/cxloop.conf.
        subprocess.run(
            _as_postgres(
                PG_BIN / "pg_ctl",
                "-D",
                self.data,
                "-l",
                self.directory / "postgres.log",
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        wait_for(self.accepts_connections, 60, "PostgreSQL to accept connections again")

    def accepts_connections(self) -> bool:
        port = self.url.rsplit(":", 1)[1].split("/", 1)[0]
        probe = [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", port, "-t", "2"]
        return subprocess.run(probe, check=False).returncode == 0


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """Start a private cluster with tests/postgres_cluster.sh; no server is a failure."""
    # Not under pytest's tmp_path: the postgres user must be able to reach the directory.
    directory = Path(tempfile.mkdtemp(prefix="cxloop-faults-pg.", dir="/tmp"))
    try:
        started = subprocess.run(
            ["/bin/bash", str(CLUSTER_SCRIPT), "start", str(directory)],
            capture_output=True,
            text=True,
            check=False,
        )
        if started.returncode != 0 or not started.stdout.strip():
            pytest.fail(
                "could not start a private PostgreSQL with tests/postgres_cluster.sh "
                f"(install postgresql-15):\n{started.stderr[-2000:]}"
            )
        yield PostgresCluster(directory, started.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(
            ["/bin/bash", str(CLUSTER_SCRIPT), "stop", str(directory)],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(directory, ignore_errors=True)
