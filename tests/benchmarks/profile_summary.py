"""Summarise py-spy raw (collapsed) stacks from --profile: where a worker's time goes.

    .venv/bin/python -m tests.benchmarks.profile_summary DIR/trigger-worker-1.txt [--top 25]

Prints the share of samples per thread, per "area" (the first frame that matches a known
area, innermost first) and the functions with the most inclusive and self time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.benchmarks.common import out

# Innermost match wins: a stack that reaches sqlite3 from cxloop counts as "SQL driver".
AREAS: tuple[tuple[str, str], ...] = (
    ("SQL driver (sqlite3/psycopg)", r"(sqlite3|psycopg)[/.]"),
    ("SQLAlchemy", r"sqlalchemy/"),
    ("SMTP (aiosmtplib)", r"aiosmtplib/"),
    ("mail building (email/jinja2)", r"(email/|jinja2/|mail/invitation|agents/rendering)"),
    ("JSON logging (structlog)", r"(structlog/|streams/logging)"),
    ("Kafka client (aiokafka)", r"aiokafka/"),
    ("Faust stream machinery", r"(faust/|mode/)"),
    ("validation (pydantic)", r"pydantic"),
    ("cxloop agents/models", r"(agents/|models/)"),
    ("asyncio / threads", r"(asyncio/|threading\.py|concurrent/)"),
)


# Frames every stack passes through; left out of the inclusive list.
PLUMBING = re.compile(
    r"(threading\.py|runpy|typer/|click/|asyncio/(base_events|events)\.py|concurrent/futures"
    r"|mode/worker|agents/cli\.py|agents/__main__)"
)
# The cxloop function a stack is working for: its outermost frame in agents/ or models/,
# skipping the shared loop and runtime helpers.
UNIT = re.compile(r"\((agents/(?!consume|runtime|cli|__main__)|models/)")


def unit_of(frames: tuple[str, ...]) -> str:
    for frame in frames:
        if UNIT.search(frame):
            return frame
    return "(no cxloop frame: Faust/aiokafka/asyncio)"


def parse(path: Path) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            # "func (path:line)" → "func (path)": one entry per function, not per line.
            frames = tuple(re.sub(r":\d+\)$", ")", f) for f in stack.split(";"))
            stacks[frames] += int(count)
    return stacks


def area_of(frames: tuple[str, ...]) -> str:
    for frame in reversed(frames):
        for name, pattern in AREAS:
            if re.search(pattern, frame):
                return name
    return "other"


def is_idle(frames: tuple[str, ...]) -> bool:
    """Waiting for work: the event loop in select(), a pool thread waiting for a job."""
    leaf = frames[-1] if frames else ""
    return bool(re.search(r"(select|poll|epoll|wait|_worker \(concurrent|sleep)", leaf))


def is_lock_wait(frames: tuple[str, ...]) -> bool:
    """Inside models.store.engine's BEGIN IMMEDIATE hook: waiting for SQLite's write lock."""
    return any(f.endswith("<lambda> (models/store/engine.py)") for f in frames)


@dataclass
class Tally:
    total: int = 0
    busy: int = 0
    idle: int = 0
    lock_wait: int = 0
    threads: Counter[str] = field(default_factory=Counter)
    thread_busy: Counter[str] = field(default_factory=Counter)
    thread_lock: Counter[str] = field(default_factory=Counter)
    areas: Counter[str] = field(default_factory=Counter)
    units: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)

    def add(self, frames: tuple[str, ...], n: int) -> None:
        thread = frames[0] if frames else "?"
        self.total += n
        self.threads[thread] += n
        if is_idle(frames):
            self.idle += n
        elif is_lock_wait(frames):
            self.lock_wait += n
            self.thread_lock[thread] += n
        else:
            self.busy += n
            self.thread_busy[thread] += n
            self.areas[area_of(frames)] += n
            self.units[unit_of(frames)] += n
            for frame in set(frames[1:]):
                if not PLUMBING.search(frame):
                    self.inclusive[frame] += n
            self.own[frames[-1]] += n


def _share(title: str, counts: Counter[str], of: int, limit: int | None) -> None:
    out(title)
    for name, n in counts.most_common(limit):
        out(f"  {100 * n / of:5.1f} %  {name[:150]}")


def summarise(path: Path, top: int) -> None:
    t = Tally()
    for frames, n in parse(path).items():
        t.add(frames, n)
    if not t.total:
        out(f"{path}: no samples")
        return
    out(
        f"{path}: {t.total} samples: busy {100 * t.busy / t.total:.0f} %, waiting for SQLite's "
        f"write lock (BEGIN IMMEDIATE) {100 * t.lock_wait / t.total:.0f} %, "
        f"idle {100 * t.idle / t.total:.0f} % (idle and lock waits need py-spy --idle)"
    )
    if not t.busy:
        return
    out("threads (share of samples; busy and lock-wait % of that thread's samples):")
    for name, n in t.threads.most_common(8):
        out(
            f"  {100 * n / t.total:5.1f} %  {name}: busy {100 * t.thread_busy[name] / n:.0f} %,"
            f" lock wait {100 * t.thread_lock[name] / n:.0f} %"
        )
    _share("busy samples by area (innermost matching frame):", t.areas, t.busy, None)
    _share(
        "busy samples by cxloop unit of work (outermost agents/ or models/ frame):",
        t.units,
        t.busy,
        12,
    )
    _share(f"top {top} functions, inclusive (% of busy samples):", t.inclusive, t.busy, top)
    _share(f"top {top} functions, self:", t.own, t.busy, top)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.profile_summary")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.files:
        summarise(path, args.top)


if __name__ == "__main__":
    main()
