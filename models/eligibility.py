"""Who gets surveyed: the pure decision for one contact event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email

from models.contact_events import ContactEvent, ContactKind


class Reason(StrEnum):
    """Why a contact event was or was not surveyed (one per decision)."""

    SURVEYED = "surveyed"
    NO_CONTACT_ADDRESS = "no_contact_address"
    OPEN_COMPLAINT = "open_complaint"
    OPEN_FOLLOWUP = "open_followup"
    RECENTLY_SURVEYED = "recently_surveyed"


@dataclass(frozen=True)
class CustomerState:
    """What eligibility needs to know about a customer at decision time."""

    last_surveyed_at: datetime | None = None
    open_complaints: int = 0
    open_followups: int = 0


@dataclass(frozen=True)
class Decision:
    surveyed: bool
    reason: Reason

    @property
    def outcome(self) -> str:
        return "surveyed" if self.surveyed else "suppressed"


def decide(event: ContactEvent, state: CustomerState, now: datetime, cap: timedelta) -> Decision:
    """Survey *event*'s customer now, or say why not.

    A complaint is never surveyed: it opens a task, and the customer is left alone until
    that task is closed. The contact-frequency cap counts from the last survey sent.
    """
    if event.kind is ContactKind.COMPLAINT or state.open_complaints:
        return Decision(False, Reason.OPEN_COMPLAINT)
    if state.open_followups:
        return Decision(False, Reason.OPEN_FOLLOWUP)
    if not usable_address(event.customer.email):
        return Decision(False, Reason.NO_CONTACT_ADDRESS)
    if state.last_surveyed_at is not None and now - state.last_surveyed_at < cap:
        return Decision(False, Reason.RECENTLY_SURVEYED)
    return Decision(True, Reason.SURVEYED)


def usable_address(address: str | None) -> bool:
    """A syntactically valid e-mail address on a real domain (no DNS look-up)."""
    if not address:
        return False
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True
