"""Shared fixtures: databases (SQLite file, or a fresh PostgreSQL database per test), the CLI
runner, and wait_for. Test data: tests/factories.py; servers and processes: tests/harness."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from models.store.engine import make_engine
from models.store.schema import create_schema
from tests.harness.postgres import fresh_database
from tests.harness.waiting import WaitTimeoutError, wait_until


def postgres_admin_url() -> str:
    """The test PostgreSQL server; its absence is a failure, never a skip."""
    url = os.environ.get("CXLOOP_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "CXLOOP_TEST_POSTGRES_URL is not set: run the suite with `make test`, which starts "
            "a throwaway PostgreSQL, or point it at a server you can create databases on."
        )
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_database(postgres_admin_url()) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite:///{tmp_path}/cxloop.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """Each test that takes this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cxloop.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database with cxloop's schema."""
    engine = make_engine(database_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def runner() -> CliRunner:
    """Runs `cxloop` commands in this process."""
    return CliRunner()


def wait_for(
    check: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> object:
    """Poll *check* until it returns something truthy; fail with *what* after *timeout* s."""
    try:
        return wait_until(check, timeout, what, interval)
    except WaitTimeoutError as timed_out:
        message = str(timed_out)
    pytest.fail(message)
