"""What a webhook POST came to, and when to try again: the retry schedule, the receiver's
Retry-After, 410 Gone as the end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

# Delay before the next try after the n-th failed one; the last repeats. The first is short
# so a receiver that hiccuped once gets the event within seconds.
RETRY_SCHEDULE_S: tuple[float, ...] = (2.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
RETRY_AFTER_MAX_S = 3600.0


@dataclass(frozen=True)
class Attempt:
    """What one POST came to."""

    status: int | None = None  # the HTTP status; None when no answer came
    error: str | None = None  # why it failed (no personal data, no secrets)
    final: bool = False  # retrying cannot help: refused address, 410 Gone
    retry_after_s: float | None = None  # the receiver's Retry-After

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def attempt_for_status(status: int, retry_after: str | None, now: datetime) -> Attempt:
    """The outcome of an answer: 2xx delivered, 410 Gone final, anything else retried (3xx
    too: redirects are not followed)."""
    if 200 <= status < 300:
        return Attempt(status=status)
    if status == 410:
        return Attempt(status=status, error="HTTP 410 Gone: the receiver stopped", final=True)
    note = " (redirects are not followed)" if 300 <= status < 400 else ""
    return Attempt(
        status=status,
        error=f"HTTP {status}{note}",
        retry_after_s=parse_retry_after(retry_after, now),
    )


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def retry_delay(
    attempts: int, jitter: float = 0.0, retry_after_s: float | None = None
) -> timedelta:
    """How long to wait after *attempts* failed tries: the schedule (plus up to 10 %
    *jitter*, 0..1), or the receiver's Retry-After when longer (at most an hour)."""
    base = RETRY_SCHEDULE_S[min(max(attempts, 1), len(RETRY_SCHEDULE_S)) - 1]
    delay = base * (1 + 0.1 * min(max(jitter, 0.0), 1.0))
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, RETRY_AFTER_MAX_S))
    return timedelta(seconds=delay)
