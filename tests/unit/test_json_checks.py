"""models.json_checks: NUL characters and duplicate keys, found exactly and cheaply."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.json_checks import duplicate_key, nul_byte_at, nul_in_json, nul_path, shown


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b'{"a": 1, "a": 2}', "a"),
        (b'{"a" : 1 , "a" : 1}', "a"),
        (b'{"a": {"b": 1, "b": 2}}', "a.b"),
        (b'{"t": "10:00:00", "x": [{"k": 1, "k": 1}]}', "x.0.k"),
        (b'{"when": "2026-11-20T10:15:00+01:00", "kind": "a", "kind": "b"}', "kind"),
        # An escaped colon would spoil the count: the slow path still finds the duplicate.
        (b'{"a\\u003a": 1, "b": 1, "b": 2}', "b"),
        (b'{"a\\u003A": 1, "b": 1, "b": 2}', "b"),
        (b'{"c": "\\u003a", "d": 1, "d": 1}', "d"),
    ],
)
def test_a_key_twice_in_one_object_is_found(raw: bytes, path: str) -> None:
    assert duplicate_key(raw, orjson.loads(raw)) == path


@pytest.mark.parametrize(
    "raw",
    [
        b"{}",
        b'{"a": 1, "b": {"a": 1}}',
        b'{"a": "x:y:z", "b:c": [1, {"d": "::"}]}',
        b'{"a" :\n 1}',
        b'[{"a": 1}, {"a": 2}]',
        b'{"a\\u003a": "\\u003A"}',
        b'{"s": "he said \\"x\\": y"}',
    ],
)
def test_the_same_key_in_different_objects_is_no_duplicate(raw: bytes) -> None:
    assert duplicate_key(raw, orjson.loads(raw)) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=':ab\\"\x00é', max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(st.tuples(st.text(alphabet=":ab", max_size=3), children), max_size=4)
    ),
    max_leaves=12,
)


def _encode(value: Any) -> str:
    # Objects as lists of pairs, so a key may come twice, the way a producer could send it.
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        pairs = ", ".join(f"{json.dumps(k)}: {_encode(v)}" for k, v in value)
        return "{" + pairs + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_encode(v) for v in value) + "]"
    return json.dumps(value)


def _has_duplicate(value: Any) -> bool:
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        keys = [k for k, _ in value]
        return len(set(keys)) < len(keys) or any(_has_duplicate(v) for _, v in value)
    if isinstance(value, list):
        return any(_has_duplicate(v) for v in value)
    return False


@given(json_values)
def test_duplicate_key_agrees_with_a_full_parse(value: Any) -> None:
    raw = _encode(value).encode()
    found = duplicate_key(raw, orjson.loads(raw))
    assert (found is not None) == _has_duplicate(value)


def test_nul_bytes_and_escapes_are_found_where_they_are() -> None:
    assert nul_byte_at(b'{"a": "x\x00"}') == 8
    assert nul_byte_at(b'{"a": "x"}') is None
    raw = b'{"customer": {"id": "C-1", "name": "An\\u0000na"}}'
    assert nul_in_json(raw, orjson.loads(raw)) == "customer.name"
    key = b'{"a\\u0000b": 1}'
    assert nul_in_json(key, orjson.loads(key)) == "a\\u0000b"  # spelled out, never a NUL
    listed = b'{"tags": ["ok", "x\\u0000"]}'
    assert nul_in_json(listed, orjson.loads(listed)) == "tags.1"
    # An escaped backslash before u0000 is text, not a NUL.
    text = b'{"a": "\\\\u0000"}'
    assert nul_in_json(text, orjson.loads(text)) is None


def test_nul_path_walks_as_deep_as_orjson_parses() -> None:
    raw = b"[" * 1000 + b'"\\u0000"' + b"]" * 1000
    path = nul_path(orjson.loads(raw))
    assert path is not None and path.count(".") == 999


def test_shown_names_are_short_and_nul_free() -> None:
    assert "\x00" not in shown("a\x00b")
    assert len(shown("x" * 500)) == 60
