"""Stopping `cxloop up` loses nothing it accepted: Ctrl-C drains the memory-only embedded
broker's topics before it stops, says what it could not drain, and a restart on the same data
picks up from SQL and does every effect once.

Real parts: `cxloop up` as a subprocess (tansu, aiosmtpd, a worker), SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams.consumer_lag import consumer_lag
from streams.topics import CONTACT_EVENTS, SURVEY_INVITATIONS
from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop

EVENTS = 2000
# Generous for a busy 2-core machine: draining 2,000 events takes the mailer ~10-25 s here.
DRAIN_TIMEOUT_S = 120
STOP_MARGIN_S = 30  # Faust's own stop after the drain, and the broker's


def events(count: int, prefix: str) -> list[dict[str, Any]]:
    """*count* contact events of as many customers (one survey each, no cap in the way)."""
    return [contact_event(f"{prefix}-{n}", customer=f"{prefix}-C{n:05d}") for n in range(count)]


def produce_all(bootstrap: str, batch: list[dict[str, Any]]) -> None:
    """Produce *batch* the way a busy integration does (pipelined, acks=all), keyed by
    customer, and return once the broker acknowledged every one."""

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            sent = [
                await producer.send(
                    CONTACT_EVENTS, value=orjson.dumps(e), key=e["customer"]["id"].encode()
                )
                for e in batch
            ]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(produce())


def start(loop: RunningLoop) -> int:
    """Start *loop*; the offset in its log where this run's output begins."""
    offset = loop.log_path.stat().st_size if loop.log_path.exists() else 0
    loop.start()
    return offset


def interrupt(loop: RunningLoop, within: float) -> tuple[int, float]:
    """Ctrl-C (SIGINT) once; (exit code, seconds until it exited). Fails if it outlives
    *within* seconds (then it is killed)."""
    assert loop.process is not None
    started = time.monotonic()
    loop.process.send_signal(signal.SIGINT)
    try:
        code = loop.process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        loop.stop()
        raise AssertionError(f"cxloop up did not stop within {within} s of Ctrl-C") from None
    loop.process = None
    return code, time.monotonic() - started


def output_since(loop: RunningLoop, offset: int) -> str:
    """What `cxloop up` wrote to the terminal (not its JSON log lines) since *offset*."""
    with loop.log_path.open("rb") as log:
        log.seek(offset)
        text = log.read().decode("utf-8", errors="replace")
    return "\n".join(line for line in text.splitlines() if not line.startswith("{"))


def count(loop: RunningLoop, sql: str) -> int:
    return int(loop.rows(sql)[0][0])


def test_a_drain_cut_short_names_what_it_leaves_behind(tmp_path: Path) -> None:
    """With a 0.1 s drain and a large backlog, the output names how many contact events were
    not decided and will be lost with the embedded broker; the count covers every event
    that SQL does not have."""
    sent = 5000
    loop = RunningLoop(
        data_dir=tmp_path / "cxloop",
        database_url=f"sqlite:///{tmp_path / 'cxloop.db'}",
        extra_env={"CXLOOP_DRAIN_TIMEOUT_S": "0.1"},
    )
    offset = start(loop)
    try:
        produce_all(loop.bootstrap, events(sent, "short"))
        code, _ = interrupt(loop, 0.1 + STOP_MARGIN_S)
    finally:
        loop.stop()
    output = output_since(loop, offset)

    assert code == 0, output
    found = re.search(
        r"Stopped\. ([\d,]+) contact events not yet decided\b.* will be lost: "
        r"the embedded broker keeps nothing",
        output,
    )
    assert found, output
    left = int(found.group(1).replace(",", ""))
    decided = count(loop, "SELECT count(*) FROM contact_events")
    # Every event SQL lacks is counted (an event decided but not yet committed on the topic
    # would be counted as well, and decided again on a replay).
    assert 0 < left <= sent
    assert left >= sent - decided


