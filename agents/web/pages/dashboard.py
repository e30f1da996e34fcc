"""The BI dashboard page: headline numbers, charts and tables for models.dashboard's figures.

The charts are inline SVG (agents.web.pages.charts) so the page is one request with nothing
from elsewhere. Staff-facing text is English; everything goes through jinja2 with
autoescaping. matplotlib loads only when a page is drawn, not for the report queries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from markupsafe import Markup

from agents.rendering import render
from models.dashboard import (
    GRAINS,
    Breakdown,
    DashboardData,
    Figure,
    Metric,
    TrendPoint,
    dimension_label,
    insufficient_text,
    nps_text,
    percent_text,
)
from models.stats import Estimate

_NO_LINKS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Headline:
    label: str
    value: str
    note: str
    insufficient: bool = False


@dataclass(frozen=True)
class Chart:
    """A chart with its caption and the same numbers as a table (the text alternative)."""

    chart_id: str
    caption: str
    svg: Markup
    head: list[str]
    rows: list[list[str]]
    wide: bool = False


@dataclass(frozen=True)
class Section:
    section_id: str
    title: str
    figures: list[Headline]
    charts: list[Chart]


def render_dashboard(
    data: DashboardData,
    *,
    export_links: Mapping[str, str] = _NO_LINKS,
    filters_query: str = "",
) -> str:
    """The dashboard page for *data*: the filter form (GET /dashboard), the headline
    figures, the charts inline as SVG each with a table of its numbers, and the export links
    (label → path) with *filters_query* (already encoded, no "?") appended so an export
    holds what the page shows."""
    exports = [(label, _with_query(href, filters_query)) for label, href in export_links.items()]
    return render(
        "dashboard/dashboard.html.j2",
        title="cxloop — NPS and follow-up",
        since=data.since.isoformat(),
        until=data.until.isoformat(),
        grain=data.grain,
        grains=list(GRAINS.items()),
        period=_period_text(data),
        min_n=data.min_n,
        headline=[
            _headline("NPS", data.overall, "nps", data.min_n),
            _headline("CSAT", data.overall_csat, "csat", data.min_n),
        ],
        sections=_sections(data),
        exports=exports,
    )


def _with_query(href: str, query: str) -> str:
    if not query:
        return href
    return f"{href}{'&' if '?' in href else '?'}{query}"


def _period_text(data: DashboardData) -> str:
    per = GRAINS.get(data.grain, data.grain).lower()
    return f"{data.since.isoformat()} to {data.until.isoformat()}, by {per}"


def _headline(label: str, estimate: Estimate, metric: Metric, min_n: int) -> Headline:
    if not estimate.sufficient or estimate.value is None:
        return Headline(label, insufficient_text(estimate.n, min_n), "", insufficient=True)
    show = nps_text if metric == "nps" else percent_text
    margin = f"± {round(estimate.moe)}, " if estimate.moe is not None else ""
    return Headline(label, show(estimate.value), f"{margin}n = {estimate.n}")


def _figures(figures: Sequence[Figure]) -> list[Headline]:
    return [Headline(f.label, f.value, f.note) for f in figures]


def _sections(data: DashboardData) -> list[Section]:
    # Imported here: matplotlib loads only when a page is drawn, not for the report queries.
    from agents.web.pages import charts  # noqa: PLC0415

    min_n = data.min_n
    per = GRAINS.get(data.grain, data.grain).lower()
    sections = [
        Section(
            "trend",
            "NPS over time",
            [],
            [
                Chart(
                    "nps-trend",
                    f"NPS by {per}, with the 95 % margin of error shaded; periods with too "
                    "few answers are gaps marked ×",
                    _inline(charts.nps_trend_svg(data.trend, min_n=min_n)),
                    ["Period from", "NPS", "95 % interval", "Answers"],
                    [_trend_row(p, min_n) for p in sorted(data.trend, key=_period)],
                    wide=True,
                )
            ],
        ),
        Section(
            "scores",
            "How customers scored",
            [],
            [
                Chart(
                    "nps-distribution",
                    "Answers per NPS score: detractors 0–6, passives 7–8, promoters 9–10",
                    _inline(charts.distribution_svg(data.distribution)),
                    ["Score", "Answers", "Share"],
                    _distribution_rows(data.distribution),
                )
            ],
        ),
    ]
    for key, name, rows in (
        ("channel", "channel", data.by_channel),
        ("partner", "partner", data.by_partner),
        ("touchpoint", "touchpoint", data.by_touchpoint),
    ):
        sections.append(
            Section(
                f"by-{key}",
                f"By {name}",
                [],
                [
                    _breakdown_chart(rows, "nps", key, name, min_n),
                    _breakdown_chart(rows, "csat", key, name, min_n),
                ],
            )
        )
    sections += [
        Section(
            "follow-up",
            "Closing the loop",
            _figures(data.closed_loop),
            [
                Chart(
                    "tasks-by-team",
                    "Follow-up tasks not yet closed, and how many are overdue, per team",
                    _inline(charts.tasks_svg(data.tasks)),
                    ["Team", "Open", "Overdue"],
                    [[dimension_label(t.team), str(t.open), str(t.overdue)] for t in data.tasks],
                ),
                Chart(
                    "root-causes",
                    "Root causes recorded on closed tasks",
                    _inline(charts.root_causes_svg(data.root_causes)),
                    ["Root cause", "Tasks"],
                    [[dimension_label(cause), str(count)] for cause, count in data.root_causes],
                ),
            ],
        ),
        Section("service", "Customer service", _figures(data.customer_service), []),
    ]
    return sections


def _inline(svg: str) -> Markup:
    """A chart's SVG as markup for the page."""
    return Markup(svg)  # noqa: S704 - written by agents.web.pages.charts with ElementTree, text escaped


