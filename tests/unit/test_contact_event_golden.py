"""Contact events are one wire contract whoever writes them: the complaints cxloop publishes
(web form, mail intake) and the followup_closed event of a closed task carry schema_version
and are pinned by golden files in tests/golden/records/contact_events/; an event from
another system without schema_version is version 1. Change a golden file only together with
a CONTACT_EVENT_SCHEMA_VERSION bump and a note for the consumers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import orjson
import pytest

from models.complaints import complaint_from_form, complaint_from_mail
from models.contact_events import CONTACT_EVENT_SCHEMA_VERSION, parse_contact_event
from models.store.answer_tasks import recovery_event
from models.store.tables import FollowupTask

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "records" / "contact_events"
AT = datetime(2026, 11, 20, 9, 16, 30, tzinfo=UTC)


def _form() -> dict[str, Any]:
    result = complaint_from_form(
        {
            "name": "Anna de Vries",
            "email": "anna@example.nl",
            "phone": "+31 6 1234 5678",
            "customer_number": "C-1001",
            "message": "Niemand kwam dinsdag.",
            "language": "nl",
            "form_token": "k" * 43,
        },
        AT,
    )
    assert result.event is not None
    return result.event


def _mail() -> dict[str, Any]:
    message = EmailMessage()
    message["From"] = '"Anna de Vries" <anna@example.nl>'
    message["To"] = "complaints@cxloop.example"
    message["Subject"] = "Weer geen monteur"
    message["Message-ID"] = "<golden-1@mail.example.nl>"
    message.set_content("Klantnummer C-1001: niemand kwam dinsdag.")
    return complaint_from_mail(message.as_bytes(), AT)


def _followup_closed() -> dict[str, Any]:
    task = FollowupTask(
        task_id="5a6b7c8d-1e2f-5a3b-8c4d-5e6f7a8b9c0d",
        origin="detractor",
        source_id="b1f2c3d4-0000-4000-8000-000000000001",
        customer_id="C-1001",
        priority=0,
        status="closed",
        team="service",
        opened_at=AT,
        due_at=AT,
        informed_at=AT,
        closed_at=AT,
        email="anna@example.nl",
        name="Anna de Vries",
        language="nl",
        partner="CBG Connect",
    )
    event = recovery_event(task, AT)
    assert event is not None
    return event


BUILDERS = {
    "complaint_form": _form,
    "complaint_mail": _mail,
    "followup_closed": _followup_closed,
}


def golden(name: str) -> Any:
    return json.loads((GOLDEN / f"{name}.json").read_text("utf-8"))


def test_every_contact_event_cxloop_publishes_has_a_golden_file() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(BUILDERS) | {"external_v1"}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_published_contact_event_matches_golden_file(name: str) -> None:
    event = BUILDERS[name]()
    assert event["schema_version"] == CONTACT_EVENT_SCHEMA_VERSION
    assert json.loads(orjson.dumps(event)) == golden(name)


@pytest.mark.parametrize("name", sorted([*BUILDERS, "external_v1"]))
def test_golden_contact_event_is_read_with_its_schema_version(name: str) -> None:
    raw = (GOLDEN / f"{name}.json").read_bytes()
    event = parse_contact_event(raw)
    assert event.schema_version == golden(name).get("schema_version", 1)
    assert event.model_dump(mode="json")["schema_version"] == event.schema_version


def test_an_event_without_schema_version_is_version_1() -> None:
    assert "schema_version" not in golden("external_v1")
    assert parse_contact_event((GOLDEN / "external_v1.json").read_bytes()).schema_version == 1
