"""The contact-event contract: parse and validate raw bytes from contact-events."""

from __future__ import annotations

from enum import StrEnum

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from models.errors import CxloopError


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


class ContactEventInvalidError(CxloopError, ValueError):
    """The bytes are not a valid contact event; the message says why (no values quoted)."""


def parse_contact_event(raw: bytes) -> ContactEvent:
    """Validate *raw* as a contact event, or raise ContactEventInvalidError with the reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContactEventInvalidError(f"not valid UTF-8 at byte {exc.start}") from None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ContactEventInvalidError(f"not JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(data, dict):
        raise ContactEventInvalidError(f"not a JSON object but {type(data).__name__}")
    try:
        return ContactEvent.model_validate(data)
    except ValidationError as exc:
        raise ContactEventInvalidError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    # Field paths and messages only: the input values may be personal data.
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "event"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
