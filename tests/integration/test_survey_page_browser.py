"""The customer's survey page in a real headless browser (Debian's chromium via Playwright).

A Dutch customer opens the link from the survey e-mail on a phone with JavaScript switched
off, answers with the keyboard, and the answer reaches the database and opens a follow-up
task. A support survey (a template other than the default) keeps every answer given when a
required one is missing, points to it, and stores all answers once it is fixed. The page must
need no JavaScript, be operable by keyboard and fit a phone screen.

Needs: the `chromium` apt package (/usr/bin/chromium) and the `playwright` Python package.
Never run `playwright install`: the system browser is used. Runs on SQLite only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Response,
    expect,
)
from sqlalchemy import text

from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop, running_loop

PHONE = {"width": 390, "height": 844}
DUTCH_QUESTION = (
    "Hoe waarschijnlijk is het dat u CBG Connect zou aanbevelen aan een collega of vriend?"
)
CHECKED_BACKGROUND = "rgb(11, 83, 148)"  # #0b5394, page.html.j2
MIN_TARGET_PX = 44  # 2.75rem: the page's own minimum height for a touch target
MIN_TARGET_WIDTH_PX = 24  # WCAG 2.2 target size (minimum), so 0..10 fit on one row at 320 px


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLoop]:
    with running_loop(tmp_path_factory.mktemp("browser-loop")) as running:
        yield running


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Browser contexts for a Dutch phone; JavaScript is off unless asked for."""
    opened: list[BrowserContext] = []

    def make(*, width: int = PHONE["width"], javascript: bool = False) -> BrowserContext:
        context = browser.new_context(
            viewport={"width": width, "height": PHONE["height"]},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="nl-NL",
            java_script_enabled=javascript,
        )
        context.set_default_timeout(10_000)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


def emit(loop: RunningLoop, *events: dict[str, Any]) -> None:
    """`loop.emit` uses asyncio.run, which refuses to run on a thread where Playwright's sync
    API is active (it leaves its own event loop marked as running): produce from a thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(loop.emit, *events).result(timeout=60)


def survey_mail(loop: RunningLoop, customer: str) -> tuple[EmailMessage, str]:
    """Send a contact event for *customer* and return the survey mail and its link."""
    emit(loop, contact_event(f"browser-{customer}", customer=customer))
    address = f"{customer.lower()}@example.nl"
    mail = wait_for(lambda: loop.mails_to(address), 15, "the survey e-mail")[0]  # type: ignore[index]
    return mail, f"{loop.web}/s/{loop.survey_token(mail)}"


def submit_with_enter(page: Page) -> Response:
    """Tab from the comment to the submit button and press Enter; the POST's response."""
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Versturen")).to_be_focused()
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.keyboard.press("Enter")
    page.wait_for_load_state()
    return posted.value


def radios(page: Page) -> list[Locator]:
    return [page.get_by_role("radio", name=str(score), exact=True) for score in range(11)]


def assert_only_checked(page: Page, score: int | None) -> None:
    for n, radio in enumerate(radios(page)):
        if n == score:
            expect(radio).to_be_checked()
        else:
            expect(radio).not_to_be_checked()


def assert_fits_width(page: Page, width: int) -> None:
    """Every rendered element inside the viewport horizontally (no page JavaScript needed)."""
    elements = page.locator("main, main *").all()
    assert len(elements) > 30
    for element in elements:
        box = element.bounding_box()
        if box is None:  # not rendered
            continue
        assert box["x"] >= 0, f"{element} starts left of the screen: {box}"
        assert box["x"] + box["width"] <= width + 0.5, f"{element} sticks out at {width}px: {box}"


