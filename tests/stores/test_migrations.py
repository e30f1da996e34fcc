"""Migrations on SQLite and PostgreSQL: head is exactly the models, an upgrade keeps the
rows, everything downgrades to base, a database from a cxloop without migrations is
recognised and stamped, and `cxloop db` / the worker say what to do with exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Engine, MetaData, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner

from agents.cli.db import require_schema
from agents.cli.main import cli
from models.store import schema
from models.store.engine import make_engine
from models.store.tables import ContactEvent, FollowupTask, SurveyInvitation, SurveyResponse
from streams.settings import get_settings

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def empty(database_url: str) -> Iterator[Engine]:
    """An engine on a database with nothing in it (not even alembic_version)."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def differences(engine: Engine) -> list[Any]:
    """What autogenerate would put into a new revision: the models against the database."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, SQLModel.metadata))


def assert_head_is_the_models(engine: Engine) -> None:
    found = differences(engine)
    assert found == [], (
        f"{len(found)} differences between the models and the migrated database, e.g. "
        f"{found[:3]}: write the migration with `cxloop db revision MESSAGE --rev-id "
        "NNNN_name --database-url <an empty PostgreSQL>` (only PostgreSQL sees comments)"
    )


def assert_checks_are_the_models(engine: Engine) -> None:
    """Alembic's comparison leaves CHECK constraints out; compare them by name."""
    inspector = inspect(engine)
    for name, table in SQLModel.metadata.tables.items():
        declared = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        found = {c["name"] for c in inspector.get_check_constraints(name)}
        assert found == declared, f"CHECK constraints of {name}"


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def previous_of_head() -> str | None:
    head = schema.head_revision()
    return next(r.down_revision for r in schema.revisions() if r.id == head)


def drop_version_table(engine: Engine) -> None:
    """What a database made by a cxloop without migrations (create_all) looks like."""
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))


# --- (a) head is the models --------------------------------------------------------------


def test_an_upgrade_from_empty_gives_exactly_the_models(empty: Engine) -> None:
    assert schema.current_revision(empty) is None
    assert schema.upgrade(empty) == schema.head_revision()
    assert schema.current_revision(empty) == schema.head_revision()
    # Nothing ignored: types, nullability, indexes, unique and foreign keys, server
    # defaults, and on PostgreSQL column comments (SQLite has none to compare).
    assert_head_is_the_models(empty)
    assert_checks_are_the_models(empty)
    assert set(SQLModel.metadata.tables) | {"alembic_version"} == tables(empty)
    schema.check_schema(empty)


def test_a_second_upgrade_changes_nothing(empty: Engine) -> None:
    schema.upgrade(empty)
    assert schema.upgrade(empty) == schema.head_revision()
    assert_head_is_the_models(empty)


def test_the_revisions_form_one_line_from_the_baseline() -> None:
    chain = schema.revisions()
    assert chain[0].id == schema.BASELINE
    assert chain[0].down_revision is None
    assert [r.down_revision for r in chain[1:]] == [r.id for r in chain[:-1]]
    assert chain[-1].id == schema.head_revision()
    for revision in chain:
        assert (schema.MIGRATIONS_DIR / "versions" / f"{revision.id}.py").is_file()


# --- (b) an upgrade keeps the rows -------------------------------------------------------

# Rows with the columns every revision since the baseline has, inserted with Core into
# the tables as the previous revision reflects them (not through today's models).
ROWS: dict[str, dict[str, Any]] = {
    "contact_events": {
        "event_id": "e1",
        "occurred_at": T0,
        "kind": "order_delivered",
        "channel": "web",
        "customer_id": "c1",
        "partner": "acme",
        "received_at": T0,
    },
    "survey_invitations": {
        "invitation_id": "i1",
        "event_id": "e1",
        "customer_id": "c1",
        "locale": "en",
        "kind": "order_delivered",
        "channel": "web",
        "template": "transactional",
        "survey_channel": "email",
        "reminders_planned": 0,
        "reminder_gap_s": 0,
        "reminders_sent": 0,
        "created_at": T0,
        "delivery_status": "sent",
        "delivery_attempts": 1,
    },
    "survey_responses": {
        "response_id": "r1",
        "invitation_id": "i1",
        "customer_id": "c1",
        "nps": 3,
        "answers": {"nps": 3, "comment": "late"},
        "comment": "late",
        "submitted_at": T0,
    },
    "followup_tasks": {
        "task_id": "t1",
        "origin": "detractor",
        "source_id": "r1",
        "customer_id": "c1",
        "priority": 1,
        "status": "open",
        "team": "service",
        "opened_at": T0,
        "due_at": T0,
        "escalation_level": 0,
        "failed_attempts": 0,
        "version": 0,
        "nps": 3,
    },
}


