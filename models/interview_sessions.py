"""Interviewers' browser sessions: a signed cookie, no server-side state.

The cookie holds the interviewer's name, an expiry and a CSRF token, signed with HMAC-SHA256
under a key derived from the staff token: changing the token ends every session, and a
form's CSRF token is good only with the session it was issued for (double submit).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

SESSION_TTL = timedelta(hours=8)
COOKIE_NAME = "cxloop_interviewer"
COOKIE_PATH = "/interviews"
_KEY_PURPOSE = b"cxloop interviewer session v1"


@dataclass(frozen=True)
class InterviewSession:
    interviewer: str
    csrf: str
    expires_at: datetime


def session_key(staff_token: str) -> bytes | None:
    """The signing key for *staff_token*; None when there is no token (no sessions at all)."""
    if not staff_token:
        return None
    return hmac.new(staff_token.encode(), _KEY_PURPOSE, hashlib.sha256).digest()


def new_session(interviewer: str, now: datetime) -> InterviewSession:
    return InterviewSession(interviewer, secrets.token_urlsafe(32), now + SESSION_TTL)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_session(key: bytes, session: InterviewSession) -> str:
    """The cookie value: base64url(JSON) '.' base64url(HMAC-SHA256 of the first part)."""
    payload = _b64(
        orjson.dumps(
            {
                "i": session.interviewer,
                "c": session.csrf,
                "e": int(session.expires_at.timestamp()),
            }
        )
    )
    signature = hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def decode_session(key: bytes | None, value: str | None, now: datetime) -> InterviewSession | None:
    """The session in a cookie value, or None if it is missing, forged, garbled or expired."""
    if key is None or not value or value.count(".") != 1:
        return None
    payload, _, signature = value.partition(".")
    expected = _b64(hmac.new(key, payload.encode("ascii", "replace"), hashlib.sha256).digest())
    if not hmac.compare_digest(signature.encode("ascii", "replace"), expected.encode("ascii")):
        return None
    try:
        data = orjson.loads(_unb64(payload))
        session = InterviewSession(
            str(data["i"]), str(data["c"]), datetime.fromtimestamp(int(data["e"]), UTC)
        )
    except (binascii.Error, ValueError, KeyError, TypeError, OverflowError):
        return None
    return session if session.expires_at > now else None


def csrf_ok(session: InterviewSession | None, given: object) -> bool:
    """True when a posted form's CSRF token is the one its session was issued with."""
    if session is None or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(given.encode(), session.csrf.encode())


def session_cookie(value: str, *, secure: bool, max_age: int | None = None) -> str:
    """A Set-Cookie header value: only this path, never read by scripts or sent cross-site."""
    age = int(SESSION_TTL.total_seconds()) if max_age is None else max_age
    cookie = f"{COOKIE_NAME}={value}; Path={COOKIE_PATH}; Max-Age={age}; HttpOnly; SameSite=Strict"
    return f"{cookie}; Secure" if secure else cookie


def cookie_value(header: str | None) -> str | None:
    """The session cookie's value from a Cookie request header."""
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == COOKIE_NAME:
            return value.strip().strip('"')
    return None
