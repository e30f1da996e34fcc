"""The dashboard's charts, drawn on the server as SVG to inline in the page.

matplotlib's object API (a Figure of its own, never pyplot) so that pages can be drawn on
more than one thread. The SVG keeps its text as text (svg.fonttype "none": searchable,
selectable, read by the browser in its own fonts) and is the same for the same input
(svg.hashsalt fixed, no date). It is cleaned for inlining: no XML prolog, DOCTYPE,
metadata or global <style>, no namespaces, and its ids prefixed with the chart's id so
that several charts can share a page. The root <svg> has the chart's id, role="img" and
an aria-label; the page puts the numbers in a table next to it.

A figure based on too few answers is never drawn as a number: a gap in the trend (marked),
no bar in a breakdown but the words "insufficient (n = 12 < 30)".
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from functools import cache
from xml.etree import ElementTree

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.textpath import TextToPath
from matplotlib.ticker import MaxNLocator

from models.dashboard import (
    Breakdown,
    Metric,
    TeamTasks,
    TrendPoint,
    dimension_label,
    estimate_text,
    insufficient_text,
)
from models.stats import MIN_N, Estimate

NO_ANSWERS = "No answers in this period"
NO_TASKS = "No open follow-up tasks"
NO_ROOT_CAUSES = "No root causes recorded in this period"

# Colours: the inbox's blue and red, and the usual red / amber / green of NPS groups.
LINE = "#0b5394"
BAND = "#c6dbef"  # opaque, so the band's colour is the same wherever it is drawn
DETRACTOR = "#c62828"
PASSIVE = "#f0b400"
PROMOTER = "#2e7d32"
BAR = "#3d85c6"
ERROR = "#1a1a1a"
TASK_OPEN = "#6fa8dc"
TASK_OVERDUE = "#a61b1b"
ROOT_CAUSE = "#674ea7"
MUTED = "#666666"
ZERO = "#555555"

_LABEL_MAX = 30  # characters of a name on a chart; the table has the whole name
_SVG = "{http://www.w3.org/2000/svg}"
_URL_REF = re.compile(r"url\(#([^)]+)\)")
_TEXT_PATH = TextToPath()
# Room in inches: y tick numbers and their axis label; x tick labels and their axis label;
# a legend above the axes.
_NUMBERS_LEFT = 0.6
_TICKS_BOTTOM = 0.5
_LEGEND_TOP = 0.32
_ROW = 0.3  # a bar's row in a horizontal bar chart


@cache
def _configure() -> None:
    """matplotlib's settings for the charts, set once for the process (always the same
    values, so setting them again from another thread does no harm; rc_context would)."""
    mpl.rcParams.update(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "cxloop-dashboard",
            "text.parse_math": False,  # a "$" in a partner's name is a dollar, not TeX
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.titlelocation": "left",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.edgecolor": "#888888",
            "axes.grid": False,
            "legend.frameon": False,
            "legend.fontsize": 8,
        }
    )


def _axes(
    width: float, plot_height: float, *, left: float, right: float, top: float, bottom: float
) -> tuple[Figure, Axes]:
    """A figure *width* inches wide with one set of axes *plot_height* inches high and the
    margins around it in inches. Margins worked out from the labels, not by a layout
    engine: constrained layout doubled the time a page takes to draw."""
    _configure()
    height = plot_height + top + bottom
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes(
        (left / width, bottom / height, 1 - (left + right) / width, plot_height / height)
    )
    return fig, ax


def _width(labels: Iterable[str], size: float) -> float:
    """Inches taken by the widest of *labels* at *size* points, in matplotlib's font (a
    browser's sans-serif is about as wide or narrower)."""
    prop = FontProperties(size=size)
    widths = (_TEXT_PATH.get_text_width_height_descent(s, prop, ismath=False)[0] for s in labels)
    return max(widths, default=0.0) / 72


