"""Bad input on every entry point of a running `cxloop up` (the embedded tansu broker, the
local SMTP servers, SQLite and PostgreSQL): each class is named (a dead-letter reason code,
or an HTTP status with the field), nothing answers 500, nothing is logged above info, and
the good input after it goes through.

- the contact-event catalogue (tests/bad_contact_events.py) through the real broker;
- 30+ classes of bad answers: /api/responses bodies and survey page form posts;
- the NUL rule on the complaint form and mail intake, the staff API and inbox sign-in,
  interviews, and any path or query parameter.
"""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.bad_contact_events import MIB, catalogue_messages
from tests.conftest import wait_for
from tests.harness.loop import RunningLoop, running_loop
from tests.harness.ports import free_port
from tests.harness.topics import read_from_start
from tests.integration.test_survey_templates import surveyed


@pytest.fixture
def loop(tmp_path: Any, database_url: str) -> Iterator[RunningLoop]:
    env = {"CXLOOP_COMPLAINT_SMTP_PORT": str(free_port())}
    with running_loop(tmp_path, database_url=database_url, env=env) as running:
        wait_for(lambda: smtp_listening(running), 20, "the complaint intake SMTP server")
        yield running


def smtp_listening(loop: RunningLoop) -> bool:
    try:
        port = int(loop.extra_env["CXLOOP_COMPLAINT_SMTP_PORT"])
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def assert_still_up_and_quiet(loop: RunningLoop) -> None:
    """The worker answers /ready and logged nothing above info: no error, no traceback."""
    assert httpx.get(f"{loop.web}/ready", timeout=10).status_code == 200
    loud = [
        line
        for line in loop.log_lines()
        if line.get("level") in ("error", "critical", "exception") or "exception" in line
    ]
    assert loud == [], loud[:3]
    assert "Traceback" not in loop.log_path.read_text(errors="replace")


# --- contact events through the broker ----------------------------------------------------


def produce(loop: RunningLoop, messages: list[tuple[bytes | None, bytes | None]]) -> list[Any]:
    """Produce (key, value) pairs in order, each acked; their record metadata."""

    async def run() -> list[Any]:
        producer = AIOKafkaProducer(
            bootstrap_servers=loop.bootstrap, acks="all", max_request_size=8 * MIB
        )
        await producer.start()
        try:
            return [
                await producer.send_and_wait("contact-events", value=value, key=key)
                for key, value in messages
            ]
        finally:
            await producer.stop()

    return asyncio.run(run())


def test_every_bad_contact_event_is_dead_lettered_through_the_broker(loop: RunningLoop) -> None:
    now = datetime.now(UTC)
    messages = catalogue_messages(now, lambda i: f"C-bad-{i}", now)
    pairs = [m for _, bad, good in messages for m in (bad, good)]
    sent = produce(loop, pairs)
    bad_at = {(sent[2 * i].partition, sent[2 * i].offset): i for i in range(len(messages))}

    wait_for(
        lambda: (
            loop.rows(
                "SELECT count(DISTINCT event_id) FROM survey_decisions "
                "WHERE event_id LIKE 'evt-good-%'"
            )
            == [(len(messages),)]
        ),
        90,
        "every good event after a bad one decided",
    )
    letters = wait_for(
        lambda: (
            (
                r := loop.rows(
                    'SELECT partition, "offset", reason, original_size, original_sha256 '
                    "FROM dead_letters WHERE source_topic = 'contact-events'"
                )
            )
            and len(r) >= len(messages)
            and r
        ),
        60,
        "a dead letter per bad event",
    )
    assert len(letters) == len(messages)  # type: ignore[arg-type]
    for partition, offset, reason, size, digest in letters:  # type: ignore[union-attr]
        entry, (_, value), _ = messages[bad_at[(partition, offset)]]
        code, _, detail = reason.partition(": ")
        assert code == entry.code, (entry.name, reason)
        assert entry.detail is None or entry.detail in detail, (entry.name, reason)
        assert size == (None if value is None else len(value)), entry.name
        assert (digest is None) == (value is None), entry.name

    # dead-letters is keyed by the customer: every bad event here named one.
    on_topic = asyncio.run(
        read_from_start(loop.bootstrap, ["dead-letters"], limit_s=20, expect=len(messages))
    )
    customers = {f"C-bad-{i}".encode() for i in range(len(messages))}
    assert {m.key for m in on_topic} <= customers
    assert len(on_topic) == len(messages)
    assert_still_up_and_quiet(loop)


