"""Consent rules: which change wins, and whether a customer may be surveyed on a channel.

A change is about one channel ('email', 'phone') or about 'all' of them. For a channel,
the latest change that covers it wins: the channel's own row or the 'all' row, whichever
changed last. So an e-mail opt-in after an 'all' opt-out allows e-mail (and nothing else),
and an 'all' opt-out after an e-mail opt-in stops e-mail again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

SURVEY_CHANNELS = ("email", "phone")
ALL_CHANNELS = "all"
OPTED_OUT = "opted_out"
OPTED_IN = "opted_in"


@dataclass(frozen=True)
class Consent:
    """One consent change (the wire's ConsentChange, without Faust)."""

    consent_id: str
    customer_id: str
    channel: str  # 'email', 'phone' or 'all'
    status: str  # 'opted_out' or 'opted_in'
    changed_at: datetime
    source: str


def precedence(consent: Consent) -> tuple[datetime, bool, str]:
    """Sort key: the larger one wins. Later changed_at first; on a tie an opt-out beats an
    opt-in (the cautious reading), then the larger consent_id, so every order of arrival
    gives the same winner."""
    return consent.changed_at, consent.status == OPTED_OUT, consent.consent_id


def latest_per_key(changes: Iterable[Consent]) -> dict[tuple[str, str], Consent]:
    """The winning change per (customer, channel)."""
    latest: dict[tuple[str, str], Consent] = {}
    for change in changes:
        key = (change.customer_id, change.channel)
        current = latest.get(key)
        if current is None or precedence(change) > precedence(current):
            latest[key] = change
    return latest


def covering_channels(channel: str) -> tuple[str, str]:
    """The rows that decide about *channel*: its own and 'all'."""
    if channel not in SURVEY_CHANNELS:
        raise ValueError(f"consent is checked per survey channel, not {channel!r}")
    return channel, ALL_CHANNELS


def is_opted_out(changes: Iterable[Consent], channel: str) -> bool:
    """Whether one customer's changes (any channels) leave *channel* opted out."""
    covering = covering_channels(channel)
    relevant = [c for c in changes if c.channel in covering]
    return bool(relevant) and max(relevant, key=precedence).status == OPTED_OUT