def test_dutch_customer_answers_by_keyboard_on_a_phone_without_javascript(
    loop: RunningLoop, new_context: Callable[..., BrowserContext], tmp_path: Path
) -> None:
    customer = "C-8008"
    comment = "De monteur kwam te laat, én niemand belde terug."
    mail, link = survey_mail(loop, customer)
    html = mail.get_body(preferencelist=("html",))
    assert html is not None
    page = new_context().new_page()

    # The mail's button leads to the survey page (same link as in the text part).
    page.set_content(html.get_content())
    with page.expect_response(link) as opened:
        page.get_by_role("link", name="Beantwoord de vraag").tap()
    assert opened.value.status == 200
    expect(page).to_have_url(link)
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page).to_have_title("Uw mening")
    expect(page.get_by_role("heading", level=1)).to_have_text("Uw mening")
    expect(page.get_by_text(DUTCH_QUESTION)).to_be_visible()
    expect(page.get_by_role("group", name=DUTCH_QUESTION)).to_be_visible()
    expect(page.get_by_text("0 = Zeer onwaarschijnlijk")).to_be_visible()
    expect(page.get_by_text("10 = Zeer waarschijnlijk")).to_be_visible()
    for n, radio in enumerate(radios(page)):  # each score has its own accessible label
        expect(radio).to_have_count(1)
        expect(radio).to_have_attribute("value", str(n))
        expect(page.get_by_label(str(n), exact=True)).to_have_attribute("id", f"nps-{n}")
        label = page.locator(f"label[for=nps-{n}]")
        expect(label).to_be_visible()
        expect(label).to_have_text(str(n))
    assert_only_checked(page, None)
    assert_fits_width(page, PHONE["width"])
    screenshot = tmp_path / "survey-form-phone.png"
    page.screenshot(path=str(screenshot), full_page=True)
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(png[16:20], "big") == PHONE["width"] * 2  # IHDR width, 2x scale
    assert len(png) > 20_000, f"screenshot only {len(png)} bytes: blank page?"

    # Sending without a score: 422, the Dutch error, and the comment is kept.
    page.keyboard.press("Tab")
    expect(radios(page)[0]).to_be_focused()
    page.keyboard.press("Tab")  # the radio group is one tab stop
    expect(page.get_by_role("radio", name="Ja")).to_be_focused()  # "Is uw vraag beantwoord?"
    page.keyboard.press("Tab")
    textarea = page.get_by_label("Wat kunnen we beter doen? (optioneel)")
    expect(textarea).to_be_focused()
    page.keyboard.type(comment)
    invalid = submit_with_enter(page)
    assert invalid.status == 422
    expect(page).to_have_url(link)
    expect(page.get_by_role("alert")).to_contain_text("Controleer uw antwoord.")
    expect(page.locator("#nps-error")).to_have_text("Kies een score van 0 tot en met 10.")
    expect(page.get_by_role("link", name="Kies een score van 0 tot en met 10.")).to_have_attribute(
        "href", "#nps-0"
    )
    expect(textarea).to_have_value(comment)
    assert_only_checked(page, None)
    assert loop.rows("SELECT 1 FROM survey_responses WHERE customer_id = :c", c=customer) == []
    page.screenshot(path=str(tmp_path / "survey-422-phone.png"), full_page=True)
    assert_fits_width(page, PHONE["width"])

    # Keyboard only: past the error summary's link, Tab to the first score, Space picks it,
    # arrows move to 2.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Kies een score van 0 tot en met 10.")).to_be_focused()
    page.keyboard.press("Tab")
    zero, two = radios(page)[0], radios(page)[2]
    expect(zero).to_be_focused()
    expect(page.locator("label[for=nps-0]")).to_have_css("outline-style", "solid")
    page.keyboard.press("Space")
    assert_only_checked(page, 0)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(two).to_be_focused()
    assert_only_checked(page, 2)
    expect(page.locator("label[for=nps-2]")).to_have_css("background-color", CHECKED_BACKGROUND)
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # "Is uw vraag beantwoord?" stays unanswered: it is optional
    expect(textarea).to_be_focused()
    thanks = submit_with_enter(page)
    assert thanks.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Bedankt")
    expect(page.get_by_text("Uw antwoord is ontvangen.")).to_be_visible()
    expect(page.get_by_role("radio")).to_have_count(0)

    answered = loop.rows(
        "SELECT nps, nps_category, comment, answers FROM survey_responses WHERE customer_id = :c",
        c=customer,
    )
    assert [row[:3] for row in answered] == [(2, "detractor", comment)]
    assert json.loads(answered[0][3]) == {"nps": 2, "comment": comment}
    tasks = wait_for(
        lambda: loop.rows(
            "SELECT origin, priority, status FROM followup_tasks WHERE customer_id = :c",
            c=customer,
        ),
        15,
        "the follow-up task for the detractor",
    )
    assert tasks == [("detractor", 0, "open")]

    # The link is used up: 409 with the Dutch "already answered" message, no form.
    again = page.goto(link)
    assert again is not None
    assert again.status == 409
    expect(page.get_by_text("Deze enquête is al beantwoord. Bedankt!")).to_be_visible()
    expect(page.locator("form")).to_have_count(0)
    assert loop.rows(
        "SELECT count(*) FROM survey_responses WHERE customer_id = :c", c=customer
    ) == [(1,)]


@pytest.mark.parametrize("width", [320, 390])
def test_survey_page_fits_a_phone_screen(
    loop: RunningLoop, new_context: Callable[..., BrowserContext], width: int
) -> None:
    _, link = survey_mail(loop, f"C-9{width}")
    page = new_context(width=width, javascript=True).new_page()
    steps: list[tuple[int, Callable[[], object]]] = [
        (200, lambda: page.goto(link)),
        (422, lambda: page.get_by_role("button", name="Versturen").click()),  # no score chosen
    ]
    for status, load in steps:
        with page.expect_response(link) as loaded:
            load()
        page.wait_for_load_state()
        assert loaded.value.status == status
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
            f"horizontal scroll at {width}px on the {status} page"
        )
        assert_fits_width(page, width)
        tops = set()
        for score in range(11):
            box = page.locator(f"label[for=nps-{score}]").bounding_box()
            assert box is not None
            assert box["width"] >= MIN_TARGET_WIDTH_PX, (score, box)
            assert box["height"] >= MIN_TARGET_PX, (score, box)
            tops.add(round(box["y"]))
        assert len(tops) == 1, f"the 0-10 scale wraps at {width}px: rows at {sorted(tops)}"
        for control in (page.locator("#comment"), page.get_by_role("button", name="Versturen")):
            box = control.bounding_box()
            assert box is not None and box["width"] >= MIN_TARGET_PX, box