def _text(label: str, limit: int = _LABEL_MAX) -> str:
    label = dimension_label(label)
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _svg(fig: Figure, chart_id: str, label: str) -> str:
    """*fig* as an SVG element for inlining in HTML."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    # Our own output from the line above, not outside input.
    root = ElementTree.fromstring(buffer.getvalue())  # noqa: S314
    _drop(root, {"metadata", "style"})
    for element in root.iter():
        element.tag = element.tag.removeprefix(_SVG)
        attributes = dict(element.attrib)
        element.attrib.clear()
        for key, value in attributes.items():
            name = key.rsplit("}", 1)[-1]  # xlink:href → href (SVG 2)
            if name == "id":
                new = f"{chart_id}-{value}"
            elif name == "href" and value.startswith("#"):
                new = f"#{chart_id}-{value[1:]}"
            else:
                new = _URL_REF.sub(rf"url(#{chart_id}-\1)", value)
            element.set(name, new)
    size = {key: root.attrib[key] for key in ("width", "height", "viewBox")}
    root.attrib.clear()
    root.attrib.update(
        {
            "id": chart_id,
            "class": "chart",
            "role": "img",
            "aria-label": label,
            **size,
            "stroke-linejoin": "round",  # what matplotlib's dropped global style said
            "stroke-linecap": "butt",
        }
    )
    return ElementTree.tostring(root, encoding="unicode")


def _drop(parent: ElementTree.Element, local_names: set[str]) -> None:
    for child in list(parent):
        if child.tag.removeprefix(_SVG) in local_names:
            parent.remove(child)
        else:
            _drop(child, local_names)
            if child.tag.removeprefix(_SVG) == "defs" and len(child) == 0:
                parent.remove(child)


def empty_svg(chart_id: str, label: str, message: str = NO_ANSWERS) -> str:
    """A small chart that only says *message* (nothing to draw)."""
    _configure()
    fig = Figure(figsize=(6, 0.6))
    fig.text(0.5, 0.5, message, ha="center", va="center", color=MUTED, fontsize=10)
    return _svg(fig, chart_id, f"{label}: {message}")


def _value(estimate: Estimate) -> float:
    """The figure, or NaN (a gap) when it is insufficient."""
    if not estimate.sufficient or estimate.value is None:
        return math.nan
    return estimate.value


def _days(days: Sequence[date]) -> list[float]:
    """Dates as matplotlib's day numbers (plotting numbers keeps the types plain)."""
    # matplotlib.dates has no annotations, hence the ignores here and for its locator.
    return [float(date2num(datetime.combine(day, time()))) for day in days]  # type: ignore[no-untyped-call]


# --- NPS over time ------------------------------------------------------------------------


def nps_trend_svg(
    points: Sequence[TrendPoint], *, min_n: int = MIN_N, chart_id: str = "nps-trend"
) -> str:
    """NPS per period as a line with its margin of error as a shaded band; a period with
    too few answers is a gap, marked × at the foot of the chart."""
    label = "NPS per period with its 95 % margin of error"
    if not points:
        return empty_svg(chart_id, label)
    points = sorted(points, key=lambda p: p.period_start)
    x = _days([p.period_start for p in points])
    values = [_value(p.nps) for p in points]
    ok = [not math.isnan(v) for v in values]
    low = [_or_nan(p.nps.low) if ok[i] else math.nan for i, p in enumerate(points)]
    high = [_or_nan(p.nps.high) if ok[i] else math.nan for i, p in enumerate(points)]

    fig, ax = _axes(
        9.6, 2.6, left=_NUMBERS_LEFT, right=0.2, top=_LEGEND_TOP, bottom=_TICKS_BOTTOM - 0.15
    )
    band = ax.fill_between(x, low, high, where=ok, color=BAND, linewidth=0, interpolate=False)
    band.set_gid("band")
    # A period between two gaps has no neighbour to span a band to: draw its interval.
    alone = [
        i
        for i in range(len(points))
        if ok[i] and not (i > 0 and ok[i - 1]) and not (i + 1 < len(points) and ok[i + 1])
    ]
    if alone:
        ax.vlines(
            [x[i] for i in alone],
            [low[i] for i in alone],
            [high[i] for i in alone],
            color=BAND,
            linewidth=6,
        ).set_gid("band-single")
    ax.axhline(0, color=ZERO, linewidth=0.8)
    ax.plot(x, values, color=LINE, linewidth=1.6, marker="o", markersize=3)[0].set_gid("nps")
    gaps = [x[i] for i in range(len(points)) if not ok[i]]
    if gaps:
        ax.plot(
            gaps,
            [0.04] * len(gaps),
            transform=ax.get_xaxis_transform(),
            linestyle="none",
            marker="x",
            markersize=5,
            color=MUTED,
        )[0].set_gid("insufficient")
    ax.set_ylim(-100, 100)
    ax.set_yticks([-100, -50, 0, 50, 100])
    ax.set_ylabel("NPS")
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    locator = AutoDateLocator(minticks=3, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    if len(x) == 1:
        ax.set_xlim(x[0] - 1, x[0] + 1)
    handles = [
        Line2D([], [], color=LINE, linewidth=1.6, marker="o", markersize=3, label="NPS"),
        Patch(color=BAND, label="95 % margin of error"),
    ]
    if gaps:
        handles.append(
            Line2D(
                [],
                [],
                color=MUTED,
                linestyle="none",
                marker="x",
                label=f"insufficient (n < {min_n})",
            )
        )
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=len(handles))
    return _svg(fig, chart_id, f"{label}; the numbers are in the table below")


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


