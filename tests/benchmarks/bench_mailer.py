"""mailer: e-mails/s to a local aiosmtpd through agents.mail.smtp_sender.SmtpSender.

1 and 4 concurrent senders (separate SmtpSender instances, one connection each, reused),
invitation mails built with agents.mail.invitation.build_invitation_mail. The baseline is
bare aiosmtplib on as many reused connections, sending the same messages.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import aiosmtplib

from agents.mail.invitation import build_invitation_mail
from agents.mail.smtp_sender import SmtpSender
from streams.settings import Settings
from tests.benchmarks.common import HOST, CpuMeter, Stack
from tests.benchmarks.report import Figure
from tests.benchmarks.runner_context import Context

NAME = "mailer"
TARGET = 500
_LOCALES = ("nl", "en", "bg", "no")


def invitation_mail(i: int) -> EmailMessage:
    now = datetime.now(UTC)
    return build_invitation_mail(
        invitation_id=f"inv-bench-{i:08d}",
        to=f"c-{i:07d}@example.nl",
        name=f"Klant {i}",
        locale=_LOCALES[i % len(_LOCALES)],
        company="CBG Connect",
        link=f"http://{HOST}:6066/s/{'t' * 43}{i}",
        expires_at=now + timedelta(days=30),
        mail_from="cxloop <survey@cxloop.invalid>",
        sent_at=now,
    )


def build_messages(n: int) -> tuple[list[EmailMessage], float]:
    started = time.perf_counter()
    messages = [invitation_mail(i) for i in range(n)]
    return messages, time.perf_counter() - started


Send = Callable[[EmailMessage], Awaitable[object]]


async def _fan_out(sends: Sequence[Send], messages: Sequence[EmailMessage]) -> float:
    """Each sender sends its share one after the other; the senders run concurrently."""
    shares = [messages[i :: len(sends)] for i in range(len(sends))]

    async def drain(send: Send, share: Sequence[EmailMessage]) -> None:
        for message in share:
            await send(message)

    started = time.perf_counter()
    await asyncio.gather(*(drain(s, share) for s, share in zip(sends, shares, strict=True)))
    return time.perf_counter() - started


async def with_smtp_sender(port: int, count: int, messages: Sequence[EmailMessage]) -> float:
    settings = Settings(smtp_host=HOST, smtp_port=port, smtp_starttls=False)
    senders = [SmtpSender(settings) for _ in range(count)]
    try:
        for sender in senders:  # open each connection before the clock starts
            await sender.send(messages[0])
        return await _fan_out([s.send for s in senders], messages)
    finally:
        for sender in senders:
            await sender.close()


async def build_and_send(port: int, count: int, n: int) -> float:
    """What the mailer agent does per mail minus SQL: build the message, then send it."""
    settings = Settings(smtp_host=HOST, smtp_port=port, smtp_starttls=False)
    senders = [SmtpSender(settings) for _ in range(count)]
    warm, _ = build_messages(1)
    try:
        for sender in senders:
            await sender.send(warm[0])

        async def drain(sender: SmtpSender, start: int) -> None:
            for i in range(start, n, count):
                await sender.send(invitation_mail(i))

        started = time.perf_counter()
        await asyncio.gather(*(drain(s, k) for k, s in enumerate(senders)))
        return time.perf_counter() - started
    finally:
        for sender in senders:
            await sender.close()


async def with_bare_aiosmtplib(port: int, count: int, messages: Sequence[EmailMessage]) -> float:
    clients = [aiosmtplib.SMTP(hostname=HOST, port=port, start_tls=False) for _ in range(count)]
    for client in clients:
        await client.connect()
    try:
        return await _fan_out([c.send_message for c in clients], messages)
    finally:
        for client in clients:
            await client.quit()


def run(ctx: Context) -> list[Figure]:
    n = ctx.pick(quick=1_500, full=6_000)
    messages, build_s = build_messages(n)
    figures = []
    with Stack(ctx.workdir / NAME) as stack:
        sink = stack.smtp_sink()
        assert sink.process is not None
        pids = {"bench (client)": os.getpid(), "aiosmtpd sink": sink.process.pid}
        for count in (1, 4):
            meter = CpuMeter(pids)
            meter.start()
            bare_s = asyncio.run(with_bare_aiosmtplib(sink.port, count, messages))
            bare_cpu = meter.stop()
            meter.start()
            sender_s = asyncio.run(with_smtp_sender(sink.port, count, messages))
            cpu = meter.stop()
            rate, bare_rate = n / sender_s, n / bare_s
            conns = "1 connection" if count == 1 else f"{count} connections"
            figures.append(
                Figure(
                    key=f"mailer.senders_{count}.mails_per_s",
                    label=f"mailer: SmtpSender ×{count} → aiosmtpd",
                    value=rate,
                    unit="mails/s",
                    ratio=rate / bare_rate,
                    ratio_to=f"bare aiosmtplib, {conns} ({bare_rate:,.0f}/s)",
                    target=f"≥ {TARGET} mails/s",
                    passed=rate >= TARGET,
                    details={
                        "mails": n,
                        "mail_bytes_avg": round(sum(len(m.as_bytes()) for m in messages[:50]) / 50),
                        "bare_aiosmtplib_mails_per_s": round(bare_rate),
                        "cpu_percent_of_one_core": cpu,
                        "bare_cpu_percent_of_one_core": bare_cpu,
                        "build_invitation_mail_per_s": round(n / build_s),
                    },
                )
            )
        built_s = asyncio.run(build_and_send(sink.port, 4, n))
        built_rate = n / built_s
        send_only = figures[-1].value or 1.0
        figures.append(
            Figure(
                key="mailer.build_and_send_4.mails_per_s",
                label="mailer: build_invitation_mail + SmtpSender ×4",
                value=built_rate,
                unit="mails/s",
                ratio=built_rate / send_only,
                ratio_to=f"send only, ×4 ({send_only:,.0f}/s)",
                details={
                    "mails": n,
                    "build_invitation_mail_per_s": round(n / build_s),
                    "note": "one event loop builds and sends: the mailer agent's work minus SQL",
                },
            )
        )
    return figures