# --- answers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadAnswer:
    """A bad answer: an /api/responses body (*body*, or *raw* bytes with *content_type*) or a
    survey-page form post (*form*); the status it must get and the field named."""

    name: str
    status: int
    field: str | None = None
    code: str | None = None
    body: Any = None
    raw: bytes | None = None
    content_type: str | None = "application/json"
    form: list[tuple[str, str]] | None = None
    template: str = "relationship"
    path: str | None = None  # the form's path after /s/ ("{token}" is the survey's token)


def api(name: str, status: int, fld: str | None, code: str | None, **body: Any) -> BadAnswer:
    """A JSON body: {"token": <the survey's>, **body}."""
    return BadAnswer(name, status, fld, code, body={"token": "{token}", **body})


NPS_OK = {"nps": 4}
BAD_ANSWERS: tuple[BadAnswer, ...] = (
    # --- the body itself ----------------------------------------------------------------
    BadAnswer("no content type", 415, raw=b'{"token": "x"}', content_type=None),
    BadAnswer("text/plain", 415, raw=b'{"token": "x"}', content_type="text/plain"),
    BadAnswer(
        "a form body",
        415,
        raw=b"token=x&nps=3",
        content_type="application/x-www-form-urlencoded",
    ),
    BadAnswer("not JSON", 400, raw=b"{nope"),
    BadAnswer("a JSON array", 400, raw=b"[1, 2]"),
    BadAnswer("an empty body", 400, raw=b""),
    BadAnswer("no token", 422, "token", body={"answers": NPS_OK}),
    BadAnswer("token a number", 422, "token", body={"token": 7, "answers": NPS_OK}),
    BadAnswer(
        "token with a NUL", 422, "token", "nul_character", body={"token": "a\x00b", **NPS_OK}
    ),
    BadAnswer("an unknown token", 404, body={"token": "x" * 43, "answers": NPS_OK}),
    api("answers not an object", 422, "answers", None, answers=[4]),
    api("answers a string", 422, "answers", None, answers="nps=4"),
    # --- scores are JSON integers -------------------------------------------------------
    api('nps "3"', 422, "nps", "invalid", answers={"nps": "3"}),
    api("nps [3]", 422, "nps", "invalid", answers={"nps": [3]}),
    api("nps 3.0", 422, "nps", "invalid", answers={"nps": 3.0}),
    api("nps true", 422, "nps", "invalid", answers={"nps": True}),
    api("nps 11", 422, "nps", "invalid", answers={"nps": 11}),
    api("nps -1", 422, "nps", "invalid", answers={"nps": -1}),
    api("nps null", 422, "nps", "required", answers={"nps": None}),
    api("nps missing", 422, "nps", "required", answers={"reason": "x"}),
    api("nps an object", 422, "nps", "invalid", answers={"nps": {"v": 3}}),
    api('flat shape nps "8"', 422, "nps", "invalid", nps="8"),
    api("flat shape nps [8]", 422, "nps", "invalid", nps=[8]),
    # --- text ---------------------------------------------------------------------------
    api("reason with a NUL", 422, "reason", "nul_character", answers={**NPS_OK, "reason": "a\x00"}),
    api("reason too long", 422, "reason", "too_long", answers={**NPS_OK, "reason": "x" * 4001}),
    api("reason a number", 422, "reason", "invalid", answers={**NPS_OK, "reason": 5}),
    api("reason a list", 422, "reason", "invalid", answers={**NPS_OK, "reason": ["a", "b"]}),
    # --- aspects and unknown questions --------------------------------------------------
    api('aspect "4"', 422, "aspects", "invalid", answers={**NPS_OK, "aspects": {"speed": "4"}}),
    api("aspect 6", 422, "aspects", "invalid", answers={**NPS_OK, "aspects": {"speed": 6}}),
    api("aspect [4]", 422, "aspects", "invalid", answers={**NPS_OK, "aspects": {"speed": [4]}}),
    api("unknown aspect", 422, "aspects", "invalid", answers={**NPS_OK, "aspects": {"taste": 3}}),
    api("aspects a list", 422, "aspects", "invalid", answers={**NPS_OK, "aspects": [3]}),
    api("unknown question", 422, "colour", "unknown_question", answers={**NPS_OK, "colour": 1}),
    api(
        "unknown question with a NUL",
        422,
        "x\x00",
        "unknown_question",
        answers={**NPS_OK, "x\x00": 1},
    ),
    # --- a support survey: CSAT, CES, yes/no ------------------------------------------
    BadAnswer(
        'csat "4"',
        422,
        "csat",
        "invalid",
        body={"token": "{token}", "answers": {"csat": "4", "ces": 3}},
        template="support",
    ),
    BadAnswer(
        "ces 8",
        422,
        "ces",
        "invalid",
        body={"token": "{token}", "answers": {"csat": 4, "ces": 8}},
        template="support",
    ),
    BadAnswer(
        "yes/no [true]",
        422,
        "solved_first_contact",
        "invalid",
        body={"token": "{token}", "answers": {"csat": 4, "solved_first_contact": [True]}},
        template="support",
    ),
    BadAnswer(
        'yes/no "maybe"',
        422,
        "solved_first_contact",
        "invalid",
        body={"token": "{token}", "answers": {"csat": 4, "solved_first_contact": "maybe"}},
        template="support",
    ),
    # --- survey page form posts -----------------------------------------------------------
    BadAnswer("form: nps missing", 422, "nps", form=[("reason", "x")]),
    BadAnswer("form: nps 11", 422, "nps", form=[("nps", "11")]),
    BadAnswer("form: nps not a number", 422, "nps", form=[("nps", "seven")]),
    BadAnswer("form: nps twice", 422, "nps", form=[("nps", "3"), ("nps", "4")]),
    BadAnswer("form: reason with a NUL", 422, "reason", form=[("nps", "3"), ("reason", "a\x00b")]),
    BadAnswer("form: reason too long", 422, "reason", form=[("nps", "3"), ("reason", "x" * 4001)]),
    BadAnswer("form: aspect 9", 422, "aspects", form=[("nps", "3"), ("aspects.speed", "9")]),
    BadAnswer("form: unknown field", 422, "colour", form=[("nps", "3"), ("colour", "red")]),
    BadAnswer("form: a malformed token", 404, form=[("nps", "3")], path="short"),
    BadAnswer("form: a NUL in the token", 422, "token", form=[("nps", "3")], path="{token}%00"),
    BadAnswer("form: a NUL in the query", 422, "x", form=[("nps", "3")], path="{token}?x=%00"),
)


