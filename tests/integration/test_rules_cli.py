"""`cxloop rules check | backtest | explain` through the real command, on files and SQLite;
and the backtest against the live path (decision_store) on the same contacts."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session
from typer.testing import CliRunner

from agents.cli.main import cli
from models.backtest import backtest
from models.contact_events import ContactEvent
from models.followup_rules import load_followup_rules
from models.rules import Rules, load_rules
from models.store.decisions import decide_contacts
from models.store.engine import make_engine
from models.store.schema import create_schema
from models.store.survey_timers import fire_due_timers, next_due_at
from models.store.tables import SurveyResponse
from streams.settings import get_settings
from tests.factories import file_contact_event as contact
from tests.factories import file_contact_event_data as event_data

RULE_SETS = Path(str(files("models").joinpath("rule_sets")))
DEMO = load_rules()
EXAMPLE = load_rules(RULE_SETS / "example.toml")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
TASK_DUE = load_followup_rules()  # what opens complaint tasks


# ------------------------------------------------------------------------------ rules check


def test_check_lists_a_valid_file(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["rules", "check", str(RULE_SETS / "example.toml")])
    assert result.exit_code == 0, result.output
    assert "version  example-2026.11" in result.stdout
    assert f"digest   {EXAMPLE.digest}" in result.stdout
    assert "global cap 180d" in result.stdout
    for programme in ("transactional", "support", "relationship", "complaint-handling"):
        assert programme in result.stdout
    assert "after-support-episode" in result.stdout


def test_check_names_the_line_of_a_mistake(runner: CliRunner, tmp_path: Path) -> None:
    text_ = (RULE_SETS / "example.toml").read_text()
    broken = text_.replace('delay = "24h"', 'delay = "3x"')
    line = broken.splitlines().index('  delay = "3x"') + 1
    path = tmp_path / "rules.toml"
    path.write_text(broken)
    result = runner.invoke(cli, ["rules", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:{line}: programme.1.rule.0.delay: Value error, invalid duration '3x'" in (
        result.stderr
    )
    assert result.stdout == ""


def test_check_of_a_missing_file_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["rules", "check", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1
    assert "nope.toml: cannot read" in result.stderr


def test_worker_with_a_bad_rules_file_exits_2(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('version = "x"\n[[programme]]\nname = "p"\n')
    monkeypatch.setenv("CXLOOP_RULES_FILE", str(path))
    monkeypatch.setenv("CXLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXLOOP_DATABASE_URL", f"sqlite:///{tmp_path}/cx.db")
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["worker"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert f"{path}:2: programme.0.template: Field required" in result.stderr


# --------------------------------------------------------------------------- rules backtest


def _jsonl(path: Path, events: list[dict[str, Any]], extra: Sequence[bytes] = ()) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events) + b"".join(extra))
    return path


def test_backtest_json(runner: CliRunner, tmp_path: Path) -> None:
    monday = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Amsterdam
    events = [
        event_data("s1", "support_contact", monday, case_id="K-1"),
        event_data("s2", "support_contact", monday + timedelta(hours=6), case_id="K-1"),
        event_data("s3", "support_contact", monday + timedelta(hours=23), case_id="K-1"),
        event_data("i1", "first_invoice", monday, customer="C-2"),
        event_data("x1", "cancellation", monday + timedelta(days=10), customer="C-2"),
        event_data("s1", "support_contact", monday, case_id="K-1"),  # replayed
    ]
    path = _jsonl(tmp_path / "events.jsonl", events, [b"{not json\n"])
    result = runner.invoke(
        cli,
        [
            "rules",
            "backtest",
            "--rules",
            str(RULE_SETS / "example.toml"),
            "--events",
            str(path),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    forecast = orjson.loads(result.stdout)
    assert forecast["rules_version"] == EXAMPLE.label
    assert forecast["input"] == {
        "lines": 7,
        "contacts": 5,
        "consent_changes": 0,
        "duplicate_events": 1,
        "after_until": 0,
        "invalid": 1,
    }
    ((invalid,),) = [forecast["invalid_lines"]]
    assert invalid["line"] == 7
    assert invalid["reason"].startswith("not_json: ")
    assert invalid["reason"].endswith(" at position 1")
    assert forecast["surveys_per_week"] == {"support": {"2026-W10": 1}}
    assert forecast["reasons"] == {
        "support": {"superseded": 2, "surveyed": 1},
        "relationship": {"cancelled": 1},
        "-": {"duplicate_event": 1, "no_programme": 1},
    }
    assert forecast["customers"] == {
        "seen": 2,
        "surveyed": 1,
        "reach": 0.5,
        "surveys_per_customer": {"0": 1, "1": 1, "2": 0, "3+": 0},
    }
    assert forecast["until"] == (monday + timedelta(days=70)).isoformat()
    assert any("no survey answers" in note for note in forecast["notes"])
    assert "example.nl" not in result.stdout


def test_backtest_table_from_stdin_until(runner: CliRunner) -> None:
    lines = b"".join(
        orjson.dumps(event_data(f"p{i}", "purchase", T0 + timedelta(days=i))) + b"\n"
        for i in range(3)
    )
    result = runner.invoke(
        cli,
        [
            "rules",
            "backtest",
            "--rules",
            str(RULE_SETS / "demo.toml"),
            "--events",
            "-",
            "--until",
            "2026-04-01",
        ],
        input=lines,
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"rules version {DEMO.label}" in out
    assert "replayed 2026-03-02T09:00:00+00:00 .. 2026-04-01T00:00:00+02:00" in out
    assert "customers: 1 seen, 1 surveyed at least once (100.0%)" in out
    assert "2026-W10" in out
    assert "recently_surveyed" in out
    assert "note: no survey answers in a backtest" in out


def test_backtest_with_a_bad_rules_file_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('version = "x"\n')
    events = _jsonl(tmp_path / "events.jsonl", [])
    result = runner.invoke(
        cli, ["rules", "backtest", "--rules", str(path), "--events", str(events)]
    )
    assert result.exit_code == 1
    assert f"{path}:1: programme: Field required" in result.stderr


# ---------------------------------------------------------------------------- rules explain


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def _decide(engine: Engine, events: list[ContactEvent], rules: Rules) -> None:
    for e in events:
        decide_contacts(engine, [e], e.occurred_at + timedelta(minutes=1), rules, TASK_DUE)


def _row_with(output: str, *needles: str) -> str:
    rows = [line for line in output.splitlines() if all(n in line for n in needles)]
    assert len(rows) == 1, (needles, output)
    return rows[0]


def test_explain_names_programme_rule_version_and_reason(
    runner: CliRunner, sqlite_engine: Engine, sqlite_url: str
) -> None:
    events = [
        contact("p1", "purchase", T0),
        contact("p2", "purchase", T0 + timedelta(days=1)),
        contact("i1", "first_invoice", T0 + timedelta(days=2)),
        contact("c1", "complaint", T0 + timedelta(days=3)),
        contact("i2", "first_invoice", T0 + timedelta(days=4)),
        contact("x1", "cancellation", T0 + timedelta(days=5), customer="C-2"),
    ]
    _decide(sqlite_engine, events, DEMO)
    with sqlite_engine.connect() as connection:
        (invitation_id,) = connection.execute(
            text("SELECT invitation_id FROM survey_invitations WHERE customer_id = 'C-1'")
        ).one()
    with Session(sqlite_engine) as session, session.begin():
        session.add(
            SurveyResponse(
                response_id="r1",
                invitation_id=invitation_id,
                customer_id="C-1",
                nps=3,
                csat=2,
                comment="the engineer never came",
                submitted_at=T0 + timedelta(hours=2),
            )
        )

    result = runner.invoke(cli, ["rules", "explain", "C-1", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    out = result.stdout
    label = DEMO.label
    surveyed = _row_with(out, "transactional", "after-contact", label, "surveyed / surveyed")
    assert "every check passed" in surveyed
    recent = _row_with(out, "transactional", "after-contact", label, "recently_surveyed")
    assert "contact-frequency cap" in recent
    assert "last survey at 2026-03-02 09:01 UTC" in recent
    cancelled = _row_with(out, "relationship", "month-after-first-invoice", label, "cancelled")
    assert "cancels this programme" in cancelled
    complaint = _row_with(out, "decision", label, "open_complaint")
    assert "a complaint task is opened" in complaint
    scheduled = _row_with(
        out, "decision", "relationship", "month-after-first-invoice", label, "scheduled"
    )
    assert "due at 2026-04-06 08:00 UTC" in scheduled
    _row_with(out, "timer", "relationship", "pending survey timer, due 2026-04-06 08:00 UTC")
    assert "answered: NPS 3, CSAT 2" in out
    assert "complaint follow-up task open" in out
    assert "purchase contact by phone, event p1" in out
    # Customer C-2's contact is not C-1's; no address, name or comment is shown.
    assert "x1" not in out
    for private in ("example.nl", "Anna", "engineer never came", "+31"):
        assert private not in out
    timeline_times = [line[2:21] for line in out.splitlines() if line[2:6] == "2026"]
    assert timeline_times == sorted(timeline_times)


def test_explain_of_an_unknown_customer_exits_1(
    runner: CliRunner, sqlite_engine: Engine, sqlite_url: str
) -> None:
    result = runner.invoke(cli, ["rules", "explain", "C-404", "--database-url", sqlite_url])
    assert result.exit_code == 1
    assert "no records for customer C-404" in result.stderr


def test_explain_does_not_create_a_missing_sqlite_file(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    result = runner.invoke(
        cli, ["rules", "explain", "C-1", "--database-url", f"sqlite:///{missing}"]
    )
    assert result.exit_code == 1
    assert "no database at sqlite:///" in result.stderr
    assert not missing.exists()


# ------------------------------------------------------------- backtest against the live path


def _live_replay(engine: Engine, rules: Rules, events: list[ContactEvent]) -> dict[str, str]:
    """The live path on *events*: decide each at its time, fire timers at their due time."""
    ordered = sorted(events, key=lambda e: e.occurred_at)
    for e in ordered:
        while (due := next_due_at(engine)) is not None and due <= e.occurred_at:
            fire_due_timers(engine, rules, due)
        decide_contacts(engine, [e], e.occurred_at, rules, TASK_DUE)
    until = ordered[-1].occurred_at + timedelta(days=60)
    while (due := next_due_at(engine)) is not None and due <= until:
        fire_due_timers(engine, rules, due)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT decision_id, reason FROM survey_decisions"))
        return {str(row[0]): str(row[1]) for row in rows}


@pytest.mark.parametrize("rules", [DEMO, EXAMPLE], ids=["demo", "example"])
def test_the_backtest_decides_as_the_live_path(sqlite_engine: Engine, rules: Rules) -> None:
    draw = random.Random(7)
    # No complaints: the live path keeps a complaint open until staff close its task.
    kinds = ["purchase", "support_contact", "first_invoice", "cancellation", "inquiry"]
    events = [
        contact(
            f"e{n}",
            draw.choice(kinds),
            T0 + timedelta(minutes=draw.randrange(300 * 24 * 60)),
            customer=f"C-{draw.randrange(4)}",
            case_id=f"K-{draw.randrange(2)}",
        )
        for n in range(120)
    ]
    live = _live_replay(sqlite_engine, rules, events)
    forecast = backtest(rules, events)
    simulated = {r.decision_id: r.reason.value for r in forecast.resolutions}
    assert simulated == live
    assert sum(1 for reason in live.values() if reason == "surveyed") > 5
