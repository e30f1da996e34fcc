"""Checks on JSON input that orjson does not make: NUL characters in strings (PostgreSQL
text cannot hold them) and keys that appear twice in one object (orjson keeps the last).

Both are cheap for input without them: a scan of the raw bytes says whether to look
closer, and only then is the decoded value walked or the bytes parsed a second time.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

NUL = "\x00"
NUL_MESSAGE = "contains a NUL character, which cannot be stored"  # what an API answers
_NUL_BYTE = b"\x00"
_NUL_ESCAPE = b"\\u0000"
_COLON = b":"
_COLON_ESCAPE = b"\\u003"  # \\u003a or \\u003A (and, rarely, a digit or ;<=>?)
_NAME_MAX = 60


def shown(name: object) -> str:
    """A key as it may be shown in a reason or an error: NULs spelled out, cut short."""
    text = str(name).replace(NUL, "\\u0000")
    return text if len(text) <= _NAME_MAX else text[: _NAME_MAX - 1] + "…"


def _join(path: str, name: object) -> str:
    return f"{path}.{shown(name)}" if path else shown(name)


def nul_byte_at(raw: bytes) -> int | None:
    """The offset of the first NUL byte in *raw*, or None."""
    at = raw.find(_NUL_BYTE)
    return None if at < 0 else at


def nul_path(value: object, path: str = "") -> str | None:
    """The dotted path ("customer.name", "answers.comment", "items.2") of the first string
    in *value*, key or value, that holds a NUL character; None when there is none. A bare
    string with a NUL is *path*, or "value". Nesting as deep as orjson allows is fine."""
    stack: list[tuple[object, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return where or "value"
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                if isinstance(key, str) and NUL in key:
                    return _join(where, key)
                children.append((child, _join(where, key)))
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend(reversed([(c, _join(where, i)) for i, c in enumerate(item)]))
    return None


def nul_in_json(raw: bytes, data: object) -> str | None:
    """Where a \\u0000 escape in *raw* put a NUL into *data* (what orjson made of *raw*), or
    None. Raw NUL bytes are nul_byte_at's; JSON does not allow them unescaped anyway."""
    if _NUL_ESCAPE not in raw:
        return None
    return nul_path(data)


def duplicate_key(raw: bytes, data: object) -> str | None:
    """The path of a key that appears twice in one object of *raw* (which orjson decoded to
    *data*, keeping the last), or None.

    Outside strings a colon only ever follows a key. orjson writes *data* back with one
    colon per key it kept plus the colons inside strings, so when *raw* holds as many
    colons, no key was lost (both counts in C, well under a microsecond for an event).
    Only when they differ, or *raw* escapes a character near ':' (\\u003a would spoil
    the count), is *raw* parsed again keeping every pair.
    """
    if _COLON_ESCAPE not in raw:
        try:
            if raw.count(_COLON) == orjson.dumps(data).count(_COLON):
                return None
        except orjson.JSONEncodeError:
            pass  # not what orjson itself decoded: look closer
    return _first_duplicate(raw)


class _Pairs(dict[str, Any]):
    """An object as the second parse saw it, remembering a key it saw twice."""

    twice: str | None = None


def _pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    obj = _Pairs(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                obj.twice = key
                break
            seen.add(key)
    return obj


def _first_duplicate(raw: bytes) -> str | None:
    try:
        data = json.loads(raw, object_pairs_hook=_pairs)
    except (ValueError, RecursionError):
        return None  # orjson took it, so this cannot happen; nothing to report if it does
    stack: list[tuple[object, str]] = [(data, "")]
    while stack:
        item, path = stack.pop(0)
        if isinstance(item, _Pairs):
            if item.twice is not None:
                return _join(path, item.twice)
            stack.extend((v, _join(path, k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, _join(path, i)) for i, v in enumerate(item))
    return None
