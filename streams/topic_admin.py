"""Create cxloop's topics with their partition count before the worker subscribes.

Faust declares only its internal topics; a source topic that does not exist would be
auto-created by the broker with the broker's default partition count instead.
"""

from __future__ import annotations

import contextlib

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = structlog.get_logger("cxloop.topics")


async def ensure_topics(
    bootstrap: str, names: tuple[str, ...], partitions: int, replication: int
) -> None:
    """Create each missing topic; warn about an existing one with fewer partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            new = [
                NewTopic(n, num_partitions=partitions, replication_factor=replication)
                for n in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics(new)
            log.info("topics_created", topics=missing, partitions=partitions)
        for described in await admin.describe_topics([n for n in names if n in existing]):
            count = len(described.get("partitions", []))
            if count < partitions:
                log.warning(
                    "topic_has_fewer_partitions",
                    topic=described["topic"],
                    partitions=count,
                    wanted=partitions,
                )
    finally:
        await admin.close()