def test_ctrl_c_drains_every_event_and_a_restart_does_each_effect_once(tmp_path: Path) -> None:
    """2,000 events, Ctrl-C right after the broker acknowledged them: cxloop keeps consuming
    until the topics are read, so every event is decided, and says nothing is left behind.
    Started again on the same data (and sent the same events again, as a producer that never
    saw its acks would), it says what it resumes from SQL, and every event stays decided
    once and every invitation is mailed exactly once, none left pending.

    SQLite, the embedded default's database: the SQL that makes effects happen once is
    covered on PostgreSQL by the store and fault tests."""
    data_dir = tmp_path / "cxloop"
    database_url = f"sqlite:///{tmp_path / 'cxloop.db'}"
    env = {"CXLOOP_DRAIN_TIMEOUT_S": str(DRAIN_TIMEOUT_S)}
    batch = events(EVENTS, "restart")

    first = RunningLoop(data_dir=data_dir, database_url=database_url, extra_env=env)
    offset = start(first)
    try:
        produce_all(first.bootstrap, batch)
        code, seconds = interrupt(first, DRAIN_TIMEOUT_S + STOP_MARGIN_S)
    finally:
        first.stop()
    output = output_since(first, offset)
    assert code == 0, output
    assert seconds < DRAIN_TIMEOUT_S + STOP_MARGIN_S
    assert "Draining:" in output
    assert "Stopped. Nothing is left behind" in output, output
    assert "will be lost" not in output
    assert count(first, "SELECT count(*) FROM contact_events") == EVENTS
    assert count(first, "SELECT count(DISTINCT event_id) FROM survey_decisions") == EVENTS

    second = RunningLoop(data_dir=data_dir, database_url=database_url, extra_env=env)
    offset = start(second)
    try:
        assert "Resuming from SQL:" in output_since(second, offset)
        produce_all(second.bootstrap, batch)

        def topics_read() -> bool:
            lag = asyncio.run(
                consumer_lag(second.bootstrap, "cxloop", (CONTACT_EVENTS, SURVEY_INVITATIONS))
            )
            return lag.get(CONTACT_EVENTS) == 0 and lag.get(SURVEY_INVITATIONS) == 0

        wait_for(topics_read, 120, "the replayed events and their invitations read", 0.5)
        wait_for(
            lambda: (
                count(
                    second,
                    "SELECT count(*) FROM survey_invitations"
                    " WHERE delivery_status IN ('pending', 'sending')",
                )
                == 0
            ),
            60,
            "no invitation left pending",
            0.5,
        )
        invitations = {
            row[0]: row[1]
            for row in second.rows("SELECT invitation_id, delivery_status FROM survey_invitations")
        }
        mailed = Counter(message["X-Cxloop-Invitation"] for message in second.mails())
    finally:
        second.stop()

    assert count(second, "SELECT count(*) FROM contact_events") == EVENTS
    assert count(second, "SELECT count(*) FROM survey_decisions") == EVENTS
    assert count(second, "SELECT count(DISTINCT event_id) FROM survey_decisions") == EVENTS
    assert len(invitations) == EVENTS
    assert Counter(invitations.values()) == {"sent": EVENTS}
    assert set(mailed) == set(invitations)
    assert [i for i, n in mailed.items() if n != 1] == []


def test_a_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    """Ctrl-C while draining a large backlog with a long drain timeout: the second Ctrl-C
    stops cxloop at once, and it still says what it leaves behind."""
    sent = 5000
    loop = RunningLoop(
        data_dir=tmp_path / "cxloop",
        database_url=f"sqlite:///{tmp_path / 'cxloop.db'}",
        extra_env={"CXLOOP_DRAIN_TIMEOUT_S": str(DRAIN_TIMEOUT_S)},
    )
    offset = start(loop)
    try:
        produce_all(loop.bootstrap, events(sent, "twice"))
        assert loop.process is not None
        loop.process.send_signal(signal.SIGINT)
        wait_for(lambda: "Draining:" in output_since(loop, offset), 10, "the drain to start")
        code, seconds = interrupt(loop, STOP_MARGIN_S)
    finally:
        loop.stop()
    output = output_since(loop, offset)

    assert code == 0, output
    assert seconds < STOP_MARGIN_S < DRAIN_TIMEOUT_S
    assert "Stopping now." in output
    assert re.search(r"Stopped\. .* will be lost: the embedded broker keeps nothing", output), (
        output
    )
