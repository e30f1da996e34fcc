"""Topic creation: compacted topics ask for cleanup.policy=compact, and a broker that
refuses the config still gets the topic (logged), without it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import NewTopic
from aiokafka.errors import InvalidConfigurationError
from structlog.testing import capture_logs

from streams import topic_admin
from streams.topics import CONTACT_EVENTS, CUSTOMER_CONSENT


@dataclass
class Response:
    topic_errors: list[tuple[str, int, str | None]]


@dataclass
class Admin:
    """Stands in for AIOKafkaAdminClient.create_topics; refuses configs when told to."""

    refuse_configs: bool
    requests: list[list[NewTopic]] = field(default_factory=list)

    async def create_topics(self, topics: list[NewTopic]) -> Response:
        self.requests.append(topics)
        errors = [
            (
                t.name,
                InvalidConfigurationError.errno if self.refuse_configs and t.topic_configs else 0,
                None,
            )
            for t in topics
        ]
        return Response(errors)


def configs(request: list[NewTopic]) -> dict[str, Any]:
    return {t.name: t.topic_configs for t in request}


async def test_the_consent_topic_is_created_compacted() -> None:
    admin = Admin(refuse_configs=False)
    await topic_admin._create(admin, [CONTACT_EVENTS, CUSTOMER_CONSENT], 8, 1)  # type: ignore[arg-type]
    assert [configs(r) for r in admin.requests] == [
        {CONTACT_EVENTS: {}, CUSTOMER_CONSENT: {"cleanup.policy": "compact"}}
    ]


async def test_a_refused_config_is_logged_and_the_topic_created_without() -> None:
    admin = Admin(refuse_configs=True)
    with capture_logs() as logs:
        await topic_admin._create(admin, [CONTACT_EVENTS, CUSTOMER_CONSENT], 8, 1)  # type: ignore[arg-type]
    assert [configs(r) for r in admin.requests] == [
        {CONTACT_EVENTS: {}, CUSTOMER_CONSENT: {"cleanup.policy": "compact"}},
        {CUSTOMER_CONSENT: {}},
    ]
    refused = [entry for entry in logs if entry["event"] == "topic_config_refused"]
    assert [(e["topic"], e["error"]) for e in refused] == [
        (CUSTOMER_CONSENT, "InvalidConfigurationError")
    ]
    assert not [entry for entry in logs if entry["event"] == "topic_not_created"]
