"""How many messages a consumer group has not yet committed, per topic, as the broker sees it.

Lag is a partition's end offset minus the group's committed offset. The end offset is read
from a fetch response's high watermark, not from ListOffsets: tansu (the embedded broker)
answers ListOffsets with the base offset of the partition's last batch plus one, which is
too low after batched produce, while its fetch responses carry the true high watermark.
The committed offsets are read first and the end offsets after them, so an output produced
for an input that was committed (cxloop commits only after its sends were acknowledged) is
never missed: a zero lag means nothing consumed is waiting, outputs included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.errors import StreamsError


class ConsumerLagUnknownError(StreamsError):
    """The broker did not tell the group's offsets in time."""


async def consumer_lag(
    bootstrap: str, group_id: str, topics: Iterable[str], timeout_s: float = 10.0
) -> dict[str, int]:
    """Messages after *group_id*'s committed offsets, per topic of *topics* that exists.

    A partition the group never committed counts from its first offset (cxloop's consumers
    start at the earliest message)."""
    try:
        return await asyncio.wait_for(_lag(bootstrap, group_id, tuple(topics)), timeout_s)
    except (KafkaError, TimeoutError, OSError) as exc:
        raise ConsumerLagUnknownError(f"{type(exc).__name__}: {exc}") from exc


async def _lag(bootstrap: str, group_id: str, topics: tuple[str, ...]) -> dict[str, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,  # this reader never moves the group's offsets
        fetch_max_wait_ms=50,
        request_timeout_ms=5000,
    )
    await consumer.start()
    try:
        existing = await consumer.topics()
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in existing
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return {}
        committed = await asyncio.gather(*(consumer.committed(tp) for tp in partitions))
        starts = await consumer.beginning_offsets(partitions)
        # A lower bound on tansu (see above), the end on Kafka; the fetch from here is small.
        lower_ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, lower_ends[tp])
        while any(consumer.highwater(tp) is None for tp in partitions):
            await consumer.getmany(timeout_ms=50)  # each fetch response sets them
        lag = dict.fromkeys(topics, 0)
        for tp, offset in zip(partitions, committed, strict=True):
            start = starts[tp] if offset is None else offset
            lag[tp.topic] += max(0, consumer.highwater(tp) - start)
        return {topic: lag[topic] for topic in topics if topic in existing}
    finally:
        await consumer.stop()
