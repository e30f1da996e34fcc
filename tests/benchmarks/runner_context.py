"""What every benchmark gets: sizes for --quick or full, a work directory, PostgreSQL."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tests.harness.postgres import PostgresProvider

T = TypeVar("T")


@dataclass
class Context:
    quick: bool
    workdir: Path
    pg: PostgresProvider
    worker_db: str = "sqlite"  # where the cxloop workers keep state: sqlite | postgres
    profile_dir: Path | None = None
    baseline_rate: float | None = None  # msgs/s of the raw passthrough, once measured
    trigger_rate: float | None = None  # one worker's trigger events/s, once measured
    notes: list[str] = field(default_factory=list)

    def pick(self, quick: T, full: T) -> T:
        return quick if self.quick else full

    def worker_database(self, stack: ExitStack, workdir: Path, name: str) -> str:
        """A fresh database for cxloop workers: a SQLite file, or a new PostgreSQL database."""
        if self.worker_db == "postgres":
            return stack.enter_context(self.pg.database(f"cxbench_{name}"))
        return f"sqlite:///{workdir / 'cxloop.db'}"
