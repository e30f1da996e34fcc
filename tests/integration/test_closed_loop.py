"""The whole loop through `cxloop up`: real tansu, real SMTP server, SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text

from models.store.staff_accounts import authenticate
from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop, running_loop

ANNA = "c-1001@example.nl"


@pytest.fixture
def loop(tmp_path: Path, database_url: str) -> Iterator[RunningLoop]:
    with running_loop(tmp_path, database_url=database_url) as running:
        yield running


def answer(loop: RunningLoop, token: str, nps: str, comment: str = "") -> httpx.Response:
    return httpx.post(f"{loop.web}/s/{token}", data={"nps": nps, "comment": comment}, timeout=10)


def test_detractor_is_called_back_and_the_loop_closes(loop: RunningLoop) -> None:
    loop.emit(contact_event(1))
    mail = wait_for(lambda: loop.mails_to(ANNA), 15, "the survey e-mail")[0]  # type: ignore[index]
    assert mail["Subject"].startswith("Hoe hebben we het gedaan")
    assert {p.get_content_type() for p in mail.iter_parts()} == {"text/plain", "text/html"}
    token = loop.survey_token(mail)

    page = httpx.get(f"{loop.web}/s/{token}", timeout=10)
    assert page.status_code == 200
    assert "aanbevelen" in page.text and 'name="nps"' in page.text
    assert httpx.get(f"{loop.web}/s/{token}", timeout=10).status_code == 200  # GET keeps it

    invalid = answer(loop, token, "11", "te traag")
    assert invalid.status_code == 422
    assert "te traag" in invalid.text  # what the customer typed is kept

    assert answer(loop, token, "3", "Niemand belde terug").status_code == 200
    assert answer(loop, token, "9").status_code == 409

    tasks = wait_for(
        lambda: loop.rows("SELECT task_id, priority, status FROM followup_tasks"),
        15,
        "the follow-up task",
    )
    task_id, priority, status = tasks[0]  # type: ignore[index]
    assert (priority, status) == (0, "open")
    response = loop.rows("SELECT nps, nps_category, comment FROM survey_responses")
    assert response == [(3, "detractor", "Niemand belde terug")]
    on_topic = loop.topic_messages("followup-tasks", expect=1)
    assert orjson.loads(on_topic[0].value)["task_id"] == task_id
    assert on_topic[0].key == b"C-1001"

    # While the task is open the customer is not surveyed again.
    loop.emit(contact_event(2))
    wait_for(
        lambda: loop.rows("SELECT reason FROM survey_decisions WHERE event_id = 'evt-2'"),
        15,
        "the second decision",
    )
    assert loop.rows("SELECT reason FROM survey_decisions WHERE event_id = 'evt-2'") == [
        ("open_followup",)
    ]

    with loop.staff() as staff:
        listed = staff.get("/api/tasks", params={"status": "open"})
        assert listed.status_code == 200
        assert [t["task_id"] for t in listed.json()["tasks"]] == [task_id]
        loop.work_task(
            staff,
            task_id,
            [
                ("call_attempt", "Klant gebeld", {}),
                ("resolved", "Monteur ingepland", {}),
                ("customer_informed", "Klant verteld dat de monteur dinsdag komt", {}),
                ("close", "", {"root_cause": "appointment_missed"}),
            ],
            timeout=15,
        )
        closed = loop.rows(
            "SELECT status, closed_at IS NOT NULL, root_cause, told_customer FROM followup_tasks"
        )
        assert closed == [
            ("closed", True, "appointment_missed", "Klant verteld dat de monteur dinsdag komt")
        ]
        assert staff.get("/api/tasks", params={"status": "active"}).json()["tasks"] == []
        again = staff.post(f"/api/tasks/{task_id}/actions", json={"type": "call_attempt"})
        assert again.status_code == 409

    events = [orjson.loads(m.value) for m in loop.topic_messages("followup-tasks", 5)]
    assert [(e["event_type"], e["status"]) for e in events] == [
        ("task_opened", "open"),
        ("task_action_recorded", "contacted"),
        ("task_action_recorded", "contacted"),
        ("task_action_recorded", "customer_informed"),
        ("task_closed", "closed"),
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert {e["team"] for e in events} == {"service"}

    # The closed task asks the survey rules for a recovery survey, 14 days on.
    recovery = wait_for(
        lambda: loop.rows(
            "SELECT programme, reason FROM survey_decisions WHERE event_id = :e",
            e=f"recovery:{task_id}",
        ),
        15,
        "the recovery decision",
    )
    assert recovery == [("recovery", "scheduled")]

    # Task closed, but the 180-day cap still holds.
    loop.emit(contact_event(3))
    wait_for(
        lambda: loop.rows("SELECT reason FROM survey_decisions WHERE event_id = 'evt-3'"),
        15,
        "the third decision",
    )
    assert loop.rows("SELECT reason FROM survey_decisions WHERE event_id = 'evt-3'") == [
        ("recently_surveyed",)
    ]
    assert len(loop.mails_to(ANNA)) == 1
    assert loop.rows("SELECT count(*) FROM contact_events") == [(4,)]


def test_duplicates_and_bad_input(loop: RunningLoop) -> None:
    good = contact_event("dup", customer="C-2002")
    loop.emit(good, good)
    loop.emit(
        b"\xff\xfe not utf-8",
        b"{not json",
        contact_event("late", occurred_at="2026-11-20T10:15:00"),
    )
    loop.emit(contact_event("after-bad", customer="C-3003"))
    wait_for(
        lambda: loop.rows("SELECT 1 FROM survey_decisions WHERE event_id = 'evt-after-bad'"),
        15,
        "the good event after the bad ones",
    )
    wait_for(lambda: loop.mails_to("c-3003@example.nl"), 15, "mail after the bad events")
    letters = wait_for(
        lambda: (
            (
                r := loop.rows(
                    'SELECT source_topic, reason, original FROM dead_letters ORDER BY "offset"'
                )
            )
            and len(r) == 3
            and r
        ),
        15,
        "three dead letters",
    )
    reasons = [row[1] for row in letters]  # type: ignore[union-attr]
    assert "not valid UTF-8" in reasons[0]
    assert reasons[1].startswith("not_json: ")
    assert "occurred_at" in reasons[2] and "timezone" in reasons[2]
    assert bytes(letters[0][2]) == b"\xff\xfe not utf-8"  # type: ignore[index]
    assert {row[0] for row in letters} == {"contact-events"}  # type: ignore[union-attr]
    on_topic = loop.topic_messages("dead-letters", expect=3)
    originals = {base64.b64decode(orjson.loads(m.value)["original_b64"]) for m in on_topic}
    assert b"{not json" in originals and b"\xff\xfe not utf-8" in originals

    assert loop.rows("SELECT count(*) FROM survey_decisions WHERE event_id = 'evt-dup'") == [(1,)]
    wait_for(lambda: loop.mails_to("c-2002@example.nl"), 15, "the duplicate's one mail")
    assert len(loop.mails_to("c-2002@example.nl")) == 1
    # A second mail could still be on its way when the first arrives; one invitation can
    # never be mailed twice, so this is what pins "one mail".
    assert loop.rows("SELECT count(*) FROM survey_invitations WHERE customer_id = 'C-2002'") == [
        (1,)
    ]


def test_no_survey_without_address_or_during_a_complaint(loop: RunningLoop) -> None:
    no_mail = contact_event("no-mail", customer="C-4004")
    no_mail["customer"].pop("email")
    complaint = contact_event("complaint", customer="C-5005", kind="complaint")
    loop.emit(no_mail, complaint, contact_event("after-complaint", customer="C-5005"))
    decisions = wait_for(
        lambda: (
            (r := loop.rows("SELECT event_id, reason FROM survey_decisions ORDER BY event_id"))
            and len(r) == 3
            and r
        ),
        15,
        "three decisions",
    )
    assert dict(decisions) == {  # type: ignore[arg-type]
        "evt-no-mail": "no_contact_address",
        "evt-complaint": "open_complaint",
        "evt-after-complaint": "open_complaint",
    }
    assert loop.rows("SELECT origin, priority, status FROM followup_tasks") == [
        ("complaint", 0, "open")
    ]
    # The mailer may not have run yet, so no mail so far proves little: no invitation does.
    assert loop.rows("SELECT count(*) FROM survey_invitations") == [(0,)]
    assert loop.mails() == []


def test_api_answers_and_token_errors(loop: RunningLoop) -> None:
    loop.emit(contact_event("api", customer="C-6006"))
    mail = wait_for(lambda: loop.mails_to("c-6006@example.nl"), 15, "the survey e-mail")[0]  # type: ignore[index]
    token = loop.survey_token(mail)
    api = f"{loop.web}/api/responses"
    assert httpx.get(f"{loop.web}/s/{'x' * 43}", timeout=10).status_code == 404
    bad = httpx.post(api, json={"token": token, "nps": "seven"}, timeout=10)
    assert bad.status_code == 422 and "nps" in bad.json()["fields"]
    assert httpx.post(api, json={"token": token, "nps": 7.5}, timeout=10).status_code == 422
    assert httpx.post(api, json={"nps": 7}, timeout=10).json()["fields"] == {
        "token": "required: the token from the survey link"
    }
    json_type = {"Content-Type": "application/json"}
    assert httpx.post(api, content=b"nope", headers=json_type, timeout=10).status_code == 400
    assert httpx.post(api, content=b"nope", timeout=10).status_code == 415
    ok = httpx.post(api, json={"token": token, "nps": 10, "comment": "Top"}, timeout=10)
    assert ok.status_code == 201
    assert httpx.post(api, json={"token": token, "nps": 10}, timeout=10).status_code == 409
    wait_for(
        lambda: loop.rows("SELECT nps_category FROM survey_responses") == [("promoter",)],
        15,
        "the promoter score",
    )
    assert loop.rows("SELECT count(*) FROM followup_tasks") == [(0,)]
    # Expired link: 410.
    engine = loop.engine()
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE survey_invitations SET answered_at = NULL, expires_at = :past"),
            {"past": "2000-01-01T00:00:00+00:00"},
        )
    engine.dispose()
    assert httpx.get(f"{loop.web}/s/{token}", timeout=10).status_code == 410

    with httpx.Client(base_url=loop.web, timeout=10) as anonymous:
        assert anonymous.get("/api/tasks?status=open").status_code == 401
        assert anonymous.post("/api/tasks/x/actions", json={"type": "called"}).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        assert anonymous.get("/api/tasks", headers=wrong).status_code == 401


def test_logs_carry_no_personal_data(loop: RunningLoop) -> None:
    event = contact_event("pii", customer="C-7007")
    loop.emit(event)
    mail = wait_for(lambda: loop.mails_to("c-7007@example.nl"), 15, "the survey e-mail")[0]  # type: ignore[index]
    token = loop.survey_token(mail)
    assert answer(loop, token, "1", "Mijn geheime klacht").status_code == 200
    wait_for(lambda: loop.rows("SELECT 1 FROM followup_tasks"), 15, "the task")
    expected = {"contacts_decided", "mail_batch_done", "response_recorded", "tasks_opened"}
    # Each agent logs its line after its transaction commits: wait for the lines, not the row.
    wait_for(
        lambda: expected <= {line.get("event") for line in loop.log_lines()},
        15,
        "the log lines of every step",
    )
    log_text = loop.log_path.read_text()
    for secret in ("c-7007@example.nl", "Anna de Vries", "Mijn geheime klacht", token):
        assert secret not in log_text


def test_shutdown_leaves_no_broker_behind(tmp_path: Path) -> None:
    running = RunningLoop(data_dir=tmp_path / "cx", database_url=f"sqlite:///{tmp_path}/cx.db")
    running.start()
    assert running.stop() == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", running.kafka_port), 1).close()


def test_up_creates_demo_inbox_accounts_that_get_the_work(tmp_path: Path) -> None:
    with running_loop(tmp_path, demo_staff=True) as loop:
        accounts = loop.data_dir / "staff-accounts"
        assert accounts.stat().st_mode & 0o777 == 0o600
        lines = [line.split("\t") for line in accounts.read_text().splitlines()[1:]]
        assert {(name, role, team) for name, role, team, _ in lines} == {
            ("admin", "admin", "-"),
            ("service-lead", "lead", "service"),
            ("service-staff", "staff", "service"),
            ("complaints-lead", "lead", "complaints"),
            ("complaints-staff", "staff", "complaints"),
        }
        engine = loop.engine()
        try:
            for name, _role, _team, password in lines:
                assert authenticate(engine, name, password) is not None, name
        finally:
            engine.dispose()
        assert "Staff inbox" in loop.log_path.read_text()
        loop.emit(contact_event("c", kind="complaint", comment="Al drie keer gebeld"))
        assigned = wait_for(
            lambda: loop.rows("SELECT team, assignee, status, comment FROM followup_tasks"),
            15,
            "the complaint task",
        )
        assert assigned == [("complaints", "complaints-staff", "assigned", "Al drie keer gebeld")]
