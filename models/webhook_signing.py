"""Webhook secrets and signatures (Standard Webhooks, https://www.standardwebhooks.com).

Signatures follow v1, HMAC-SHA256: the headers webhook-id, webhook-timestamp and
webhook-signature = "v1,<base64 HMAC of '{id}.{timestamp}.{body}'>" keyed with the
base64-decoded secret after "whsec_".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

from models.errors import CxloopError
from models.followup_rules import WebhookSpec

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_MIN_BYTES = 24  # the spec: at least 192 bits …
SECRET_MAX_BYTES = 64  # … and at most 512
DEFAULT_TOLERANCE_S = 300


class WebhookConfigError(CxloopError, ValueError):
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


class SignatureInvalidError(CxloopError, ValueError):
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
        raise SignatureInvalidError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureInvalidError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureInvalidError("webhook-timestamp is outside the tolerance")
    expected = sign(key, msg_id, timestamp, body).encode()
    for candidate in signatures.split():
        version, _, _ = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(candidate.encode(), expected):
            return
    raise SignatureInvalidError("no matching v1 signature")
