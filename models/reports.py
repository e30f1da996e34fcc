"""What a report is, apart from the SQL that fills it in: the period it covers, the rows and
figures it gives (survey scores, the closed loop, customer service, tables for the terminal,
CSV and Parquet) and the plain arithmetic on them. The queries are models.store.reports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from models.errors import CxloopError
from models.stats import Estimate

_RELATIVE = re.compile(r"^(\d{1,5})([dwm])$")
REPORTS = ("nps", "csat", "ces", "response-rate", "partners", "tasks")


class ReportError(CxloopError, ValueError):
    """A report asked for something that does not exist (dimension, grain, dates)."""


@dataclass(frozen=True)
class Period:
    """The days a report covers, both ends included, in the reporting time zone."""

    since: date
    until: date

    def __post_init__(self) -> None:
        if self.since > self.until:
            raise ReportError(f"since {self.since} is after until {self.until}")


@dataclass(frozen=True)
class ScoreRow:
    """Survey figures for one group (and period, when asked by grain)."""

    key: tuple[str, ...]
    period: date | None
    counts: Mapping[str, int]
    nps: Estimate
    csat: Estimate
    response_rate: Estimate
    ces_mean: float | None

    @property
    def distribution(self) -> list[int]:
        return [self.counts.get(f"nps_{i}", 0) for i in range(11)]


def ranking(rows: Sequence[ScoreRow], metric: str = "nps") -> list[ScoreRow]:
    """Rows best first by *metric* ('nps' or 'csat'); insufficient ones last, by n."""

    def order(row: ScoreRow) -> tuple[int, float, int]:
        estimate: Estimate = getattr(row, metric)
        if estimate.value is None:
            return (1, 0.0, -estimate.n)
        return (0, -estimate.value, -estimate.n)

    return sorted(rows, key=order)


def parse_day(text: str, today: date) -> date:
    """'90d', '12w', '6m' (days, weeks, 30-day months before today) or an ISO date."""
    match = _RELATIVE.match(text.strip())
    if match:
        amount, unit = int(match[1]), match[2]
        return today - timedelta(days=amount * {"d": 1, "w": 7, "m": 30}[unit])
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(f"not a date or age: {text!r} (use 2026-01-31, 90d, 12w or 6m)") from None


# --- closed loop and customer service -----------------------------------------------------


@dataclass(frozen=True)
class ClosedLoop:
    """How follow-up of unhappy customers went, for tasks opened in the period."""

    opened: int
    first_contact_decided: int  # contacted, or past the first-contact due time
    contacted_in_sla: int
    in_sla: float | None  # percent of the decided ones contacted within the SLA
    hours_to_contact_median: float | None
    hours_to_contact_p90: float | None
    hours_to_close_median: float | None
    hours_to_close_p90: float | None
    closed: int
    closed_informed: int
    informed: float | None  # percent of closed tasks where the customer was told
    recovery_answers: int
    recovered: Estimate  # share of recovery answers that are no longer detractors
    root_causes: list[tuple[str, int]] = field(default_factory=list)


def share(part: int, whole: int) -> float | None:
    """*part* of *whole* in percent: for counts of every task or contact (no sampling, so no
    margin of error); None for nothing to count."""
    return 100.0 * part / whole if whole else None


@dataclass(frozen=True)
class TeamTaskCount:
    team: str
    open: int
    overdue: int


@dataclass(frozen=True)
class CustomerService:
    contacts: int  # service contacts in the period
    repeated: int  # followed by another on the same case or by the same customer in N days
    repeat_days: int
    repeat_rate: float | None  # percent of all service contacts (a count, not a sample)
    first_contact_answers: int
    first_contact_resolved: int
    first_contact_resolution: Estimate


# --- tables ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tabular:
    """A report as columns and flat rows, for the terminal, CSV and Parquet."""

    columns: list[str]
    rows: list[dict[str, Any]]


def as_record(row: ScoreRow, by: Sequence[str]) -> dict[str, Any]:
    """A flat row for CSV/Parquet: dimensions, period, counts and every estimate."""
    record: dict[str, Any] = {"period_start": row.period} if row.period else {}
    record.update(zip(by, row.key, strict=True))
    record.update(
        n=row.nps.n,
        nps=row.nps.value,
        nps_moe=row.nps.moe,
        nps_low=row.nps.low,
        nps_high=row.nps.high,
        promoters=row.counts["nps_promoters"],
        passives=row.counts["nps_passives"],
        detractors=row.counts["nps_detractors"],
        csat_n=row.csat.n,
        csat=row.csat.value,
        csat_moe=row.csat.moe,
        csat_low=row.csat.low,
        csat_high=row.csat.high,
        ces_n=row.counts["ces_n"],
        ces_mean=row.ces_mean,
        invited=row.counts["invited"],
        responded=row.counts["responded"],
        response_rate=row.response_rate.value,
        response_rate_moe=row.response_rate.moe,
    )
    return record
