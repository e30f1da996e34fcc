"""complaint_form: the web form (/complaint); a complaint sent with it becomes a complaint
contact event on contact-events, like one mailed to the intake SMTP server
(agents.mail.complaint_intake). The trigger opens the complaint task from there, like for
any other source of contact events.

The form is anonymous and public, so no CSRF token (there is no session to ride on); a
honeypot field and a 20 kB body limit keep the simplest bots and floods out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast
from urllib.parse import parse_qsl

import faust
import structlog
from aiohttp import web
from faust.web import Request, Response

from agents.complaints import PublishFailedError, publish_complaint
from agents.errors import AgentError
from agents.runtime import Runtime
from agents.web.pages.complaint import complaint_form_page, complaint_received_page
from agents.web.requests import CxView, preferred_locale, route
from models.complaints import (
    MAX_FORM_BYTES,
    complaint_from_form,
    complaint_reference,
)
from models.tokens import new_token

log = structlog.get_logger("cxloop.complaint_intake")

FORM_FIELDS_MAX = 20


# --- web form -----------------------------------------------------------------------------


class FormInvalidError(AgentError, ValueError):
    """The post is not a complaint form this page could have sent."""


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (the first value of each); FormInvalidError when the body is too large,
    not URL-encoded or not UTF-8."""
    declared = request.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormInvalidError("too_large")
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormInvalidError("not_urlencoded")
    body = bytearray()
    stream = cast(web.Request, request).content  # faust's aiohttp driver: stream the body
    async for chunk in stream.iter_chunked(4096):
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormInvalidError("too_large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=FORM_FIELDS_MAX
        )
    except (UnicodeDecodeError, ValueError):
        raise FormInvalidError("not_a_form") from None
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
        except FormInvalidError as exc:
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
        except PublishFailedError as exc:
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
    """The /complaint page."""
    route(app, "/complaint", ComplaintPage, rt)
