"""Shared fixtures: databases (SQLite file, or a fresh PostgreSQL database per test)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from models.store.engine import make_engine
from models.store.schema import create_schema


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
    admin_url = make_url(postgres_admin_url())
    name = f"cxloop_{uuid.uuid4().hex[:12]}"
    admin = make_engine(admin_url.render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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


def wait_for(
    check: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> object:
    """Poll *check* until it returns something truthy; fail with *what* after *timeout* s."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")
