"""Dead letters in SQL: one row per bad message, keyed by where it was read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from models.store.engine import insert_if_absent, transaction
from models.store.tables import DeadLetter


def record_dead_letter(
    engine: Engine,
    dead_letter_id: str,
    source_topic: str,
    partition: int,
    offset: int,
    reason: str,
    original: bytes,
    key: bytes | None,
    received_at: datetime,
) -> bool:
    """Store a dead letter once; True when it was new."""
    with transaction(engine) as session:
        return insert_if_absent(
            session,
            DeadLetter,
            {
                "dead_letter_id": dead_letter_id,
                "source_topic": source_topic,
                "partition": partition,
                "offset": offset,
                "reason": reason[:1000],
                "original": original,
                "key": key,
                "received_at": received_at,
            },
        )
