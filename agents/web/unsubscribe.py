"""The unsubscribe link in every survey mail: /u/<token>, with the survey link's token.

GET shows a confirmation form and changes nothing (mail scanners and link previews fetch
links); POST, including the RFC 8058 one-click POST a mail client sends with the body
List-Unsubscribe=One-Click, publishes an e-mail opt-out to customer-consent.

No CSRF token: the 256-bit token in the URL is the credential, known only to whoever got
the mail, so a forged cross-site POST cannot name a customer; at worst it does what the link
is for, an opt-out (the safe direction). And RFC 8058 one-click POSTs come from mail
providers without cookies or a page, so a CSRF token would break them.
"""

from __future__ import annotations

import asyncio
import uuid

import faust
import structlog
from aiokafka.errors import KafkaError
from faust.web import Request, Response

from agents.runtime import Runtime
from agents.web.pages.unsubscribe import (
    unsubscribe_error_page,
    unsubscribe_form_page,
    unsubscribed_page,
)
from agents.web.requests import CxView, link_token_hash, preferred_locale, route
from models.store.consent import TokenHolder, customer_for_token
from streams.records import ConsentChange

log = structlog.get_logger("cxloop.unsubscribe")

PUBLISH_PATIENCE_S = 10.0


async def _holder(rt: Runtime, token: str) -> TokenHolder | None:
    token_hash = link_token_hash(token)
    if token_hash is None:
        return None
    return await rt.db_for_request(customer_for_token, rt.engine, token_hash)


async def publish_opt_out(rt: Runtime, holder: TokenHolder) -> ConsentChange:
    """Put the customer's e-mail opt-out on customer-consent and wait for the broker's ack."""
    change = ConsentChange(
        consent_id=str(uuid.uuid4()),  # each click is a change of its own; replays keep it
        customer_id=holder.customer_id,
        channel="email",
        status="opted_out",
        changed_at=rt.clock(),
        source="unsubscribe_link",
    )
    send = rt.send(rt.topics.customer_consent, change.message_key(), change.to_bytes())
    await asyncio.wait_for(send, PUBLISH_PATIENCE_S)
    return change


class UnsubscribePage(CxView):
    """GET asks to confirm; POST (the form, or RFC 8058 one-click) unsubscribes."""

    async def get(self, request: Request, token: str) -> Response:
        structlog.contextvars.clear_contextvars()
        holder = await _holder(self.rt, token)
        if holder is None:
            return self._not_found(request)
        return self.html(unsubscribe_form_page(locale=holder.locale, action=f"/u/{token}"))

    async def post(self, request: Request, token: str) -> Response:
        structlog.contextvars.clear_contextvars()
        holder = await _holder(self.rt, token)
        if holder is None:
            return self._not_found(request)
        structlog.contextvars.bind_contextvars(
            customer_id=holder.customer_id, invitation_id=holder.invitation_id
        )
        try:
            change = await publish_opt_out(self.rt, holder)
        except (TimeoutError, KafkaError) as exc:
            log.warning("unsubscribe_deferred", error=type(exc).__name__)
            page = unsubscribe_error_page(
                locale=holder.locale, message_key="unsubscribe_unavailable"
            )
            return self.html(page, status=503, headers={"Retry-After": "30"})
        log.info("unsubscribe_requested", consent_id=change.consent_id)
        return self.html(unsubscribed_page(locale=holder.locale))

    def _not_found(self, request: Request) -> Response:
        locale = preferred_locale(request.headers.get("Accept-Language"))
        log.info("unsubscribe_link_refused", status=404)
        page = unsubscribe_error_page(locale=locale, message_key="unsubscribe_not_found")
        return self.html(page, status=404)


def register(app: faust.App, rt: Runtime) -> None:
    route(app, "/u/{token}", UnsubscribePage, rt)
