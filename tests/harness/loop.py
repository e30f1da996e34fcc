"""Drive a real `cxloop up`: embedded tansu, local SMTP server, worker, and a database."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import Engine, text

from models.store.engine import make_engine
from tests.conftest import wait_for
from tests.harness.ports import free_port
from tests.harness.processes import CxloopProcess, json_log_lines
from tests.harness.topics import read_from_start


@dataclass
class RunningLoop:
    data_dir: Path
    database_url: str
    kafka_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    process: CxloopProcess | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    demo_staff: bool = False  # `cxloop up` creates demo inbox accounts on a fresh database

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "worker.log"

    @property
    def staff_token(self) -> str:
        return (self.data_dir / "staff-token").read_text().strip()

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CXLOOP_LOG_FORMAT": "json", **self.extra_env}
        env.pop("CXLOOP_STAFF_TOKEN", None)
        args = [
            "up",
            "--data-dir",
            str(self.data_dir),
            "--kafka-port",
            str(self.kafka_port),
            "--smtp-port",
            str(self.smtp_port),
            "--web-port",
            str(self.web_port),
            "--database-url",
            self.database_url,
            "--demo-staff" if self.demo_staff else "--no-demo-staff",
            # Complaint mail intake only where a test asks for it (its env).
            *([] if "CXLOOP_COMPLAINT_SMTP_PORT" in self.extra_env else ["--complaint-port", "0"]),
        ]
        # log_path: one worker.log in the data directory, appended to by every start.
        self.process = CxloopProcess(
            "worker",
            args,
            env,
            self.web_port,
            self.data_dir,
            stop_signal=signal.SIGINT,
            stop_timeout=30,
        )
        self.process.start()
        try:
            self.process.wait_ready(60, what="the worker to answer /ready and join its group")
        except BaseException:
            self.stop()  # never leave a half-started cxloop (and its broker) behind
            raise

    def stop(self) -> int:
        if self.process is None:
            return 0
        code = self.process.stop()
        self.process = None
        return 0 if code is None else code

    def log_lines(self) -> list[dict[str, Any]]:
        return json_log_lines([self.log_path])

    # --- input -------------------------------------------------------------------------

    def emit(self, *events: dict[str, Any] | bytes) -> None:
        """Produce contact events (dicts as JSON, bytes as they are) and wait for the acks."""

        async def produce() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
            await producer.start()
            try:
                for event in events:
                    if isinstance(event, bytes):
                        value, key = event, b"bad"
                    else:
                        value, key = orjson.dumps(event), event["customer"]["id"].encode()
                    await producer.send_and_wait("contact-events", value=value, key=key)
            finally:
                await producer.stop()

        asyncio.run(produce())

    # --- effects -----------------------------------------------------------------------

    def mails(self) -> list[EmailMessage]:
        messages = []
        for path in sorted((self.data_dir / "mail").glob("*.eml")):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            messages.append(parsed)
        return messages

    def mails_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.mails() if m["To"] == address]

    def survey_token(self, message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        match = re.search(re.escape(self.web) + r"/s/([A-Za-z0-9_-]+)", part.get_content())
        assert match, "no survey link in the mail"
        return match.group(1)

    def engine(self) -> Engine:
        return make_engine(self.database_url)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        engine = self.engine()
        try:
            with engine.connect() as connection:
                return list(connection.execute(text(sql), params).all())
        finally:
            engine.dispose()

    def topic_messages(self, topic: str, expect: int, timeout: float = 10.0) -> list[Any]:
        """Read *topic* from the start until *expect* messages (or the deadline)."""
        return asyncio.run(
            read_from_start(self.bootstrap, [topic], limit_s=timeout, expect=expect, poll_ms=200)
        )

    def staff(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.web, headers={"Authorization": f"Bearer {self.staff_token}"}, timeout=10
        )

    def work_task(
        self,
        staff: httpx.Client,
        task_id: str,
        steps: list[tuple[str, str, dict[str, Any]]],
        timeout: float = 30,
    ) -> None:
        """Post each (type, note, details) action on the task through the staff API (202)
        and wait until closure has recorded it before posting the next."""
        for kind, note, details in steps:
            body = {"type": kind, "note": note, "details": details}
            posted = staff.post(f"/api/tasks/{task_id}/actions", json=body)
            assert posted.status_code == 202, posted.text
            wait_for(
                lambda k=kind: self.rows(
                    "SELECT 1 FROM followup_actions WHERE task_id = :t AND type = :k",
                    t=task_id,
                    k=k,
                ),
                timeout,
                f"the {kind} action",
            )


@contextmanager
def running_loop(
    base: Path,
    *,
    database_url: str | None = None,
    rules: str | None = None,
    env: dict[str, str] | None = None,
    demo_staff: bool = False,
) -> Iterator[RunningLoop]:
    """A started `cxloop up` with its data in *base*, stopped on leaving.

    The database is SQLite in *base* unless *database_url* is given; *rules*, if given, is
    written to *base*/rules.toml and used as the rules file."""
    extra_env = dict(env or {})
    if rules is not None:
        rules_file = base / "rules.toml"
        rules_file.write_text(rules)
        extra_env["CXLOOP_RULES_FILE"] = str(rules_file)
    running = RunningLoop(
        data_dir=base / "cxloop",
        database_url=database_url or f"sqlite:///{base / 'cxloop.db'}",
        extra_env=extra_env,
        demo_staff=demo_staff,
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