def test_an_upgrade_from_the_previous_revision_keeps_the_rows(empty: Engine) -> None:
    previous = previous_of_head()
    schema.upgrade(empty, previous or "base")
    assert schema.current_revision(empty) == previous
    there = tables(empty)
    seeded = [name for name in ROWS if name in there]
    # Every revision after the baseline starts from the baseline's tables; only while the
    # baseline is head is "previous" the empty database, with nothing to keep.
    assert seeded == ([] if previous is None else list(ROWS))
    old = MetaData()
    old.reflect(empty, only=seeded)
    with empty.begin() as connection:
        for name in seeded:
            connection.execute(old.tables[name].insert(), ROWS[name])

    assert schema.upgrade(empty) == schema.head_revision()

    assert_head_is_the_models(empty)
    assert_checks_are_the_models(empty)  # SQLite copied the tables: checks kept
    with Session(empty) as session:
        for model, key in (
            (ContactEvent, "e1"),
            (SurveyInvitation, "i1"),
            (SurveyResponse, "r1"),
            (FollowupTask, "t1"),
        ):
            row = session.get(model, key)
            table: str = model.__tablename__  # type: ignore[assignment]  # a str here
            if table not in seeded:
                assert row is None
                continue
            assert row is not None
            assert {k: getattr(row, k) for k in ROWS[table]} == ROWS[table]


# --- (c) downgrade -----------------------------------------------------------------------


def test_everything_downgrades_to_base_and_back(empty: Engine) -> None:
    schema.upgrade(empty)
    assert schema.downgrade(empty, "base") is None
    assert tables(empty) <= {"alembic_version"}
    assert schema.current_revision(empty) is None
    schema.upgrade(empty)
    assert_head_is_the_models(empty)


# --- (d) a database from a cxloop without migrations ------------------------------------


def legacy(engine: Engine) -> None:
    """Tables exactly as create_all made them at the baseline, with a row, no revision."""
    schema.upgrade(engine, schema.BASELINE)
    drop_version_table(engine)
    old = MetaData()
    old.reflect(engine, only=["contact_events"])
    with engine.begin() as connection:
        connection.execute(old.tables["contact_events"].insert(), ROWS["contact_events"])


