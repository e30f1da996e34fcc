"""Fault rig: a standalone broker, a switchable SMTP server and `cxloop worker` processes.

The broker and the SMTP server run in (or next to) the test process, the workers are real
`python -m agents worker` subprocesses, so a worker can be killed with SIGKILL while the
broker keeps its topics and the SMTP server keeps what it received. Tests are synchronous:
Kafka clients live on one private event-loop thread, the SMTP server on aiosmtpd's thread.
The parts are tests/harness's; this module puts them together for one fault test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import TopicPartition
from sqlalchemy import Engine, text

from models.store.engine import make_engine
from streams.topics import (
    ALL_TOPICS,
    CONTACT_EVENTS,
    DEAD_LETTERS,
    FOLLOWUP_ACTIONS,
    SCORED_RESPONSES,
    SURVEY_INVITATIONS,
    SURVEY_RESPONSES,
)
from tests.harness.ports import free_port
from tests.harness.processes import CxloopProcess, cxloop_worker, embedded_broker
from tests.harness.smtp import Received, SmtpServer
from tests.harness.topics import KafkaIO, Produced

PARTITIONS = 8
PUBLIC_URL = "http://survey.faults.test"
STAFF_TOKEN = "faults-staff-token"  # noqa: S105 - a test-only bearer token
APP_ID = "cxloop"
# The topics the worker's agents read (followup-tasks is for consumers outside cxloop).
CONSUMED_TOPICS = (
    CONTACT_EVENTS,
    SURVEY_INVITATIONS,
    SURVEY_RESPONSES,
    SCORED_RESPONSES,
    FOLLOWUP_ACTIONS,
    DEAD_LETTERS,
)


# --- answers ------------------------------------------------------------------------------


@dataclass
class Answer:
    """One survey answered through POST /api/responses, and what the API said."""

    invitation_id: str | None
    token: str
    nps: int
    comment: str
    status: int | None = None
    response_id: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def reply_lost(self) -> bool:
        """True when an earlier attempt got no HTTP answer (it may have been recorded)."""
        return bool(self.errors)


# --- the rig ------------------------------------------------------------------------------


class FaultRig:
    """Broker, SMTP server, database and workers for one fault test."""

    def __init__(self, tmp_path: Path, database_url: str, partitions: int = PARTITIONS) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.partitions = partitions
        self.broker = embedded_broker(tmp_path / "broker.log", start=False)
        self.smtp = SmtpServer(token_link=PUBLIC_URL)
        self.workers: list[CxloopProcess] = []
        self._kafka: KafkaIO | None = None
        self._engine: Engine | None = None

    # lifecycle

    def start(self) -> None:
        self.broker.start()
        self._kafka = KafkaIO(self.broker.bootstrap)
        # Created up front with the right partition count, so producing before the first
        # worker is up cannot auto-create a topic with the broker's default.
        self._kafka.create_topics(ALL_TOPICS, self.partitions)
        self.smtp.start()

    def close(self) -> None:
        """Stop everything this rig started, whatever state it is in."""
        errors: list[BaseException] = []
        steps: list[Callable[[], object]] = [
            *[w.stop for w in self.workers],
            self._close_kafka,
            self.smtp.stop,
            self.broker.stop,
            self._dispose_engine,
        ]
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest, then report
                errors.append(exc)
        if errors:
            raise errors[0]

    def _close_kafka(self) -> None:
        if self._kafka is not None:
            self._kafka.close()
            self._kafka = None

    def _dispose_engine(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def kafka(self) -> KafkaIO:
        assert self._kafka is not None, "rig not started"
        return self._kafka

    # workers

    def add_worker(self, app_id: str = APP_ID, **settings: str) -> CxloopProcess:
        """Start one more worker (with its own web port and data dir); not yet waited for.

        kill() is kill -9; stop() is SIGTERM, then SIGKILL after 20 s; each start writes a
        new log; a worker dies with the test process."""
        name = f"worker-{len(self.workers) + 1}"
        data_dir = self.tmp_path / name
        data_dir.mkdir(parents=True, exist_ok=True)
        started = cxloop_worker(
            name,
            {
                "kafka_bootstrap": self.broker.bootstrap,
                "app_id": app_id,
                "database_url": self.database_url,
                "smtp_host": self.smtp.host,
                "smtp_port": str(self.smtp.port),
                "smtp_starttls": "false",
                "smtp_backoff_max_s": "1",
                "public_url": PUBLIC_URL,
                "staff_token": STAFF_TOKEN,
                "log_format": "json",
                "data_dir": str(data_dir),
                "topic_partitions": str(self.partitions),
                **settings,
            },
            free_port(),
            self.tmp_path,
            log_per_start=True,
            die_with_parent=True,
        )
        self.workers.append(started)
        started.start()
        return started

    def live_workers(self) -> list[CxloopProcess]:
        return [w for w in self.workers if w.alive]

    def diagnose(self) -> list[str]:
        """Stack dumps and readiness of every live worker, for a report on a stuck loop."""
        live = self.live_workers()
        for worker in live:
            worker.dump_stacks()
        time.sleep(2)  # the dump is written by the worker's event loop
        return [f"{w.name}: /ready {w.readiness()}; stacks in {w.logs[-1]}" for w in live]

    def all_log_lines(self) -> list[dict[str, Any]]:
        return [line for w in self.workers for line in w.log_lines()]

    # input

    def produce(
        self, messages: Sequence[tuple[bytes | None, bytes | None]], topic: str = CONTACT_EVENTS
    ) -> list[Produced]:
        return self.kafka.produce(topic, messages)

    def produce_events(self, events: Sequence[dict[str, Any]]) -> list[Produced]:
        """Contact events as JSON, keyed by customer id."""
        return self.produce([(e["customer"]["id"].encode(), orjson.dumps(e)) for e in events])

    # answers

    def answer(self, mail: Received, nps: int, comment: str = "", deadline_s: float = 90) -> Answer:
        """POST the answer to a live worker; after a lost reply, try again (maybe elsewhere)."""
        assert mail.token is not None, "mail without a survey link"
        answer = Answer(mail.invitation_id, mail.token, nps, comment)
        deadline = time.monotonic() + deadline_s
        attempt = 0
        while time.monotonic() < deadline:
            live = self.live_workers()
            if not live:
                time.sleep(0.1)
                continue
            worker = live[attempt % len(live)]
            attempt += 1
            try:
                reply = httpx.post(
                    f"{worker.web}/api/responses",
                    json={"token": mail.token, "nps": nps, "comment": comment},
                    timeout=30,
                )
            except httpx.HTTPError as exc:
                answer.errors.append(f"{worker.name}: {type(exc).__name__}")
                time.sleep(0.1)
                continue
            if reply.status_code >= 500:
                answer.errors.append(f"{worker.name}: HTTP {reply.status_code}")
                time.sleep(0.1)
                continue
            answer.status = reply.status_code
            if reply.status_code == 201:
                answer.response_id = reply.json()["response_id"]
            return answer
        return answer

    # database

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.database_url)
        return self._engine

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())

    def scalar(self, sql: str, **params: Any) -> Any:
        return self.rows(sql, **params)[0][0]

    # progress

    def caught_up(self, group: str = APP_ID, topics: Sequence[str] = CONSUMED_TOPICS) -> bool:
        """True when *group* has committed past the last message of every partition of
        *topics* (ends found by reading the topics, since tansu's end offsets lag)."""
        ends: dict[TopicPartition, int] = {}
        for m in self.kafka.read_topics(topics):
            tp = TopicPartition(m.topic, m.partition)
            ends[tp] = max(ends.get(tp, 0), m.offset + 1)
        committed = self.kafka.committed(group, topics, self.partitions)
        return all(committed.get(tp, 0) >= end for tp, end in ends.items())


class Background:
    """A thread running *target* that re-raises its exception in the test on join()."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self._error: BaseException | None = None
        self._target = target
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread in join()
            self._error = exc

    def start(self) -> Background:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"{self._thread.name} still running after {timeout} s")
        if self._error is not None:
            raise self._error
