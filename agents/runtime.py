"""What every agent needs at run time: settings, topics, the database and a clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ParamSpec, TypeVar

import faust
import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from agents.errors import AgentError
from models.followup_rules import FollowupRules, load_followup_rules
from models.rules import Rules, load_rules
from streams.settings import Settings
from streams.topics import Topics

P = ParamSpec("P")
T = TypeVar("T")

log = structlog.get_logger("cxloop.runtime")


REQUEST_PATIENCE_S = 5.0


class DatabaseUnavailableError(AgentError):
    """The database did not answer within a web request's patience."""


def utc_now() -> datetime:
    return datetime.now(UTC)


async def publish(topic: faust.TopicT, key: str, value: bytes) -> None:
    """Send and wait for the broker's ack, so the input is acked only after its output."""
    pending = await topic.send(key=key.encode("utf-8"), value=value)
    await pending


Sender = Callable[[faust.TopicT, str, bytes], Awaitable[None]]


@dataclass
class Runtime:
    """Settings, survey rules, topics, database, clock and the send effect (tests swap the
    last two)."""

    settings: Settings
    engine: Engine
    topics: Topics
    rules: Rules = field(default_factory=load_rules)
    clock: Callable[[], datetime] = field(default=utc_now)
    send: Sender = field(default=publish)
    raise_on_bug: bool = False
    followup: FollowupRules = field(default_factory=load_followup_rules)
    # Set when a task event was stored, so the relay publishes it without waiting a tick.
    task_events_waiting: asyncio.Event = field(default_factory=asyncio.Event)

    async def db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking store function off the event loop; retry while the database is
        unreachable, so the stream pauses (back-pressure) instead of losing the event."""
        return await self._db(None, fn, *args, **kwargs)

    async def db_for_request(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The same for a web request: give up after a few seconds (DatabaseUnavailableError),
        so the caller can answer 503 instead of hanging."""
        return await self._db(REQUEST_PATIENCE_S, fn, *args, **kwargs)

    async def _db(
        self, patience: float | None, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = None if patience is None else loop.time() + patience
        delay = 0.2
        while True:
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except (OperationalError, DBAPIError) as exc:
                if not _is_transient(exc):
                    raise
                if deadline is not None and loop.time() + delay > deadline:
                    raise DatabaseUnavailableError(type(exc.orig).__name__) from exc
                log.warning("database_unavailable", error=type(exc.orig).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


def _is_transient(exc: DBAPIError) -> bool:
    # Connection loss and lock time-outs pass; constraint and programming errors do not.
    return bool(exc.connection_invalidated) or isinstance(exc, OperationalError)


class OffsetClock:
    """The real clock plus a number of seconds read from a file (re-read when the file
    changes): rehearsals and tests move a running worker days ahead to watch SLA steps and
    survey timers fire, without touching the machine's clock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._offset = timedelta(seconds=float(self.path.read_text().strip() or 0))
                self._stamp = stamp
        except (OSError, ValueError):
            pass  # keep the last good offset
        return utc_now() + self._offset


def bind_event(agent: str, event: faust.EventT[bytes]) -> None:
    """Start a fresh log context for one event."""
    structlog.contextvars.clear_contextvars()
    message = event.message
    structlog.contextvars.bind_contextvars(
        agent=agent, topic=message.topic, partition=message.partition, offset=message.offset
    )
