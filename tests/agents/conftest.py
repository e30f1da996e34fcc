"""Faust test-harness fixtures: an app per test, SQLite, a fixed clock, sends recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import orjson
import pytest

from agents.runtime import Runtime
from models.contact_events import parse_contact_event
from models.rules import load_rules
from models.store.decisions import decide_contact
from models.store.engine import make_engine
from models.store.schema import create_schema
from models.store.survey_state import InvitationInfo
from streams.app import create_app
from streams.settings import Settings
from streams.topics import declare_topics
from tests.factories import contact_event_data

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@dataclass
class Harness:
    app: faust.App
    rt: Runtime
    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def agent(self, name: str) -> Any:
        return next(a for a in self.app.agents.values() if a.name.endswith(name))

    def sent_to(self, topic: str) -> list[dict[str, Any]]:
        return [value for name, _key, value in self.sent if name == topic]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """Build an app with the given agent modules registered, on a fresh SQLite file (or
    the database_url= given)."""
    engines = []
    apps: list[faust.App] = []

    def build(*modules: Any, **settings: Any) -> Harness:
        # SQLite unless the test passes database_url (the `database_url` fixture: both).
        settings.setdefault("database_url", f"sqlite:///{tmp_path}/cxloop.db")
        config = Settings(
            data_dir=tmp_path,
            public_url="https://survey.example.test",
            **settings,
        )
        app = create_app(config, store="memory://")
        topics = declare_topics(app, 1, 1)
        engine = make_engine(config.database_url)
        create_schema(engine)
        engines.append(engine)
        apps.append(app)
        h = Harness(
            app=app, rt=Runtime(config, engine, topics, clock=lambda: NOW, raise_on_bug=True)
        )

        async def record(topic: faust.TopicT, key: str, value: bytes) -> None:
            h.sent.append((topic.get_topic_name(), key, orjson.loads(value)))

        h.rt.send = record
        for module in modules:
            module.register(app, h.rt)
        return h

    yield build
    for engine in engines:
        engine.dispose()
    for app in apps:
        # The consumer's thread never starts under test_context(), so its private
        # event loop is never closed by Faust; close it here.
        consumer = app.__dict__.get("_consumer") or getattr(app, "_consumer", None)
        thread = getattr(consumer, "_thread", None)
        if thread is not None and not thread.thread_loop.is_closed():
            thread.thread_loop.close()


def contact(n: int | str, customer: str = "C-1", **overrides: Any) -> bytes:
    """Contact event e-*n* as the agents get it: a purchase in a shop an hour before NOW;
    *overrides* replace or add top-level fields."""
    event = contact_event_data(
        f"e-{n}",
        "purchase",
        "2026-11-23T08:00:00+01:00",
        customer,
        channel="shop",
        locale="no",
        partner="Partner A",
    )
    event.update(overrides)
    return orjson.dumps(event)


def decided_invitation(
    h: Harness, n: int, customer: str = "C-1", at: datetime = NOW
) -> InvitationInfo:
    """Contact event *n* decided at *at* with the shipped rules (decision and invitation rows
    in SQL, as the trigger leaves them); the invitation it led to."""
    result = decide_contact(
        h.rt.engine,
        parse_contact_event(contact(n, customer=customer)),
        at,
        load_rules(),
        h.rt.followup,
    )
    assert result.invitation is not None
    return result.invitation


async def settled(h: Harness, check: Callable[[], bool], what: str, limit_s: float = 5.0) -> None:
    """Wait until *check* holds: put() hands the event over, the agent finishes later."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {limit_s} s waiting for {what}")
        await asyncio.sleep(0.01)
