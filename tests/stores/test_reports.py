"""Reports on the aggregates and task tables: NPS/CSAT with margin of error and minimum n,
partner ranking, closed-loop and customer-service figures, and `cxloop report` with CSV and
Parquet export (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from agents.cli.main import cli
from models.reports import Period, ReportError
from models.stats import nps_estimate, proportion_estimate
from models.store.reports import (
    closed_loop,
    customer_service,
    open_tasks_by_team,
    score_rows,
    tabulate,
)
from tests.factories import add_followup_task as task
from tests.factories import add_survey

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PERIOD = Period(date(2026, 11, 1), date(2026, 11, 30))


# One contact, its survey and (with a score) its scored answer, at NOW unless at= says.
survey = partial(add_survey, at=NOW)


def test_nps_by_partner_with_margin_and_minimum_n(engine: Engine) -> None:
    # Partner A: 20 promoters, 10 passives, 10 detractors (n 40); partner B: 5 answers.
    for score, count in ((10, 20), (7, 10), (2, 10)):
        for _ in range(count):
            survey(engine, partner="Partner A", nps=score)
    for score in (9, 9, 3, 8, 10):
        survey(engine, partner="Partner B", nps=score)
    survey(engine, partner="Partner B")  # issued, never answered
    survey(engine, partner="Partner A", nps=0, at=NOW - timedelta(days=60))  # outside

    rows = {r.key: r for r in score_rows(engine, PERIOD, by=["partner"])}
    a, b = rows[("Partner A",)], rows[("Partner B",)]
    assert a.nps == nps_estimate(20, 10, 10)
    assert a.nps.value == pytest.approx(25.0)
    assert a.nps.moe is not None and 10 < a.nps.moe < 40
    assert (a.counts["invited"], a.counts["responded"]) == (40, 40)
    assert not b.nps.sufficient and b.nps.value is None and b.nps.n == 5
    assert (b.counts["invited"], b.counts["responded"]) == (6, 5)
    assert b.distribution == [0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 1]

    # A lower minimum n shows B; the ranking puts the insufficient last whatever its value.
    shown = {r.key: r for r in score_rows(engine, PERIOD, by=["partner"], min_n=5)}
    assert shown[("Partner B",)].nps.value == pytest.approx(40.0)
    table = tabulate(engine, "partners", PERIOD, NOW)
    assert [(r["rank"], r["partner"]) for r in table.rows] == [
        (1, "Partner A"),
        (None, "Partner B"),
    ]
    assert table.rows[1]["nps"] is None

    # Weekly trend: the sums of the weeks equal the total.
    weeks = score_rows(engine, PERIOD, grain="week")
    assert sum(r.counts["nps_n"] for r in weeks) == 45
    assert all(r.period is not None and r.period.weekday() == 0 for r in weeks)

    with pytest.raises(ReportError, match="unknown dimension"):
        score_rows(engine, PERIOD, by=["colour"])


def test_csat_and_first_contact_resolution(engine: Engine) -> None:
    for i in range(40):
        survey(
            engine,
            partner="P",
            csat=5 if i < 30 else 2,
            channel="chat" if i % 2 else "phone",
            answers={"solved_first_contact": i < 24},
        )
    rows = {r.key: r for r in score_rows(engine, PERIOD, by=["channel"], min_n=10)}
    assert rows[("chat",)].csat == proportion_estimate(15, 20, min_n=10)
    total = score_rows(engine, PERIOD)[0]
    assert total.csat.value == pytest.approx(75.0)
    service = customer_service(engine, PERIOD)
    assert (service.first_contact_answers, service.first_contact_resolved) == (40, 24)
    assert service.first_contact_resolution == proportion_estimate(24, 40)


def test_repeat_contacts(engine: Engine) -> None:
    # Case K-1: three contacts within a week (the first two are repeated); customer X calls
    # again after ten days (not a repeat within 7 days); a purchase is not a service contact.
    for day, case in ((1, "K-1"), (3, "K-1"), (6, "K-1")):
        survey(engine, partner="P", customer=f"c-{day}", case_id=case, at=NOW - timedelta(days=day))
    survey(engine, partner="P", customer="X", at=NOW - timedelta(days=15))
    survey(engine, partner="P", customer="X", at=NOW - timedelta(days=5))
    survey(engine, partner="P", customer="Y", kind="purchase", at=NOW - timedelta(days=4))
    survey(engine, partner="P", customer="Y", kind="purchase", at=NOW - timedelta(days=3))
    service = customer_service(engine, PERIOD, repeat_days=7)
    assert (service.contacts, service.repeated) == (5, 2)
    assert service.repeat_rate == pytest.approx(40.0)


def test_closed_loop_figures(engine: Engine) -> None:
    start = NOW - timedelta(days=10)
    hours = timedelta(hours=1)
    # Contacted after 2, 4, 10 h (in SLA) and 20 h (late); one never contacted, overdue.
    for h in (2, 4, 10, 20):
        task(engine, team="care", opened=start, status="contacted", contacted_at=start + h * hours)
    task(engine, team="care", opened=start, status="open")
    # Closed: 30 h with the customer informed, 50 h without; root causes counted.
    for h, informed, cause in ((30, True, "billing_error"), (50, False, "billing_error")):
        task(
            engine,
            team="billing",
            opened=start,
            status="closed",
            contacted_at=start + hours,
            informed_at=start + 2 * hours if informed else None,
            closed_at=start + h * hours,
            root_cause=cause,
            recovered=informed,
            recovery_nps=9 if informed else 4,
        )
    task(engine, team="care", opened=start, status="open", origin="complaint")  # not counted
    loop = closed_loop(engine, PERIOD, NOW)
    assert loop.opened == 7
    assert (loop.first_contact_decided, loop.contacted_in_sla) == (7, 5)
    assert loop.in_sla == pytest.approx(100 * 5 / 7)
    assert loop.hours_to_contact_median == pytest.approx(3.0)  # 1, 1, 2, 4, 10, 20
    assert loop.hours_to_close_median == pytest.approx(40.0)
    assert (loop.closed, loop.closed_informed, loop.informed) == (2, 1, 50.0)
    assert loop.recovery_answers == 2 and not loop.recovered.sufficient
    assert loop.root_causes == [("billing_error", 2)]
    teams = {t.team: (t.open, t.overdue) for t in open_tasks_by_team(engine, NOW)}
    assert teams == {"care": (6, 6)}
    table = tabulate(engine, "tasks", PERIOD, NOW)
    by_team = {r["team"]: r for r in table.rows}
    assert by_team["billing"]["closed_informed"] == 50.0
    assert by_team["care"]["overdue"] == 6


def test_report_command_prints_and_exports(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    for score in [10] * 20 + [8] * 5 + [1] * 5:
        survey(engine, partner='=HYPERLINK("http://x")', nps=score, at=datetime.now(UTC))
    runner = CliRunner()
    args = ["report", "nps", "--by", "partner", "--since", "90d", "--database-url", database_url]
    shown = runner.invoke(cli, args)
    assert shown.exit_code == 0, shown.output
    assert "50.0 ±" in shown.output and "30" in shown.output

    as_csv = runner.invoke(cli, [*args, "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert rows[0]["partner"] == '\'=HYPERLINK("http://x")'  # neutralised
    assert float(rows[0]["nps"]) == 50.0 and rows[0]["n"] == "30"

    out = tmp_path / "nps.parquet"
    parquet = runner.invoke(cli, [*args, "--format", "parquet", "--output", str(out)])
    assert parquet.exit_code == 0, parquet.output
    table = pq.read_table(out).to_pylist()
    assert table[0]["partner"] == '=HYPERLINK("http://x")' and table[0]["nps"] == 50.0

    few = runner.invoke(cli, ["report", "csat", "--since", "7d", "--database-url", database_url])
    assert few.exit_code == 0 and "insufficient (n = 0 < 30)" in few.output
    bad = runner.invoke(cli, [*args[:-2], "--by", "colour", "--database-url", database_url])
    assert bad.exit_code == 2 and "unknown dimension 'colour'" in bad.output
    tasks = runner.invoke(cli, ["report", "tasks", "--database-url", database_url])
    assert tasks.exit_code == 0, tasks.output
