"""The contact-event contract: parse_contact_event on good and bad bytes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.contact_events import ContactEventInvalidError, parse_contact_event

# The example from the spec, byte for byte as a producer would send it.
SPEC_EXAMPLE = (
    b'{"event_id": "7b0c7f7e-2a1e-4a4e-9a43-0c2b4f6f9d11", '
    b'"occurred_at": "2026-11-20T10:15:00+01:00", "kind": "support_contact", '
    b'"channel": "phone", "customer": {"id": "C-1001", "email": "anna@example.nl", '
    b'"name": "Anna de Vries", "locale": "nl"}, "partner": "CBG Connect", '
    b'"product": "KPN EEN", "case_id": "K-77"}'
)
# The contract's lists (snake_case on the wire).
KINDS = [
    "purchase",
    "after_sales",
    "contract_change",
    "inquiry",
    "support_contact",
    "complaint",
    "first_invoice",
    "cancellation",
]
CHANNELS = ["phone", "email", "chat", "shop", "web", "social"]


def example() -> dict[str, Any]:
    data = orjson.loads(SPEC_EXAMPLE)
    assert isinstance(data, dict)
    return data


def encode(data: object) -> bytes:
    return orjson.dumps(data)


def refusal(raw: bytes) -> ContactEventInvalidError:
    with pytest.raises(ContactEventInvalidError) as info:
        parse_contact_event(raw)
    return info.value


def reason_for(raw: bytes) -> str:
    """The detail of the refusal (what follows the reason code)."""
    return refusal(raw).detail


# ---------------------------------------------------------------------------- accepted


def test_spec_example_parses() -> None:
    event = parse_contact_event(SPEC_EXAMPLE)

    assert event.event_id == "7b0c7f7e-2a1e-4a4e-9a43-0c2b4f6f9d11"
    assert event.occurred_at == datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(hours=1)
    assert event.kind == "support_contact"
    assert event.channel == "phone"
    assert event.customer.id == "C-1001"
    assert str(event.customer.email) == "anna@example.nl"
    assert event.customer.name == "Anna de Vries"
    assert event.customer.locale == "nl"
    assert event.partner == "CBG Connect"
    assert event.product == "KPN EEN"
    assert event.case_id == "K-77"


def test_example_file_matches_the_spec_example() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "contact-event.jsonl"
    first = path.read_bytes().splitlines()[0]
    assert orjson.loads(first) == orjson.loads(SPEC_EXAMPLE)
    assert parse_contact_event(first) == parse_contact_event(SPEC_EXAMPLE)


def test_optional_fields_may_be_absent() -> None:
    data = example()
    for name in ("partner", "product", "case_id"):
        del data[name]
    for name in ("email", "name", "locale"):
        del data["customer"][name]

    event = parse_contact_event(encode(data))

    assert (event.partner, event.product, event.case_id) == (None, None, None)
    assert (event.customer.email, event.customer.name, event.customer.locale) == (None, None, None)


def test_extra_fields_are_allowed() -> None:
    data = example()
    data["crm_version"] = 7
    data["tags"] = ["vip", "b2b"]
    data["customer"]["segment"] = "consumer"

    event = parse_contact_event(encode(data))

    assert event.event_id == data["event_id"]
    assert event.customer.id == "C-1001"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_accepted(kind: str) -> None:
    data = example() | {"kind": kind}
    assert parse_contact_event(encode(data)).kind == kind


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_channel_is_accepted(channel: str) -> None:
    data = example() | {"channel": channel}
    assert parse_contact_event(encode(data)).channel == channel


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-9, minutes=-30))]
        ),
    )
)
def test_any_aware_timestamp_keeps_its_instant(when: datetime) -> None:
    data = example() | {"occurred_at": when.isoformat()}
    assert parse_contact_event(encode(data)).occurred_at == when


# ---------------------------------------------------------------------------- rejected


def without(*path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def setting(value: object, *path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (without("event_id"), "event_id", "required"),
        (setting(12345, "event_id"), "event_id", "string"),
        (setting("", "event_id"), "event_id", "at least 1"),
        (setting("2026-11-20T10:15:00", "occurred_at"), "occurred_at", "timezone"),
        (setting("yesterday", "occurred_at"), "occurred_at", "datetime"),
        (setting("praise", "kind"), "kind", "purchase"),
        (setting("Support_Contact", "kind"), "kind", "support_contact"),
        (setting("fax", "channel"), "channel", "phone"),
        (without("customer", "id"), "customer.id", "required"),
        (setting("", "customer", "id"), "customer.id", "at least 1"),
        (without("customer"), "customer", "required"),
        (setting("C-1001", "customer"), "customer", "dictionary"),
        (setting("x" * 321, "customer", "email"), "customer.email", "at most 320"),
        (setting(42, "customer", "email"), "customer.email", "string"),
    ],
    ids=[
        "missing-event-id",
        "event-id-number",
        "event-id-empty",
        "naive-timestamp",
        "timestamp-not-a-date",
        "unknown-kind",
        "kind-wrong-case",
        "unknown-channel",
        "customer-without-id",
        "customer-empty-id",
        "no-customer",
        "customer-not-object",
        "email-too-long",
        "email-not-a-string",
    ],
)
def test_invalid_field_is_named_in_the_reason(
    change: Callable[[dict[str, Any]], None], field: str, words: str
) -> None:
    data = example()
    change(data)

    assert refusal(encode(data)).code == "invalid_field"
    reason = reason_for(encode(data))

    assert reason.startswith(f"{field}: "), reason
    assert words in reason.lower()


def test_every_problem_is_reported_not_just_the_first() -> None:
    data = example() | {"kind": "praise", "channel": "fax"}
    reason = reason_for(encode(data))
    assert "kind: " in reason
    assert "channel: " in reason


def test_invalid_utf8_is_rejected_with_position() -> None:
    raw = SPEC_EXAMPLE.replace(b"Anna de Vries", b"Anna de Vri\xe9s")
    assert refusal(raw).code == "not_utf8"
    reason = reason_for(raw)
    assert "UTF-8" in reason
    position = raw.index(b"\xe9")
    assert f"byte {position}" in reason


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b'{"event_id": }', SPEC_EXAMPLE[:-1]])
def test_not_json_is_rejected(raw: bytes) -> None:
    assert refusal(raw).code == "not_json"
    assert str(refusal(raw)).startswith("not_json: ")


@pytest.mark.parametrize(
    ("raw", "type_name"),
    [
        (b"[" + SPEC_EXAMPLE + b"]", "list"),
        (b"[]", "list"),
        (b'"support_contact"', "str"),
        (b"42", "int"),
        (b"null", "NoneType"),
    ],
)
def test_json_that_is_not_an_object_is_rejected(raw: bytes, type_name: str) -> None:
    assert refusal(raw).code == "not_json"
    reason = reason_for(raw)
    assert "not a JSON object" in reason
    assert type_name in reason


def test_invalid_contact_event_is_a_value_error() -> None:
    # Agents sort failures by type: a ValueError is bad input, bound for the dead letters.
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_contact_event(b"[]")


# ---------------------------------------------------------------------------- personal data

# Breakages that make the event invalid while the e-mail and name are still in it.
BREAKAGES: list[Callable[[dict[str, Any]], None]] = [
    setting("praise", "kind"),
    setting("fax", "channel"),
    setting("2026-11-20T10:15:00", "occurred_at"),
    without("event_id"),
    without("customer", "id"),
    setting(["x"], "customer", "locale"),
    setting("x" * 11, "customer", "locale"),
]

# Names with a non-ASCII letter, so no name can be a word the (English, ASCII) reasons use
# anyway: a hit can only mean the name was copied into the reason.
names = st.builds(
    "{} {}".format,
    st.text(alphabet=st.characters(categories=["L"]), min_size=2, max_size=30),
    st.text(alphabet=st.characters(categories=["L"]), min_size=2, max_size=30),
).filter(lambda s: not s.isascii())


@given(email=st.emails(), name=names, breakage=st.sampled_from(BREAKAGES))
def test_reason_never_quotes_email_or_name(
    email: str, name: str, breakage: Callable[[dict[str, Any]], None]
) -> None:
    data = copy.deepcopy(example())
    data["customer"]["email"] = email
    data["customer"]["name"] = name
    breakage(data)

    reason = reason_for(encode(data))

    assert email.lower() not in reason.lower()
    assert name not in reason


@pytest.mark.parametrize(
    "email",
    ["anna de vries@example.nl", "anna@@example.nl", "anna.devries@example", "annadevries"],
)
def test_malformed_email_is_still_a_contact(email: str) -> None:
    # A contact with an unusable address is recorded and suppressed by eligibility
    # (no_contact_address), not dead-lettered: the contact itself happened.
    data = example()
    data["customer"]["email"] = email

    event = parse_contact_event(encode(data))

    assert event.customer.email == email
    assert event.event_id == data["event_id"]


def test_reason_for_an_overlong_email_does_not_quote_it() -> None:
    data = example()
    data["customer"]["email"] = "anna.devries." * 30 + "@example.nl"

    reason = reason_for(encode(data))

    assert reason.startswith("customer.email: ")
    assert "devries" not in reason


def test_reason_for_an_overlong_name_does_not_quote_it() -> None:
    data = example()
    data["customer"]["name"] = "Anna de Vries " * 20

    reason = reason_for(encode(data))

    assert reason.startswith("customer.name: ")
    assert "Anna" not in reason