def _period(point: TrendPoint) -> date:
    return point.period_start


def _interval(estimate: Estimate, show: Callable[[float], str]) -> str:
    if estimate.low is None or estimate.high is None:
        return "–"
    return f"{show(estimate.low)} to {show(estimate.high)}"


def _trend_row(point: TrendPoint, min_n: int) -> list[str]:
    e = point.nps
    if not e.sufficient or e.value is None:
        return [point.period_start.isoformat(), insufficient_text(e.n, min_n), "–", str(e.n)]
    return [point.period_start.isoformat(), nps_text(e.value), _interval(e, nps_text), str(e.n)]


def _distribution_rows(counts: Sequence[int]) -> list[list[str]]:
    total = sum(counts)
    return [
        [str(score), str(count), percent_text(100 * count / total) if total else "–"]
        for score, count in enumerate(counts)
    ]


def _breakdown_chart(
    rows: Sequence[Breakdown], metric: Metric, key: str, name: str, min_n: int
) -> Chart:
    from agents.web.pages import charts  # noqa: PLC0415 - see _sections

    title = f"{'NPS' if metric == 'nps' else 'CSAT'} by {name}"
    chart_id = f"{metric}-by-{key}"
    ordered = charts.breakdown_order(rows, metric)
    show = nps_text if metric == "nps" else percent_text
    table = []
    for row in ordered:
        e = row.nps if metric == "nps" else row.csat
        if not e.sufficient or e.value is None:
            table.append([dimension_label(row.label), insufficient_text(e.n, min_n), "–", str(e.n)])
        else:
            table.append([dimension_label(row.label), show(e.value), _interval(e, show), str(e.n)])
    what = "NPS" if metric == "nps" else "CSAT (% satisfied)"
    return Chart(
        chart_id,
        f"{title}, best first, with the 95 % margin of error",
        _inline(charts.breakdown_svg(rows, metric, title, min_n=min_n, chart_id=chart_id)),
        [name.capitalize(), what, "95 % interval", "Answers"],
        table,
    )
