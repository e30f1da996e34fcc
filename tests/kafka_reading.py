"""Read topics from their first offset, outside any consumer group (for asserting on them)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer


async def read_from_start(
    bootstrap: str,
    topics: Sequence[str],
    *,
    limit_s: float,
    expect: int | None = None,
    quiet_s: float | None = None,
    poll_ms: int = 100,
) -> list[Any]:
    """The records on *topics* from the start, read until there are *expect* of them, or
    nothing new came for *quiet_s* seconds, or *limit_s* seconds passed.

    No group and no commits, so reading never moves anyone's offsets."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    found: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        last_new = loop.time()
        while loop.time() < deadline:
            if expect is not None and len(found) >= expect:
                break
            if quiet_s is not None and loop.time() - last_new >= quiet_s:
                break
            batch = await consumer.getmany(timeout_ms=poll_ms)
            for records in batch.values():
                found.extend(records)
                last_new = loop.time()
    finally:
        await consumer.stop()
    return found
