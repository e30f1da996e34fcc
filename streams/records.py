"""Payloads of cxloop's internal topics. Each carries schema_version; bump it on change.

Contact events come from outside and are validated by models.contact_events instead,
so that a bad event gets a precise reason in the dead letters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import faust
import orjson
from faust.models.fields import StringField

SCHEMA_VERSION = 1


class WireRecord(
    faust.Record,
    abstract=True,
    serializer="json",
    validation=True,
    isodates=True,
    include_metadata=False,
):
    """Base of cxloop records: JSON without Faust's type metadata, dates as ISO 8601."""

    def to_bytes(self) -> bytes:
        """The record as it goes on the wire."""
        return orjson.dumps(self.asdict(), default=_default)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Any:
        """Decode and validate; raises ValueError or TypeError on bad input."""
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("payload is not a JSON object")
        record = cls.from_data(data)
        record.validate_or_raise()
        for name in record._options.fields:
            value = getattr(record, name)
            if isinstance(value, datetime) and value.utcoffset() is None:
                raise ValueError(f"{name}: timestamp without time zone")
        return record


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not serialisable: {type(value).__name__}")


class SurveyInvitation(WireRecord):
    """A decision to survey a customer: the mailer e-mails it."""

    invitation_id: str
    event_id: str
    customer_id: str
    locale: str
    created_at: datetime
    schema_version: int = SCHEMA_VERSION


class SurveyResponse(WireRecord):
    """An answer submitted on the survey page or the JSON API."""

    response_id: str
    invitation_id: str
    customer_id: str
    submitted_at: datetime
    nps: int | None = None
    csat: int | None = None
    schema_version: int = SCHEMA_VERSION


class ScoredResponse(WireRecord):
    """An answer with its NPS category and CSAT verdict."""

    response_id: str
    invitation_id: str
    customer_id: str
    submitted_at: datetime
    nps: int | None = None
    nps_category: str | None = None
    csat: int | None = None
    csat_satisfied: bool | None = None
    schema_version: int = SCHEMA_VERSION


class FollowupTaskEvent(WireRecord):
    """Something that happened to a follow-up task: opened, action recorded, closed."""

    event_type: str
    task_id: str
    customer_id: str
    origin: str
    priority: int
    status: str
    due_at: datetime
    occurred_at: datetime
    action_type: str | None = None
    schema_version: int = SCHEMA_VERSION


class FollowupAction(WireRecord):
    """A staff action on a task: called, resolved, customer_informed."""

    action_id: str
    task_id: str
    customer_id: str
    type: str
    actor: str
    requested_at: datetime
    note: str = StringField(allow_blank=True, required=False, default="")
    schema_version: int = SCHEMA_VERSION


class DeadLetter(WireRecord):
    """Input that could not be processed, with why and the original bytes (base64)."""

    dead_letter_id: str
    source_topic: str
    partition: int
    offset: int
    reason: str
    original_b64: str = StringField(allow_blank=True)  # an empty message is still a message
    received_at: datetime
    key_b64: str | None = None
    schema_version: int = SCHEMA_VERSION
