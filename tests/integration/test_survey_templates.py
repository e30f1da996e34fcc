"""Survey templates end to end: the answers a template asks for reach SQL and the topics.

The store tests run on SQLite and PostgreSQL; the web tests run one `cxloop up` on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models.store.surveys import record_response, unpublished_responses
from models.store.tables import SurveyInvitation, SurveyResponse
from models.tokens import hash_token
from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop, running_loop

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ANSWERS = {
    "nps": 4,
    "reason": "Levering duurde drie weken — te lang.",
    "aspects": {"speed": 1, "delivery": 2, "price_quality": 4},
}


# ---------------------------------------------------------------------------- the store


def invitation(engine: Engine, n: int, template: str = "relationship") -> str:
    token_hash = hash_token(f"token-{n}")
    with Session(engine) as session:
        session.add(
            SurveyInvitation(
                invitation_id=f"i-{n}",
                event_id=f"e-{n}",
                customer_id=f"C-{n}",
                locale="nl",
                kind="purchase",
                channel="web",
                template=template,
                created_at=NOW,
                token_hash=token_hash,
                expires_at=NOW + timedelta(days=30),
            )
        )
        session.commit()
    return token_hash


def test_answers_and_ces_are_stored_with_the_response(engine: Engine) -> None:
    row = record_response(
        engine, invitation(engine, 1), 4, None, ANSWERS["reason"], NOW, ces=None, answers=ANSWERS
    )
    assert row.answers == ANSWERS
    with Session(engine) as session:
        stored = session.get(SurveyResponse, row.response_id)
        assert stored is not None
        assert (stored.nps, stored.ces, stored.comment) == (4, None, ANSWERS["reason"])
        assert stored.answers == ANSWERS
    [published] = unpublished_responses(engine, NOW + timedelta(seconds=1))
    assert published.answers == ANSWERS
    with engine.connect() as connection:
        raw = connection.execute(text("SELECT answers FROM survey_responses")).scalar_one()
    assert (json.loads(raw) if isinstance(raw, str) else raw) == ANSWERS  # JSON for BI


def test_ces_is_checked_by_the_database(engine: Engine) -> None:
    support = {"csat": 5, "ces": 7, "solved_first_contact": True}
    token_hash = invitation(engine, 2, "support")
    row = record_response(engine, token_hash, None, 5, None, NOW, ces=7, answers=support)
    assert (row.ces, row.answers) == (7, support)
    with pytest.raises(IntegrityError, match="ck_response_ces"):
        record_response(engine, invitation(engine, 3, "support"), None, 5, None, NOW, ces=8)


def test_a_response_without_answers_stores_an_empty_object(engine: Engine) -> None:
    row = record_response(engine, invitation(engine, 4, "transactional"), 9, None, None, NOW)
    assert row.answers == {}
    with engine.connect() as connection:
        raw = connection.execute(text("SELECT answers FROM survey_responses")).scalar_one()
    assert (json.loads(raw) if isinstance(raw, str) else raw) == {}


# ---------------------------------------------------------------------------- the web


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLoop]:
    with running_loop(tmp_path_factory.mktemp("templates-loop")) as running:
        yield running


def surveyed(loop: RunningLoop, customer: str, template: str) -> tuple[EmailMessage, str]:
    """A survey mailed to *customer*, switched to *template*; the mail and its token."""
    loop.emit(contact_event(f"tpl-{customer}", customer=customer))
    address = f"{customer.lower()}@example.nl"
    mail: EmailMessage = wait_for(lambda: loop.mails_to(address), 15, "the survey e-mail")[0]  # type: ignore[index]
    engine = loop.engine()
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE survey_invitations SET template = :t WHERE invitation_id = :i"),
                {"t": template, "i": mail["X-Cxloop-Invitation"]},
            )
    finally:
        engine.dispose()
    return mail, loop.survey_token(mail)


def stored(loop: RunningLoop, customer: str) -> list[Any]:
    return loop.rows(
        "SELECT nps, csat, ces, comment, answers FROM survey_responses WHERE customer_id = :c",
        c=customer,
    )


def test_api_takes_the_answers_of_the_invitations_template(loop: RunningLoop) -> None:
    customer = "C-7101"
    _, token = surveyed(loop, customer, "relationship")
    api = f"{loop.web}/api/responses"

    bad = httpx.post(
        api,
        json={"token": token, "answers": {"aspects": {"speed": 9, "taste": 3}, "colour": "red"}},
        timeout=10,
    )
    assert bad.status_code == 422
    assert bad.json()["codes"] == {
        "nps": "required",
        "aspects": "invalid",
        "colour": "unknown_question",
    }
    assert bad.json()["fields"]["nps"] == "Please choose a score from 0 to 10."
    not_object = httpx.post(api, json={"token": token, "answers": [4]}, timeout=10)
    assert not_object.status_code == 422 and "answers" in not_object.json()["fields"]
    assert stored(loop, customer) == []

    ok = httpx.post(api, json={"token": token, "answers": ANSWERS}, timeout=10)
    assert ok.status_code == 201, ok.text
    [row] = stored(loop, customer)
    assert row[:4] == (4, None, None, ANSWERS["reason"])
    assert json.loads(row[4]) == ANSWERS
    again = httpx.post(api, json={"token": token, "answers": ANSWERS}, timeout=10)
    assert again.status_code == 409

    # The answers travel on the topics, through scoring, to the follow-up task.
    wait_for(
        lambda: loop.rows("SELECT 1 FROM followup_tasks WHERE customer_id = :c", c=customer),
        15,
        "the detractor's task",
    )
    published = loop.topic_messages("scored-responses", expect=1, timeout=15)
    mine = [json.loads(m.value) for m in published if m.key == customer.encode()]
    assert mine and mine[0]["answers"] == ANSWERS and mine[0]["nps_category"] == "detractor"
    assert (mine[0]["ces"], mine[0]["schema_version"]) == (None, 2)


def test_the_first_api_body_shape_still_works(loop: RunningLoop) -> None:
    customer = "C-7102"
    _, token = surveyed(loop, customer, "transactional")
    ok = httpx.post(
        f"{loop.web}/api/responses",
        json={"token": token, "nps": 8, "comment": " Prima "},
        timeout=10,
    )
    assert ok.status_code == 201
    [row] = stored(loop, customer)
    assert row[:4] == (8, None, None, "Prima")
    assert json.loads(row[4]) == {"nps": 8, "comment": "Prima"}


def test_the_form_keeps_what_was_entered_and_marks_what_is_missing(loop: RunningLoop) -> None:
    customer = "C-7103"
    _, token = surveyed(loop, customer, "complaint_handling")
    page = f"{loop.web}/s/{token}"
    shown = httpx.get(page, timeout=10)
    assert shown.status_code == 200
    assert "Is uw klacht opgelost?" in shown.text
    assert 'name="nps"' not in shown.text

    comment = 'Pas na drie brieven <b>"opgelost"</b>.'
    invalid = httpx.post(page, data={"complaint_solved": "yes", "comment": comment}, timeout=10)
    assert invalid.status_code == 422
    html = invalid.text
    assert 'href="#csat-1"' in html
    assert 'id="csat-error"' in html
    assert (
        'id="csat-1" name="csat" value="1" aria-describedby="csat-error" aria-invalid="true"'
        in html
    )
    assert 'value="yes" checked' in html
    assert "Pas na drie brieven &lt;b&gt;&#34;opgelost&#34;&lt;/b&gt;." in html
    assert stored(loop, customer) == []

    done = httpx.post(
        page, data={"csat": "1", "complaint_solved": "no", "comment": comment}, timeout=10
    )
    assert done.status_code == 200
    [row] = stored(loop, customer)
    assert row[:4] == (None, 1, None, comment)
    assert json.loads(row[4]) == {"csat": 1, "complaint_solved": False, "comment": comment}


def test_an_unknown_template_falls_back_to_the_transactional_survey(loop: RunningLoop) -> None:
    customer = "C-7104"
    mail, token = surveyed(loop, customer, "retired_template")
    shown = httpx.get(f"{loop.web}/s/{token}", timeout=10)
    assert shown.status_code == 200
    assert 'name="nps"' in shown.text and 'name="question_answered"' in shown.text
    warnings = wait_for(
        lambda: [
            line for line in loop.log_lines() if line.get("event") == "survey_template_unknown"
        ],
        5,
        "the warning about the unknown template",
    )
    line = warnings[0]  # type: ignore[index]
    assert line["template"] == "retired_template"
    assert line["invitation_id"] == mail["X-Cxloop-Invitation"]
    text_of_line = json.dumps(line)
    assert token not in text_of_line
    assert "@" not in text_of_line


def test_no_answer_text_reaches_the_log(loop: RunningLoop, tmp_path: Path) -> None:
    customer = "C-7105"
    _, token = surveyed(loop, customer, "support")
    complaint = "Mijn geheime klacht over monteur Jansen"
    answers = {"csat": 2, "ces": 3, "solved_first_contact": False, "comment": complaint}
    invalid = httpx.post(f"{loop.web}/s/{token}", data={"comment": complaint}, timeout=10)
    assert invalid.status_code == 422
    ok = httpx.post(f"{loop.web}/api/responses", json={"token": token, "answers": answers})
    assert ok.status_code == 201
    [row] = stored(loop, customer)
    assert row[:3] == (None, 2, 3)
    wait_for(
        lambda: loop.rows(
            "SELECT 1 FROM survey_responses WHERE customer_id = :c AND scored_at IS NOT NULL",
            c=customer,
        ),
        15,
        "the scored answer",
    )
    log = "\n".join(json.dumps(line) for line in loop.log_lines())
    assert complaint not in log
    assert token not in log
