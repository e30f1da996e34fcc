"""The dashboard page: names escaped, too-small figures shown as "insufficient" in words,
nothing loaded from elsewhere, the filter form, the export links, and every chart in a
figure with a caption and a table of its numbers.

`dashboard_data` builds realistic figures (90 days, 20 partners); the browser test
(tests/integration/test_dashboard_render_browser.py) draws the same page.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest

from agents.web.pages.dashboard import render_dashboard
from models.dashboard import (
    Breakdown,
    DashboardData,
    Figure,
    TeamTasks,
    TrendPoint,
)
from models.stats import nps_estimate, proportion_estimate

SCRIPT_PARTNER = "<script>alert(1)</script>"
EXPORTS = {"CSV": "/dashboard/export.csv", "Parquet": "/dashboard/export.parquet"}
QUERY = "since=2025-01-01&until=2025-03-31&grain=day"


def _breakdown(label: str, i: int, n: int) -> Breakdown:
    promoters = n * (3 + i % 5) // 10
    detractors = n * (1 + i % 3) // 10
    return Breakdown(
        label,
        nps_estimate(promoters, n - promoters - detractors, detractors),
        proportion_estimate(n * (5 + i % 4) // 10, n),
    )


def dashboard_data(days: int = 90, partners: int = 20) -> DashboardData:
    """A quarter by day: most days have enough answers, every seventh has 12; 20 partners
    of which two have too few answers (12 and 29), one named like a script."""
    since = date(2025, 1, 1)
    trend = []
    for d in range(days):
        n = 12 if d % 7 == 3 else 40 + d % 30
        promoters = n * (4 + d % 3) // 10
        detractors = n * (2 + d % 2) // 10
        trend.append(
            TrendPoint(
                since + timedelta(days=d),
                nps_estimate(promoters, n - promoters - detractors, detractors),
            )
        )
    names = [f"Partner {i:02d} Reiser AS" for i in range(partners)]
    names[3] = SCRIPT_PARTNER
    sizes = [40 + 13 * i for i in range(partners)]
    sizes[5], sizes[9] = 12, 29
    return DashboardData(
        since=since,
        until=since + timedelta(days=days - 1),
        grain="day",
        overall=nps_estimate(1500, 700, 800),
        overall_csat=proportion_estimate(2100, 3000),
        trend=trend,
        distribution=[120, 60, 70, 80, 90, 150, 210, 380, 420, 610, 790],
        by_channel=[
            _breakdown(channel, i, 300 + 50 * i)
            for i, channel in enumerate(["email", "phone", "chat", ""])
        ],
        by_partner=[
            _breakdown(name, i, n) for i, (name, n) in enumerate(zip(names, sizes, strict=True))
        ],
        by_touchpoint=[
            _breakdown(t, i, 150 + 40 * i)
            for i, t in enumerate(["order", "delivery", "return", "invoice", "complaint"])
        ]
        + [_breakdown("warranty", 0, 12)],
        tasks=[
            TeamTasks("complaints", 34, 6),
            TeamTasks("support", 21, 2),
            TeamTasks("sales", 8, 0),
        ],
        root_causes=[("late delivery", 41), ("wrong item", 17), ("billing error", 9)],
        closed_loop=[
            Figure("Detractors contacted within SLA", "84 %", "n = 120"),
            Figure("Loops closed", "61 %", "n = 98"),
        ],
        customer_service=[Figure("First contact resolution", "72 %", "n = 300")],
        min_n=30,
    )


class _Page(HTMLParser):
    """Elements with their attributes, in document order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if name == tag]


@pytest.fixture(scope="module")
def page() -> str:
    return render_dashboard(dashboard_data(), export_links=EXPORTS, filters_query=QUERY)


def test_a_partner_name_is_escaped_everywhere(page: str) -> None:
    assert SCRIPT_PARTNER not in page
    assert "<script" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert page.count(escaped) >= 3  # the NPS and CSAT charts and their tables
    assert not _Page(page).all("script")


def test_a_figure_from_too_few_answers_is_words_not_a_number() -> None:
    data = replace(
        dashboard_data(),
        overall=nps_estimate(6, 3, 3),
        overall_csat=proportion_estimate(5, 12),
    )
    html = render_dashboard(data)
    head = html[html.index('<section id="overall"') : html.index("</section>")]
    assert head.count("insufficient (n = 12 &lt; 30)") == 2
    assert not re.search(r'class="value">[+−\d]', head)
    # A partner with 29 answers: no bar, its table row says why.
    assert "insufficient (n = 29 &lt; 30)" in html
    assert '<td class="num">insufficient (n = 12 &lt; 30)</td>' in html


