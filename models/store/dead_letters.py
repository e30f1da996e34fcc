"""Dead letters in SQL: one row per bad message, keyed by where it was read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Engine

from models.store.engine import insert_if_absent, transaction
from models.store.tables import DeadLetter

REASON_MAX = 1000


@dataclass(frozen=True)
class StoredLetter:
    """A dead_letters row: where the message was read, why it was refused, its bytes (the
    first 64 KiB of a too_large one) and the size and SHA-256 of the whole original."""

    dead_letter_id: str
    source_topic: str
    partition: int
    offset: int
    reason: str
    original: bytes
    key: bytes | None
    received_at: datetime
    original_size: int | None = None
    original_sha256: str | None = None


def record_dead_letter(engine: Engine, letter: StoredLetter) -> bool:
    """Store a dead letter once; True when it was new."""
    row = asdict(letter)
    row["reason"] = letter.reason[:REASON_MAX]
    with transaction(engine) as session:
        return insert_if_absent(session, DeadLetter, row)