# --- the scores ---------------------------------------------------------------------------


def distribution_svg(counts: Sequence[int], *, chart_id: str = "nps-distribution") -> str:
    """Answers per NPS score 0..10: detractors red, passives amber, promoters green."""
    label = "Answers per NPS score"
    if len(counts) != 11:
        raise ValueError(f"expected 11 counts (scores 0..10), got {len(counts)}")
    if not any(counts):
        return empty_svg(chart_id, label)
    colours = [DETRACTOR] * 7 + [PASSIVE] * 2 + [PROMOTER] * 2
    fig, ax = _axes(6, 2.3, left=_NUMBERS_LEFT, right=0.15, top=_LEGEND_TOP, bottom=_TICKS_BOTTOM)
    bars = ax.bar(range(11), counts, color=colours, width=0.75)
    for score, bar in enumerate(bars):
        bar.set_gid(f"score-{score}")
    ax.bar_label(bars, fmt="{:.0f}", padding=2, fontsize=8)
    ax.set_xticks(range(11))
    ax.set_xlabel("Score (0 = not at all likely to recommend, 10 = extremely likely)")
    ax.set_ylabel("Answers")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(y=0.12)
    ax.legend(
        handles=[
            Patch(color=DETRACTOR, label="Detractors (0–6)"),
            Patch(color=PASSIVE, label="Passives (7–8)"),
            Patch(color=PROMOTER, label="Promoters (9–10)"),
        ],
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncols=3,
    )
    return _svg(fig, chart_id, f"{label}; the numbers are in the table below")


# --- NPS and CSAT by channel, partner, touchpoint -----------------------------------------


def _estimate(row: Breakdown, metric: Metric) -> Estimate:
    return row.nps if metric == "nps" else row.csat


def breakdown_order(rows: Sequence[Breakdown], metric: Metric) -> list[Breakdown]:
    """Best first; rows with too few answers last, most answers first."""

    def key(row: Breakdown) -> tuple[bool, float, int, str]:
        e = _estimate(row, metric)
        value = _value(e)
        sufficient = not math.isnan(value)
        return (not sufficient, -value if sufficient else 0.0, -e.n, row.label)

    return sorted(rows, key=key)


def breakdown_svg(
    rows: Sequence[Breakdown],
    metric: Metric,
    title: str,
    *,
    min_n: int = MIN_N,
    chart_id: str | None = None,
) -> str:
    """Horizontal bars of NPS (−100..100) or CSAT (0..100 %) per row with the 95 %
    interval as error bars; a row with too few answers has no bar, only the words
    "insufficient (n = 12 < 30)". *title* names the chart for a screen reader (the page
    shows it in the figure's caption)."""
    chart_id = chart_id or f"{metric}-{_slug(title)}"
    if not rows:
        return empty_svg(chart_id, title)
    ordered = breakdown_order(rows, metric)
    labels = [_text(row.label) for row in ordered]
    numbers = [
        estimate_text(e, metric, min_n)
        for e in (_estimate(row, metric) for row in ordered)
        if e.sufficient
    ]
    fig, ax = _axes(
        6,
        _ROW * len(ordered),
        left=_width(labels, 9) + 0.15,
        right=_width(numbers, 8) + 0.15,
        top=0.1,
        bottom=_TICKS_BOTTOM,
    )
    drawn: list[tuple[int, float, float, float]] = []  # (row, value, below, above)
    for y, row in enumerate(ordered):
        e = _estimate(row, metric)
        if not e.sufficient or e.value is None:
            ax.text(
                0.01,
                y,
                insufficient_text(e.n, min_n),
                transform=ax.get_yaxis_transform(),
                ha="left",
                va="center",
                color=MUTED,
                style="italic",
                fontsize=8,
            ).set_gid(f"insufficient-{y}")
            continue
        # The interval is not centred on the figure (adjusted Wald): draw low..high.
        low = e.value - e.low if e.low is not None else 0.0
        high = e.high - e.value if e.high is not None else 0.0
        drawn.append((y, e.value, max(low, 0.0), max(high, 0.0)))
        ax.text(
            1.01,
            y,
            estimate_text(e, metric, min_n),
            transform=ax.get_yaxis_transform(),
            ha="left",
            va="center",
            fontsize=8,
        )
    if drawn:
        # One call for all the bars: an error bar container per row costs a lot of time.
        bars = ax.barh(
            [y for y, *_ in drawn],
            [value for _, value, _, _ in drawn],
            height=0.62,
            color=BAR,
            xerr=[[below for *_, below, _ in drawn], [above for *_, above in drawn]],
            error_kw={"ecolor": ERROR, "capsize": 3, "elinewidth": 1},
        )
        for (y, *_), bar in zip(drawn, bars, strict=True):
            bar.set_gid(f"bar-{y}")
    ax.set_yticks(range(len(ordered)), labels=labels)
    ax.set_ylim(len(ordered) - 0.5, -0.5)  # best on top
    if metric == "nps":
        ax.set_xlim(-100, 100)
        ax.set_xticks([-100, -50, 0, 50, 100])
        ax.axvline(0, color=ZERO, linewidth=0.8)
        ax.set_xlabel("NPS")
    else:
        ax.set_xlim(0, 100)
        ax.set_xlabel("CSAT, % satisfied")
    ax.tick_params(axis="y", length=0)
    return _svg(fig, chart_id, f"{_text(title, 80)}; the numbers are in the table below")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "chart"


