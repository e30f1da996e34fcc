"""An interviewer works the call list in a real headless browser (Debian's chromium via
Playwright, JavaScript off): sign in, open the call, enter the customer's answers, fix a
missing one, and the call leaves the list while the answer reaches the database.

Needs: the `chromium` apt package (/usr/bin/chromium) and the `playwright` Python package.
Never run `playwright install`: the system browser is used. Runs on SQLite only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop, running_loop
from tests.integration.test_interviews import RULES

PHONE = "+31 6 2222 3333"
NPS_QUESTION = (
    "Hoe waarschijnlijk is het dat u CBG Connect zou aanbevelen aan een collega of vriend?"
)
REASON_QUESTION = "Wat is de belangrijkste reden voor uw score? (optioneel)"


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLoop]:
    with running_loop(tmp_path_factory.mktemp("interviews-browser"), rules=RULES) as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB", java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def phone_survey(loop: RunningLoop, customer: str) -> str:
    """A first invoice for *customer*, who gave a phone number; the phone invitation's id."""
    invoiced = contact_event(f"browser-{customer}", customer=customer, kind="first_invoice")
    invoiced["customer"]["phone"] = PHONE
    # loop.emit uses asyncio.run, which Playwright's sync API blocks on this thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(loop.emit, invoiced).result(timeout=60)
    rows = wait_for(
        lambda: loop.rows(
            "SELECT invitation_id FROM survey_invitations WHERE customer_id = :c",
            c=customer,
        ),
        30,
        "the phone invitation",
    )
    return str(rows[0][0])  # type: ignore[index]


def test_interviewer_enters_the_answers_and_the_call_leaves_the_list(
    loop: RunningLoop, page: Page
) -> None:
    customer = "C-8800"
    reason = "Goede service, maar de prijs is hoog."
    invitation_id = phone_survey(loop, customer)

    # No session: the call list sends the browser to sign in.
    page.goto(f"{loop.web}/interviews")
    expect(page).to_have_url(f"{loop.web}/interviews/login")
    expect(page.locator("script")).to_have_count(0)
    page.get_by_label("Your name").fill("Jan Belteam")
    page.get_by_label("Staff token").fill("not the token")
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        page.get_by_role("button", name="Sign in").click()
    assert refused.value.status == 401
    expect(page.get_by_role("alert")).to_contain_text("staff token is not right")
    page.get_by_label("Staff token").fill(loop.staff_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{loop.web}/interviews")
    cookie = next(c for c in page.context.cookies() if c["name"] == "cxloop_interviewer")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/interviews"

    # The call list: name, number, programme and language.
    expect(page.get_by_role("heading", level=1)).to_have_text("Calls to make")
    row = page.get_by_role("row").filter(has_text="Anna de Vries")
    expect(row).to_have_count(1)
    for text in (PHONE, "relationship", "Dutch"):
        expect(row).to_contain_text(text)
    row.get_by_role("link", name="Anna de Vries").click()
    expect(page).to_have_url(f"{loop.web}/interviews/{invitation_id}")

    # The call: script and questions in Dutch, outcome buttons, no JavaScript.
    expect(page.get_by_role("heading", level=1)).to_have_text("Call Anna de Vries")
    expect(page.locator("blockquote")).to_contain_text("u spreekt met Jan Belteam namens CBG")
    expect(page.get_by_role("group", name=NPS_QUESTION)).to_be_visible()
    for outcome in ("No answer", "Refused", "Wrong number"):
        expect(page.get_by_role("button", name=outcome)).to_be_visible()
    expect(page.locator("script")).to_have_count(0)

    # The required score is missing: 422, the reason and an aspect rating are kept.
    page.get_by_label(REASON_QUESTION).fill(reason)
    page.locator("label[for=aspects-speed-4]").click()
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Save the answers").click()
    page.wait_for_load_state()
    assert posted.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("Kies een score van 0 tot en met 10.")
    expect(page.locator("#nps-error")).to_have_text("Kies een score van 0 tot en met 10.")
    expect(page.get_by_label(REASON_QUESTION)).to_have_value(reason)
    expect(page.locator("#aspects-speed-4")).to_be_checked()
    assert loop.rows("SELECT 1 FROM survey_responses WHERE customer_id = :c", c=customer) == []

    # Fixed and saved: back on the list, without this call.
    page.locator("label[for=nps-2]").click()
    with page.expect_response(lambda r: r.request.method == "POST") as saved:
        page.get_by_role("button", name="Save the answers").click()
    page.wait_for_load_state()
    assert saved.value.status == 303
    expect(page).to_have_url(f"{loop.web}/interviews?saved=answers")
    expect(page.get_by_role("status")).to_have_text("The answers were saved.")
    expect(page.get_by_role("link", name="Anna de Vries")).to_have_count(0)

    stored = loop.rows(
        "SELECT nps, comment, interviewer, answers FROM survey_responses WHERE customer_id = :c",
        c=customer,
    )
    assert [r[:3] for r in stored] == [(2, reason, "Jan Belteam")]
    assert json.loads(stored[0][3]) == {"nps": 2, "reason": reason, "aspects": {"speed": 4}}
    tasks = wait_for(
        lambda: loop.rows("SELECT origin FROM followup_tasks WHERE customer_id = :c", c=customer),
        30,
        "the follow-up task for the detractor",
    )
    assert tasks == [("detractor",)]
