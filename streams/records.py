"""Payloads of cxloop's internal topics. Each carries schema_version; bump it on change.

Contact events come from outside and are validated by models.contact_events instead,
so that a bad event gets a precise reason in the dead letters.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import faust
import orjson
from faust.models.fields import StringField

from streams.errors import StreamsError

SCHEMA_VERSION = 1
RESPONSE_SCHEMA_VERSION = 2  # SurveyResponse and ScoredResponse: v2 added ces and answers
INVITATION_SCHEMA_VERSION = 2  # SurveyInvitation: v2 added programme, template and reminder


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
        """Decode and validate; raises ValueError or TypeError on bad input (RecordInvalidError,
        with a reason code, when it is not a JSON object at all)."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _not_json(raw, exc) from None
        except TypeError:
            raise RecordInvalidError(DeadLetterReason.NULL_VALUE, "no value") from None
        if not isinstance(data, dict):
            raise RecordInvalidError(
                DeadLetterReason.NOT_JSON, f"not a JSON object but {type(data).__name__}"
            )
        record = cls.from_data(data)
        record.validate_or_raise()
        for name in record._options.fields:
            value = getattr(record, name)
            if isinstance(value, datetime) and value.utcoffset() is None:
                raise ValueError(f"{name}: timestamp without time zone")
        return record


class RecordInvalidError(StreamsError, ValueError):
    """Bytes that are no record at all: *code* is the dead-letter reason code, *detail* says
    where (never a value). str() is "code: detail"."""

    def __init__(self, code: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code = code.value
        self.detail = detail


def _not_json(raw: bytes, exc: orjson.JSONDecodeError) -> RecordInvalidError:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return RecordInvalidError(DeadLetterReason.NOT_UTF8, f"not valid UTF-8 at byte {bad.start}")
    return RecordInvalidError(DeadLetterReason.NOT_JSON, f"{exc.msg} at position {exc.pos}")


def _checked_answers(answers: object) -> dict[str, Any]:
    """A fresh dict of answers: question id → int, bool, text or {aspect: int}."""
    if answers is None:
        return {}
    if not isinstance(answers, dict):
        raise TypeError(f"answers: must be an object, got {type(answers).__name__}")
    for key, value in answers.items():
        nested = value.values() if isinstance(value, dict) else ()
        if not isinstance(key, str) or not isinstance(value, int | str | dict):
            raise TypeError(f"answers: {key!r} is not an int, bool, text or object")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in nested):
            raise TypeError(f"answers: {key!r} has a rating that is not an integer")
    return dict(answers)


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not serialisable: {type(value).__name__}")


class SurveyInvitation(WireRecord):
    """A survey to e-mail: the invitation (reminder 0) or its n-th reminder."""

    invitation_id: str
    event_id: str
    customer_id: str
    locale: str
    created_at: datetime
    programme: str | None = None
    template: str | None = None
    reminder: int = 0
    schema_version: int = INVITATION_SCHEMA_VERSION


class CallListEntry(WireRecord):
    """A phone survey for an interviewer to make (on call-list, keyed by customer id).

    Carries the number to call: the call list is for interviewers, like the mail for the
    customer; cxloop's logs never show it.
    """

    invitation_id: str
    customer_id: str
    programme: str
    template: str
    locale: str
    created_at: datetime
    expires_at: datetime
    phone: str | None = None
    name: str | None = None
    schema_version: int = SCHEMA_VERSION


class SurveyResponse(WireRecord):
    """An answer submitted on the survey page or the JSON API.

    v2 added ces and answers (every validated answer by question id); a v1 message decodes
    with ces None and answers empty.
    """

    response_id: str
    invitation_id: str
    customer_id: str
    submitted_at: datetime
    nps: int | None = None
    csat: int | None = None
    ces: int | None = None
    answers: dict[str, Any] = None  # type: ignore[assignment]  # __post_init__: a new {}
    schema_version: int = RESPONSE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.answers = _checked_answers(self.answers)


class ScoredResponse(WireRecord):
    """An answer with its NPS category and CSAT verdict (v2: with ces and answers, as on
    SurveyResponse)."""

    response_id: str
    invitation_id: str
    customer_id: str
    submitted_at: datetime
    nps: int | None = None
    nps_category: str | None = None
    csat: int | None = None
    csat_satisfied: bool | None = None
    ces: int | None = None
    answers: dict[str, Any] = None  # type: ignore[assignment]  # __post_init__: a new {}
    schema_version: int = RESPONSE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.answers = _checked_answers(self.answers)


TASK_SCHEMA_VERSION = 2  # FollowupTaskEvent v2: event id, team, assignee, actor, reason, SLA
ACTION_SCHEMA_VERSION = 2  # FollowupAction v2: details (assignee, root cause, fix)


class FollowupTaskEvent(WireRecord):
    """Something that happened to a follow-up task, with the task as it is after it.

    On followup-tasks, keyed by customer id. Every event names the task's team: a team's
    stream is the events whose ``team`` is that team (see README, "Task streams"). The
    event id is stable, so a consumer that sees one twice can drop the second. No contact
    details or comments travel here; a CRM reads them from GET /api/tasks/<id>.
    """

    event_type: str
    task_id: str
    customer_id: str
    origin: str
    priority: int
    status: str
    due_at: datetime
    occurred_at: datetime
    action_type: str | None = None
    event_id: str | None = None
    seq: int | None = None
    team: str | None = None
    assignee: str | None = None
    from_status: str | None = None
    actor: str | None = None
    reason: str | None = None
    details: dict[str, Any] = None  # type: ignore[assignment]  # __post_init__: a new {}
    first_contact_due_at: datetime | None = None
    sla_due_at: datetime | None = None
    schema_version: int = TASK_SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.details = dict(self.details or {})


