"""Create cxloop's topics with their partition count before the worker subscribes.

Faust declares only its internal topics; a source topic that does not exist would be
auto-created by the broker with the broker's default partition count instead.
Compacted topics (streams.topics.COMPACTED_TOPICS) get cleanup.policy=compact.
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from streams.topics import COMPACTED_TOPICS

log = structlog.get_logger("cxloop.topics")

COMPACT = {"cleanup.policy": "compact"}
_NO_ERROR = 0


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
            await _create(admin, missing, partitions, replication)
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


async def _create(
    admin: AIOKafkaAdminClient, names: list[str], partitions: int, replication: int
) -> None:
    def new(name: str, configs: dict[str, str] | None) -> NewTopic:
        return NewTopic(
            name, num_partitions=partitions, replication_factor=replication, topic_configs=configs
        )

    refused = await _create_reporting(
        admin, [new(n, dict(COMPACT) if n in COMPACTED_TOPICS else None) for n in names]
    )
    retry = [n for n in refused if n in COMPACTED_TOPICS]
    for name in retry:
        # A broker that rejects the config still gets the topic: consent is read from SQL,
        # so an uncompacted topic only grows, it loses nothing.
        log.warning("topic_config_refused", topic=name, config=COMPACT, error=refused.pop(name))
    if retry:
        refused.update(await _create_reporting(admin, [new(n, None) for n in retry]))
    for name, error in refused.items():
        log.warning("topic_not_created", topic=name, error=error)


async def _create_reporting(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> dict[str, str]:
    """Create *topics*; the ones the broker refused, with the error's name. CreateTopics
    reports per-topic errors in its response instead of raising them."""
    with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
        response: Any = await admin.create_topics(topics)
        return {
            topic: for_code(code).__name__
            for topic, code, *_ in response.topic_errors
            if code not in (_NO_ERROR, TopicAlreadyExistsError.errno)
        }
    return {}