def use_template(loop: RunningLoop, mail: EmailMessage, template: str) -> None:
    """Give the mailed invitation another survey template (as a survey programme would)."""
    engine = loop.engine()
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE survey_invitations SET template = :t WHERE invitation_id = :i"),
                {"t": template, "i": mail["X-Cxloop-Invitation"]},
            )
    finally:
        engine.dispose()


def test_support_survey_keeps_the_answers_given_when_one_is_missing(
    loop: RunningLoop, new_context: Callable[..., BrowserContext]
) -> None:
    customer = "C-8100"
    comment = "Twee keer gebeld, toen was het opgelost."
    mail, link = survey_mail(loop, customer)
    use_template(loop, mail, "support")
    context = new_context(javascript=False)
    page = context.new_page()

    opened = page.goto(link)
    assert opened is not None and opened.status == 200
    expect(page.locator("script")).to_have_count(0)  # nothing on the page needs JavaScript
    expect(page.locator('meta[name="viewport"]')).to_have_attribute(
        "content", "width=device-width, initial-scale=1"
    )
    csat_question = "Hoe tevreden bent u over hoe CBG Connect uw contact heeft afgehandeld?"
    ces_question = "Het was gemakkelijk om mijn zaak afgehandeld te krijgen."
    solved_question = "Is uw probleem in één keer opgelost?"
    for question in (csat_question, ces_question, solved_question):
        expect(page.get_by_role("group", name=question)).to_be_visible()
    expect(page.get_by_role("radio", name="nps")).to_have_count(0)
    assert_fits_width(page, PHONE["width"])

    # Everything but the (required) CSAT answer.
    ces = page.get_by_role("group", name=ces_question)
    ces.get_by_role("radio", name="6 Mee eens").check()
    page.get_by_role("group", name=solved_question).get_by_label("Nee").check()
    page.get_by_label("Wat kunnen we beter doen? (optioneel)").fill(comment)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Versturen").click()
    page.wait_for_load_state()
    assert posted.value.status == 422
    assert loop.rows("SELECT 1 FROM survey_responses WHERE customer_id = :c", c=customer) == []

    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Controleer uw antwoord.")
    missing = "Kies een antwoord van 1 tot en met 5."
    expect(summary.get_by_role("link", name=missing)).to_have_attribute("href", "#csat-1")
    csat = page.get_by_role("group", name=csat_question)
    expect(page.locator("#csat-error")).to_have_text(missing)
    for radio in csat.get_by_role("radio").all():
        expect(radio).to_have_attribute("aria-invalid", "true")
        expect(radio).to_have_attribute("aria-describedby", "csat-error")
        expect(radio).not_to_be_checked()
    expect(ces.get_by_role("radio", name="6 Mee eens")).to_be_checked()
    expect(ces.get_by_role("radio", checked=True)).to_have_count(1)
    expect(page.get_by_role("group", name=solved_question).get_by_label("Nee")).to_be_checked()
    expect(page.get_by_label("Wat kunnen we beter doen? (optioneel)")).to_have_value(comment)
    expect(page.locator("[aria-invalid]")).to_have_count(5)  # only the CSAT radios
    assert_fits_width(page, PHONE["width"])

    # The summary's link leads to the question; fix it and send.
    summary.get_by_role("link", name=missing).click()
    expect(page).to_have_url(f"{link}#csat-1")
    csat.get_by_role("radio", name="2 Ontevreden").check()
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Versturen").click()
    page.wait_for_load_state()
    assert posted.value.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Bedankt")

    rows = loop.rows(
        "SELECT nps, csat, ces, comment, answers FROM survey_responses WHERE customer_id = :c",
        c=customer,
    )
    assert [row[:4] for row in rows] == [(None, 2, 6, comment)]
    assert json.loads(rows[0][4]) == {
        "csat": 2,
        "ces": 6,
        "solved_first_contact": False,
        "comment": comment,
    }
    scored = wait_for(
        lambda: loop.rows(
            "SELECT csat_satisfied FROM survey_responses WHERE customer_id = :c"
            " AND scored_at IS NOT NULL",
            c=customer,
        ),
        15,
        "the scored answer",
    )
    assert scored == [(False,)]
