"""complaint_intake: complaints by web form (/complaint) and by e-mail (an SMTP server on
CXLOOP_COMPLAINT_SMTP_PORT) become complaint contact events on contact-events; the trigger
opens the complaint task from there, like for any other source of contact events.

The form is anonymous and public, so no CSRF token (there is no session to ride on); a
honeypot field and a 20 kB body limit keep the simplest bots and floods out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import parse_qsl

import faust
import orjson
import structlog
from aiohttp import web
from aiokafka.errors import KafkaError
from aiosmtpd.smtp import SMTP
from faust.web import Request, Response

from agents.runtime import Runtime
from agents.web.requests import CxView, preferred_locale, route
from models.complaint_intake import (
    MAX_FORM_BYTES,
    MAX_MAIL_BYTES,
    MailRefused,
    complaint_form_page,
    complaint_from_form,
    complaint_from_mail,
    complaint_received_page,
    complaint_reference,
)
from models.tokens import new_token

log = structlog.get_logger("cxloop.complaint_intake")

PUBLISH_PATIENCE_S = 10.0
SMTP_IDLE_TIMEOUT_S = 60.0
FORM_FIELDS_MAX = 20


class PublishFailed(Exception):
    """The broker did not take the complaint in time; the sender should try again."""


async def publish_complaint(rt: Runtime, event: Mapping[str, Any]) -> None:
    """Put a complaint contact event (from complaint_from_mail or _form, which checked it
    against the contact-event contract) on contact-events, keyed by customer id, and wait
    for the broker's ack."""
    send = rt.send(rt.topics.contact_events, event["customer"]["id"], orjson.dumps(event))
    try:
        await asyncio.wait_for(send, PUBLISH_PATIENCE_S)
    except (TimeoutError, KafkaError) as exc:
        raise PublishFailed(type(exc).__name__) from exc


# --- e-mail -------------------------------------------------------------------------------


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
        except MailRefused as refused:
            log.info("complaint_mail_refused", reason=refused.reason, size=len(raw))
            return refused.reply
        structlog.contextvars.bind_contextvars(
            event_id=event["event_id"], customer_id=event["customer"]["id"]
        )
        try:
            await publish_complaint(self.rt, event)
        except PublishFailed as exc:
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


# --- web form -----------------------------------------------------------------------------


class BadForm(ValueError):
    """The post is not a complaint form this page could have sent."""


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (the first value of each); BadForm when the body is too large,
    not URL-encoded or not UTF-8."""
    declared = request.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise BadForm("too_large")
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise BadForm("not_urlencoded")
    body = bytearray()
    stream = cast(web.Request, request).content  # faust's aiohttp driver: stream the body
    async for chunk in stream.iter_chunked(4096):
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadForm("too_large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=FORM_FIELDS_MAX
        )
    except (UnicodeDecodeError, ValueError):
        raise BadForm("not_a_form") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


class ComplaintPage(CxView):
    """GET shows the form in the caller's language; POST publishes the complaint, or
    shows the form again (422) with the entries and what to fix."""

    async def get(self, request: Request) -> Response:
        structlog.contextvars.clear_contextvars()
        locale = preferred_locale(request.headers.get("Accept-Language"))
        return self.html(self._form(locale, {}))

    async def post(self, request: Request) -> Response:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(agent="complaint_intake", channel="web")
        locale = preferred_locale(request.headers.get("Accept-Language"))
        try:
            fields = await read_form(request)
        except BadForm as exc:
            log.info("complaint_form_refused", reason=str(exc))
            status = 413 if str(exc) == "too_large" else 400
            return self.html(self._form(locale, {}), status=status)
        result = complaint_from_form(fields, self.rt.clock())
        locale = result.values["language"]
        if result.bot:
            log.info("complaint_form_refused", reason="honeypot")
            return self.html(complaint_received_page(locale=locale, reference="-"))
        if result.event is None:
            log.info("complaint_form_invalid", fields=sorted(result.errors))
            page = self._form(locale, result.values, result.errors)
            return self.html(page, status=422)
        event = result.event
        structlog.contextvars.bind_contextvars(
            event_id=event["event_id"], customer_id=event["customer"]["id"]
        )
        try:
            await publish_complaint(self.rt, event)
        except PublishFailed as exc:
            log.warning("complaint_form_deferred", error=str(exc))
            page = self._form(locale, result.values, notice="unavailable")
            return self.html(page, status=503, headers={"Retry-After": "30"})
        log.info("complaint_form_received")
        reference = complaint_reference(event["event_id"])
        return self.html(complaint_received_page(locale=locale, reference=reference))

    def _form(
        self,
        locale: str,
        values: Mapping[str, str],
        errors: Mapping[str, str] | None = None,
        notice: str | None = None,
    ) -> str:
        # The same token again, so fixing a mistake and sending is still one complaint.
        token = values.get("form_token") or new_token()
        return complaint_form_page(
            locale=locale,
            action="/complaint",
            token=token,
            values=values,
            errors=errors,
            notice=notice,
        )


def register(app: faust.App, rt: Runtime) -> None:
    """The /complaint page, and the intake SMTP server when its port is set."""

    route(app, "/complaint", ComplaintPage, rt)

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