# --- follow-up ----------------------------------------------------------------------------


def tasks_svg(rows: Sequence[TeamTasks], *, chart_id: str = "tasks-by-team") -> str:
    """Open and overdue follow-up tasks per team, side by side, most overdue first."""
    label = "Open and overdue follow-up tasks per team"
    if not any(row.open or row.overdue for row in rows):
        return empty_svg(chart_id, label, NO_TASKS)
    ordered = sorted(rows, key=lambda r: (-r.overdue, -r.open, r.team))
    labels = [_text(r.team) for r in ordered]
    fig, ax = _axes(
        6,
        1.4 * _ROW * len(ordered),
        left=_width(labels, 9) + 0.15,
        right=0.3,
        top=_LEGEND_TOP,
        bottom=_TICKS_BOTTOM,
    )
    y = list(range(len(ordered)))
    opened = ax.barh([i - 0.2 for i in y], [r.open for r in ordered], height=0.38, color=TASK_OPEN)
    overdue = ax.barh(
        [i + 0.2 for i in y], [r.overdue for r in ordered], height=0.38, color=TASK_OVERDUE
    )
    for i, bar in enumerate(opened):
        bar.set_gid(f"open-{i}")
    for i, bar in enumerate(overdue):
        bar.set_gid(f"overdue-{i}")
    ax.bar_label(opened, fmt="{:.0f}", padding=2, fontsize=8)
    ax.bar_label(overdue, fmt="{:.0f}", padding=2, fontsize=8)
    ax.set_yticks(y, labels=labels)
    ax.set_ylim(len(ordered) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(x=0.1)
    ax.set_xlabel("Tasks")
    ax.legend(
        handles=[Patch(color=TASK_OPEN, label="Open"), Patch(color=TASK_OVERDUE, label="Overdue")],
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncols=2,
    )
    return _svg(fig, chart_id, f"{label}; the numbers are in the table below")


def root_causes_svg(rows: Sequence[tuple[str, int]], *, chart_id: str = "root-causes") -> str:
    """Tasks per root cause, most frequent first."""
    label = "Tasks per root cause"
    if not any(count for _, count in rows):
        return empty_svg(chart_id, label, NO_ROOT_CAUSES)
    ordered = sorted(rows, key=lambda r: (-r[1], r[0]))
    labels = [_text(cause) for cause, _ in ordered]
    fig, ax = _axes(
        6, _ROW * len(ordered), left=_width(labels, 9) + 0.15, right=0.3, top=0.1, bottom=0.5
    )
    bars = ax.barh(range(len(ordered)), [count for _, count in ordered], height=0.62)
    for i, bar in enumerate(bars):
        bar.set_color(ROOT_CAUSE)
        bar.set_gid(f"cause-{i}")
    ax.bar_label(bars, fmt="{:.0f}", padding=2, fontsize=8)
    ax.set_yticks(range(len(ordered)), labels=labels)
    ax.set_ylim(len(ordered) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(x=0.1)
    ax.set_xlabel("Tasks")
    return _svg(fig, chart_id, f"{label}; the numbers are in the table below")
