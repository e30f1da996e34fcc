"""SMTP servers for the tests: one in this process that records and can be told how to answer,
and a sink in its own process (the benchmarks: accepts everything, keeps nothing)."""

from __future__ import annotations

import email
import email.policy
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.harness.ports import HOST, free_port
from tests.harness.processes import stop_process
from tests.harness.waiting import wait_until

TEMPFAIL = "421 4.3.2 Service not available, try again later"


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    rcpt_tos: list[str]
    message: EmailMessage
    client_port: int  # the sender's end of the SMTP connection (which process sent it)
    received_at: float  # time.monotonic()
    token: str | None = None  # from the survey link, when the server was given token_link

    @property
    def to(self) -> str:
        return ",".join(self.rcpt_tos) or str(self.message["To"])

    @property
    def invitation_id(self) -> str | None:
        value = self.message["X-Cxloop-Invitation"]
        return None if value is None else str(value)


class _Handler:
    """aiosmtpd hooks answering as the server's settings say at that moment."""

    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self._server.mode == "tempfail":
            self._server.count_refusal("421")
            return TEMPFAIL
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        self._server.count_attempt(address)
        if self._server.mode == "tempfail":
            self._server.count_refusal("421")
            return TEMPFAIL
        scripted = self._server.scripted_reply(address)
        if scripted is not None:
            return scripted
        if address.lower() in self._server.refused:
            self._server.count_refusal("550")
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self._server.mode == "tempfail":
            self._server.count_refusal("421")
            return TEMPFAIL
        self._server.record(
            envelope.original_content or envelope.content, envelope.rcpt_tos, session.peer[1]
        )
        if self._server.take_reply_to_drop():
            # The relay has the message and dies before it says so (RFC 1047's duplicate
            # problem): the sender cannot know whether it was taken.
            server.transport.abort()
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd in this process on a fixed port, recording every message it accepts.

    How it answers can be changed while clients send: rcpt_replies scripts the RCPT replies
    for an address (used up in order, then it is accepted), mode "tempfail" answers 421 to
    MAIL, RCPT and DATA, refused addresses get 550, drop_replies takes that many more
    messages and then drops the connection before answering, and stop() closes the port and
    every connection until start() opens it again ("the relay is down"). With token_link
    (a public URL), each message's survey token is read from its link to <token_link>/s/."""

    def __init__(
        self, host: str = HOST, port: int | None = None, token_link: str | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port()
        self.mode = "accept"  # or "tempfail"
        self.refused: set[str] = set()
        self.rcpt_replies: dict[str, list[str]] = {}
        self.drop_replies = 0
        self._token = (
            re.compile(re.escape(token_link) + r"/s/([A-Za-z0-9_-]+)") if token_link else None
        )
        self._received: list[Received] = []
        self._rcpt_attempts: list[str] = []
        self._refusals: dict[str, int] = {}
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is not None:
            return
        controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Close the port and every open connection."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    # called by the handler, on aiosmtpd's thread

    def count_attempt(self, address: str) -> None:
        with self._lock:
            self._rcpt_attempts.append(address)

    def scripted_reply(self, address: str) -> str | None:
        """The next scripted RCPT reply for *address*, if any (used up)."""
        with self._lock:
            scripted = self.rcpt_replies.get(address)
            return scripted.pop(0) if scripted else None

    def record(self, raw: bytes, recipients: list[str], client_port: int) -> None:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        token = None
        if self._token is not None:
            part = parsed.get_body(preferencelist=("plain",))
            match = self._token.search(part.get_content()) if part is not None else None
            token = match.group(1) if match else None
        mail = Received(list(recipients), parsed, client_port, time.monotonic(), token)
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

    # for the test

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def rcpt_attempts(self) -> list[str]:
        with self._lock:
            return list(self._rcpt_attempts)

    def attempts_for(self, address: str) -> int:
        return self.rcpt_attempts().count(address)

    def refusals(self, code: str) -> int:
        with self._lock:
            return self._refusals.get(code, 0)


class SmtpSink:
    """aiosmtpd in its own process with the Sink handler: accepts every message, keeps none
    (out of the measured process, for the benchmarks)."""

    def __init__(self, log_file: Path) -> None:
        self.port = free_port()
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "aiosmtpd",
                    "-n",
                    "-c",
                    "aiosmtpd.handlers.Sink",
                    "-l",
                    f"{HOST}:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_until(self._listening, 15, "aiosmtpd to listen", 0.05)

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"aiosmtpd exited; see {self.log_file}")
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, 10)
        self.process = None
