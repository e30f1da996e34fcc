"""The dashboard's SVG charts: well-formed XML ready to inline (no prolog, no namespaces,
ids of their own), text kept as text, the margin-of-error band, gaps and "insufficient"
labels instead of numbers, the same output for the same input, and empty input drawn as
a message instead of raising."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from xml.etree import ElementTree

import pytest

from agents.web.pages import charts
from models.dashboard import Breakdown, TeamTasks, TrendPoint
from models.stats import Estimate, nps_estimate, proportion_estimate
from tests.unit.test_dashboard_page import dashboard_data

DATA = dashboard_data()
INSUFFICIENT = Estimate(12, None, None, None, None, sufficient=False)


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # noqa: S314 - our own output


def texts(root: ElementTree.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter("text")]


def by_id(root: ElementTree.Element, element_id: str) -> ElementTree.Element:
    found = [e for e in root.iter() if e.get("id") == element_id]
    assert len(found) == 1, element_id
    return found[0]


def ids(root: ElementTree.Element, pattern: str) -> list[str]:
    return [i for e in root.iter() if (i := e.get("id")) and re.fullmatch(pattern, i)]


def fills(element: ElementTree.Element) -> set[str]:
    return {
        m.group(1)
        for e in element.iter()
        if (m := re.search(r"fill: (#[0-9a-f]{6})", e.get("style", "")))
    }


CHARTS: dict[str, Callable[[], str]] = {
    "nps-trend": lambda: charts.nps_trend_svg(DATA.trend),
    "nps-distribution": lambda: charts.distribution_svg(DATA.distribution),
    "nps-by-partner": lambda: charts.breakdown_svg(
        DATA.by_partner, "nps", "NPS by partner", chart_id="nps-by-partner"
    ),
    "csat-by-partner": lambda: charts.breakdown_svg(
        DATA.by_partner, "csat", "CSAT by partner", chart_id="csat-by-partner"
    ),
    "tasks-by-team": lambda: charts.tasks_svg(DATA.tasks),
    "root-causes": lambda: charts.root_causes_svg(DATA.root_causes),
}


@pytest.mark.parametrize("chart_id", list(CHARTS))
def test_a_chart_is_an_svg_element_to_inline(chart_id: str) -> None:
    svg = CHARTS[chart_id]()
    assert svg.startswith("<svg ")
    assert "<?xml" not in svg
    assert "DOCTYPE" not in svg
    assert "http" not in svg  # no namespaces, metadata or links: nothing to fetch
    root = parse(svg)
    assert root.tag == "svg"
    assert root.get("id") == chart_id
    assert root.get("role") == "img"
    assert root.get("aria-label")
    assert root.get("viewBox")
    assert not list(root.iter("metadata"))
    assert not list(root.iter("style"))  # a <style> in inline SVG would style the page
    # Every id is the chart's own, and every reference points inside the chart.
    all_ids = [i for e in root.iter() if (i := e.get("id"))]
    assert len(all_ids) == len(set(all_ids))
    assert all(i == chart_id or i.startswith(f"{chart_id}-") for i in all_ids)
    refs = re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', svg)
    assert refs
    for ref in refs:
        assert "".join(ref) in all_ids


def test_the_trend_has_a_band_a_line_and_its_axis() -> None:
    root = parse(charts.nps_trend_svg(DATA.trend))
    band = by_id(root, "nps-trend-band")
    paths = list(band.iter("path"))
    assert paths
    assert fills(band) == {charts.BAND}
    assert sum(p.get("d", "").count(" L ") for p in paths) > 100  # a polygon, not a line
    line = by_id(root, "nps-trend-nps")
    assert list(line.iter("path"))
    words = texts(root)
    for tick in ("−100", "−50", "0", "50", "100"):
        assert tick in words
    assert "NPS" in words
    assert "95 % margin of error" in words
    assert "Feb" in words
    assert "Mar" in words


def test_insufficient_periods_are_gaps_and_marked() -> None:
    start = date(2025, 3, 3)
    good = nps_estimate(30, 10, 10)
    points = [
        TrendPoint(start + timedelta(weeks=w), INSUFFICIENT if w in (2, 3, 6) else good)
        for w in range(9)
    ]
    root = parse(charts.nps_trend_svg(points, chart_id="weekly"))
    line = by_id(root, "weekly-nps").find("path")  # then the markers' <defs> and <use>s
    assert line is not None
    d = line.get("d", "")
    # Three runs of periods with enough answers: 0-1, 4-5, 7-8. No point at zero for a gap.
    assert d.count("M ") == 3
    assert d.count(" L ") == 3
    marks = by_id(root, "weekly-insufficient")
    assert len(list(marks.iter("use"))) == 3
    assert "insufficient (n < 30)" in texts(root)
    assert len(list(by_id(root, "weekly-band").iter("path"))) == 3


def test_a_period_alone_between_gaps_still_shows_its_interval() -> None:
    good = nps_estimate(30, 10, 10)
    points = [
        TrendPoint(date(2025, 1, 1), INSUFFICIENT),
        TrendPoint(date(2025, 2, 1), good),
        TrendPoint(date(2025, 3, 1), INSUFFICIENT),
    ]
    root = parse(charts.nps_trend_svg(points))
    single = by_id(root, "nps-trend-band-single")
    assert list(single.iter("path"))
    assert charts.BAND in single.iter("path").__next__().get("style", "")


def test_the_distribution_colours_detractors_passives_promoters() -> None:
    root = parse(charts.distribution_svg(DATA.distribution))
    colours = [fills(by_id(root, f"nps-distribution-score-{s}")) for s in range(11)]
    assert colours == [{charts.DETRACTOR}] * 7 + [{charts.PASSIVE}] * 2 + [{charts.PROMOTER}] * 2
    words = texts(root)
    assert [str(s) for s in range(11)] == [w for w in words if w.isdigit() and int(w) <= 10][:11]
    for count in DATA.distribution:
        assert str(count) in words
    assert "Detractors (0–6)" in words
    assert "Promoters (9–10)" in words


def test_the_distribution_needs_eleven_counts() -> None:
    with pytest.raises(ValueError, match="11 counts"):
        charts.distribution_svg([1, 2, 3])


def _rows() -> list[Breakdown]:
    return [
        Breakdown("Fjord Reiser", nps_estimate(20, 10, 10), proportion_estimate(30, 40)),
        Breakdown("Small partner", INSUFFICIENT, INSUFFICIENT),
        Breakdown("Nordlys AS", nps_estimate(40, 5, 5), proportion_estimate(45, 50)),
        Breakdown("Tiny partner", replace_n(INSUFFICIENT, 3), replace_n(INSUFFICIENT, 3)),
        Breakdown("Grumpy Ltd", nps_estimate(5, 10, 25), proportion_estimate(10, 40)),
    ]


def replace_n(estimate: Estimate, n: int) -> Estimate:
    return Estimate(n, estimate.value, estimate.low, estimate.high, estimate.moe, False)


@pytest.mark.parametrize("metric", ["nps", "csat"])
def test_a_breakdown_has_bars_only_for_sufficient_rows(metric: str) -> None:
    assert metric in ("nps", "csat")
    svg = charts.breakdown_svg(_rows(), metric, "By partner", chart_id="b")  # type: ignore[arg-type]
    root = parse(svg)
    assert ids(root, r"b-bar-\d+") == ["b-bar-0", "b-bar-1", "b-bar-2"]
    assert ids(root, r"b-insufficient-\d+") == ["b-insufficient-3", "b-insufficient-4"]
    for bar in ("b-bar-0", "b-bar-1", "b-bar-2"):
        assert fills(by_id(root, bar)) == {charts.BAR}
    words = texts(root)
    assert "insufficient (n = 12 < 30)" in words
    assert "insufficient (n = 3 < 30)" in words
    # Best first, insufficient last (most answers first), as the y axis labels read.
    ticks = ["".join(by_id(root, f"b-ytick_{i}").itertext()).strip() for i in range(1, 6)]
    assert ticks == ["Nordlys AS", "Fjord Reiser", "Grumpy Ltd", "Small partner", "Tiny partner"]
    # The figures beside the bars, and the error bars (one line per sufficient row).
    if metric == "nps":
        assert "+70 ± 18 (n = 50)" in words
        assert "−50 ± 21 (n = 40)" in words
    else:
        assert "90 % ± 9 (n = 50)" in words
    (errors,) = ids(root, r"b-LineCollection_\d+")
    assert len(list(by_id(root, errors).iter("path"))) == 3


def test_an_insufficient_row_never_shows_a_number() -> None:
    rows = [Breakdown("Only row", INSUFFICIENT, INSUFFICIENT)]
    root = parse(charts.breakdown_svg(rows, "nps", "NPS", chart_id="x"))
    assert ids(root, r"x-bar-\d+") == []
    words = [w for w in texts(root) if w not in {"−100", "−50", "0", "50", "100", "NPS"}]
    assert sorted(words) == ["Only row", "insufficient (n = 12 < 30)"]


def test_labels_are_text_escaped_and_shortened() -> None:
    rows = [
        Breakdown("$5 & <b>deals</b> \x01", nps_estimate(20, 10, 10), INSUFFICIENT),
        Breakdown("A partner with a really remarkably long name", INSUFFICIENT, INSUFFICIENT),
        Breakdown("", nps_estimate(10, 10, 20), INSUFFICIENT),
    ]
    svg = charts.breakdown_svg(rows, "nps", "NPS", chart_id="x")
    assert "<b>" not in svg
    assert "&lt;b&gt;" in svg
    words = texts(parse(svg))
    assert "$5 & <b>deals</b>" in words  # a "$" is not TeX; the control character is gone
    assert "A partner with a really remar…" in words
    assert "(not known)" in words


def test_tasks_per_team() -> None:
    root = parse(charts.tasks_svg(DATA.tasks))
    words = texts(root)
    for team in ("complaints", "support", "sales", "Open", "Overdue"):
        assert team in words
    assert ids(root, r"tasks-by-team-open-\d+") == [f"tasks-by-team-open-{i}" for i in range(3)]
    assert fills(by_id(root, "tasks-by-team-open-0")) == {charts.TASK_OPEN}
    assert fills(by_id(root, "tasks-by-team-overdue-0")) == {charts.TASK_OVERDUE}
    for number in ("34", "6", "21", "2", "8"):
        assert number in words


def test_root_causes_most_frequent_first() -> None:
    rows = [("wrong item", 17), ("late delivery", 41), ("billing error", 9)]
    root = parse(charts.root_causes_svg(rows))
    ticks = ["".join(by_id(root, f"root-causes-ytick_{i}").itertext()).strip() for i in (1, 2, 3)]
    assert ticks == ["late delivery", "wrong item", "billing error"]
    assert fills(by_id(root, "root-causes-cause-0")) == {charts.ROOT_CAUSE}
    assert {"41", "17", "9"} <= set(texts(root))


@pytest.mark.parametrize("chart_id", list(CHARTS))
def test_the_same_input_draws_the_same_svg(chart_id: str) -> None:
    assert CHARTS[chart_id]() == CHARTS[chart_id]()


def test_charts_on_one_page_do_not_share_ids() -> None:
    first = charts.breakdown_svg(DATA.by_channel, "nps", "NPS", chart_id="nps-by-channel")
    second = charts.breakdown_svg(DATA.by_channel, "nps", "NPS", chart_id="nps-by-touchpoint")
    first_ids = {e.get("id") for e in parse(first).iter()} - {None}
    second_ids = {e.get("id") for e in parse(second).iter()} - {None}
    assert first_ids
    assert not first_ids & second_ids


EMPTY: dict[str, tuple[Callable[[], str], str]] = {
    "trend": (lambda: charts.nps_trend_svg([]), "No answers in this period"),
    "distribution": (lambda: charts.distribution_svg([0] * 11), "No answers in this period"),
    "breakdown": (lambda: charts.breakdown_svg([], "csat", "CSAT"), "No answers in this period"),
    "tasks": (lambda: charts.tasks_svg([TeamTasks("sales", 0, 0)]), "No open follow-up tasks"),
    "root causes": (
        lambda: charts.root_causes_svg([]),
        "No root causes recorded in this period",
    ),
}


@pytest.mark.parametrize("name", list(EMPTY))
def test_nothing_to_draw_says_so(name: str) -> None:
    draw, message = EMPTY[name]
    root = parse(draw())
    assert texts(root) == [message]
    assert message in (root.get("aria-label") or "")
    assert root.get("role") == "img"


def test_charts_drawn_on_several_threads_at_once_are_the_same() -> None:
    # No pyplot and no rc_context: nothing global changes while a chart is drawn.
    expected = {chart_id: draw() for chart_id, draw in CHARTS.items()}
    with ThreadPoolExecutor(max_workers=4) as pool:
        drawn = list(pool.map(lambda chart_id: (chart_id, CHARTS[chart_id]()), list(CHARTS) * 3))
    assert all(svg == expected[chart_id] for chart_id, svg in drawn)
