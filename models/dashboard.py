"""What the BI dashboard shows: the figures the report queries fill in (plain dataclasses)
and how a number is written. A figure based on fewer than min_n answers is shown as
"insufficient (n = 12 < 30)", never as a number or a bar. The page itself is drawn by
agents.web.pages.dashboard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from models.stats import Estimate

Metric = Literal["nps", "csat"]
GRAINS = {"day": "Day", "week": "Week", "month": "Month"}
NOT_KNOWN = "(not known)"  # an empty dimension value: the contact did not say
# Characters XML cannot hold, and controls no font draws.
_UNWRITABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class TrendPoint:
    """NPS of one period (day, ISO week from Monday, or month from the 1st)."""

    period_start: date
    nps: Estimate


@dataclass(frozen=True)
class Breakdown:
    """NPS and CSAT of one value of a dimension (a channel, partner or touchpoint)."""

    label: str
    nps: Estimate
    csat: Estimate


@dataclass(frozen=True)
class TeamTasks:
    """A team's follow-up tasks that are not closed, and how many of them are overdue."""

    team: str
    open: int
    overdue: int


@dataclass(frozen=True)
class Figure:
    """A headline number, already formatted: ("Detractors contacted within SLA", "84 %",
    "n = 120")."""

    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class DashboardData:
    """Everything the dashboard shows for one date range and grain."""

    since: date
    until: date
    grain: str  # 'day' | 'week' | 'month'
    overall: Estimate  # NPS over the whole range
    overall_csat: Estimate
    trend: list[TrendPoint]
    distribution: list[int]  # answers per NPS score 0..10
    by_channel: list[Breakdown]
    by_partner: list[Breakdown]
    by_touchpoint: list[Breakdown]
    tasks: list[TeamTasks]
    root_causes: list[tuple[str, int]]
    closed_loop: list[Figure]
    customer_service: list[Figure]
    min_n: int


# --- numbers as text ----------------------------------------------------------------------


def insufficient_text(n: int, min_n: int) -> str:
    return f"insufficient (n = {n} < {min_n})"


def nps_text(value: float) -> str:
    """NPS points with their sign, "+42", "−13", "0"."""
    points = round(value)
    return f"{points:+d}".replace("-", "−") if points else "0"


def percent_text(value: float) -> str:
    return f"{round(value)} %"


def estimate_text(estimate: Estimate, metric: Metric, min_n: int) -> str:
    """The figure with its margin of error and n, or why there is no figure."""
    if not estimate.sufficient or estimate.value is None:
        return insufficient_text(estimate.n, min_n)
    show = nps_text if metric == "nps" else percent_text
    margin = f" ± {round(estimate.moe)}" if estimate.moe is not None else ""
    return f"{show(estimate.value)}{margin} (n = {estimate.n})"


def dimension_label(value: str) -> str:
    """A channel, partner, touchpoint, team or root cause as shown: without characters a
    page or an SVG cannot hold, and "(not known)" for ''."""
    return _UNWRITABLE.sub(" ", value).strip() or NOT_KNOWN
