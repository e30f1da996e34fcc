"""Outgoing webhooks: Standard Webhooks signatures, the retry schedule, the guard that keeps
calls away from loopback and private networks, and the SQL outbox of deliveries.

Signatures follow https://www.standardwebhooks.com (v1, HMAC-SHA256): the headers
webhook-id, webhook-timestamp and webhook-signature = "v1,<base64 HMAC of
'{id}.{timestamp}.{body}'>" keyed with the base64-decoded secret after "whsec_".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from sqlalchemy import Engine
from sqlmodel import col
from yarl import URL

from models.followup_rules import WebhookSpec
from models.store.engine import claim_attempts, transaction
from models.store.tables import WebhookDelivery

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_MIN_BYTES = 24  # the spec: at least 192 bits …
SECRET_MAX_BYTES = 64  # … and at most 512
DEFAULT_TOLERANCE_S = 300

# Delay before the next try after the n-th failed one; the last repeats. The first is short
# so a receiver that hiccuped once gets the event within seconds.
RETRY_SCHEDULE_S: tuple[float, ...] = (2.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
RETRY_AFTER_MAX_S = 3600.0
ERROR_MAX = 500


# --- secrets and signatures ---------------------------------------------------------------


class WebhookConfigError(ValueError):
    """A webhook cannot work as configured; the worker does not start with it."""


class WebhookSecretError(WebhookConfigError):
    """A webhook's secret is missing or not 'whsec_' + base64 of 24..64 bytes (the message
    names the environment variable, never the value)."""


def parse_secret(value: str, where: str) -> bytes:
    """The key bytes of a 'whsec_<base64>' secret; *where* names its source in errors."""
    text = value.strip()
    if not text.startswith(SECRET_PREFIX):
        raise WebhookSecretError(f"{where}: the secret must start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(text[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSecretError(
            f"{where}: the part after {SECRET_PREFIX!r} is not base64"
        ) from None
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise WebhookSecretError(
            f"{where}: the secret must decode to {SECRET_MIN_BYTES}..{SECRET_MAX_BYTES} bytes, "
            f"not {len(key)}"
        )
    return key


def load_secrets(specs: Sequence[WebhookSpec], environ: Mapping[str, str]) -> dict[str, bytes]:
    """Webhook name → key, read from each webhook's environment variable."""
    keys: dict[str, bytes] = {}
    for spec in specs:
        where = f"webhook {spec.name!r}: environment variable {spec.secret_env}"
        value = environ.get(spec.secret_env)
        if not value:
            raise WebhookSecretError(f"{where} is not set (expected 'whsec_' + base64)")
        keys[spec.name] = parse_secret(value, where)
    return keys


def check_urls(specs: Sequence[WebhookSpec]) -> None:
    """Every webhook URL is an http(s) URL with a host (where it points is checked per call,
    so a refused address fails its deliveries instead of the worker)."""
    for spec in specs:
        try:
            parsed = URL(spec.url)
        except ValueError:
            raise WebhookConfigError(f"webhook {spec.name!r}: the url is not a URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.raw_host:
            raise WebhookConfigError(f"webhook {spec.name!r}: the url needs http(s) and a host")


def _as_bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def sign(key: bytes, msg_id: str, timestamp: int, body: str | bytes) -> str:
    """The webhook-signature value: 'v1,' + base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'."""
    signed = f"{msg_id}.{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(key: bytes, msg_id: str, timestamp: int, body: str | bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }


class InvalidSignature(ValueError):
    """A received webhook does not carry a valid, fresh signature."""


def verify(
    key: bytes,
    headers: Mapping[str, str],
    body: str | bytes,
    *,
    now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Check a received webhook as a receiver must: the id and a timestamp within
    *tolerance_s* of *now*, and one of the space-separated v1 signatures matching."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise InvalidSignature("webhook-timestamp is outside the tolerance")
    expected = sign(key, msg_id, timestamp, body).encode()
    for candidate in signatures.split():
        version, _, _ = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(candidate.encode(), expected):
            return
    raise InvalidSignature("no matching v1 signature")


# --- where a webhook may go ---------------------------------------------------------------


class RefusedAddress(OSError):
    """The target is an address webhooks must not reach (loopback, private, …). An OSError,
    so aiohttp's connect path carries it as the reason a connection failed."""


_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), which is where a
    packet to it ends up."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _kind(address: _Address) -> str | None:
    """Why *address* is not a public unicast address, or None when it is one."""
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "shared (CGNAT)"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "non-global"),
    )
    return next((name for hit, name in checks if hit), None)


# Never a destination, whatever the configuration allows.
_NEVER = frozenset({"unspecified", "multicast"})


def address_refusal(host: str, allow_private: bool) -> str | None:
    """Why a webhook must not connect to the IP address *host*, or None when it may. With
    *allow_private* only unspecified and multicast addresses are refused."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return f"{host[:100]!r} is not an IP address"
    inner = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    kind = _kind(inner if inner is not None else address)  # where the packets would go
    if kind is None or (allow_private and kind not in _NEVER):
        return None
    article = "an" if kind[0] in "aeiou" else "a"
    shown = f"{address} (= {inner})" if inner is not None else str(address)
    return f"{shown} is {article} {kind} address"


def _refused(reason: str, allow_private: bool) -> RefusedAddress:
    hint = "" if allow_private else " (allow_private is off)"
    return RefusedAddress(f"refused: {reason}{hint}")


def check_target(url: str, allow_private: bool) -> None:
    """Refuse a webhook URL before any connection: a scheme other than http(s), no host,
    or a literal IP address that may not be reached (host names are checked when resolved
    and again when connected, see GuardedResolver and guarded_socket_factory)."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https"):
        raise RefusedAddress(f"refused: scheme {parsed.scheme!r} (only http and https)")
    host = parsed.raw_host  # an IPv6 literal without its brackets
    if not host:
        raise RefusedAddress("refused: the URL has no host")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # a name: checked when it resolves
    reason = address_refusal(host, allow_private)
    if reason is not None:
        raise _refused(reason, allow_private)


class GuardedResolver(AbstractResolver):
    """A resolver that fails a name when any address it resolves to may not be reached, so a
    name pointing into the private network (or switching to it) is refused as a whole."""

    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        for result in results:
            reason = address_refusal(result["host"], self.allow_private)
            if reason is not None:
                raise _refused(f"{host[:100]} resolves to {reason}", self.allow_private)
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def guarded_socket_factory(allow_private: bool) -> SocketFactoryType:
    """A socket factory for aiohttp's connector that checks the very address it connects
    to: the last line, whatever path the address came by (literal, cache, resolver)."""

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        reason = address_refusal(str(sockaddr[0]), allow_private)
        if reason is not None:
            raise _refused(reason, allow_private)
        return socket.socket(family=family, type=kind, proto=proto)

    return factory


def refusal_in(exc: BaseException) -> RefusedAddress | None:
    """The RefusedAddress behind an exception aiohttp raised, if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, RefusedAddress):
            return current
        seen.add(id(current))
        inner = getattr(current, "os_error", None)  # aiohttp's ClientConnectorError
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return None


# --- attempts and retries -----------------------------------------------------------------


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


# --- the outbox ---------------------------------------------------------------------------


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
