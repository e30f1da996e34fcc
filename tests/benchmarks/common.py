"""The real parts every benchmark starts (tansu, an SMTP sink, cxloop workers: from
tests/harness), the settings the workers get, and what the benchmarks measure with (CPU,
RSS, state read while the workers write it).

Everything listens on 127.0.0.1 only, on free ports, and is stopped by whoever started it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from streams.embedded_broker import EmbeddedBroker
from tests.harness.ports import HOST, free_port
from tests.harness.processes import REPO, CxloopProcess, cxloop_worker, embedded_broker
from tests.harness.smtp import SmtpSink

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Settings the benchmarks decide; every other CXLOOP_* variable of the caller is passed
# through to the workers (to try a knob: CXLOOP_PRODUCER_LINGER_MS=10 python -m tests.benchmarks).
_OWN_SETTINGS = frozenset(
    {
        "CXLOOP_KAFKA_BOOTSTRAP",
        "CXLOOP_APP_ID",
        "CXLOOP_TOPIC_PARTITIONS",
        "CXLOOP_DATABASE_URL",
        "CXLOOP_SMTP_HOST",
        "CXLOOP_SMTP_PORT",
        "CXLOOP_SMTP_STARTTLS",
        "CXLOOP_WEB_HOST",
        "CXLOOP_WEB_PORT",
        "CXLOOP_PUBLIC_URL",
        "CXLOOP_DATA_DIR",
        "CXLOOP_LOG_FORMAT",
        "CXLOOP_STAFF_TOKEN",
    }
)
_NOT_SETTINGS = ("CXLOOP_BENCH_", "CXLOOP_TEST_", "CXLOOP_REQUIRE_")


def out(line: str = "") -> None:
    """Progress output (unbuffered, so a long run shows where it is)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def passed_through_settings() -> dict[str, str]:
    """CXLOOP_* settings from the caller's environment that the workers get as they are."""
    return {
        k: v
        for k, v in os.environ.items()
        if k.startswith("CXLOOP_") and not k.startswith(_NOT_SETTINGS) and k not in _OWN_SETTINGS
    }


def code_fingerprint() -> dict[str, Any]:
    """Which code was measured: commit, dirty files, and a hash of agents/models/streams."""
    digest = hashlib.sha256()
    for package in ("agents", "models", "streams"):
        for path in sorted((REPO / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())

    def git(*args: str) -> str:
        git_bin = shutil.which("git")
        if git_bin is None:
            return ""
        result = subprocess.run(
            [git_bin, *args], cwd=REPO, capture_output=True, text=True, check=False
        )
        return result.stdout.rstrip("\n")

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": [line[3:] for line in git("status", "--porcelain").splitlines() if line],
        "source_sha256": digest.hexdigest()[:16],
    }


# --- CPU accounting ----------------------------------------------------------------------


def rates_by_slice(samples: list[tuple[float, int]], slices: int = 5) -> list[float]:
    """Per-second rates in *slices* equal time slices of (time, cumulative count) samples:
    a rate that falls from slice to slice means something grows (tables, topics, backlog)."""
    if len(samples) < 2:
        return []
    t0, t1 = samples[0][0], samples[-1][0]
    if t1 <= t0:
        return []
    edges = [t0 + (t1 - t0) * k / slices for k in range(slices + 1)]

    def count_at(t: float) -> float:
        for (ta, ca), (tb, cb) in itertools.pairwise(samples):
            if ta <= t <= tb:
                return ca + (cb - ca) * ((t - ta) / (tb - ta) if tb > ta else 0.0)
        return float(samples[-1][1])

    return [round((count_at(b) - count_at(a)) / (b - a), 1) for a, b in itertools.pairwise(edges)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), in seconds."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (every process, kernel included)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    steal_and_guests = sum(fields[7:])  # steal, guest, guest_nice: not ours
    return (sum(fields) - idle - steal_and_guests) / CLK_TCK


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


MACHINE = "machine (all processes)"
OTHERS = "others (not this benchmark)"  # e.g. a test suite someone runs meanwhile