class FollowupAction(WireRecord):
    """A staff action on a task (models.task_lifecycle.ActionType), checked against the staff
    member's rights before it is published; details carry assignee, root_cause,
    needs_structural_fix and structural_fix_id / structural_fix_title."""

    action_id: str
    task_id: str
    customer_id: str
    type: str
    actor: str
    requested_at: datetime
    note: str = StringField(allow_blank=True, required=False, default="")
    details: dict[str, Any] = None  # type: ignore[assignment]  # __post_init__: a new {}
    schema_version: int = ACTION_SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.details = dict(self.details or {})


class DeadLetterReason(StrEnum):
    """The code a dead letter's reason starts with: "<code>" or "<code>: <detail>", where the
    detail says where (a field, a byte offset) and never quotes a value."""

    NULL_VALUE = "null_value"  # the message has no value (a tombstone)
    TOO_LARGE = "too_large"  # larger than CXLOOP_MAX_MESSAGE_BYTES
    NUL_CHARACTER = "nul_character"  # a NUL byte, or a \u0000 escape decoded into a string
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"  # not JSON, or JSON but not an object
    DUPLICATE_KEY = "duplicate_key"  # a key twice in one JSON object (contact events)
    INVALID_FIELD = "invalid_field"  # a field missing, of the wrong type or out of range
    KEY_MISMATCH = "key_mismatch"  # the message key is not the customer id (contact events)
    OCCURRED_IN_FUTURE = "occurred_in_future"  # beyond CXLOOP_MAX_FUTURE_SKEW_S (contact events)
    NOT_FOUND = "not_found"  # what the message refers to is not in the database
    UNEXPECTED = "unexpected"  # an agent failed on it: a bug to fix, then replay


def dead_letter_reason(code: DeadLetterReason, detail: str = "") -> str:
    """A reason as dead letters carry it: "code: detail" (or the code alone)."""
    return f"{code.value}: {detail}" if detail else code.value


DEAD_LETTER_SCHEMA_VERSION = 2  # DeadLetter v2: original_size and original_sha256


class DeadLetter(WireRecord):
    """Input that could not be processed: why (a DeadLetterReason code first), where it was
    read and the original bytes (base64; only the first 64 KiB of a too_large message).
    original_size and original_sha256 describe the whole original value (None for a null
    value, and on v1 letters). On dead-letters, keyed by the customer id when known (the
    source message's key on a customer-keyed topic, or the decoded customer id), else by
    the dead-letter id."""

    dead_letter_id: str
    source_topic: str
    partition: int
    offset: int
    reason: str
    original_b64: str = StringField(allow_blank=True)  # an empty message is still a message
    received_at: datetime
    # An empty key is still a key (b""), as an empty message is still a message.
    key_b64: str | None = StringField(allow_blank=True, required=False, default=None)
    original_size: int | None = None
    original_sha256: str | None = None
    schema_version: int = DEAD_LETTER_SCHEMA_VERSION


CONSENT_CHANNELS = ("email", "phone", "all")
CONSENT_STATUSES = ("opted_out", "opted_in")
_CONSENT_KEY_SEPARATOR = "|"


def consent_key(customer_id: str, channel: str) -> str:
    """The message key on customer-consent: '<customer_id>|<channel>', e.g. 'C-1001|email'.

    Compaction keeps the latest message per key, so the key must name the customer *and*
    the channel: keyed by customer alone, an opt-out of e-mail would be compacted away by a
    later phone opt-in. The channel is last and never contains '|', so
    key.rpartition('|') splits it even when a customer id does. Unlike the other topics, one
    customer's consent messages may land on different partitions; that is safe because
    consumers apply them last-writer-wins by changed_at, not in arrival order.
    """
    return f"{customer_id}{_CONSENT_KEY_SEPARATOR}{channel}"


class ConsentChange(WireRecord):
    """A customer opted out of (or back into) surveys on one channel, or on all of them.

    On the compacted customer-consent topic, keyed by consent_key(customer_id, channel).
    source says where it came from: 'unsubscribe_link', 'preference_centre', 'api',
    'import', ...
    """

    consent_id: str
    customer_id: str
    channel: str
    status: str
    changed_at: datetime
    source: str
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_bytes(cls, raw: bytes) -> Any:
        """Decode and validate, including the channel and status vocabularies."""
        record = super().from_bytes(raw)
        if record.channel not in CONSENT_CHANNELS:
            raise ValueError(f"channel: must be one of {', '.join(CONSENT_CHANNELS)}")
        if record.status not in CONSENT_STATUSES:
            raise ValueError(f"status: must be one of {', '.join(CONSENT_STATUSES)}")
        if not 0 < len(record.source) <= 40:
            raise ValueError("source: must be 1 to 40 characters")
        if len(record.customer_id) > 200 or len(record.consent_id) > 64:
            raise ValueError("customer_id or consent_id too long")
        return record

    def message_key(self) -> str:
        """The key this change is published under (see consent_key)."""
        return consent_key(self.customer_id, self.channel)
