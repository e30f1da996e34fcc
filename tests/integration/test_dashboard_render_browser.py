"""The dashboard as a browser draws it (Debian's chromium via Playwright, no server: the
page is one document with its charts inline): a full-page screenshot holds the band's and
the bars' colours in real amounts, every chart has a size on the page, the text in the
charts is text, the numbers open under each chart, and a partner named like a script
stays a name.

Needs: the `chromium` apt package (/usr/bin/chromium) and the `playwright` Python package.
Never run `playwright install`: the system browser is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread
from numpy.typing import NDArray
from playwright.sync_api import Browser, Dialog, Page, expect

from agents.web.pages import charts
from agents.web.pages.dashboard import render_dashboard
from tests.unit.test_dashboard_page import EXPORTS, QUERY, SCRIPT_PARTNER, dashboard_data

WIDTH = 1280
CHART_IDS = [
    "nps-trend",
    "nps-distribution",
    "nps-by-channel",
    "csat-by-channel",
    "nps-by-partner",
    "csat-by-partner",
    "nps-by-touchpoint",
    "csat-by-touchpoint",
    "tasks-by-team",
    "root-causes",
]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        locale="en-GB", viewport={"width": WIDTH, "height": 900}, device_scale_factor=1
    )
    context.set_default_timeout(10_000)
    # Nothing may be fetched: the page is one document.
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    try:
        yield context.new_page()
    finally:
        context.close()
    assert requests == []


def pixels_of(image: NDArray[np.float32], colour: str) -> int:
    """How many pixels are *colour*, give or take rounding."""
    rgb = np.array(to_rgb(colour), dtype=np.float32)
    return int((np.abs(image[..., :3] - rgb).max(axis=-1) <= 2.5 / 255).sum())


def test_the_dashboard_as_drawn_by_a_browser(page: Page, tmp_path: Path) -> None:
    dialogs: list[str] = []

    def dialog_opened(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dialog_opened)
    page.set_content(render_dashboard(dashboard_data(), export_links=EXPORTS, filters_query=QUERY))
    expect(page).to_have_title("cxloop — NPS and follow-up")

    # Every chart is on the page with a size, inside the page's width.
    for chart_id in CHART_IDS:
        chart = page.locator(f"svg#{chart_id}")
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None, chart_id
        assert box["width"] > 300, chart_id
        assert box["height"] > 60, chart_id
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= WIDTH
    trend = page.locator("svg#nps-trend").bounding_box()
    assert trend is not None
    assert trend["width"] > 1000  # the trend takes the whole width
    for part in ("#nps-trend-band path", "#nps-trend-nps path", "#nps-by-partner-bar-0 path"):
        box = page.locator(part).first.bounding_box()
        assert box is not None, part
        assert box["width"] > 0, part
        assert box["height"] > 0, part

    # Charts are images with a name; their words are text (selectable, findable).
    expect(page.get_by_role("img", name="Answers per NPS score", exact=False)).to_be_visible()
    partner_chart = page.locator("svg#nps-by-partner")
    expect(partner_chart.locator("text", has_text="insufficient (n = 12 < 30)")).to_be_visible()
    expect(partner_chart.locator("text", has_text=SCRIPT_PARTNER)).to_be_visible()
    assert dialogs == []
    assert page.evaluate("document.querySelectorAll('script').length") == 0

    # The numbers open under a chart.
    trend_table = page.locator("#fig-nps-trend table")
    expect(trend_table).to_be_hidden()
    page.locator("#fig-nps-trend summary").click()
    expect(trend_table).to_be_visible()
    expect(trend_table.locator("tbody tr")).to_have_count(90)
    expect(trend_table.get_by_role("cell", name="insufficient (n = 12 < 30)").first).to_be_visible()

    expect(page.get_by_role("link", name="CSV")).to_have_attribute(
        "href", f"/dashboard/export.csv?{QUERY}"
    )

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    image = imread(shot)
    assert image.shape[1] == WIDTH
    assert image.shape[0] > 2000  # the whole page, not the first screen
    found = {
        name: pixels_of(image, colour)
        for name, colour in {
            "band": charts.BAND,
            "detractor bars": charts.DETRACTOR,
            "passive bars": charts.PASSIVE,
            "promoter bars": charts.PROMOTER,
            "breakdown bars": charts.BAR,
            "open tasks": charts.TASK_OPEN,
            "overdue tasks": charts.TASK_OVERDUE,
            "root causes": charts.ROOT_CAUSE,
        }.items()
    }
    # Areas in pixels, about 40 % of what these charts draw at this width (the six
    # breakdowns' bars and the band are the largest), far above stray anti-aliasing.
    least = {
        "band": 15_000,
        "detractor bars": 2_500,
        "passive bars": 2_500,
        "promoter bars": 4_000,
        "breakdown bars": 40_000,
        "open tasks": 4_000,
        "overdue tasks": 600,
        "root causes": 4_000,
    }
    assert {name: count for name, count in found.items() if count < least[name]} == {}, found
