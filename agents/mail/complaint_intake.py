"""complaint_intake: complaints by e-mail. An SMTP server on CXLOOP_COMPLAINT_SMTP_PORT (off
when 0) turns every mail it receives into a complaint contact event on contact-events (the
web form, agents.web.complaint_form, does the same for /complaint)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import structlog
from aiosmtpd.smtp import SMTP

from agents.complaints import PublishFailedError, publish_complaint
from agents.runtime import Runtime
from models.complaints import MAX_MAIL_BYTES, MailRefusedError, complaint_from_mail

log = structlog.get_logger("cxloop.complaint_intake")

SMTP_IDLE_TIMEOUT_S = 60.0


class IntakeHandler:
    """aiosmtpd handler: each accepted mail becomes a complaint event before the 250, so a
    mail the broker did not take is answered 451 and the sending server tries again."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(agent="complaint_intake", channel="email")
        raw: bytes = envelope.original_content or envelope.content or b""
        if not envelope.mail_from or envelope.mail_from == "<>":
            log.info("complaint_mail_ignored", reason="null_sender", size=len(raw))
            return "250 2.0.0 Delivery report ignored"
        try:
            event = complaint_from_mail(raw, self.rt.clock())
        except MailRefusedError as refused:
            log.info("complaint_mail_refused", reason=refused.reason, size=len(raw))
            return refused.reply
        structlog.contextvars.bind_contextvars(
            event_id=event["event_id"], customer_id=event["customer"]["id"]
        )
        try:
            await publish_complaint(self.rt, event)
        except PublishFailedError as exc:
            log.warning("complaint_mail_deferred", error=str(exc))
            return "451 4.3.0 Cannot take the complaint now, try again later"
        log.info("complaint_mail_received")
        return "250 2.0.0 Complaint received"


async def serve_smtp(rt: Runtime) -> asyncio.Server:
    """The intake SMTP server, on this worker's event loop (the one its producer uses).
    aiosmtpd logs envelope addresses at INFO: streams.logging keeps its "mail.log" quiet."""
    handler = IntakeHandler(rt)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(
            handler,
            data_size_limit=MAX_MAIL_BYTES,
            enable_SMTPUTF8=True,
            hostname="cxloop-complaints",
            ident="cxloop complaint intake",
            timeout=SMTP_IDLE_TIMEOUT_S,
        ),
        host=rt.settings.complaint_smtp_host,
        port=rt.settings.complaint_smtp_port,
    )


def register(app: faust.App, rt: Runtime) -> None:
    """The intake SMTP server, when its port is set."""
    if rt.settings.complaint_smtp_port <= 0:
        return

    @app.task  # type: ignore[untyped-decorator]  # faust: untyped
    async def complaint_smtp() -> None:
        server = await serve_smtp(rt)
        log.info(
            "complaint_smtp_listening",
            host=rt.settings.complaint_smtp_host,
            port=rt.settings.complaint_smtp_port,
        )
        try:
            await asyncio.Event().wait()  # until the worker stops and cancels this task
        finally:
            server.close()
            await server.wait_closed()
            log.info("complaint_smtp_stopped")
