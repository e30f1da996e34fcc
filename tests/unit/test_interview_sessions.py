"""Interviewers' signed session cookies: forged, altered, expired or keyless ones are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.interview_sessions import (
    COOKIE_NAME,
    SESSION_TTL,
    cookie_value,
    csrf_ok,
    decode_session,
    encode_session,
    new_session,
    session_cookie,
    session_key,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEY = session_key("staff-token-1")


def test_a_session_round_trips_until_it_expires() -> None:
    assert KEY is not None
    session = new_session("Jan de Interviewer", NOW)
    value = encode_session(KEY, session)
    back = decode_session(KEY, value, NOW + SESSION_TTL - timedelta(seconds=1))
    assert back is not None
    assert (back.interviewer, back.csrf) == ("Jan de Interviewer", session.csrf)
    assert decode_session(KEY, value, NOW + SESSION_TTL) is None
    assert SESSION_TTL.total_seconds() == 8 * 3600


def test_another_token_altered_or_garbled_values_are_refused() -> None:
    assert KEY is not None
    value = encode_session(KEY, new_session("Jan", NOW))
    payload, signature = value.split(".")
    assert decode_session(session_key("staff-token-2"), value, NOW) is None
    assert decode_session(None, value, NOW) is None
    assert session_key("") is None
    forged = encode_session(b"x" * 32, new_session("Mallory", NOW))
    assert decode_session(KEY, forged, NOW) is None
    assert decode_session(KEY, f"{forged.split('.')[0]}.{signature}", NOW) is None
    for garbled in ("", ".", "abc", f"{payload}.{signature}.x", f"{payload}x.{signature}", "é.é"):
        assert decode_session(KEY, garbled, NOW) is None


def test_csrf_token_must_be_the_sessions_own() -> None:
    session = new_session("Jan", NOW)
    other = new_session("Jan", NOW)
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, other.csrf)
    assert not csrf_ok(session, "")
    assert not csrf_ok(session, [session.csrf])
    assert not csrf_ok(None, session.csrf)


def test_the_cookie_is_http_only_strict_and_scoped() -> None:
    plain = session_cookie("v", secure=False)
    assert plain == (f"{COOKIE_NAME}=v; Path=/interviews; Max-Age=28800; HttpOnly; SameSite=Strict")
    assert session_cookie("v", secure=True).endswith("; Secure")
    assert cookie_value(f"a=1; {COOKIE_NAME}=abc.def; b=2") == "abc.def"
    assert cookie_value("a=1") is None
    assert cookie_value(None) is None