@dataclass
class CpuMeter:
    """CPU use of named processes, and of the whole machine, over a window, as % of one
    core (so a 2-core machine tops out at 200)."""

    pids: dict[str, int]
    _start: dict[str, float] = field(default_factory=dict)
    _t0: float = 0.0

    def _now(self) -> dict[str, float]:
        seconds = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        seconds[MACHINE] = machine_busy_seconds()
        return seconds

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = self._now()

    def stop(self) -> dict[str, float]:
        """CPU % of one core since start()."""
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        used = {
            name: round(100 * (seconds - self._start.get(name, 0.0)) / elapsed, 1)
            for name, seconds in self._now().items()
        }
        ours = sum(v for k, v in used.items() if k != MACHINE)
        used[OTHERS] = round(max(used[MACHINE] - ours, 0.0), 1)
        return used


# --- reading state while a worker writes it -------------------------------------------------


class Reader:
    """Polling queries that never take SQLite's write lock (cxloop's engine begins with
    BEGIN IMMEDIATE, so a reader must not use it while workers write)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sqlite: sqlite3.Connection | None = None
        self._engine: Any = None
        if url.startswith("sqlite"):
            path = make_url(url).database
            assert path is not None
            self._sqlite = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._sqlite.execute("PRAGMA query_only=ON")
        else:
            self._engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)

    def one(self, sql: str) -> tuple[Any, ...]:
        if self._sqlite is not None:
            row = self._sqlite.execute(sql).fetchone()
            return tuple(row) if row else ()
        with self._engine.connect() as connection:
            row = connection.execute(text(sql)).fetchone()
            return tuple(row) if row else ()

    def all(self, sql: str) -> list[tuple[Any, ...]]:
        if self._sqlite is not None:
            return [tuple(r) for r in self._sqlite.execute(sql).fetchall()]
        with self._engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text(sql)).all()]

    def scalar(self, sql: str) -> Any:
        row = self.one(sql)
        return row[0] if row else None

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._engine is not None:
            self._engine.dispose()


def epoch(value: Any) -> float:
    """A timestamp column as read by Reader (SQLite text in UTC, or an aware datetime)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# --- one benchmark's parts --------------------------------------------------------------------


class Stack(contextlib.ExitStack):
    """Parts of one benchmark run, stopped in reverse order on exit."""

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.workers: list[CxloopProcess] = []

    def broker(self) -> EmbeddedBroker:
        broker = embedded_broker(self.workdir / "broker.log")
        self.callback(broker.stop)
        return broker

    def smtp_sink(self) -> SmtpSink:
        sink = SmtpSink(self.workdir / "smtp.log")
        sink.start()
        self.callback(sink.stop)
        return sink

    def worker(self, name: str, bootstrap: str, database_url: str, smtp_port: int) -> CxloopProcess:
        """A started `cxloop worker` in app cxbench on 8 partitions; the caller's other
        CXLOOP_* settings pass through. stop() is SIGINT (30 s, then SIGKILL)."""
        web_port = free_port()
        started = cxloop_worker(
            name,
            {
                "kafka_bootstrap": bootstrap,
                "app_id": "cxbench",
                "topic_partitions": "8",
                "database_url": database_url,
                "smtp_host": HOST,
                "smtp_port": str(smtp_port),
                "smtp_starttls": "false",
                "web_host": HOST,
                "public_url": f"http://{HOST}:{web_port}",
                "data_dir": str(self.workdir / f"{name}-data"),
                "log_format": "json",
                "staff_token": "bench-staff-token",
            },
            web_port,
            self.workdir,
            inherited=passed_through_settings(),
            stop_signal=signal.SIGINT,
            stop_timeout=30,
            cwd=REPO,
        )
        started.start()
        self.workers.append(started)
        self.callback(started.stop)
        return started

    def reader(self, url: str) -> Reader:
        reader = Reader(url)
        self.callback(reader.close)
        return reader
