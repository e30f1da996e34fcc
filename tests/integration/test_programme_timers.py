"""Survey timers and reminders end to end through `cxloop up`: real tansu, real SMTP server.

The rules here use delays of seconds, so the timers fire during the test on the real clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop, running_loop

RULES = """
version = "timers-e2e-1"

[defaults]
timezone = "Europe/Amsterdam"
cap = "180d"
expiry = "1d"
window = "always"

[[programme]]
name = "support"
template = "support"
channel = "email"
reminders = 1
reminder_after = "3s"
cancel_on = ["complaint"]

  [[programme.rule]]
  name = "after-support-episode"
  on = ["support_contact"]
  per = "case"
  delay = "4s"

[[programme]]
name = "relationship"
template = "relationship"
channel = "phone"
reminders = 0
cancel_on = ["cancellation"]

  [[programme.rule]]
  name = "after-first-invoice"
  on = ["first_invoice"]
  per = "customer"
  delay = "2s"
"""


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[RunningLoop]:
    with running_loop(tmp_path, rules=RULES) as running:
        yield running


def reasons(loop: RunningLoop, customer: str) -> list[tuple[str, str, str]]:
    return loop.rows(
        "SELECT event_id, programme, reason FROM survey_decisions WHERE customer_id = :c "
        "ORDER BY event_id",
        c=customer,
    )


def test_one_survey_per_case_after_the_last_contact_then_one_reminder(loop: RunningLoop) -> None:
    loop.emit(contact_event(1, customer="C-1", case_id="K-1"))
    wait_for(lambda: reasons(loop, "C-1"), 15, "the first decision")
    loop.emit(contact_event(2, customer="C-1", case_id="K-1"))  # restarts the quiet period
    wait_for(
        lambda: (
            reasons(loop, "C-1")
            == [("evt-1", "support", "superseded"), ("evt-2", "support", "scheduled")]
        ),
        15,
        "the second contact to supersede the first",
    )
    assert loop.mails_to("c-1@example.nl") == []  # the delay has not passed yet

    first = wait_for(lambda: loop.mails_to("c-1@example.nl"), 30, "the survey mail")[0]  # type: ignore[index]
    assert reasons(loop, "C-1")[1] == ("evt-2", "support", "surveyed")
    assert loop.rows("SELECT programme, rule, template FROM survey_invitations") == [
        ("support", "after-support-episode", "support")
    ]
    assert loop.rows("SELECT rules_version FROM survey_decisions GROUP BY rules_version")[0][
        0
    ].startswith("timers-e2e-1@")

    mails = wait_for(
        lambda: len(m := loop.mails_to("c-1@example.nl")) >= 2 and m, 30, "the reminder mail"
    )
    reminder = mails[1]  # type: ignore[index]
    assert reminder["Subject"] != first["Subject"]
    assert loop.rows("SELECT number, delivery_status FROM survey_reminders") == [(1, "sent")]

    # The reminder's link opens the same survey, and answering it stops further reminders.
    token = loop.survey_token(reminder)
    page = httpx.get(f"{loop.web}/s/{token}", timeout=10)
    assert page.status_code == 200
    sent = httpx.post(
        f"{loop.web}/api/responses",
        json={"token": token, "answers": {"csat": 2, "ces": 3, "solved_first_contact": False}},
        timeout=10,
    )
    assert sent.status_code in (200, 201), sent.text
    assert loop.rows("SELECT count(*) FROM survey_responses") == [(1,)]
    assert loop.rows("SELECT reminders_sent, next_reminder_at FROM survey_invitations") == [
        (1, None)
    ]


def test_phone_surveys_go_to_the_call_list_and_a_cancellation_stops_one(
    loop: RunningLoop,
) -> None:
    invoiced = contact_event(10, customer="C-2", kind="first_invoice")
    invoiced["customer"]["phone"] = "+31 6 1234 5678"
    loop.emit(
        invoiced,
        contact_event(11, customer="C-3", kind="first_invoice"),
        contact_event(12, customer="C-3", kind="cancellation"),
    )
    [entry] = loop.topic_messages("call-list", expect=1, timeout=30)
    body = orjson.loads(entry.value)
    assert entry.key == b"C-2"
    assert (body["programme"], body["template"], body["phone"]) == (
        "relationship",
        "relationship",
        "+31 6 1234 5678",
    )
    assert reasons(loop, "C-2") == [("evt-10", "relationship", "surveyed")]
    assert ("evt-11", "relationship", "cancelled") in reasons(loop, "C-3")
    assert loop.rows("SELECT count(*) FROM survey_timers") == [(0,)]
    assert loop.mails() == []
