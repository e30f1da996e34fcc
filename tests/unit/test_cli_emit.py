"""`cxloop emit --now` / `cxloop up --emit FILE --now`: example events stamped with now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from agents.cli.main import stamped_now

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contact-event.jsonl"


def test_the_example_event_gets_the_current_time_and_keeps_everything_else() -> None:
    [line] = [raw for raw in EXAMPLE.read_bytes().splitlines() if raw.strip()]
    before = datetime.now(UTC)
    stamped = orjson.loads(stamped_now(line))
    original = orjson.loads(line)
    occurred = datetime.fromisoformat(stamped.pop("occurred_at"))
    assert before <= occurred <= datetime.now(UTC) + timedelta(seconds=1)
    original.pop("occurred_at")
    assert stamped == original


def test_lines_that_are_not_json_objects_go_on_unchanged() -> None:
    for line in (b"not json", b"[1, 2]", b'"text"'):
        assert stamped_now(line) == line
