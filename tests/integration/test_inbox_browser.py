"""A member of staff works follow-up tasks in the inbox in a real headless browser
(Debian's chromium via Playwright): sign in, the list soonest-due first with the overdue
marker, a task with the customer's history, actions recorded through the form and applied
by closure, the page following each change by itself; and a new complaint showing up in an
open list without a reload.

Needs: the `chromium` apt package (/usr/bin/chromium) and the `playwright` Python package.
Never run `playwright install`: the system browser is used. Runs on SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from models.store.staff_accounts import create_user, issue_api_token
from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop, running_loop

PASSWORD = "kim's long password"  # noqa: S105 - the test account's password
LIVE_TIMEOUT = 15_000  # ms: a few polls (0.5 s each) after closure applied the action


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLoop]:
    env = {"CXLOOP_INBOX_POLL_S": "0.5"}
    with running_loop(tmp_path_factory.mktemp("inbox-browser"), env=env) as running:
        engine = running.engine()
        try:
            now = datetime.now(UTC)
            # The complaints team's only member of staff gets every complaint task.
            create_user(engine, "kim", "staff", now, team="complaints", password=PASSWORD)
            create_user(engine, "lars", "lead", now, team="complaints", display_name="Lars")
        finally:
            engine.dispose()
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB")
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def complaint(
    n: str, customer: str, name: str, days_ago: float = 0, **extra: Any
) -> dict[str, Any]:
    event = contact_event(n, customer=customer, kind="complaint", **extra)
    event["customer"]["name"] = name
    event["customer"]["phone"] = "+31 6 5555 0000"
    event["occurred_at"] = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    return event


def emit(loop: RunningLoop, *events: dict[str, Any]) -> None:
    # loop.emit uses asyncio.run, which Playwright's sync API blocks on this thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(loop.emit, *events).result(timeout=60)


def task_of(loop: RunningLoop, customer: str) -> tuple[str, str, str | None]:
    """(task id, status, assignee) of the customer's task, once it is assigned."""
    rows = wait_for(
        lambda: loop.rows(
            "SELECT task_id, status, assignee FROM followup_tasks "
            "WHERE customer_id = :c AND assignee IS NOT NULL",
            c=customer,
        ),
        30,
        f"the complaint task of {customer}",
    )
    return tuple(rows[0])  # type: ignore[index,return-value]


def sign_in(page: Page, loop: RunningLoop) -> None:
    page.goto(f"{loop.web}/inbox")
    expect(page).to_have_url(f"{loop.web}/inbox/login")
    page.get_by_label("User name").fill("kim")
    page.get_by_label("Password").fill("not the password")
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        page.get_by_role("button", name="Sign in").click()
    assert refused.value.status == 401
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{loop.web}/inbox")


def record(page: Page, action: str, note: str = "", **fields: str) -> int:
    """Fill in and send the action form; the response status of the POST."""
    page.get_by_label("Action", exact=True).select_option(label=action)
    if note:
        page.get_by_label("Note").fill(note)
    if "root_cause" in fields:
        page.get_by_label("Root cause").select_option(fields["root_cause"])
    if "new_fix" in fields:
        page.get_by_label("Needs a structural fix").check()
        page.get_by_label("Or a new structural fix").fill(fields["new_fix"])
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Record action").click()
    page.wait_for_load_state()
    return posted.value.status


def mark(page: Page) -> None:
    """Mark this document: the mark is gone after any reload or navigation."""
    page.evaluate("window.cxStay = 'still here'")


def still_marked(page: Page) -> bool:
    return bool(page.evaluate("window.cxStay === 'still here'"))


