"""A catalogue of bad contact events: each class of bad input with the dead-letter reason
code the trigger must give it. Used by the Faust-harness test (tests/agents) and the
broker test (tests/integration), on SQLite and PostgreSQL.

Every entry makes one message (key, value) from a valid event and the clock, so the same
catalogue works with the harness's fixed clock and the real one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from tests.factories import contact_event_data

Message = tuple[bytes | None, bytes | None]
MIB = 1024 * 1024


def good_event(n: int | str, customer: str, at: datetime) -> dict[str, Any]:
    """A valid contact event (a purchase in the shop) of *customer*, *n* making its id
    unique."""
    return contact_event_data(
        f"evt-{n}",
        "purchase",
        at,
        customer,
        channel="shop",
        name="Anna de Vries",
        locale="nl",
        partner="Partner A",
    )


@dataclass(frozen=True)
class BadContactEvent:
    """A class of bad contact event: *make* turns a valid event and the clock into the
    message; *code* is the reason code it must be dead-lettered with, *detail* a piece of
    the reason after the code (None: any)."""

    name: str
    code: str
    make: Callable[[dict[str, Any], datetime], Message]
    detail: str | None = None


def _key(event: dict[str, Any]) -> bytes:
    return str(event["customer"]["id"]).encode()


def _changed(*path: str, value: object) -> Callable[[dict[str, Any], datetime], Message]:
    """The event with the field at *path* set to *value* (or removed for _GONE)."""

    def make(event: dict[str, Any], now: datetime) -> Message:
        key = _key(event)
        target = event
        for step in path[:-1]:
            target = target[step]
        if value is _GONE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return key, orjson.dumps(event)

    return make


_GONE = object()


def _raw(
    text: Callable[[str], str], errors: str = "strict"
) -> Callable[[dict[str, Any], datetime], Message]:
    """The event's JSON text rewritten by *text* (for what a dict cannot express); with
    errors="surrogateescape" a lone \\udcXX becomes the byte XX."""

    def make(event: dict[str, Any], now: datetime) -> Message:
        return _key(event), text(orjson.dumps(event).decode()).encode("utf-8", errors)

    return make


def _bytes(value: bytes | None) -> Callable[[dict[str, Any], datetime], Message]:
    def make(event: dict[str, Any], now: datetime) -> Message:
        return _key(event), value

    return make


def _keyed(key: Callable[[bytes], bytes | None]) -> Callable[[dict[str, Any], datetime], Message]:
    def make(event: dict[str, Any], now: datetime) -> Message:
        return key(_key(event)), orjson.dumps(event)

    return make


def _at(ahead: timedelta) -> Callable[[dict[str, Any], datetime], Message]:
    def make(event: dict[str, Any], now: datetime) -> Message:
        event["occurred_at"] = (now + ahead).isoformat()
        return _key(event), orjson.dumps(event)

    return make


def _padded(size: int) -> Callable[[dict[str, Any], datetime], Message]:
    """A valid event made *size* bytes long by a comment."""

    def make(event: dict[str, Any], now: datetime) -> Message:
        event["comment"] = ""
        room = size - len(orjson.dumps(event))
        event["comment"] = "x" * room
        raw = orjson.dumps(event)
        assert len(raw) == size
        return _key(event), raw

    return make


def _nested(depth: int) -> Callable[[dict[str, Any], datetime], Message]:
    def make(event: dict[str, Any], now: datetime) -> Message:
        text = orjson.dumps(event).decode()
        return _key(event), (text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}").encode()

    return make


def _first_key(text: str, name: str, again: str) -> str:
    """*text* (an event's JSON) with `"name": again` added right after the opening brace."""
    return "{" + f'"{name}": {again}, ' + text[1:]


CATALOGUE: tuple[BadContactEvent, ...] = (
    # --- no value, too large, NUL ---------------------------------------------------------
    BadContactEvent("null value (tombstone)", "null_value", _bytes(None)),
    BadContactEvent("one byte over the limit", "too_large", _padded(MIB + 1)),
    BadContactEvent("5 MB of garbage", "too_large", _bytes(b"\xff" * (5 * MIB))),
    BadContactEvent("a raw NUL byte alone", "nul_character", _bytes(b"\x00"), "byte 0"),
    BadContactEvent(
        "a raw NUL byte in a string",
        "nul_character",
        _raw(lambda t: t.replace("Anna de Vries", "Anna\x00de Vries")),
    ),
    BadContactEvent(
        "a \\u0000 escape in customer.name",
        "nul_character",
        _changed("customer", "name", value="Anna\x00"),
        "customer.name",
    ),
    BadContactEvent(
        "a \\u0000 escape in event_id",
        "nul_character",
        _changed("event_id", value="evt-\x00"),
        "event_id",
    ),
    BadContactEvent(
        "a \\u0000 escape in customer.id",
        "nul_character",
        _changed("customer", "id", value="C-\x00"),
        "customer.id",
    ),
    BadContactEvent(
        "a \\u0000 escape in a complaint's comment",
        "nul_character",
        _changed("comment", value="no engineer\x00 came"),
        "comment",
    ),
    BadContactEvent(
        "a \\u0000 escape in a key name",
        "nul_character",
        _changed("x\x00", value=1),
    ),
    BadContactEvent(
        "a \\u0000 escape in a list of an extra field",
        "nul_character",
        _changed("tags", value=["vip", "\x00"]),
        "tags.1",
    ),
    # --- duplicate keys -------------------------------------------------------------------
    BadContactEvent(
        "kind twice",
        "duplicate_key",
        _raw(lambda t: _first_key(t, "kind", '"complaint"')),
        "kind",
    ),
    BadContactEvent(
        "customer.id twice",
        "duplicate_key",
        _raw(lambda t: t.replace('"customer":{', '"customer":{"id":"C-other",')),
        "customer.id",
    ),
    BadContactEvent(
        "a key twice in an extra object",
        "duplicate_key",
        _raw(lambda t: t[:-1] + ',"crm":{"a":1,"a":2}}'),
        "crm.a",
    ),
    BadContactEvent(
        "a key twice with spaces before the colon",
        "duplicate_key",
        _raw(
            lambda t: _first_key(t, "event_id", '"evt-x"').replace('"event_id": ', '"event_id" :  ')
        ),
        "event_id",
    ),
    BadContactEvent(
        "a key twice beside an escaped colon",
        "duplicate_key",
        _raw(lambda t: t[:-1] + ',"note\\u003a":"a\\u003Ab","case_id":"K-1","case_id":"K-2"}'),
        "case_id",
    ),
    BadContactEvent(
        "a key twice in objects inside a list",
        "duplicate_key",
        _raw(lambda t: t[:-1] + ',"lines":[{"sku":1},{"sku":2,"sku":3}]}'),
        "lines.1.sku",
    ),
    # --- in the future --------------------------------------------------------------------
    BadContactEvent(
        "occurred_at in year 9999",
        "occurred_in_future",
        _changed("occurred_at", value="9999-12-31T23:59:59+00:00"),
    ),
    BadContactEvent("occurred_at two days ahead", "occurred_in_future", _at(timedelta(days=2))),
    BadContactEvent(
        "occurred_at a day and an hour ahead",
        "occurred_in_future",
        _at(timedelta(days=1, hours=1)),
    ),
    # --- keyed by something else than customer.id -----------------------------------------
    BadContactEvent("another customer's key", "key_mismatch", _keyed(lambda k: b"C-other")),
    BadContactEvent("no key", "key_mismatch", _keyed(lambda k: None)),
    BadContactEvent("an empty key", "key_mismatch", _keyed(lambda k: b"")),
    BadContactEvent("the key in other case", "key_mismatch", _keyed(lambda k: k.lower())),
    BadContactEvent("the key with a trailing space", "key_mismatch", _keyed(lambda k: k + b" ")),
    BadContactEvent("a key that is not UTF-8", "key_mismatch", _keyed(lambda k: b"\xff" + k)),
    # --- not UTF-8 ------------------------------------------------------------------------
    BadContactEvent("bytes that are not UTF-8", "not_utf8", _bytes(b"\xff\xfe{}"), "byte 0"),
    BadContactEvent(
        "Latin-1 in a name",
        "not_utf8",
        _raw(lambda t: t.replace("Vries", "Vri\udce9s"), errors="surrogateescape"),
    ),
    BadContactEvent("an overlong encoding", "not_utf8", _bytes(b'{"event_id": "\xc0\xaf"}')),
    BadContactEvent("an encoded surrogate", "not_utf8", _bytes(b'{"event_id": "\xed\xa0\x80"}')),
    # --- not JSON, or not an object -------------------------------------------------------
    BadContactEvent("an empty value", "not_json", _bytes(b"")),
    BadContactEvent("not JSON", "not_json", _bytes(b"{not json")),
    BadContactEvent("a truncated event", "not_json", _raw(lambda t: t[:-1])),
    BadContactEvent("a JSON array", "not_json", _raw(lambda t: f"[{t}]"), "list"),
    BadContactEvent("a JSON string", "not_json", _bytes(b'"purchase"'), "str"),
    BadContactEvent("a JSON number", "not_json", _bytes(b"42"), "int"),
    BadContactEvent("JSON null", "not_json", _bytes(b"null"), "NoneType"),
    BadContactEvent("NaN", "not_json", _raw(lambda t: t[:-1] + ',"score":NaN}')),
    BadContactEvent("a trailing comma", "not_json", _raw(lambda t: t[:-1] + ",}")),
    BadContactEvent("single quotes", "not_json", _raw(lambda t: t.replace('"', "'"))),
    BadContactEvent("a byte order mark", "not_json", _raw(lambda t: "\ufeff" + t)),
    BadContactEvent("two events in one message", "not_json", _raw(lambda t: t + t)),
    BadContactEvent("nested 2,000 deep", "not_json", _nested(2000)),
    # --- fields ---------------------------------------------------------------------------
    BadContactEvent("no event_id", "invalid_field", _changed("event_id", value=_GONE), "event_id"),
    BadContactEvent(
        "event_id a number", "invalid_field", _changed("event_id", value=7), "event_id"
    ),
    BadContactEvent("event_id empty", "invalid_field", _changed("event_id", value=""), "event_id"),
    BadContactEvent(
        "event_id of 201 characters",
        "invalid_field",
        _changed("event_id", value="e" * 201),
        "event_id",
    ),
    BadContactEvent(
        "occurred_at without a time zone",
        "invalid_field",
        _changed("occurred_at", value="2026-11-20T10:15:00"),
        "occurred_at",
    ),
    BadContactEvent(
        "occurred_at before year 1 in UTC",
        "invalid_field",
        _changed("occurred_at", value="0001-01-01T00:00:00+14:00"),
        "occurred_at",
    ),
    BadContactEvent(
        "occurred_at not a time",
        "invalid_field",
        _changed("occurred_at", value="yesterday"),
        "occurred_at",
    ),
    BadContactEvent("an unknown kind", "invalid_field", _changed("kind", value="praise"), "kind"),
    BadContactEvent("kind null", "invalid_field", _changed("kind", value=None), "kind"),
    BadContactEvent(
        "an unknown channel", "invalid_field", _changed("channel", value="fax"), "channel"
    ),
    BadContactEvent("no customer", "invalid_field", _changed("customer", value=_GONE), "customer"),
    BadContactEvent(
        "customer not an object",
        "invalid_field",
        _changed("customer", value=["C-1"]),
        "customer",
    ),
    BadContactEvent(
        "customer.id a number",
        "invalid_field",
        _changed("customer", "id", value=1001),
        "customer.id",
    ),
    BadContactEvent(
        "customer.email of 321 characters",
        "invalid_field",
        _changed("customer", "email", value="a" * 310 + "@example.nl"),
        "customer.email",
    ),
    BadContactEvent(
        "customer.phone of 41 characters",
        "invalid_field",
        _changed("customer", "phone", value="1" * 41),
        "customer.phone",
    ),
    BadContactEvent(
        "customer.locale of 11 characters",
        "invalid_field",
        _changed("customer", "locale", value="nl-NL-x-abc"),
        "customer.locale",
    ),
    BadContactEvent(
        "partner of 201 characters",
        "invalid_field",
        _changed("partner", value="p" * 201),
        "partner",
    ),
    BadContactEvent(
        "inquiry_type of 41 characters",
        "invalid_field",
        _changed("inquiry_type", value="i" * 41),
        "inquiry_type",
    ),
    BadContactEvent("team of 41 characters", "invalid_field", _changed("team", value="t" * 41)),
    BadContactEvent(
        "schema_version 0",
        "invalid_field",
        _changed("schema_version", value=0),
        "schema_version",
    ),
    BadContactEvent(
        "schema_version not a number",
        "invalid_field",
        _changed("schema_version", value="two"),
        "schema_version",
    ),
)


def catalogue_messages(
    now: datetime, customers: Callable[[int], str], occurred: datetime
) -> list[tuple[BadContactEvent, Message, Message]]:
    """Each catalogue entry with its bad message and the good event that follows it (of
    the customer customers(i), which happened at *occurred*)."""
    out = []
    for i, entry in enumerate(CATALOGUE):
        customer = customers(i)
        bad = entry.make(good_event(f"bad-{i}", customer, occurred), now)
        good = good_event(f"good-{i}", customer, occurred)
        out.append((entry, bad, (customer.encode(), orjson.dumps(good))))
    return out
