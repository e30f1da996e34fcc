"""The contact-event contract: parse and validate raw bytes from contact-events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from models.errors import CxloopError
from models.json_checks import duplicate_key, nul_byte_at, nul_in_json

# The contact-event shape cxloop publishes (complaints, followup_closed) and reads; an
# event from another system without schema_version is version 1.
CONTACT_EVENT_SCHEMA_VERSION = 1


class ContactKind(StrEnum):
    PURCHASE = "purchase"
    AFTER_SALES = "after_sales"
    CONTRACT_CHANGE = "contract_change"
    INQUIRY = "inquiry"
    SUPPORT_CONTACT = "support_contact"
    COMPLAINT = "complaint"
    FIRST_INVOICE = "first_invoice"
    CANCELLATION = "cancellation"
    COMPLAINT_CLOSED = "complaint_closed"  # a complaint case was closed (by a CRM or cxloop)
    FOLLOWUP_CLOSED = "followup_closed"  # cxloop closed a follow-up task (recovery survey)


class Channel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"
    SHOP = "shop"
    WEB = "web"
    SOCIAL = "social"


class Customer(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200)
    # Checked for usability by eligibility, not here: a contact with a bad address is
    # still a contact (recorded, and suppressed as no_contact_address), not bad input.
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)  # IANA name; rules' default if absent
    locale: str | None = Field(default=None, max_length=10)


class ContactEvent(BaseModel):
    """One customer contact. Extra fields are allowed and ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime
    kind: ContactKind
    channel: Channel
    customer: Customer
    partner: str | None = Field(default=None, max_length=200)
    product: str | None = Field(default=None, max_length=200)
    case_id: str | None = Field(default=None, max_length=200)
    # For reporting: the inquiry type (billing, change, fault, complaint, cancellation,
    # order, ...) and the team that handled the contact.
    inquiry_type: str | None = Field(default=None, max_length=40)
    team: str | None = Field(default=None, max_length=40)
    schema_version: int = Field(default=CONTACT_EVENT_SCHEMA_VERSION, ge=1)


class ContactEventInvalidError(CxloopError, ValueError):
    """The bytes are not a valid contact event. *code* is the dead-letter reason code
    (not_utf8, not_json, nul_character, duplicate_key, invalid_field, occurred_in_future),
    *detail* says where; neither quotes a value. str() is "code: detail"."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def parse_contact_event(
    raw: bytes, now: datetime | None = None, max_ahead: timedelta | None = None
) -> ContactEvent:
    """Validate *raw* as a contact event, or raise ContactEventInvalidError with the reason.

    With *now* and *max_ahead*, an event that happened more than *max_ahead* after *now*
    is refused too (occurred_in_future): its survey timers would wait for ever.
    """
    at = nul_byte_at(raw)
    if at is not None:
        raise ContactEventInvalidError("nul_character", f"byte {at}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContactEventInvalidError("not_utf8", f"not valid UTF-8 at byte {exc.start}") from None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ContactEventInvalidError("not_json", f"{exc.msg} at position {exc.pos}") from None
    if not isinstance(data, dict):
        raise ContactEventInvalidError("not_json", f"not a JSON object but {type(data).__name__}")
    where = nul_in_json(raw, data)
    if where is not None:
        raise ContactEventInvalidError("nul_character", where)
    where = duplicate_key(raw, data)
    if where is not None:
        raise ContactEventInvalidError("duplicate_key", f"{where} appears twice")
    try:
        event = ContactEvent.model_validate(data)
    except ValidationError as exc:
        raise ContactEventInvalidError("invalid_field", _describe(exc)) from None
    if event.occurred_at.year in (1, 9999):  # only these can leave datetime's range in UTC
        try:
            event.occurred_at.astimezone(UTC)  # timers and SQL count in UTC
        except OverflowError:
            detail = "occurred_at: out of range in UTC"
            raise ContactEventInvalidError("invalid_field", detail) from None
    if now is not None and max_ahead is not None and event.occurred_at > now + max_ahead:
        ahead = int((event.occurred_at - now).total_seconds())
        raise ContactEventInvalidError(
            "occurred_in_future",
            f"occurred_at is {ahead} s ahead of the clock; at most "
            f"{int(max_ahead.total_seconds())} s allowed",
        )
    return event


def _describe(exc: ValidationError) -> str:
    # Field paths and messages only: the input values may be personal data.
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "event"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