def test_nothing_is_loaded_from_elsewhere(page: str) -> None:
    assert "http://" not in page
    assert "https://" not in page
    assert "//" not in re.sub(r"<style>.*?</style>", "", page, flags=re.DOTALL)
    parsed = _Page(page)
    assert not parsed.all("link")
    assert not parsed.all("img")
    assert not [attrs for _, attrs in parsed.elements if "src" in attrs]
    assert "@import" not in page
    assert "url(" not in page.replace("url(#", "")  # only references within a chart


def test_export_links_keep_the_filters(page: str) -> None:
    links = {attrs["href"] for attrs in _Page(page).all("a")}
    assert f"/dashboard/export.csv?{QUERY}" in links
    assert f"/dashboard/export.parquet?{QUERY}" in links
    assert ">CSV</a>" in page
    assert ">Parquet</a>" in page


def test_no_export_links_no_download_section() -> None:
    html = render_dashboard(dashboard_data())
    assert not [a for a in _Page(html).all("a") if "export" in (a["href"] or "")]
    assert "Download" not in html


def test_the_filter_form_asks_for_the_period_and_grain(page: str) -> None:
    parsed = _Page(page)
    (form,) = parsed.all("form")
    assert form["method"] == "get"
    assert form["action"] == "/inbox/dashboard"
    inputs = {attrs["name"]: attrs for attrs in parsed.all("input")}
    assert inputs["since"]["value"] == "2025-01-01"
    assert inputs["until"]["value"] == "2025-03-31"
    assert inputs["since"]["type"] == "date"
    options = parsed.all("option")
    assert [o["value"] for o in options] == ["day", "week", "month"]
    assert [o["value"] for o in options if "selected" in o] == ["day"]
    assert "<title>cxloop — NPS and follow-up</title>" in page


def test_every_chart_is_a_figure_with_caption_svg_and_table(page: str) -> None:
    figures = re.findall(r"<figure\b.*?</figure>", page, flags=re.DOTALL)
    assert len(figures) == 10  # trend, scores, 3 × (NPS, CSAT), tasks, root causes
    for figure in figures:
        assert re.search(r"<figcaption>[^<]+</figcaption>", figure)
        svg = re.search(r"<svg ([^>]*)>", figure)
        assert svg, figure[:200]
        assert 'role="img"' in svg.group(1)
        assert re.search(r'aria-label="[^"]+"', svg.group(1))
        assert "<details>" in figure
        assert "<summary>The numbers</summary>" in figure
        assert "<table>" in figure
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert [i for i, count in Counter(ids).items() if count > 1] == []


def test_headline_and_follow_up_figures_are_shown(page: str) -> None:
    assert "Detractors contacted within SLA" in page
    assert "84 %" in page
    assert "First contact resolution" in page
    # NPS of 1500 promoters and 800 detractors in 3000: +23, with its margin and n.
    assert '<span class="value">+23</span>' in page
    assert "n = 3000" in page


def test_the_tables_hold_every_row(page: str) -> None:
    assert page.count("<tr>") >= 90 + 11 + 2 * (4 + 20 + 6) + 3 + 3
    assert '<th scope="row">(not known)</th>' in page  # the channel ''


def test_an_empty_period_says_so() -> None:
    data = DashboardData(
        since=date(2025, 1, 1),
        until=date(2025, 1, 31),
        grain="week",
        overall=nps_estimate(0, 0, 0),
        overall_csat=proportion_estimate(0, 0),
        trend=[],
        distribution=[0] * 11,
        by_channel=[],
        by_partner=[],
        by_touchpoint=[],
        tasks=[],
        root_causes=[],
        closed_loop=[],
        customer_service=[],
        min_n=30,
    )
    html = render_dashboard(data)
    # The chart's text and its accessible name, for the trend, scores and 3 × 2 breakdowns.
    assert html.count(">No answers in this period</text>") == 8
    assert html.count(': No answers in this period"') == 8
    assert "No open follow-up tasks" in html
    assert "insufficient (n = 0 &lt; 30)" in html
    assert "by week" in html