def test_a_database_without_migrations_is_refused_then_stamped_by_db_upgrade(
    empty: Engine, runner: CliRunner, database_url: str
) -> None:
    legacy(empty)
    with pytest.raises(schema.SchemaOutdatedError) as refused:
        schema.check_schema(empty)
    assert refused.value.legacy
    assert "cxloop db upgrade" in str(refused.value)
    assert schema.BASELINE in str(refused.value)

    result = runner.invoke(cli, ["db", "upgrade", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert f"no schema → {schema.head_revision()}" in result.output
    assert schema.current_revision(empty) == schema.head_revision()
    assert_head_is_the_models(empty)
    with Session(empty) as session:
        row = session.get(ContactEvent, "e1")
        assert row is not None
        assert row.received_at == T0
    if empty.dialect.name == "postgresql":  # the scratch schema was rolled back
        with empty.connect() as connection:
            probes = connection.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cxloop_baseline%'")
            ).all()
        assert probes == []


def test_tables_that_are_not_the_baseline_are_not_stamped(
    empty: Engine, runner: CliRunner, database_url: str
) -> None:
    legacy(empty)
    with empty.begin() as connection:
        connection.execute(text("DROP INDEX ix_survey_timers_due_at"))
    before = tables(empty)

    result = runner.invoke(cli, ["db", "upgrade", "--database-url", database_url])

    assert result.exit_code == 2
    assert "differ from revision 0001_baseline" in result.stderr
    assert "survey_timers: indexes differ" in result.stderr
    assert "Traceback" not in result.output
    assert schema.current_revision(empty) is None
    assert tables(empty) == before  # nothing stamped, nothing created


# --- (e) cxloop db current, history, the worker's refusal -------------------------------


def test_db_current_exits_1_behind_and_0_at_head(
    empty: Engine, runner: CliRunner, database_url: str
) -> None:
    behind = runner.invoke(cli, ["db", "current", "--database-url", database_url])
    assert behind.exit_code == 1
    assert behind.stdout == f"current: (none)\nhead:    {schema.head_revision()}\n"
    assert "cxloop db upgrade" in behind.stderr

    schema.upgrade(empty)
    at_head = runner.invoke(cli, ["db", "current", "--database-url", database_url])
    assert at_head.exit_code == 0, at_head.output
    assert at_head.stdout == (
        f"current: {schema.head_revision()}\nhead:    {schema.head_revision()}\n"
    )

    history = runner.invoke(cli, ["db", "history"])
    assert history.exit_code == 0
    assert history.stdout.splitlines()[0].startswith(f"{schema.BASELINE}  baseline")
    assert history.stdout.splitlines()[-1].endswith("(head)")


def test_a_database_from_a_newer_cxloop_is_refused(
    empty: Engine, runner: CliRunner, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    schema.upgrade(empty)
    with empty.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))

    current = runner.invoke(cli, ["db", "current", "--database-url", database_url])
    assert current.exit_code == 2
    assert "9999_future, which this cxloop does not know" in current.stderr
    upgraded = runner.invoke(cli, ["db", "upgrade", "--database-url", database_url])
    assert upgraded.exit_code == 2
    assert "9999_future" in upgraded.stderr
    with pytest.raises(typer.Exit) as refused:
        require_schema(empty)
    assert refused.value.exit_code == 2
    assert "a newer cxloop has upgraded it" in capsys.readouterr().err


def test_the_worker_refuses_a_schema_behind_head(
    empty: Engine, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = previous_of_head()
    if previous is None:  # while the baseline is head: tables without a revision are behind
        legacy(empty)
    else:
        schema.upgrade(empty, previous)
    with pytest.raises(typer.Exit) as refused:
        require_schema(empty)
    assert refused.value.exit_code == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert schema.head_revision() in message
    assert "run `cxloop db upgrade` (with the database URL setting CXLOOP_DATABASE_URL)" in message
    assert schema.current_revision(empty) == previous  # the worker migrated nothing


def test_the_worker_command_exits_2_on_an_old_schema(
    empty: Engine,
    database_url: str,
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    legacy(empty)
    monkeypatch.setenv("CXLOOP_DATABASE_URL", database_url)
    monkeypatch.setenv("CXLOOP_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["worker"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "run `cxloop db upgrade`" in result.stderr
    assert schema.current_revision(empty) is None


def test_the_worker_creates_the_schema_on_an_empty_database(empty: Engine) -> None:
    require_schema(empty)
    assert schema.current_revision(empty) == schema.head_revision()


# --- errors without stack traces or passwords --------------------------------------------


def test_a_bad_url_is_one_line_and_exit_2(runner: CliRunner) -> None:
    for url, expected in (
        ("nonsense", "is not a URL"),
        ("mysqlx://u:secret@host/db", "mysqlx://u:***@host/db: not a database SQLAlchemy knows"),
    ):
        result = runner.invoke(cli, ["db", "current", "--database-url", url])
        assert result.exit_code == 2, url
        assert expected in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "secret" not in result.output
        assert "Traceback" not in result.output


@pytest.mark.postgres
def test_an_unreachable_database_is_one_line_without_the_password(
    runner: CliRunner, postgres_url: str
) -> None:
    # The test server's address and user with a port nothing listens on, and a password.
    url = make_url(postgres_url).set(port=1, password="hunter2-secret")  # noqa: S106 - a fake
    shown = url.render_as_string(hide_password=True)
    for command in (["db", "upgrade"], ["db", "current"]):
        result = runner.invoke(
            cli, [*command, "--database-url", url.render_as_string(hide_password=False)]
        )
        assert result.exit_code == 2
        assert result.stderr.startswith(f"cannot use the database {shown}: OperationalError")
        assert len(result.stderr.strip().splitlines()) == 1
        assert "hunter2-secret" not in result.output