def test_the_answer_catalogue_is_large() -> None:
    assert len(BAD_ANSWERS) >= 30
    assert len({a.name for a in BAD_ANSWERS}) == len(BAD_ANSWERS)


def test_every_bad_answer_is_named_and_the_next_answer_is_recorded(loop: RunningLoop) -> None:
    tokens = {
        template: surveyed(loop, f"C-ans-{template}", template)[1]
        for template in ("relationship", "support")
    }
    problems = []
    for bad in BAD_ANSWERS:
        token = tokens[bad.template]
        reply = _post(loop, bad, token)
        problem = _check(bad, reply)
        if problem:
            problems.append(f"{bad.name}: {problem}")
        # Still up after each one.
        assert httpx.get(f"{loop.web}/ready", timeout=10).status_code == 200, bad.name
    assert problems == []

    # Nothing was recorded, and the good answers go through on the same links.
    assert loop.rows("SELECT count(*) FROM survey_responses") == [(0,)]
    good = {"nps": 4, "reason": "Te laat", "aspects": {"speed": 2}}
    ok = httpx.post(
        f"{loop.web}/api/responses",
        json={"token": tokens["relationship"], "answers": good},
        timeout=10,
    )
    assert ok.status_code == 201, ok.text
    form = {"csat": "4", "ces": "2", "solved_first_contact": "yes", "comment": "Prima"}
    done = httpx.post(f"{loop.web}/s/{tokens['support']}", data=form, timeout=10)
    assert done.status_code == 200, done.text
    wait_for(
        lambda: (
            loop.rows("SELECT count(*) FROM survey_responses WHERE scored_at IS NOT NULL") == [(2,)]
        ),
        20,
        "both good answers scored",
    )
    assert_still_up_and_quiet(loop)


def _post(loop: RunningLoop, bad: BadAnswer, token: str) -> httpx.Response:
    if bad.form is not None:
        path = (bad.path or "{token}").replace("{token}", token)
        fields: dict[str, list[str]] = {}
        for name, value in bad.form:
            fields.setdefault(name, []).append(value)
        return httpx.post(f"{loop.web}/s/{path}", data=fields, timeout=10)
    headers = {"Content-Type": bad.content_type} if bad.content_type else {}
    if bad.raw is not None:
        content = bad.raw
    else:
        body = {k: (token if v == "{token}" else v) for k, v in bad.body.items()}
        content = orjson.dumps(body)
    return httpx.post(f"{loop.web}/api/responses", content=content, headers=headers, timeout=10)


def _check(bad: BadAnswer, reply: httpx.Response) -> str | None:
    if reply.status_code != bad.status:
        return f"status {reply.status_code}, not {bad.status}: {reply.text[:200]}"
    if bad.field is None:
        return None
    if reply.headers.get("Content-Type", "").startswith("application/json"):
        body = reply.json()
        if bad.field not in body.get("fields", {}):
            return f"{bad.field!r} not named in {body}"
        if bad.code is not None and body.get("codes", {}).get(bad.field) != bad.code:
            return f"code {body.get('codes')}, not {bad.code}"
        return None
    # A page: the question is marked (its error paragraph) or, unknown, named.
    marked = f'id="{bad.field}-error"' in reply.text or bad.field in reply.text
    return None if marked else f"{bad.field} not marked on the page"


