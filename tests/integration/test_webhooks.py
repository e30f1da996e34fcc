"""Outgoing webhooks against a real receiver: the outbox store on SQLite and PostgreSQL, and
a running `cxloop up` whose complaint task reaches a local HTTP server, signed, after one
failed try; a webhook without allow_private to the same server is refused and never calls."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from sqlalchemy import Engine
from sqlmodel import Session

from models.store.engine import transaction
from models.store.tables import WebhookDelivery
from models.store.webhook_outbox import claim_deliveries, finish_delivery
from models.webhook_retries import Attempt
from models.webhook_signing import verify
from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import running_loop
from tests.harness.ports import free_port

KEY = bytes(range(100, 132))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


# --- the outbox store ---------------------------------------------------------------------


def add_delivery(engine: Engine, delivery_id: str, webhook: str = "crm") -> None:
    with transaction(engine) as session:
        session.add(
            WebhookDelivery(
                delivery_id=delivery_id,
                webhook=webhook,
                event_id=f"event-{delivery_id}",
                payload='{"task_id":"t-1"}',
                next_attempt_at=T0,
                created_at=T0,
            )
        )


def row(engine: Engine, delivery_id: str) -> WebhookDelivery:
    with Session(engine) as session:
        found = session.get(WebhookDelivery, delivery_id)
        assert found is not None
        return found


def test_a_claimed_delivery_is_leased_and_retried_with_backoff_until_it_fails(
    engine: Engine,
) -> None:
    add_delivery(engine, "msg_a")
    add_delivery(engine, "msg_other", webhook="not-configured-here")
    claimed = claim_deliveries(engine, ["crm"], T0, LEASE)
    assert [r.delivery_id for r in claimed] == ["msg_a"]
    assert claimed[0].attempts == 1
    assert claim_deliveries(engine, ["crm"], T0 + timedelta(seconds=59), LEASE) == []

    finish_delivery(engine, "msg_a", Attempt(status=500, error="HTTP 500"), T0, max_attempts=2)
    after = row(engine, "msg_a")
    assert (after.status, after.attempts, after.last_status) == ("pending", 1, 500)
    assert after.next_attempt_at.replace(tzinfo=UTC) == T0 + timedelta(seconds=2)
    assert claim_deliveries(engine, ["crm"], T0 + timedelta(seconds=1), LEASE) == []

    [again] = claim_deliveries(engine, ["crm"], T0 + timedelta(seconds=2), LEASE)
    assert again.attempts == 2
    finish_delivery(engine, "msg_a", Attempt(error="ClientConnectorError"), T0, max_attempts=2)
    failed = row(engine, "msg_a")
    assert (failed.status, failed.last_error) == ("failed", "ClientConnectorError")
    assert claim_deliveries(engine, ["crm"], T0 + timedelta(days=1), LEASE) == []


def test_a_2xx_delivers_and_a_refused_address_fails_at_once(engine: Engine) -> None:
    add_delivery(engine, "msg_ok")
    add_delivery(engine, "msg_refused")
    claimed = claim_deliveries(engine, ["crm"], T0, LEASE)
    assert sorted(r.delivery_id for r in claimed) == ["msg_ok", "msg_refused"]
    finish_delivery(engine, "msg_ok", Attempt(status=204), T0, max_attempts=10)
    refused = Attempt(error="refused: 127.0.0.1 is a loopback address", final=True)
    finish_delivery(engine, "msg_refused", refused, T0, max_attempts=10)
    ok = row(engine, "msg_ok")
    assert (ok.status, ok.last_status, ok.last_error) == ("delivered", 204, None)
    assert ok.delivered_at is not None
    assert row(engine, "msg_refused").status == "failed"
    # A late second result (an expired lease) does not undo the first.
    finish_delivery(engine, "msg_ok", Attempt(status=500, error="HTTP 500"), T0, max_attempts=10)
    assert row(engine, "msg_ok").status == "delivered"


# --- a running loop and a real receiver ---------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 in its own thread: /crm fails once, then accepts."""

    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def seen(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self.lock:
            self.requests.append(Received(request.path, dict(request.headers), body))
            first = len([r for r in self.requests if r.path == request.path]) == 1
        return web.Response(status=500 if first and request.path == "/crm" else 200)

    @classmethod
    def serving(cls) -> Iterator[Receiver]:
        receiver = cls()
        loop = asyncio.new_event_loop()
        started = threading.Event()
        app = web.Application()
        app.router.add_post("/{name}", receiver.handle)
        runner = web.AppRunner(app)

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", receiver.port).start())
            started.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert started.wait(10), "the receiver did not start"
        try:
            yield receiver
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from Receiver.serving()


def rules_with_webhooks(receiver: Receiver) -> str:
    default = files("models").joinpath("rule_sets", "followup.toml").read_text("utf-8")
    return default + (
        "\n[[webhook]]\n"
        'name = "crm"\n'
        f'url = "{receiver.url("/crm")}"\n'
        'secret_env = "CXLOOP_TEST_WEBHOOK_SECRET"\n'
        'events = ["task_opened"]\n'
        "allow_private = true\n"
        "max_attempts = 5\n"
        "\n[[webhook]]\n"
        'name = "blocked"\n'
        f'url = "{receiver.url("/blocked")}"\n'
        'secret_env = "CXLOOP_TEST_WEBHOOK_SECRET"\n'
        'events = ["task_opened"]\n'
    )


def test_a_complaint_task_reaches_the_webhook_signed_after_a_retry(
    tmp_path: Path, receiver: Receiver
) -> None:
    rules_file = tmp_path / "followup.toml"
    rules_file.write_text(rules_with_webhooks(receiver))
    env = {"CXLOOP_FOLLOWUP_FILE": str(rules_file), "CXLOOP_TEST_WEBHOOK_SECRET": SECRET}
    with running_loop(tmp_path, env=env) as loop:
        complaint = contact_event(
            "hook-1", customer="C-4242", kind="complaint", channel="web", comment="Te laat."
        )
        loop.emit(complaint)

        wait_for(lambda: len(receiver.seen("/crm")) >= 2, 30, "a retried webhook call")
        delivered = wait_for(
            lambda: loop.rows(
                "SELECT attempts, last_status FROM webhook_deliveries "
                "WHERE webhook = 'crm' AND status = 'delivered'"
            ),
            10,
            "the crm delivery to be recorded as delivered",
        )
        assert [tuple(r) for r in delivered] == [(2, 200)]  # type: ignore[union-attr]
        failed = wait_for(
            lambda: loop.rows(
                "SELECT attempts, last_error FROM webhook_deliveries "
                "WHERE webhook = 'blocked' AND status = 'failed'"
            ),
            10,
            "the blocked delivery to fail",
        )
        [(attempts, last_error)] = failed  # type: ignore[misc]
        [(task_id, payload)] = loop.rows(
            "SELECT t.task_id, d.payload FROM followup_tasks t "
            "JOIN webhook_deliveries d ON d.webhook = 'crm' "
            "WHERE t.origin = 'complaint' AND t.customer_id = 'C-4242'"
        )

    assert attempts == 1
    assert "refused" in last_error
    assert "127.0.0.1 is a loopback address" in last_error
    assert receiver.seen("/blocked") == []

    first, second = receiver.seen("/crm")[:2]
    for call in (first, second):
        verify(KEY, call.headers, call.body)
        assert call.body == payload.encode()
        assert call.headers["Content-Type"] == "application/json"
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    event = orjson.loads(second.body)
    assert event["event_type"] == "task_opened"
    assert event["task_id"] == task_id
    assert event["team"] == "complaints"
    assert "Te laat." not in second.body.decode()  # complaint text stays behind the API


def test_a_webhook_without_its_secret_stops_the_worker_at_start(
    tmp_path: Path, receiver: Receiver
) -> None:
    rules_file = tmp_path / "followup.toml"
    rules_file.write_text(rules_with_webhooks(receiver))
    env = {"CXLOOP_FOLLOWUP_FILE": str(rules_file)}
    with (
        pytest.raises(AssertionError, match=r"CXLOOP_TEST_WEBHOOK_SECRET\s+is\s+not\s+set"),
        running_loop(tmp_path, env=env),
    ):
        pass
