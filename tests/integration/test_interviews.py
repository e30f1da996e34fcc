"""Phone surveys end to end through `cxloop up`: a phone programme puts the customer on the
call list, an interviewer enters the answers through the JSON API, and the answer takes the
e-mail answer's road: survey-responses → scoring → a follow-up task for a detractor."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from models.interview_sessions import COOKIE_NAME
from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop, running_loop

RULES = """
version = "phone-e2e-1"

[defaults]
timezone = "Europe/Amsterdam"
cap = "180d"
expiry = "7d"
window = "always"

[[programme]]
name = "relationship"
template = "relationship"
channel = "phone"
reminders = 0

  [[programme.rule]]
  name = "after-first-invoice"
  on = ["first_invoice"]
  per = "customer"
  delay = "0"
"""
PHONE = "+31 6 1234 5678"


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLoop]:
    with running_loop(tmp_path_factory.mktemp("interviews"), rules=RULES) as running:
        yield running


def on_call_list(loop: RunningLoop, customer: str) -> dict[str, object]:
    """Send a first invoice for *customer* (with a phone number); its call-list entry."""
    invoiced = contact_event(f"phone-{customer}", customer=customer, kind="first_invoice")
    invoiced["customer"]["phone"] = PHONE
    loop.emit(invoiced)

    def entry() -> dict[str, object] | None:
        for message in loop.topic_messages("call-list", expect=100, timeout=1):
            if message.key == customer.encode():
                return dict(orjson.loads(message.value))
        return None

    return wait_for(entry, 30, "the call-list entry")  # type: ignore[return-value]


def test_an_interviewers_answer_is_scored_and_followed_up_like_an_email_answer(
    loop: RunningLoop, tmp_path: Path
) -> None:
    customer = "C-7001"
    entry = on_call_list(loop, customer)
    assert (entry["phone"], entry["programme"], entry["template"]) == (
        PHONE,
        "relationship",
        "relationship",
    )
    invitation_id = entry["invitation_id"]

    assert httpx.get(f"{loop.web}/api/interviews", timeout=10).status_code == 401
    wrong = httpx.get(
        f"{loop.web}/api/interviews", headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert wrong.status_code == 401
    with loop.staff() as staff:
        calls = staff.get("/api/interviews").json()["calls"]
        [call] = [c for c in calls if c["customer_id"] == customer]
        assert (call["invitation_id"], call["phone"], call["name"], call["locale"]) == (
            invitation_id,
            PHONE,
            "Anna de Vries",
            "nl",
        )

        url = f"/api/interviews/{invitation_id}"
        body = {"interviewer": "Jan", "answers": {"nps": 2, "reason": "Te duur."}}
        assert httpx.post(f"{loop.web}{url}", json=body, timeout=10).status_code == 401
        invalid = staff.post(url, json={"interviewer": "Jan", "answers": {"nps": 11}})
        assert invalid.status_code == 422
        assert invalid.json()["codes"] == {"nps": "invalid"}
        assert staff.post("/api/interviews/no-such-call", json=body).status_code == 404

        stored = staff.post(url, json=body)
        assert stored.status_code == 201, stored.text
        response_id = stored.json()["response_id"]
        again = staff.post(url, json=body)
        assert again.status_code == 409
        assert again.json() == {"error": "answered"}
        assert customer not in {
            c["customer_id"] for c in staff.get("/api/interviews").json()["calls"]
        }

    assert loop.rows(
        "SELECT response_id, nps, comment, interviewer FROM survey_responses "
        "WHERE customer_id = :c",
        c=customer,
    ) == [(response_id, 2, "Te duur.", "Jan")]
    tasks = wait_for(
        lambda: loop.rows(
            "SELECT task_id, origin, status FROM followup_tasks WHERE customer_id = :c",
            c=customer,
        ),
        30,
        "the follow-up task for the detractor",
    )
    [(task_id, origin, status)] = tasks  # type: ignore[misc]
    assert (origin, status) == ("detractor", "open")
    assert loop.rows(
        "SELECT nps_category FROM survey_responses WHERE response_id = :r", r=response_id
    ) == [("detractor",)]

    def task_message() -> list[object]:
        found = loop.topic_messages("followup-tasks", expect=100, timeout=1)
        return [m for m in found if m.key == customer.encode()]

    [message] = wait_for(task_message, 30, "the task on followup-tasks")  # type: ignore[misc]
    assert orjson.loads(message.value)["task_id"] == task_id
    published = loop.topic_messages("survey-responses", expect=100, timeout=2)
    assert response_id in {orjson.loads(m.value)["response_id"] for m in published}
    # No phone number, customer name or answer in the worker's log.
    log = loop.log_path.read_text(errors="replace")
    for secret in (PHONE, "Anna de Vries", "Te duur."):
        assert secret not in log


def test_three_unanswered_calls_take_a_customer_off_the_list(loop: RunningLoop) -> None:
    customer = "C-7002"
    invitation_id = on_call_list(loop, customer)["invitation_id"]
    url = f"/api/interviews/{invitation_id}"
    with loop.staff() as staff:
        for n in (1, 2, 3):
            tried = staff.post(url, json={"interviewer": "Jan", "outcome": "no_answer"})
            assert tried.status_code == 200, tried.text
            assert tried.json()["attempts"] == n
            assert tried.json()["closed"] is (n == 3)
        open_ids = {c["invitation_id"] for c in staff.get("/api/interviews").json()["calls"]}
        assert invitation_id not in open_ids
        late = staff.post(url, json={"interviewer": "Jan", "answers": {"nps": 9}})
        assert late.status_code == 409
        assert late.json() == {"error": "closed"}
    assert loop.rows(
        "SELECT delivery_status, delivery_attempts FROM survey_invitations "
        "WHERE invitation_id = :i",
        i=invitation_id,
    ) == [("failed", 3)]


def test_the_pages_need_a_session_and_every_form_a_csrf_token(loop: RunningLoop) -> None:
    customer = "C-7003"
    invitation_id = on_call_list(loop, customer)["invitation_id"]
    with httpx.Client(base_url=loop.web, timeout=10) as browser:
        for path in ("/interviews", f"/interviews/{invitation_id}"):
            page = browser.get(path)
            assert (page.status_code, page.headers["Location"]) == (303, "/interviews/login")
        wrong = browser.post("/interviews/login", data={"interviewer": "Jan", "token": "nope"})
        assert wrong.status_code == 401
        assert COOKIE_NAME not in browser.cookies
        signed_in = browser.post(
            "/interviews/login", data={"interviewer": "Jan", "token": loop.staff_token}
        )
        assert signed_in.status_code == 303
        cookie = signed_in.headers["Set-Cookie"]
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/interviews"):
            assert attribute in cookie
        listed = browser.get("/interviews")
        assert listed.status_code == 200
        assert PHONE in listed.text
        call = browser.get(f"/interviews/{invitation_id}")
        assert call.status_code == 200
        match = re.search(r'name="_csrf" value="([^"]+)"', call.text)
        assert match
        form = {"nps": "3"}
        assert browser.post(f"/interviews/{invitation_id}", data=form).status_code == 403
        forged = {**form, "_csrf": "x" * 43}
        assert browser.post(f"/interviews/{invitation_id}", data=forged).status_code == 403
        assert loop.rows(
            "SELECT count(*) FROM survey_responses WHERE customer_id = :c", c=customer
        ) == [(0,)]
        done = browser.post(f"/interviews/{invitation_id}", data={**form, "_csrf": match[1]})
        assert (done.status_code, done.headers["Location"]) == (303, "/interviews?saved=answers")
    assert loop.rows(
        "SELECT nps, interviewer FROM survey_responses WHERE customer_id = :c", c=customer
    ) == [(3, "Jan")]
