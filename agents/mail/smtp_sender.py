"""Sending mail over one reused SMTP connection, and sorting what can go wrong."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.utils import parseaddr
from enum import StrEnum

import aiosmtplib

from agents.errors import AgentError
from streams.settings import Settings


class FailureKind(StrEnum):
    TRANSIENT = "transient"  # not delivered; try again later
    PERMANENT = "permanent"  # refused for good (5xx)
    AMBIGUOUS = "ambiguous"  # the server may have taken it: never resend


class SmtpFailedError(AgentError):
    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def classify(exc: Exception) -> FailureKind:
    """Sort an aiosmtplib error: 4xx and connection trouble transient, 5xx permanent."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return FailureKind.PERMANENT if codes and min(codes) >= 500 else FailureKind.TRANSIENT
    if isinstance(exc, aiosmtplib.SMTPReadTimeoutError):
        return FailureKind.AMBIGUOUS
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return FailureKind.PERMANENT if exc.code >= 500 else FailureKind.TRANSIENT
    return FailureKind.TRANSIENT


class SmtpSender:
    """One SMTP connection, opened on first use and reopened after it breaks."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def send(self, message: EmailMessage) -> None:
        """Send *message*, or raise SmtpFailedError saying whether to retry.

        Up to RCPT nothing is delivered, so errors there are plain temporary or permanent.
        Once the message body is on its way, a lost connection or a missing reply means the
        relay may have taken it: AMBIGUOUS, never to be sent again.
        """
        sender = parseaddr(str(message["From"]))[1]
        recipient = parseaddr(str(message["To"]))[1]
        utf8 = ["SMTPUTF8"] if not (sender + recipient).isascii() else None
        encoding = "utf-8" if utf8 else "ascii"
        async with self._lock:
            try:
                client = await self._connected()
                await client.mail(sender, options=utf8, encoding=encoding)
                await client.rcpt(recipient, encoding=encoding)
            except (aiosmtplib.SMTPException, OSError) as exc:
                await self._drop()
                raise SmtpFailedError(classify(exc), _describe(exc)) from exc
            try:
                await client.data(message.as_bytes())
            except aiosmtplib.SMTPResponseException as exc:
                await self._drop()  # the relay answered: it did not take the message
                raise SmtpFailedError(classify(exc), _describe(exc)) from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                await self._drop()
                raise SmtpFailedError(FailureKind.AMBIGUOUS, _describe(exc)) from exc

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_s,
            start_tls=s.smtp_starttls,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
        )
        await client.connect()
        self._client = client
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            client.close()

    async def close(self) -> None:
        async with self._lock:
            if self._client is not None and self._client.is_connected:
                try:
                    await self._client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    self._client.close()
            self._client = None


def _describe(exc: Exception) -> str:
    # Codes and classes only: server messages can echo the recipient address.
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "recipient refused " + ",".join(str(r.code) for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"SMTP {exc.code}"
    return type(exc).__name__


class SenderPool:
    """Several SMTP connections; each send borrows a free one."""

    def __init__(self, settings: Settings, size: int) -> None:
        self._senders = [SmtpSender(settings) for _ in range(size)]
        self._free: asyncio.Queue[SmtpSender] = asyncio.Queue()
        for sender in self._senders:
            self._free.put_nowait(sender)

    async def send(self, message: EmailMessage) -> None:
        sender = await self._free.get()
        try:
            await sender.send(message)
        finally:
            self._free.put_nowait(sender)

    async def close(self) -> None:
        for sender in self._senders:
            await sender.close()
