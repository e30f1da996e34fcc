"""Complaint intake on a running `cxloop up`: a mail to the intake SMTP server and the web
form in a real headless Chromium both become a complaint contact event and a complaint task.

Needs: the `chromium` apt package (/usr/bin/chromium) and the `playwright` Python package.
Runs on SQLite only.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Any, TypeVar

import aiosmtplib
import httpx
import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from models.complaints import email_customer_id
from tests.conftest import wait_for
from tests.harness.loop import RunningLoop, running_loop
from tests.harness.ports import free_port

T = TypeVar("T")


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLoop]:
    env = {"CXLOOP_COMPLAINT_SMTP_PORT": str(free_port())}
    with running_loop(tmp_path_factory.mktemp("intake-loop"), env=env) as running:
        wait_for(lambda: smtp_listening(running), 20, "the complaint intake SMTP server")
        yield running


def smtp_port(loop: RunningLoop) -> int:
    return int(loop.extra_env["CXLOOP_COMPLAINT_SMTP_PORT"])


def smtp_listening(loop: RunningLoop) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", smtp_port(loop)), timeout=1):
            return True
    except OSError:
        return False


def off_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run *fn* on a thread of its own: Playwright's sync API leaves this thread's event loop
    marked as running, so asyncio.run (aiosmtplib, the topic reader) must go elsewhere."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result(timeout=60)


def send_mail(loop: RunningLoop, message: EmailMessage) -> Any:
    async def send() -> Any:
        return await aiosmtplib.send(
            message,
            sender="anna@example.nl",
            recipients=["klachten@cxloop.example"],
            hostname="127.0.0.1",
            port=smtp_port(loop),
            timeout=10,
        )

    return off_thread(asyncio.run, send())


def complaint_mail() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Anna de Vries <anna@example.nl>"
    message["To"] = "klachten@cxloop.example"
    message["Subject"] = "Klacht, klantnummer C-5150"
    message["Message-ID"] = "<intake-test-1@mail.example.nl>"
    message["Content-Language"] = "nl"
    message.set_content("De monteur is twee keer niet gekomen.")
    return message


def tasks(loop: RunningLoop, customer_id: str) -> list[Any]:
    return loop.rows(
        "SELECT task_id, origin, channel, comment, team FROM followup_tasks "
        "WHERE customer_id = :customer",
        customer=customer_id,
    )


def replays(loop: RunningLoop) -> int:
    return sum(
        line.get("replays", 0)
        for line in loop.log_lines()
        if line.get("event") == "contacts_decided"
    )


def test_a_mailed_complaint_opens_one_task_even_when_sent_twice(loop: RunningLoop) -> None:
    errors, reply = send_mail(loop, complaint_mail())
    assert errors == {}
    assert reply.startswith("2.0.0 Complaint received")

    [(task_id, origin, channel, comment, team)] = wait_for(  # type: ignore[misc]
        lambda: tasks(loop, "C-5150"), 20, "the complaint task of the mail"
    )
    assert (origin, channel, team) == ("complaint", "email", "complaints")
    assert comment == "Klacht, klantnummer C-5150\n\nDe monteur is twee keer niet gekomen."

    send_mail(loop, complaint_mail())
    records = off_thread(loop.topic_messages, "contact-events", 2)
    events = [orjson.loads(r.value) for r in records if r.key == b"C-5150"]
    assert len(events) == 2
    assert events[0]["event_id"] == events[1]["event_id"]
    assert events[0]["kind"] == "complaint"
    assert events[0]["customer"]["email"] == "anna@example.nl"
    wait_for(lambda: replays(loop) >= 1, 20, "the trigger to see the second mail as a replay")
    assert [row[0] for row in tasks(loop, "C-5150")] == [task_id]


def test_mail_without_a_sender_or_too_large_is_refused_and_auto_replies_dropped(
    loop: RunningLoop,
) -> None:
    no_from = complaint_mail()
    del no_from["From"]
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        send_mail(loop, no_from)
    assert refused.value.code == 550

    big = complaint_mail()
    big.set_content("x" * 1_100_000)
    with pytest.raises(aiosmtplib.SMTPResponseException) as too_large:
        send_mail(loop, big)
    assert too_large.value.code == 552

    auto = complaint_mail()
    auto.replace_header("Message-ID", "<auto-reply-1@mail.example.nl>")
    auto["Auto-Submitted"] = "auto-replied"
    _, reply = send_mail(loop, auto)
    assert reply.startswith("2.0.0 Automatic message ignored")


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A Dutch phone-sized browser without JavaScript."""
    opened = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="nl-NL", java_script_enabled=False
    )
    opened.set_default_timeout(10_000)
    yield opened
    opened.close()


