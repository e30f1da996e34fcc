"""cxloop as subprocesses (`python -m agents worker`, `python -m agents up`) and the
embedded broker: start, wait until /ready, stop (or kill -9), and read their JSON logs.

One class, CxloopProcess, for the integration tests (`cxloop up`), the fault tests (workers
killed with SIGKILL and started again) and the benchmarks (workers under py-spy); what they
need differently is an option of it: the stop signal and its grace period, one log per start
or one appended log, dying with the test process, the working directory, a profiler.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from streams.embedded_broker import EmbeddedBroker
from tests.harness.ports import HOST, free_port
from tests.harness.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1


class ProcessExitedError(AssertionError):
    """A process the test needs running has exited; the message has its log's tail."""


def stop_process(
    process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 20
) -> int | None:
    """Send *sig*, then SIGKILL after *timeout* s; the exit code (None: never started)."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    return process.returncode


def die_with_parent() -> None:
    """preexec_fn: SIGKILL the child when the process that started it dies, so no orphan is
    left even when the test process itself is killed and no finally block runs."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def cxloop_env(
    settings: Mapping[str, str], inherited: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment without its CXLOOP_* variables, plus *inherited* (full
    names) and *settings* as CXLOOP_<NAME> (settings win)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXLOOP_")}
    env.update(inherited or {})
    env.update({f"CXLOOP_{name.upper()}": value for name, value in settings.items()})
    return env


def json_log_lines(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The JSON lines of the logs in *paths* (other lines, e.g. tracebacks, are skipped)."""
    lines = []
    for path in paths:
        if not path.exists():
            continue
        for raw in path.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    lines.append(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    continue
    return lines


@dataclass
class CxloopProcess:
    """One `python -m agents <args>` subprocess with a web port that answers /ready.

    stop_signal and stop_timeout: how stop() asks it to end before SIGKILL. log_per_start:
    each start() writes a new <name>.<n>.log (a killed worker's log stays as it was), else
    every start appends to <name>.log. die_with_parent: SIGKILL it when the test process
    dies. cwd: its working directory (default: this process's)."""

    name: str
    args: Sequence[str]
    env: dict[str, str]
    web_port: int
    log_dir: Path
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 20
    log_per_start: bool = False
    die_with_parent: bool = False
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    profiler: subprocess.Popen[bytes] | None = None
    incarnation: int = 0  # how many times it was started
    logs: list[Path] = field(default_factory=list)

    @property
    def web(self) -> str:
        return f"http://{HOST}:{self.web_port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def log_path(self) -> Path:
        """The log of the current (or next) start."""
        if self.log_per_start:
            return self.log_dir / f"{self.name}.{max(self.incarnation, 1)}.log"
        return self.log_dir / f"{self.name}.log"

    # lifecycle

    def start(self) -> None:
        """Start it; not waited for (see wait_ready)."""
        assert not self.alive, f"{self.name} is already running"
        self.incarnation += 1
        log_path = self.log_path
        if log_path not in self.logs:
            self.logs.append(log_path)
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agents", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                preexec_fn=die_with_parent if self.die_with_parent else None,  # noqa: PLW1509 - only prctl, no locks
            )

    def check_alive(self) -> None:
        """Raise ProcessExitedError if it was started and has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise ProcessExitedError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def ready(self) -> bool:
        """True when /ready answers 200; ProcessExitedError if it is not running."""
        if self.process is None:
            raise ProcessExitedError(f"{self.name} was never started")
        self.check_alive()
        try:
            return httpx.get(f"{self.web}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60, interval: float = 0.1, what: str = "") -> None:
        wait_until(self.ready, timeout, what or f"{self.name} to answer /ready with 200", interval)

    def kill(self) -> None:
        """kill -9: no shutdown, no offset commit, no SMTP QUIT."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float | None = None) -> int | None:
        """The profiler, then stop_signal and SIGKILL after *timeout* (default stop_timeout)
        s; the exit code (None: never started)."""
        self.stop_profiler()
        return stop_process(
            self.process, self.stop_signal, self.stop_timeout if timeout is None else timeout
        )

    # looking inside

    def readiness(self) -> str:
        try:
            reply = httpx.get(f"{self.web}/ready", timeout=5)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return f"{reply.status_code} {reply.text[:80]}"

    def dump_stacks(self) -> None:
        """Ask it to write every thread's and task's stack to its log (mode's SIGUSR1
        handler): evidence of where a stuck worker waits."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGUSR1)

    def local_ports(self) -> set[int]:
        """Local TCP ports of its open sockets (Linux /proc), to tell which process a
        connection a server sees belongs to."""
        if not self.alive:
            return set()
        inodes = set()
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    if fields[9] in inodes:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON lines of every log it wrote."""
        return json_log_lines(self.logs)

    def log_tail(self, chars: int = 4000) -> str:
        if not self.logs or not self.logs[-1].exists():
            return "(no log)"
        return self.logs[-1].read_text(errors="replace")[-chars:]

    def log_count(self, event: str) -> int:
        """How many lines of the current log are about *event*."""
        needles = (f'"event": "{event}"', f'"event":"{event}"')
        with contextlib.suppress(OSError), self.log_path.open(errors="replace") as log:
            return sum(1 for line in log if any(n in line for n in needles))
        return 0

    # profiling (benchmarks)

    def start_profiler(self, directory: Path, label: str) -> None:
        """py-spy (raw collapsed stacks, idle and all threads) on it into
        *directory*/<label>-<name>.txt, if py-spy is installed (else says so on stdout)."""
        py_spy = shutil.which("py-spy") or shutil.which(
            "py-spy", path=str(Path(sys.executable).parent)
        )
        if py_spy is None:
            sys.stdout.write("  (--profile: py-spy not found; pip install py-spy into .venv)\n")
            sys.stdout.flush()
            return
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{label}-{self.name}.txt"
        self.profiler = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                "200",
                "--format",
                "raw",
                "--nonblocking",
                "--threads",
                "--idle",
                "--output",
                str(target),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_profiler(self) -> None:
        stop_process(self.profiler, signal.SIGINT, 20)
        self.profiler = None


def cxloop_worker(
    name: str,
    settings: Mapping[str, str],
    web_port: int,
    log_dir: Path,
    *,
    inherited: Mapping[str, str] | None = None,
    **options: Any,
) -> CxloopProcess:
    """A `cxloop worker` configured by *settings* (CXLOOP_<NAME> variables, see cxloop_env);
    *options* are CxloopProcess's. Not started."""
    env = cxloop_env({**settings, "web_port": str(web_port)}, inherited)
    return CxloopProcess(name, ["worker"], env, web_port, log_dir, **options)


def embedded_broker(log_file: Path, *, start: bool = True) -> EmbeddedBroker:
    """A tansu broker on a free port of 127.0.0.1, started unless not *start* (stop() it)."""
    broker = EmbeddedBroker(HOST, free_port(), log_file)
    if start:
        broker.start()
    return broker


def broker_pid(broker: EmbeddedBroker) -> int:
    """The tansu process id (EmbeddedBroker keeps its process private)."""
    process = broker._process
    if process is None:
        raise RuntimeError("the broker is not running")
    return process.pid