# --- the NUL rule on the other entry points ---------------------------------------------

COMPLAINT = {
    "name": "Anna de Vries",
    "email": "anna@example.nl",
    "phone": "",
    "customer_number": "C-4242",
    "message": "Weer geen monteur.",
    "language": "nl",
}


def test_a_nul_is_named_on_every_entry_point_and_good_input_still_flows(
    loop: RunningLoop,
) -> None:
    web = loop.web
    # The complaint form: 422 naming the field, nothing published.
    for name in ("name", "email", "customer_number", "message"):
        reply = httpx.post(
            f"{web}/complaint",
            data={**COMPLAINT, name: COMPLAINT[name] + "\x00", "form_token": "t" * 43},
            timeout=10,
        )
        assert reply.status_code == 422, name
        assert f'id="{name}-error"' in reply.text, name
        assert "NUL" in reply.text, name
    # The mail intake: a permanent refusal naming the part, before any 250.
    with smtplib.SMTP("127.0.0.1", int(loop.extra_env["CXLOOP_COMPLAINT_SMTP_PORT"])) as smtp:
        message = EmailMessage()
        message["From"] = "Anna <anna@example.nl>"
        message["Subject"] = "Klacht"
        message.set_content("Klantnummer C-4242: weer \x00 geen monteur.")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.send_message(message, "anna@example.nl", ["complaints@example.com"])
        assert refused.value.smtp_code == 550
        assert b"NUL" in refused.value.smtp_error and b"text" in refused.value.smtp_error
    assert loop.rows("SELECT count(*) FROM followup_tasks") == [(0,)]

    # A good complaint opens its task (on PostgreSQL too).
    sent = httpx.post(f"{web}/complaint", data={**COMPLAINT, "form_token": "g" * 43}, timeout=10)
    assert sent.status_code == 200, sent.text
    task_id = wait_for(
        lambda: loop.rows("SELECT task_id FROM followup_tasks WHERE customer_id = 'C-4242'"),
        20,
        "the complaint's task",
    )[0][0]  # type: ignore[index]

    # The staff API: note and details; path and query parameters.
    with loop.staff() as staff:
        actions = f"/api/tasks/{task_id}/actions"
        for body, where in (
            ({"type": "note", "note": "called\x00"}, "note"),
            ({"type": "close", "details": {"root_cause": "x\x00"}}, "details.root_cause"),
            ({"type": "assign", "details": {"assignee": "a\x00"}}, "details.assignee"),
            ({"type": "note", "note": "ok", "details": {"k\x00": 1}}, "details.k\\u0000"),
        ):
            reply = staff.post(actions, json=body)
            assert reply.status_code == 422, (body, reply.text)
            assert where in reply.json()["fields"], reply.json()
        for path, where in (
            ("/api/tasks?team=%00", "team"),
            ("/api/tasks/%00", "task_id"),
            ("/api/tasks/%00/events", "task_id"),
            ("/inbox/dashboard?partner=a%00", "partner"),
        ):
            reply = staff.get(path)
            assert reply.status_code == 422, (path, reply.text)
            assert reply.json()["codes"] == {where: "nul_character"}, path
        ok = staff.post(actions, json={"type": "note", "note": "Anna gebeld"})
        assert ok.status_code == 202, ok.text
    wait_for(
        lambda: loop.rows("SELECT 1 FROM followup_actions WHERE task_id = :t", t=task_id),
        20,
        "the good action recorded",
    )

    # Interviews: the interviewer's name, in the API and the sign-in form.
    auth = {"Authorization": f"Bearer {loop.staff_token}"}
    reply = httpx.post(
        f"{web}/api/interviews/some-call",
        json={"interviewer": "Ann\x00", "outcome": "no_answer"},
        headers=auth,
        timeout=10,
    )
    assert reply.status_code == 422 and "interviewer" in reply.json()["fields"], reply.text
    reply = httpx.post(
        f"{web}/interviews/login",
        data={"token": loop.staff_token, "interviewer": "Ann\x00"},
        timeout=10,
    )
    assert reply.status_code == 422 and "NUL" in reply.text

    # The inbox sign-in: a user name with a NUL.
    with httpx.Client(base_url=web, timeout=10) as browser:
        page = browser.get("/inbox/login")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        reply = browser.post(
            "/inbox/login",
            data={"_csrf": csrf.group(1), "username": "admin\x00", "password": "x"},
        )
        assert reply.status_code == 422 and "NUL" in reply.text

    assert_still_up_and_quiet(loop)
    assert json.dumps(loop.log_lines()).count("Anna") == 0