def test_staff_work_a_task_from_the_list_to_closed(loop: RunningLoop, page: Page) -> None:
    emit(
        loop,
        complaint("late", "C-6001", "Olga Overdue", days_ago=10, comment="Al weken niks"),
        complaint("fresh", "C-6002", "Frits Fresh", comment="Monteur kwam niet opdagen"),
    )
    task_of(loop, "C-6001")
    task_id, status, assignee = task_of(loop, "C-6002")
    assert (status, assignee) == ("assigned", "kim")

    sign_in(page, loop)
    cookies = {c["path"]: c for c in page.context.cookies() if c["name"] == "cxloop_staff"}
    assert sorted(cookies) == ["/api", "/inbox"]
    assert all(c["httpOnly"] and c["sameSite"] == "Lax" for c in cookies.values())

    # The list: soonest SLA due first, the late one marked overdue.
    expect(page.get_by_role("heading", level=1)).to_have_text("Follow-up tasks")
    rows = page.locator("#tasks tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Olga Overdue")
    expect(rows.nth(0).locator(".overdue-marker")).to_have_text("Overdue")
    expect(rows.nth(1)).to_contain_text("Frits Fresh")
    expect(rows.nth(1).locator(".overdue-marker")).to_have_count(0)
    for text in ("high", "Assigned", "complaints", "kim", "Complaint"):
        expect(rows.nth(1)).to_contain_text(text)

    # The task: contact details, what the customer said, their history.
    rows.nth(1).get_by_role("link", name="Frits Fresh").click()
    expect(page).to_have_url(f"{loop.web}/inbox/tasks/{task_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Task for Frits Fresh")
    expect(page.locator("#task-status")).to_have_text("Assigned")
    expect(page.get_by_role("link", name="+31 6 5555 0000")).to_be_visible()
    expect(page.locator("#task-facts blockquote")).to_have_text("Monteur kwam niet opdagen")
    expect(page.locator("#customer-timeline")).to_contain_text("complaint contact by phone")
    expect(page.locator("#task-history")).to_contain_text("opened")
    options = page.get_by_label("Action", exact=True).locator("option")
    expect(options).to_have_text(["Called: reached the customer", "Called: no answer", "Note"])

    # A call: sent, and the page shows the new status once closure recorded it.
    assert record(page, "Called: reached the customer", "Klant gesproken") == 303
    expect(page).to_have_url(f"{loop.web}/inbox/tasks/{task_id}?sent=call_attempt")
    expect(page.get_by_role("status")).to_contain_text("Sent: Called: reached the customer")
    mark(page)
    expect(page.locator("#task-status")).to_have_text("Contacted", timeout=LIVE_TIMEOUT)
    expect(page.locator("#task-history")).to_contain_text("Klant gesproken")

    # The lead reassigns the task elsewhere (the API): the open page follows by itself.
    engine = loop.engine()
    try:
        lead_token = issue_api_token(engine, "lars")
    finally:
        engine.dispose()
    reassigned = httpx.post(
        f"{loop.web}/api/tasks/{task_id}/actions",
        json={"type": "assign", "details": {"assignee": "lars"}},
        headers={"Authorization": f"Bearer {lead_token}"},
        timeout=10,
    )
    assert reassigned.status_code == 202
    expect(page.locator("#task-assignee")).to_have_text("lars", timeout=LIVE_TIMEOUT)
    assert still_marked(page), "the page reloaded instead of updating itself"

    # Customer informed needs what they were told: refused with the reason, then sent.
    expect(options.filter(has_text="Customer informed")).to_have_count(1, timeout=LIVE_TIMEOUT)
    assert record(page, "Customer informed: what they were told") == 422
    expect(page.get_by_role("alert")).to_contain_text("say what the customer was told")
    told = "Monteur komt maandag tussen 8 en 12"
    assert record(page, "Customer informed: what they were told", told) == 303
    expect(page.locator("#task-status")).to_have_text("Customer informed", timeout=LIVE_TIMEOUT)
    expect(page.locator("#task-facts")).to_contain_text(told)

    # Close with a root cause and a new structural fix.
    expect(options.filter(has_text="Close with root cause")).to_have_count(1, timeout=LIVE_TIMEOUT)
    sent = record(page, "Close with root cause", root_cause="capacity", new_fix="Meer monteurs")
    assert sent == 303
    expect(page.locator("#task-status")).to_have_text("Closed", timeout=LIVE_TIMEOUT)
    expect(page.locator("#task-forms")).to_contain_text("No actions are possible now.")
    stored = loop.rows(
        "SELECT t.status, t.root_cause, t.told_customer, f.title FROM followup_tasks t "
        "JOIN structural_fixes f ON f.fix_id = t.structural_fix_id WHERE t.task_id = :t",
        t=task_id,
    )
    assert stored == [("closed", "capacity", told, "Meer monteurs")]
    actors = loop.rows(
        "SELECT type, actor FROM followup_actions WHERE task_id = :t ORDER BY recorded_at",
        t=task_id,
    )
    assert actors == [
        ("call_attempt", "kim"),
        ("assign", "lars"),
        ("customer_informed", "kim"),
        ("close", "kim"),
    ]


def test_a_new_complaint_appears_in_the_open_list(loop: RunningLoop, page: Page) -> None:
    sign_in(page, loop)
    rows = page.locator("#tasks tbody tr")
    before = rows.count()
    expect(page.get_by_text("Nina Nieuw")).to_have_count(0)
    mark(page)

    emit(loop, complaint("new", "C-6003", "Nina Nieuw", comment="Factuur klopt niet"))

    row = rows.filter(has_text="Nina Nieuw")
    expect(row).to_have_count(1, timeout=LIVE_TIMEOUT)
    expect(row).to_contain_text("kim")
    expect(rows).to_have_count(before + 1)
    assert still_marked(page), "the list reloaded instead of updating itself"
