"""Fault rig: a standalone broker, a switchable SMTP server and `cxloop worker` processes.

The broker and the SMTP server run in (or next to) the test process, the workers are real
`python -m agents worker` subprocesses, so a worker can be killed with SIGKILL while the
broker keeps its topics and the SMTP server keeps what it received. Tests are synchronous:
Kafka clients live on one private event-loop thread, the SMTP server on aiosmtpd's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, text

from models.store.engine import make_engine
from streams.embedded_broker import EmbeddedBroker
from streams.topics import (
    ALL_TOPICS,
    CONTACT_EVENTS,
    DEAD_LETTERS,
    FOLLOWUP_ACTIONS,
    SCORED_RESPONSES,
    SURVEY_INVITATIONS,
    SURVEY_RESPONSES,
)
from tests.conftest import wait_for
from tests.harness.ports import free_port
from tests.kafka_reading import read_from_start

T = TypeVar("T")

PARTITIONS = 8
PUBLIC_URL = "http://survey.faults.test"
STAFF_TOKEN = "faults-staff-token"  # noqa: S105 - a test-only bearer token
APP_ID = "cxloop"
_TOKEN_IN_LINK = re.compile(re.escape(PUBLIC_URL) + r"/s/([A-Za-z0-9_-]+)")
_PR_SET_PDEATHSIG = 1
# The topics the worker's agents read (followup-tasks is for consumers outside cxloop).
CONSUMED_TOPICS = (
    CONTACT_EVENTS,
    SURVEY_INVITATIONS,
    SURVEY_RESPONSES,
    SCORED_RESPONSES,
    FOLLOWUP_ACTIONS,
    DEAD_LETTERS,
)


def _die_with_test_process() -> None:
    # Runs in the child before exec: SIGKILL it when pytest dies, so no orphan is left even
    # when the test process itself is killed and no finally block runs.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# --- SMTP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    """One message the SMTP server accepted."""

    invitation_id: str | None
    to: str
    token: str | None
    received_at: float
    client_port: int  # the sender's end of the SMTP connection (which worker sent it)


class _SwitchableHandler:
    """aiosmtpd handler whose answers the test changes while the workers send."""

    def __init__(self, server: FaultSmtpServer) -> None:
        self._server = server

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self._server.mode == "tempfail":
            self._server.count_refusal("421")
            return "421 4.3.2 Service not available, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self._server.mode == "tempfail":
            self._server.count_refusal("421")
            return "421 4.3.2 Service not available, try again later"
        if address.lower() in self._server.refused:
            self._server.count_refusal("550")
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self._server.mode == "tempfail":
            self._server.count_refusal("421")
            return "421 4.3.2 Service not available, try again later"
        self._server.record(
            envelope.original_content or envelope.content, envelope.rcpt_tos, session.peer[1]
        )
        if self._server.take_reply_to_drop():
            # The relay has the message and dies before it says so (RFC 1047's duplicate
            # problem): the sender cannot know whether it was taken.
            server.transport.abort()
        return "250 Message accepted for delivery"


class FaultSmtpServer:
    """An in-process SMTP server on a fixed port: accept and record, 421 everything, 550
    chosen recipients, die right after accepting a message (drop_replies), or be stopped and
    started again on the same port ("down")."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port()
        self.mode = "accept"  # or "tempfail": 421 to MAIL, RCPT and DATA
        self.refused: set[str] = set()
        self.drop_replies = 0  # accept this many more messages, then die before answering
        self._received: list[ReceivedMail] = []
        self._refusals: dict[str, int] = {}
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is not None:
            return
        controller = Controller(_SwitchableHandler(self), hostname=self.host, port=self.port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Close the port and every open connection: the relay is down."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def record(self, raw: bytes, recipients: list[str], client_port: int) -> None:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        part = parsed.get_body(preferencelist=("plain",))
        match = _TOKEN_IN_LINK.search(part.get_content()) if part is not None else None
        mail = ReceivedMail(
            invitation_id=parsed["X-Cxloop-Invitation"],
            to=",".join(recipients) or str(parsed["To"]),
            token=match.group(1) if match else None,
            received_at=time.monotonic(),
            client_port=client_port,
        )
        with self._lock:
            self._received.append(mail)

    def take_reply_to_drop(self) -> bool:
        with self._lock:
            if self.drop_replies <= 0:
                return False
            self.drop_replies -= 1
            return True

    def count_refusal(self, code: str) -> None:
        with self._lock:
            self._refusals[code] = self._refusals.get(code, 0) + 1

    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    def refusals(self, code: str) -> int:
        with self._lock:
            return self._refusals.get(code, 0)


# --- Kafka --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Produced:
    """A message as it landed on a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class KafkaIO:
    """aiokafka clients on one private event-loop thread, for synchronous tests."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kafka-io", daemon=True)
        self._thread.start()
        self._producer: AIOKafkaProducer | None = None
        self._send_lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def create_topics(self, names: Iterable[str], partitions: int) -> None:
        async def create() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            try:
                new = [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(new)
            finally:
                await admin.close()

        self.run(create())

    def produce(
        self, topic: str, messages: Sequence[tuple[bytes | None, bytes | None]]
    ) -> list[Produced]:
        """Send (key, value) pairs in order and wait for every ack; returns where each landed.

        The offsets come from the produce responses, which tansu gets right (its reported end
        offsets, not used here, can be too low after a batched produce)."""

        async def send() -> list[Produced]:
            if self._producer is None:
                self._producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap, linger_ms=5, acks="all"
                )
                await self._producer.start()
            futures = [
                await self._producer.send(topic, value=value, key=key) for key, value in messages
            ]
            metas = await asyncio.gather(*futures)
            return [
                Produced(topic, m.partition, m.offset, key, value)
                for m, (key, value) in zip(metas, messages, strict=True)
            ]

        with self._send_lock:
            return self.run(send())

    def committed(
        self, group: str, topics: Iterable[str], partitions: int
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets (-1 / None become 0)."""

        async def fetch() -> dict[TopicPartition, int]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
            )
            await consumer.start()
            try:
                found = {}
                for topic in topics:
                    for p in range(partitions):
                        tp = TopicPartition(topic, p)
                        found[tp] = max(await consumer.committed(tp) or 0, 0)
                return found
            finally:
                await consumer.stop()

        return self.run(fetch())

    def read_topics(
        self, topics: Sequence[str], quiet_s: float = 0.3, timeout: float = 30
    ) -> list[Produced]:
        """Every message on *topics*, read from the start until nothing new for *quiet_s*."""

        async def read() -> list[Produced]:
            records = await read_from_start(
                self.bootstrap, topics, limit_s=timeout, quiet_s=quiet_s
            )
            return [Produced(r.topic, r.partition, r.offset, r.key, r.value) for r in records]

        return self.run(read(), timeout=timeout + 30)

    def close(self) -> None:
        async def stop() -> None:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

        try:
            self.run(stop(), timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


# --- workers ------------------------------------------------------------------------------


@dataclass
class Worker:
    """One `cxloop worker` subprocess; kill -9 and restart keep its port and settings."""

    name: str
    env: dict[str, str]
    web_port: int
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    incarnation: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        self.incarnation += 1
        log_path = self.log_dir / f"{self.name}.{self.incarnation}.log"
        self.logs.append(log_path)
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agents", "worker"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                preexec_fn=_die_with_test_process,  # noqa: PLW1509 - only prctl, no locks
            )

    def is_ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise AssertionError(f"{self.name} exited with {code}:\n{self.log_tail()}")
        try:
            return httpx.get(f"{self.web}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(self.is_ready, timeout, f"{self.name} to answer /ready with 200")

    def kill(self) -> None:
        """kill -9: no shutdown, no offset commit, no SMTP QUIT."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL after *timeout*; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        return self.process.returncode

    def local_ports(self) -> set[int]:
        """Local TCP ports of the worker's open sockets (Linux /proc), to tell which worker
        a connection the SMTP server sees belongs to."""
        if not self.alive:
            return set()
        assert self.process is not None
        inodes = set()
        fd_dir = Path(f"/proc/{self.process.pid}/fd")
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    if fields[9] in inodes:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports

    def dump_stacks(self) -> None:
        """Ask the worker to write every thread's and task's stack to its log (mode's
        SIGUSR1 handler): evidence of where a stuck worker waits."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGUSR1)

    def readiness(self) -> str:
        try:
            reply = httpx.get(f"{self.web}/ready", timeout=5)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return f"{reply.status_code} {reply.text[:80]}"

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for path in self.logs:
            if not path.exists():
                continue
            for raw in path.read_text(errors="replace").splitlines():
                if raw.startswith("{"):
                    try:
                        lines.append(orjson.loads(raw))
                    except orjson.JSONDecodeError:
                        continue
        return lines

    def log_tail(self, chars: int = 4000) -> str:
        if not self.logs or not self.logs[-1].exists():
            return "(no log)"
        return self.logs[-1].read_text(errors="replace")[-chars:]


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
        self.broker = EmbeddedBroker("127.0.0.1", free_port(), tmp_path / "broker.log")
        self.smtp = FaultSmtpServer()
        self.workers: list[Worker] = []
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

    def add_worker(self, app_id: str = APP_ID, **settings: str) -> Worker:
        """Start one more worker (with its own web port and data dir); not yet waited for."""
        name = f"worker-{len(self.workers) + 1}"
        web_port = free_port()
        data_dir = self.tmp_path / name
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CXLOOP_")}
        env.update(
            {
                "CXLOOP_KAFKA_BOOTSTRAP": self.broker.bootstrap,
                "CXLOOP_APP_ID": app_id,
                "CXLOOP_DATABASE_URL": self.database_url,
                "CXLOOP_SMTP_HOST": self.smtp.host,
                "CXLOOP_SMTP_PORT": str(self.smtp.port),
                "CXLOOP_SMTP_STARTTLS": "false",
                "CXLOOP_SMTP_BACKOFF_MAX_S": "1",
                "CXLOOP_WEB_PORT": str(web_port),
                "CXLOOP_PUBLIC_URL": PUBLIC_URL,
                "CXLOOP_STAFF_TOKEN": STAFF_TOKEN,
                "CXLOOP_LOG_FORMAT": "json",
                "CXLOOP_DATA_DIR": str(data_dir),
                "CXLOOP_TOPIC_PARTITIONS": str(self.partitions),
            }
        )
        env.update({f"CXLOOP_{k.upper()}": v for k, v in settings.items()})
        worker = Worker(name=name, env=env, web_port=web_port, log_dir=self.tmp_path)
        self.workers.append(worker)
        worker.start()
        return worker

    def live_workers(self) -> list[Worker]:
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

    def answer(
        self, mail: ReceivedMail, nps: int, comment: str = "", deadline_s: float = 90
    ) -> Answer:
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
