"""Consent changes for the consent rules and the consent store, numbered and timed in minutes."""

from __future__ import annotations

from datetime import datetime, timedelta

from models.consent import Consent


def consent_change(
    n: int,
    channel: str = "email",
    status: str = "opted_out",
    at: int = 0,
    customer: str = "C-1",
    *,
    since: datetime,
    source: str,
) -> Consent:
    """Change c-*n*: *customer* *status* on *channel*, *at* minutes after *since*."""
    return Consent(
        consent_id=f"c-{n}",
        customer_id=customer,
        channel=channel,
        status=status,
        changed_at=since + timedelta(minutes=at),
        source=source,
    )
