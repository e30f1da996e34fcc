"""PostgreSQL for the tests and benchmarks: a fresh database on a server, a throwaway cluster
(tests/postgres_cluster.sh) a test may stop and start, and the benchmarks' provider that
takes a server from the environment or starts a cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.harness.waiting import wait_until

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
CLUSTER_SCRIPT = Path(__file__).resolve().parents[1] / "postgres_cluster.sh"


class ClusterFailedError(RuntimeError):
    """tests/postgres_cluster.sh could not start a cluster; the message has its stderr."""


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str = "cxloop") -> Iterator[str]:
    """A new, empty database <prefix>_<12 hex> on the server of *admin_url* (a user who may
    create databases); its URL, and the database dropped afterwards."""
    url = make_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def as_postgres(*command: str | Path) -> list[str]:
    """*command* run as the postgres user when we are root (initdb and postgres refuse
    root), as tests/postgres_cluster.sh does."""
    args = [str(c) for c in command]
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _cluster_script(action: str, directory: Path) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run(
        [bash, str(CLUSTER_SCRIPT), action, str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )


@dataclass
class PostgresCluster:
    """A throwaway cluster of tests/postgres_cluster.sh: its directory and URL."""

    directory: Path
    url: str

    @classmethod
    def create(cls, prefix: str = "cxloop-pg.") -> PostgresCluster:
        """Start one in a new directory under /tmp (not under the clone: the postgres user
        must be able to reach it); ClusterFailedError if it does not start."""
        directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        started = _cluster_script("start", directory)
        lines = started.stdout.strip().splitlines()
        if started.returncode != 0 or not lines:
            _cluster_script("stop", directory)
            shutil.rmtree(directory, ignore_errors=True)
            raise ClusterFailedError(started.stderr[-2000:])
        return cls(directory, lines[-1])

    def destroy(self) -> None:
        """Stop it and remove its directory."""
        _cluster_script("stop", self.directory)
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def stop(self) -> None:
        """Stop the server (the database is down), keeping its data."""
        subprocess.run(
            as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        """Start the stopped server again and wait until it accepts connections."""
        # The same options as tests/postgres_cluster.sh; the port is in data/cxloop.conf.
        subprocess.run(
            as_postgres(
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
        wait_until(self.accepts_connections, 60, "PostgreSQL to accept connections again")

    def accepts_connections(self) -> bool:
        port = self.url.rsplit(":", 1)[1].split("/", 1)[0]
        probe = [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", port, "-t", "2"]
        return subprocess.run(probe, check=False).returncode == 0


class PostgresProvider:
    """A PostgreSQL server: CXLOOP_BENCH_POSTGRES_URL, CXLOOP_TEST_POSTGRES_URL, or a
    throwaway cluster started on first use and stopped at close()."""

    def __init__(self) -> None:
        self._url: str | None = None
        self._cluster: PostgresCluster | None = None
        self.source = ""

    def admin_url(self) -> str:
        if self._url is not None:
            return self._url
        for var in ("CXLOOP_BENCH_POSTGRES_URL", "CXLOOP_TEST_POSTGRES_URL"):
            if os.environ.get(var):
                self._url, self.source = os.environ[var], var
                return self._url
        try:
            self._cluster = PostgresCluster.create("cxloop-bench-pg.")
        except ClusterFailedError as failed:
            raise RuntimeError(f"throwaway PostgreSQL did not start:\n{failed}") from None
        sys.stdout.write(f"  started a throwaway PostgreSQL cluster in {self._cluster.directory}\n")
        self._url = self._cluster.url
        self.source = "throwaway cluster (tests/postgres_cluster.sh)"
        return self._url

    @contextlib.contextmanager
    def database(self, prefix: str) -> Iterator[str]:
        """A new, empty database, dropped afterwards."""
        with fresh_database(self.admin_url(), prefix) as url:
            yield url

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.destroy()
            self._cluster = None
            self._url = None
