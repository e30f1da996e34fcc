"""The wire contract: every record's JSON is pinned by a golden file in tests/golden/records/.

A renamed, added, removed or retyped field changes the JSON and fails the golden test; a
golden file that no longer loads into the record fails the reverse test. Change a golden
file only together with a schema_version bump and a note for the consumers.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams import records
from streams.records import (
    ACTION_SCHEMA_VERSION,
    DEAD_LETTER_SCHEMA_VERSION,
    INVITATION_SCHEMA_VERSION,
    RESPONSE_SCHEMA_VERSION,
    SCHEMA_VERSION,
    TASK_SCHEMA_VERSION,
    CallListEntry,
    ConsentChange,
    DeadLetter,
    FollowupAction,
    FollowupTaskEvent,
    ScoredResponse,
    SurveyInvitation,
    SurveyResponse,
    WireRecord,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "records"
AMSTERDAM_WINTER = timezone(timedelta(hours=1))
AT = datetime(2026, 11, 20, 10, 15, 0, tzinfo=AMSTERDAM_WINTER)
AT_UTC = datetime(2026, 11, 20, 9, 16, 30, 250000, tzinfo=UTC)
ISO_8601_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}$")

# The answers of a survey response: question id → score, yes/no, text or aspect ratings.
ANSWERS = {
    "nps": 3,
    "question_answered": False,
    "comment": "De monteur kwam niet opdagen.",
    "aspects": {"speed": 2, "delivery": 4},
}

# One fixed instance per record class; the file name is the class name.
SAMPLES: dict[str, WireRecord] = {
    "SurveyInvitation": SurveyInvitation(
        invitation_id="0e9b7c4a-5d1f-5b8e-8f3c-2a6d9e1b4c70",
        event_id="7b0c7f7e-2a1e-4a4e-9a43-0c2b4f6f9d11",
        customer_id="C-1001",
        locale="nl",
        created_at=AT,
        programme="support",
        template="support",
        reminder=1,
    ),
    "CallListEntry": CallListEntry(
        invitation_id="5f3e2d1c-0b9a-5876-9543-21fedcba0987",
        customer_id="C-1001",
        programme="relationship",
        template="relationship",
        locale="nl",
        created_at=AT,
        expires_at=datetime(2026, 11, 27, 10, 15, tzinfo=AMSTERDAM_WINTER),
        phone="+31 6 1234 5678",
        name="Anna de Vries",
    ),
    "SurveyResponse": SurveyResponse(
        response_id="b1f2c3d4-0000-4000-8000-000000000001",
        invitation_id="0e9b7c4a-5d1f-5b8e-8f3c-2a6d9e1b4c70",
        customer_id="C-1001",
        submitted_at=AT_UTC,
        nps=3,
        csat=None,
        ces=6,
        answers=ANSWERS,
    ),
    "ScoredResponse": ScoredResponse(
        response_id="b1f2c3d4-0000-4000-8000-000000000001",
        invitation_id="0e9b7c4a-5d1f-5b8e-8f3c-2a6d9e1b4c70",
        customer_id="C-1001",
        submitted_at=AT_UTC,
        nps=3,
        nps_category="detractor",
        csat=4,
        csat_satisfied=True,
        ces=2,
        answers=ANSWERS,
    ),
    "FollowupTaskEvent": FollowupTaskEvent(
        event_type="task_action_recorded",
        task_id="5a6b7c8d-1e2f-5a3b-8c4d-5e6f7a8b9c0d",
        customer_id="C-1001",
        origin="detractor",
        priority=0,
        status="contacted",
        due_at=datetime(2026, 11, 27, 16, 0, tzinfo=UTC),
        occurred_at=AT,
        action_type="call_attempt",
        event_id="2b1f0c9e-8d7a-5e6f-9a0b-1c2d3e4f5a6b",
        seq=3,
        team="service",
        assignee="jdevries",
        from_status="assigned",
        actor="jdevries",
        details={"action_type": "call_attempt", "action_id": "c0ffee00"},
        first_contact_due_at=datetime(2026, 11, 24, 16, 0, tzinfo=UTC),
        sla_due_at=datetime(2026, 11, 27, 16, 0, tzinfo=UTC),
    ),
    "FollowupAction": FollowupAction(
        action_id="c0ffee00-0000-4000-8000-000000000002",
        task_id="5a6b7c8d-1e2f-5a3b-8c4d-5e6f7a8b9c0d",
        customer_id="C-1001",
        type="close",
        note="Teruggebeld; storing verholpen, monteur komt dinsdag.",
        actor="agent-17",
        requested_at=AT,
        details={"root_cause": "appointment_missed", "needs_structural_fix": True},
    ),
    "DeadLetter": DeadLetter(
        dead_letter_id="contact-events:2:1041",
        source_topic="contact-events",
        partition=2,
        offset=1041,
        reason="invalid_field: kind: Input should be 'purchase', 'after_sales' or 'complaint'",
        original_b64="eyJraW5kIjogInByYWlzZSJ9",
        received_at=AT_UTC,
        key_b64="Qy0xMDAx",
        original_size=18,
        original_sha256="068ff9c7925702f31c97ef221ef0c3028a6f0a76f26d1d49a390d6c0735d1b60",
    ),
    "ConsentChange": ConsentChange(
        consent_id="3d6f1b2a-9c4e-4f70-8a15-6b2e0c9d7f31",
        customer_id="C-1001",
        channel="email",
        status="opted_out",
        changed_at=AT,
        source="unsubscribe_link",
    ),
}
RECORD_CLASSES = {type(r).__name__: type(r) for r in SAMPLES.values()}
FAUST_METADATA = {"__faust", "__faust_type", "ns"}


def golden(name: str) -> Any:
    return json.loads((GOLDEN / f"{name}.json").read_text("utf-8"))


def test_every_record_class_has_a_sample_and_a_golden_file() -> None:
    declared = {
        name
        for name, value in vars(records).items()
        if isinstance(value, type) and issubclass(value, WireRecord) and value is not WireRecord
    }
    assert declared == set(SAMPLES)
    assert {p.stem for p in GOLDEN.glob("*.json")} == declared


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_wire_json_matches_golden_file(name: str) -> None:
    assert json.loads(SAMPLES[name].to_bytes()) == golden(name)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_file_loads_into_the_record(name: str) -> None:
    # The reverse direction: what consumers already have on the topic still decodes.
    raw = (GOLDEN / f"{name}.json").read_bytes()
    assert RECORD_CLASSES[name].from_bytes(raw) == SAMPLES[name]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip(name: str) -> None:
    record = SAMPLES[name]
    again = type(record).from_bytes(record.to_bytes())
    assert again == record
    assert again.asdict() == record.asdict()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_shape(name: str) -> None:
    data = golden(name)
    assert data["schema_version"] == RECORD_CLASSES[name]._options.defaults["schema_version"]
    assert data["schema_version"] in (
        SCHEMA_VERSION,
        RESPONSE_SCHEMA_VERSION,
        INVITATION_SCHEMA_VERSION,
        TASK_SCHEMA_VERSION,
        ACTION_SCHEMA_VERSION,
        DEAD_LETTER_SCHEMA_VERSION,
    )
    assert not FAUST_METADATA & set(data), data
    assert not any(k.startswith("__") for k in data)
    timestamps = [v for k, v in data.items() if k.endswith("_at")]
    assert timestamps, f"{name} has no timestamp"
    for value in timestamps:
        assert ISO_8601_WITH_OFFSET.match(value), value
        assert datetime.fromisoformat(value).utcoffset() is not None


@pytest.mark.parametrize("name", ["SurveyResponse", "ScoredResponse"])
def test_version_1_responses_still_decode(name: str) -> None:
    # Messages from before ces and answers (schema_version 1) are still on the topics.
    raw = (GOLDEN / "v1" / f"{name}.json").read_bytes()
    old = RECORD_CLASSES[name].from_bytes(raw)
    assert old.schema_version == 1
    assert (old.ces, old.answers) == (None, {})
    assert old.response_id == SAMPLES[name].response_id
    assert old.nps == SAMPLES[name].nps
    assert json.loads(old.to_bytes()) == {**json.loads(raw), "ces": None, "answers": {}}


def test_version_1_task_records_still_decode() -> None:
    # Task events and actions from before the lifecycle (schema_version 1) decode with
    # empty details and no team.
    event = FollowupTaskEvent.from_bytes((GOLDEN / "v1" / "FollowupTaskEvent.json").read_bytes())
    assert (event.schema_version, event.team, event.event_id, event.details) == (1, None, None, {})
    assert event.task_id == SAMPLES["FollowupTaskEvent"].task_id
    action = FollowupAction.from_bytes((GOLDEN / "v1" / "FollowupAction.json").read_bytes())
    assert (action.schema_version, action.type, action.details) == (1, "called", {})


def test_version_1_invitations_still_decode() -> None:
    # Invitations from before programmes (schema_version 1) may still be on the topic.
    raw = (GOLDEN / "v1" / "SurveyInvitation.json").read_bytes()
    old = SurveyInvitation.from_bytes(raw)
    assert (old.schema_version, old.programme, old.template, old.reminder) == (1, None, None, 0)
    assert old.invitation_id == SAMPLES["SurveyInvitation"].invitation_id


def test_version_1_dead_letters_still_decode() -> None:
    # Letters from before the size and digest (schema_version 1) kept the whole original.
    old = DeadLetter.from_bytes((GOLDEN / "v1" / "DeadLetter.json").read_bytes())
    assert (old.schema_version, old.original_size, old.original_sha256) == (1, None, None)
    assert old.original_b64 == SAMPLES["DeadLetter"].original_b64


def test_answers_default_to_a_new_empty_dict_per_record() -> None:
    first = SurveyResponse(response_id="r-1", invitation_id="i-1", customer_id="C", submitted_at=AT)
    second = SurveyResponse(
        response_id="r-2", invitation_id="i-2", customer_id="C", submitted_at=AT
    )
    first.answers["nps"] = 3
    assert second.answers == {}


@pytest.mark.parametrize(
    "answers",
    [[1], "nps=3", {"nps": 1.5}, {"nps": None}, {"aspects": {"speed": "4"}}, {"a": {"b": True}}],
)
def test_answers_that_are_not_answers_do_not_decode(answers: object) -> None:
    raw = json.loads(SAMPLES["SurveyResponse"].to_bytes())
    raw["answers"] = answers
    with pytest.raises(TypeError, match="answers"):
        SurveyResponse.from_bytes(json.dumps(raw).encode())


def test_timestamps_keep_their_instant_and_offset() -> None:
    again = SurveyInvitation.from_bytes(SAMPLES["SurveyInvitation"].to_bytes())
    assert again.created_at == AT
    assert again.created_at.utcoffset() == timedelta(hours=1)


def test_a_changed_field_is_not_equal() -> None:
    # Equality is what the round-trip tests rely on: it must see field values.
    original = SAMPLES["SurveyInvitation"]
    raw = json.loads(original.to_bytes())
    raw["locale"] = "bg"
    assert SurveyInvitation.from_bytes(json.dumps(raw).encode()) != original
    raw["locale"] = "nl"
    raw["created_at"] = (AT + timedelta(seconds=1)).isoformat()
    assert SurveyInvitation.from_bytes(json.dumps(raw).encode()) != original


def test_a_renamed_field_does_not_decode() -> None:
    raw = json.loads(SAMPLES["SurveyInvitation"].to_bytes())
    raw["lang"] = raw.pop("locale")
    with pytest.raises(TypeError, match="locale"):
        SurveyInvitation.from_bytes(json.dumps(raw).encode())


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"null", b"1"])
def test_from_bytes_rejects_non_objects(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        SurveyInvitation.from_bytes(raw)


@given(
    nps=st.one_of(st.none(), st.integers(min_value=0, max_value=10)),
    csat=st.one_of(st.none(), st.integers(min_value=1, max_value=5)),
    customer_id=st.text(min_size=1, max_size=40),
    submitted_at=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, AMSTERDAM_WINTER, timezone(timedelta(hours=-3))]),
    ),
)
def test_any_survey_response_round_trips(
    nps: int | None, csat: int | None, customer_id: str, submitted_at: datetime
) -> None:
    record = SurveyResponse(
        response_id="r-1",
        invitation_id="i-1",
        customer_id=customer_id,
        submitted_at=submitted_at,
        nps=nps,
        csat=csat,
    )
    again = SurveyResponse.from_bytes(record.to_bytes())
    assert again == record
    assert again.submitted_at.utcoffset() == submitted_at.utcoffset()
