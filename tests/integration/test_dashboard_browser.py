"""The dashboard served by a running cxloop, in a real headless Chromium: sign in on the way
there, the headline NPS equal to the answers in the database, every chart drawn (the
screenshot checked for the band and the bars), the filter form and an export download.

Data is written through the same store functions the agents use (answers scored, surveys
issued, tasks), so the aggregates are the ones the pipeline keeps. SQLite only."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from matplotlib.image import imread
from playwright.sync_api import Browser, Page, expect

from agents.web.pages import charts
from models.dashboard import nps_text
from models.stats import nps_estimate
from models.store.staff_accounts import create_user
from tests.factories import add_followup_task, add_survey
from tests.harness.loop import RunningLoop, running_loop
from tests.integration.test_dashboard_render_browser import pixels_of

PASSWORD = "mia's long password"  # noqa: S105 - the test account's password
PARTNERS = ("Telco Noord", "Shop Zuid", "Reseller Oost")
CHANNELS = ("phone", "email", "chat")


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLoop]:
    with running_loop(tmp_path_factory.mktemp("dashboard")) as running:
        engine = running.engine()
        try:
            now = datetime.now(UTC)
            create_user(engine, "mia", "lead", now, team="service", password=PASSWORD)
            # 270 answers over 60 days: partner i has its own mix, channels rotate.
            for n in range(270):
                partner = PARTNERS[n % 3]
                score = (10, 9, 8, 6, 3, 10, 7, 9, 2, 10)[(n * (n % 3 + 1)) % 10]
                add_survey(
                    engine,
                    partner=partner,
                    nps=score,
                    csat=5 if score >= 7 else 2,
                    channel=CHANNELS[n % 3],
                    at=now - timedelta(days=n % 60, hours=1),
                )
            opened = now - timedelta(days=3)
            for status in ("open", "open", "contacted"):
                add_followup_task(engine, team="service", opened=opened, status=status)
            add_followup_task(
                engine,
                team="service",
                opened=opened,
                status="closed",
                contacted_at=opened + timedelta(hours=2),
                informed_at=opened + timedelta(hours=5),
                closed_at=opened + timedelta(hours=6),
                root_cause="billing_error",
            )
        finally:
            engine.dispose()
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_a_lead_reads_the_dashboard(loop: RunningLoop, page: Page, tmp_path: Path) -> None:
    page.goto(f"{loop.web}/inbox/dashboard?since=90d")
    expect(page).to_have_url(f"{loop.web}/inbox/login?next=/inbox/dashboard%3Fsince%3D90d")
    page.get_by_label("User name").fill("mia")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{loop.web}/inbox/dashboard?since=90d")
    expect(page).to_have_title("cxloop — NPS and follow-up")

    (promoters, passives, detractors) = loop.rows(
        "SELECT sum(nps_promoters), sum(nps_passives), sum(nps_detractors) FROM agg_scores "
        "WHERE grain = 'month'"
    )[0]
    assert promoters + passives + detractors == 270
    expected = nps_estimate(promoters, passives, detractors)
    assert expected.value is not None
    overall = page.locator("#overall")
    expect(overall).to_contain_text(nps_text(expected.value))
    expect(overall).to_contain_text("n = 270")

    for chart_id in ("nps-trend", "nps-distribution", "nps-by-partner", "nps-by-channel"):
        chart = page.locator(f"svg#{chart_id}")
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 60, chart_id
    expect(page.locator("svg#nps-by-partner text", has_text="Telco Noord")).to_be_visible()
    expect(page.locator("#closed-loop, body").first).to_contain_text("billing_error")

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    image = imread(shot)
    drawn = {
        name: pixels_of(image, colour)
        for name, colour in {
            "band": charts.BAND,
            "promoter bars": charts.PROMOTER,
            "detractor bars": charts.DETRACTOR,
            "breakdown bars": charts.BAR,
            "open tasks": charts.TASK_OPEN,
        }.items()
    }
    assert all(count > 500 for count in drawn.values()), drawn

    # The period form asks the server again; an export carries the same period.
    page.locator("#f-grain").select_option("month")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"grain=month"))
    link = page.get_by_role("link", name="partners (csv)")
    href = link.get_attribute("href")
    assert href is not None and "grain=month" in href
    download = page.request.get(f"{loop.web}{href}")
    assert download.status == 200
    assert download.headers["content-type"].startswith("text/csv")
    ranked = list(csv.DictReader(io.StringIO(download.text())))
    assert sorted(r["partner"] for r in ranked) == sorted(PARTNERS)
    assert sum(int(r["n"]) for r in ranked) == 270


def test_the_dashboard_needs_a_sign_in(loop: RunningLoop, page: Page) -> None:
    answer = page.request.get(f"{loop.web}/api/reports/nps?format=csv", max_redirects=0)
    assert answer.status == 401
    shown = page.request.get(f"{loop.web}/inbox/dashboard", max_redirects=0)
    assert shown.status == 303
    assert shown.headers["location"].startswith("/inbox/login?next=")
