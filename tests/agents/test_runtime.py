"""The runtime's database effect: streams wait for the database, web requests give up."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from sqlalchemy import Engine, text

from agents import runtime
from agents.runtime import DatabaseUnavailableError, Runtime
from models.store.engine import make_engine
from streams.settings import Settings


def unreachable_engine() -> Engine:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    return make_engine(f"postgresql+psycopg://cxloop:x@127.0.0.1:{port}/cxloop")


def select_one(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT 1")).scalar_one())


async def test_a_web_request_gets_database_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "REQUEST_PATIENCE_S", 0.5)
    engine = unreachable_engine()
    rt = Runtime(Settings(), engine, topics=None)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError):
        await rt.db_for_request(select_one, engine)
    assert time.monotonic() - started < 5
    engine.dispose()


async def test_a_stream_waits_for_the_database_instead_of_failing() -> None:
    engine = unreachable_engine()
    rt = Runtime(Settings(), engine, topics=None)  # type: ignore[arg-type]
    waiting = asyncio.ensure_future(rt.db(select_one, engine))
    done, _ = await asyncio.wait([waiting], timeout=1.5)
    assert not done, "rt.db gave up while the database was down"
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    engine.dispose()
