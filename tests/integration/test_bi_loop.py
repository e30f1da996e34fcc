"""The BI tables end to end through `cxloop up` (real broker, SMTP server; SQLite and
PostgreSQL): a detractor's answer, the follow-up worked and closed, the recovery survey two
weeks later (the worker's clock moved with CXLOOP_CLOCK_OFFSET_FILE) — then one lineage
query shows the whole chain, the aggregates hold both answers once, and the reports (API,
export, `cxloop report`) show them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from agents.cli.main import cli
from models.store.lineage import lineage_rows
from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop, running_loop

ANNA = "c-1001@example.nl"
DAY = 86400


@dataclass
class Loop:
    loop: RunningLoop
    clock_file: Path


@pytest.fixture
def bi(tmp_path: Path, database_url: str) -> Iterator[Loop]:
    clock_file = tmp_path / "clock-offset"
    clock_file.write_text("0\n")
    env = {"CXLOOP_CLOCK_OFFSET_FILE": str(clock_file)}
    with running_loop(tmp_path, database_url=database_url, env=env) as loop:
        yield Loop(loop, clock_file)


def answer(loop: RunningLoop, nth_mail: int, **fields: str) -> None:
    mails = wait_for(lambda: loop.mails_to(ANNA)[nth_mail:], 30, f"survey mail {nth_mail + 1}")
    token = loop.survey_token(mails[0])  # type: ignore[index]
    posted = httpx.post(f"{loop.web}/s/{token}", data=fields, timeout=10)
    assert posted.status_code == 200, posted.text


def test_lineage_aggregates_and_reports_of_a_closed_loop(bi: Loop) -> None:
    loop = bi.loop
    loop.emit(contact_event(1, inquiry_type="fault", team="care"))
    answer(loop, 0, nps="3", comment="Monteur kwam niet")
    found = wait_for(lambda: loop.rows("SELECT task_id FROM followup_tasks"), 30, "the task")
    task_id = found[0][0]  # type: ignore[index]
    with loop.staff() as staff:
        loop.work_task(
            staff,
            task_id,
            [
                ("call_attempt", "Klant gebeld", {}),
                ("resolved", "Nieuwe afspraak", {}),
                ("customer_informed", "Klant verteld dat de monteur dinsdag komt", {}),
                ("close", "", {"root_cause": "appointment_missed"}),
            ],
        )
    wait_for(
        lambda: loop.rows(
            "SELECT 1 FROM survey_decisions WHERE event_id = :e", e=f"recovery:{task_id}"
        ),
        30,
        "the recovery decision",
    )
    bi.clock_file.write_text(f"{15 * DAY}\n")  # two weeks on: the recovery survey is due
    answer(loop, 1, nps="9")
    wait_for(
        lambda: loop.rows("SELECT 1 FROM followup_tasks WHERE recovery_nps = 9"),
        30,
        "the recovery answer on the task",
    )
    wait_for(
        lambda: (
            loop.rows("SELECT count(*) FROM survey_responses WHERE scored_at IS NOT NULL") == [(2,)]
        ),
        30,
        "both answers scored",
    )

    # One query from the contact to the recovery answer.
    engine = loop.engine()
    try:
        rows = lineage_rows(engine, "C-1001")
    finally:
        engine.dispose()
    first = [r for r in rows if r["contact_event_id"] == "evt-1" and r["response_id"]]
    assert first, rows
    assert {r["decision_outcome"] for r in first} == {"surveyed"}
    assert {r["delivery_status"] for r in first} == {"sent"}
    assert {r["nps"] for r in first} == {3}
    assert {r["answer_question"] for r in first} >= {"nps", "comment"}
    assert {r["task_id"] for r in first} == {task_id}
    assert sorted({r["task_event_seq"] for r in first}) == [1, 2, 3, 4, 5]
    actions = {r["task_event_seq"]: r["action_type"] for r in first}
    assert actions == {
        1: None,
        2: "call_attempt",
        3: "resolved",
        4: "customer_informed",
        5: "close",
    }
    assert {r["root_cause"] for r in first} == {"appointment_missed"}
    assert {(r["recovery_nps"], bool(r["recovered"])) for r in first} == {(9, True)}
    recovery_response = first[0]["recovery_response_id"]
    second = [r for r in rows if r["contact_event_id"] == f"recovery:{task_id}"]
    assert {r["response_id"] for r in second} == {recovery_response}
    assert {r["programme"] for r in second} == {"recovery"}

    # The aggregates: each answer once, in its programme, touchpoint and team.
    scores = loop.rows(
        "SELECT programme, touchpoint, team, nps_n, nps_promoters, nps_detractors, nps_3, nps_9 "
        "FROM agg_scores WHERE grain = 'month' ORDER BY programme"
    )
    programme_of_first = first[0]["programme"]
    assert sorted(scores) == sorted(
        [
            (programme_of_first, "fault", "care", 1, 0, 1, 1, 0),
            ("recovery", "followup_closed", "", 1, 1, 0, 0, 1),
        ]
    )
    invitations = loop.rows(
        "SELECT sum(invited), sum(responded) FROM agg_invitations WHERE grain = 'day'"
    )
    assert [tuple(int(v) for v in row) for row in invitations] == [(2, 2)]

    # The reports read them: the API as JSON and CSV, and the command line.
    with loop.staff() as staff:
        got = staff.get(
            "/api/reports/nps", params={"by": "programme", "min_n": "1", "since": "30d"}
        )
        assert got.status_code == 200, got.text
        by_programme: dict[str, Any] = {r["programme"]: r for r in got.json()["rows"]}
        assert by_programme["recovery"]["nps"] == 100.0 and by_programme["recovery"]["n"] == 1
        assert by_programme[programme_of_first]["nps"] == -100.0
        exported = staff.get(
            "/api/reports/partners", params={"format": "csv", "min_n": "1", "since": "30d"}
        )
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        ranked = list(csv.DictReader(io.StringIO(exported.text)))
        assert [(r["partner"], r["n"], r["nps"]) for r in ranked] == [("CBG Connect", "2", "0.0")]
        assert staff.get("/api/reports/nope").status_code == 400
    assert httpx.get(f"{loop.web}/api/reports/nps", timeout=10).status_code == 401

    shown = CliRunner().invoke(
        cli,
        [
            "report",
            "tasks",
            "--since",
            "30d",
            "--until",
            "2099-01-01",
            "--database-url",
            loop.database_url,
        ],
        env={"COLUMNS": "200"},
    )
    assert shown.exit_code == 0, shown.output
    service = next(line for line in shown.output.splitlines() if "service" in line)
    cells = [c.strip() for c in service.split("│") if c.strip()]
    # team, open, overdue, opened, in SLA, contact median/p90, closed, …, informed
    assert cells[:4] == ["service", "0", "0", "1"] and cells[7] == "1", cells
    assert cells[-2] == "100.0", cells
