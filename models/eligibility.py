"""Who may be surveyed now: the reason codes and the checks made when a survey is due."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email


class Reason(StrEnum):
    """Why a contact event was or was not surveyed by a programme (one per decision)."""

    SURVEYED = "surveyed"
    SCHEDULED = "scheduled"  # pending: its timer has not fired yet
    OUTSIDE_WINDOW_DEFERRED = "outside_window_deferred"  # pending: waits for the send window
    SAMPLED_OUT = "sampled_out"
    RECENTLY_SURVEYED = "recently_surveyed"
    OPEN_FOLLOWUP = "open_followup"
    OPEN_COMPLAINT = "open_complaint"
    OPTED_OUT = "opted_out"
    NO_CONTACT_ADDRESS = "no_contact_address"
    DUPLICATE_EVENT = "duplicate_event"
    ALREADY_SCHEDULED = "already_scheduled"  # the programme already waits for this customer
    SUPERSEDED = "superseded"  # a later contact on the same case restarted the wait
    CANCELLED = "cancelled"  # a cancelling contact (e.g. cancellation, complaint) came first
    EXPIRED = "expired"  # could not be sent within the programme's expiry
    NO_PROGRAMME = "no_programme"  # no programme's rule matches this contact
    PROGRAMME_REMOVED = "programme_removed"  # the rules in force no longer have it

    @property
    def outcome(self) -> str:
        if self is Reason.SURVEYED:
            return "surveyed"
        if self in (Reason.SCHEDULED, Reason.OUTSIDE_WINDOW_DEFERRED):
            return "pending"
        return "suppressed"


@dataclass(frozen=True)
class CustomerView:
    """What eligibility needs to know about a customer when a survey is due."""

    last_surveyed_at: datetime | None = None
    programme_last_surveyed: Mapping[str, datetime] = field(default_factory=dict)
    open_complaints: int = 0
    open_followups: int = 0
    opted_out: frozenset[str] = frozenset()  # survey channels ('email', 'phone')


def suppression(  # noqa: PLR0911 - one return per reason, in priority order
    view: CustomerView,
    *,
    programme: str,
    channel: str,
    email: str | None,
    phone: str | None,
    cooldown: timedelta,
    cap: timedelta,
    now: datetime,
) -> Reason | None:
    """Why a survey that is due now must not go out, or None when it may.

    Checked when the survey is due, not when the contact came in: a complaint or an
    opt-out in between must stop it. The order decides which single reason is recorded.
    """
    if channel in view.opted_out:
        return Reason.OPTED_OUT
    if view.open_complaints:
        return Reason.OPEN_COMPLAINT
    if view.open_followups:
        return Reason.OPEN_FOLLOWUP
    if not (usable_address(email) if channel == "email" else usable_phone(phone)):
        return Reason.NO_CONTACT_ADDRESS
    last_here = view.programme_last_surveyed.get(programme)
    if last_here is not None and now - last_here < cooldown:
        return Reason.RECENTLY_SURVEYED
    if view.last_surveyed_at is not None and now - view.last_surveyed_at < cap:
        return Reason.RECENTLY_SURVEYED
    return None


_PHONE = re.compile(r"\+?[0-9(][0-9 ()./-]{5,38}")


def usable_phone(number: str | None) -> bool:
    """A number an interviewer can dial: digits with the usual separators."""
    if not number:
        return False
    return _PHONE.fullmatch(number) is not None and sum(c.isdigit() for c in number) >= 6


# Plain ASCII addresses, checked cheaply; anything else goes through email_validator.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"{_LOCAL}@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def usable_address(address: str | None) -> bool:
    """A syntactically valid e-mail address on a real domain (no DNS look-up)."""
    if not address:
        return False
    if (
        len(address) <= 254
        and _PLAIN_ADDRESS.fullmatch(address)
        and len(address.partition("@")[0]) <= 64
        and not _special_use(address.rpartition("@")[2].lower())
    ):
        return True  # the common case, without email_validator's ~90 µs
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _special_use(domain: str) -> bool:
    labels = domain.split(".")
    return any(".".join(labels[i:]) in _SPECIAL_USE for i in range(len(labels)))