def test_the_web_form_in_the_browser_opens_a_complaint_task(
    loop: RunningLoop, context: BrowserContext
) -> None:
    page = context.new_page()
    page.goto(f"{loop.web}/complaint")
    expect(page.locator("h1")).to_have_text("Klacht indienen")
    page.get_by_label("Uw naam").fill("Jan Jansen")
    page.get_by_label("E-mailadres").fill("Jan.Jansen@example.nl")
    page.get_by_label("Wat ging er mis?").fill("Mijn modem doet het al een week niet.")
    page.get_by_role("button", name="Klacht versturen").click()

    expect(page.locator("h1")).to_have_text("Klacht ontvangen")
    reference = page.locator("#reference").inner_text()
    customer = email_customer_id("jan.jansen@example.nl")
    [(task_id, origin, channel, comment, _)] = wait_for(  # type: ignore[misc]
        lambda: tasks(loop, customer), 20, "the complaint task of the form"
    )
    assert (origin, channel) == ("complaint", "web")
    assert comment == "Mijn modem doet het al een week niet."
    assert reference == task_id[:8].upper()


def test_a_form_without_a_message_shows_the_error_and_keeps_the_entries(
    loop: RunningLoop, context: BrowserContext
) -> None:
    page = context.new_page()
    page.goto(f"{loop.web}/complaint")
    page.get_by_label("Uw naam").fill("Piet Pieters")
    page.get_by_label("E-mailadres").fill("piet@example.nl")
    page.get_by_label("Klantnummer (optioneel)").fill("K-9090")
    with page.expect_response(f"{loop.web}/complaint") as answer:
        page.get_by_role("button", name="Klacht versturen").click()
    assert answer.value.status == 422

    expect(page.get_by_role("alert")).to_contain_text("Beschrijf uw klacht.")
    expect(page.get_by_label("Uw naam")).to_have_value("Piet Pieters")
    expect(page.get_by_label("E-mailadres")).to_have_value("piet@example.nl")
    expect(page.get_by_label("Klantnummer (optioneel)")).to_have_value("K-9090")
    expect(page.get_by_label("Wat ging er mis?")).to_have_attribute("aria-invalid", "true")


def test_a_bot_filling_the_honeypot_and_an_oversized_post_open_nothing(
    loop: RunningLoop,
) -> None:
    form = {
        "name": "Bot",
        "email": "bot@example.com",
        "customer_number": "HP-1",
        "message": "Buy now",
        "language": "en",
        "form_token": "honeypot-token-0123456789",
    }
    with httpx.Client(base_url=loop.web, timeout=10) as client:
        trap = client.post("/complaint", data={**form, "website": "http://spam.example"})
        assert trap.status_code == 200
        huge = client.post("/complaint", data={**form, "message": "x" * 25_000})
        assert huge.status_code == 413
        # The same customer (so the same partition, in order) without the honeypot: once
        # its task exists, the two posts before it would have opened one too.
        real = client.post("/complaint", data={**form, "form_token": "real-token-0123456789"})
        assert real.status_code == 200
    wait_for(lambda: tasks(loop, "HP-1"), 20, "the complaint task of the real post")
    assert len(tasks(loop, "HP-1")) == 1
