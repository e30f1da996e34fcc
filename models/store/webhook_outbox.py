"""The SQL outbox of outgoing webhook deliveries: claiming the due ones and recording how
each attempt went (signatures are models.webhook_signing, the retry schedule
models.webhook_retries, the address guard agents.timers.webhook_guard)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import col

from models.store.engine import claim_attempts, transaction
from models.store.tables import WebhookDelivery
from models.webhook_retries import Attempt, retry_delay

ERROR_MAX = 500


def claim_deliveries(
    engine: Engine, webhooks: Collection[str], now: datetime, lease: timedelta, limit: int = 20
) -> list[WebhookDelivery]:
    """Pending deliveries of *webhooks* that are due, soonest first, counted as an attempt
    and pushed *lease* ahead so no other worker takes them while this one sends (SKIP
    LOCKED on PostgreSQL; SQLite serialises writers)."""
    if not webhooks:
        return []
    with transaction(engine) as session:
        where = col(WebhookDelivery.webhook).in_(list(webhooks))
        return claim_attempts(session, WebhookDelivery, now, lease, limit, where)


def finish_delivery(
    engine: Engine,
    delivery_id: str,
    attempt: Attempt,
    now: datetime,
    max_attempts: int,
    jitter: float = 0.0,
) -> WebhookDelivery | None:
    """Record an attempt: delivered, failed (final, or the last of *max_attempts*), or
    pending again after the retry delay. The row after it (None if it is gone)."""
    with transaction(engine) as session:
        row = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if row is None or row.status != "pending":
            return row
        row.last_status = attempt.status
        if attempt.delivered:
            row.status, row.delivered_at, row.last_error = "delivered", now, None
        else:
            row.last_error = (attempt.error or "failed")[:ERROR_MAX]
            if attempt.final or row.attempts >= max_attempts:
                row.status = "failed"
            else:
                row.next_attempt_at = now + retry_delay(row.attempts, jitter, attempt.retry_after_s)
        session.add(row)
        return row
