"""Publishing a complaint contact event, for the web form (agents.web.complaint_form) and the
intake SMTP server (agents.mail.complaint_intake) alike."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from agents.errors import AgentError
from agents.runtime import Runtime

PUBLISH_PATIENCE_S = 10.0


class PublishFailedError(AgentError):
    """The broker did not take the complaint in time; the sender should try again."""


async def publish_complaint(rt: Runtime, event: Mapping[str, Any]) -> None:
    """Put a complaint contact event (from complaint_from_mail or _form, which checked it
    against the contact-event contract) on contact-events, keyed by customer id, and wait
    for the broker's ack."""
    send = rt.send(rt.topics.contact_events, event["customer"]["id"], orjson.dumps(event))
    try:
        await asyncio.wait_for(send, PUBLISH_PATIENCE_S)
    except (TimeoutError, KafkaError) as exc:
        raise PublishFailedError(type(exc).__name__) from exc
