"""webhook_sender: send the task events queued in webhook_deliveries to their endpoints.

Every worker sweeps due deliveries each scheduler tick (claimed with a lease, so no two
send the same one), POSTs the exact stored JSON signed Standard-Webhooks style, and records
the outcome: 2xx delivered, anything else retried with backoff until the webhook's
max_attempts; a refused address (loopback, private, … unless allow_private) fails at once.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from datetime import datetime, timedelta

import aiohttp
import faust
import structlog

from agents.runtime import Runtime
from agents.timers.webhook_guard import (
    GuardedResolver,
    check_target,
    check_urls,
    guarded_socket_factory,
    refusal_in,
)
from models.followup_rules import WebhookSpec
from models.store.tables import WebhookDelivery
from models.store.webhook_outbox import claim_deliveries, finish_delivery
from models.webhook_retries import Attempt, attempt_for_status
from models.webhook_signing import load_secrets, signed_headers

log = structlog.get_logger("cxloop.webhooks")

BATCH = 20
CONCURRENCY = 5
USER_AGENT = "cxloop-webhooks/1"


def lease_for(timeout_s: float) -> timedelta:
    """Long enough for a whole batch to be sent before another worker may take it again."""
    rounds = math.ceil(BATCH / CONCURRENCY)
    return timedelta(seconds=timeout_s * rounds + 30)


def open_session(spec: WebhookSpec, timeout_s: float) -> aiohttp.ClientSession:
    """A client session whose every connection is checked against the address guard: the
    names it resolves, and the address each socket connects to (no DNS cache, so a name
    cannot be switched to a private address between the check and the connect)."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(spec.allow_private),
        socket_factory=guarded_socket_factory(spec.allow_private),
        use_dns_cache=False,
        limit=CONCURRENCY,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        trust_env=False,  # no proxy from the environment: it would see the address, not us
        headers={"User-Agent": USER_AGENT},
    )


async def post(
    session: aiohttp.ClientSession,
    spec: WebhookSpec,
    key: bytes,
    row: WebhookDelivery,
    now: Callable[[], datetime],
) -> Attempt:
    """One signed POST of a delivery's stored body; its outcome, never an exception."""
    body = row.payload.encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        **signed_headers(key, row.delivery_id, int(time.time()), body),
    }
    try:
        check_target(spec.url, spec.allow_private)
        async with session.post(
            spec.url, data=body, headers=headers, allow_redirects=False
        ) as response:
            return attempt_for_status(response.status, response.headers.get("Retry-After"), now())
    except TimeoutError:
        return Attempt(error=f"no answer within {session.timeout.total or 0:g} s")
    except (aiohttp.InvalidURL, ValueError) as exc:  # retrying will not help
        # The type only: the message would quote the URL, which may carry a token.
        return Attempt(error=f"unusable url: {type(exc).__name__}", final=True)
    except (aiohttp.ClientError, OSError) as exc:
        refused = refusal_in(exc)
        if refused is not None:
            return Attempt(error=str(refused), final=True)
        return Attempt(error=f"{type(exc).__name__}: {exc}"[:300])


async def send_due(rt: Runtime, specs: Mapping[str, WebhookSpec], keys: Mapping[str, bytes]) -> int:
    """Send every delivery that is due; the number delivered."""
    timeout = rt.settings.webhook_timeout_s
    rows = await rt.db(claim_deliveries, rt.engine, list(specs), rt.clock(), lease_for(timeout))
    if not rows:
        return 0
    gate = asyncio.Semaphore(CONCURRENCY)
    async with AsyncExitStack() as stack:
        sessions = {
            name: await stack.enter_async_context(open_session(specs[name], timeout))
            for name in {row.webhook for row in rows}
        }

        async def one(row: WebhookDelivery) -> bool:
            spec = specs[row.webhook]
            async with gate:
                attempt = await post(sessions[row.webhook], spec, keys[row.webhook], row, rt.clock)
            await record(rt, spec, row, attempt)
            return attempt.delivered

        results = await asyncio.gather(*(one(row) for row in rows))
    return sum(results)


async def record(rt: Runtime, spec: WebhookSpec, row: WebhookDelivery, attempt: Attempt) -> None:
    """Store an attempt's outcome and log it (the webhook's name, never its URL or body)."""
    after = await rt.db(
        finish_delivery,
        rt.engine,
        row.delivery_id,
        attempt,
        rt.clock(),
        spec.max_attempts,
        random.random(),  # noqa: S311 - jitter, not a secret
    )
    fields = {
        "webhook": spec.name,
        "delivery_id": row.delivery_id,
        "task_event_id": row.event_id,
        "attempts": row.attempts,
        "http_status": attempt.status,
    }
    if attempt.delivered:
        log.info("webhook_delivered", **fields)
    elif after is not None and after.status == "failed":
        log.warning("webhook_failed", error=attempt.error, **fields)
    else:
        log.info("webhook_retry_scheduled", error=attempt.error, **fields)


def register(app: faust.App, rt: Runtime) -> None:
    """The sender timer, when the follow-up rules have webhooks; a webhook without its
    secret in the environment stops the worker here, before anything runs."""
    specs = {spec.name: spec for spec in rt.followup.webhooks}
    if not specs:
        return
    check_urls(list(specs.values()))
    keys = load_secrets(list(specs.values()), os.environ)

    @app.timer(interval=rt.settings.scheduler_interval_s, name="webhook_sender")  # type: ignore[untyped-decorator]  # faust: untyped
    async def webhook_sender() -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(agent="webhooks")
        await send_due(rt, specs, keys)
