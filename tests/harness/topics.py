"""Topics from the test's side: read them from the first offset outside any consumer group
(for asserting on them), and produce, create and inspect them from synchronous tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

T = TypeVar("T")


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


@dataclass(frozen=True)
class Produced:
    """A message as it landed on a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class KafkaIO:
    """aiokafka clients on one private event-loop thread, for synchronous tests."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kafka-io", daemon=True)
        self._thread.start()
        self._producer: AIOKafkaProducer | None = None
        self._send_lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def create_topics(self, names: Iterable[str], partitions: int) -> None:
        async def create() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            try:
                new = [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(new)
            finally:
                await admin.close()

        self.run(create())

    def produce(
        self, topic: str, messages: Sequence[tuple[bytes | None, bytes | None]]
    ) -> list[Produced]:
        """Send (key, value) pairs in order and wait for every ack; returns where each landed.

        The offsets come from the produce responses, which tansu gets right (its reported end
        offsets, not used here, can be too low after a batched produce)."""

        async def send() -> list[Produced]:
            if self._producer is None:
                self._producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap, linger_ms=5, acks="all"
                )
                await self._producer.start()
            futures = [
                await self._producer.send(topic, value=value, key=key) for key, value in messages
            ]
            metas = await asyncio.gather(*futures)
            return [
                Produced(topic, m.partition, m.offset, key, value)
                for m, (key, value) in zip(metas, messages, strict=True)
            ]

        with self._send_lock:
            return self.run(send())

    def committed(
        self, group: str, topics: Iterable[str], partitions: int
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets (-1 / None become 0)."""

        async def fetch() -> dict[TopicPartition, int]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
            )
            await consumer.start()
            try:
                found = {}
                for topic in topics:
                    for p in range(partitions):
                        tp = TopicPartition(topic, p)
                        found[tp] = max(await consumer.committed(tp) or 0, 0)
                return found
            finally:
                await consumer.stop()

        return self.run(fetch())

    def read_topics(
        self, topics: Sequence[str], quiet_s: float = 0.3, timeout: float = 30
    ) -> list[Produced]:
        """Every message on *topics*, read from the start until nothing new for *quiet_s*."""

        async def read() -> list[Produced]:
            records = await read_from_start(
                self.bootstrap, topics, limit_s=timeout, quiet_s=quiet_s
            )
            return [Produced(r.topic, r.partition, r.offset, r.key, r.value) for r in records]

        return self.run(read(), timeout=timeout + 30)

    def close(self) -> None:
        async def stop() -> None:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

        try:
            self.run(stop(), timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
