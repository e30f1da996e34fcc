"""mailer: e-mail each survey invitation, at most once, with a fresh single-use link."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import faust
import structlog

from agents.consume import consume
from agents.dead_letters import send_to_dead_letters
from agents.runtime import Runtime
from agents.smtp_sender import FailureKind, SmtpFailure, SmtpSender
from models.survey_content import build_invitation_mail
from models.survey_store import DeliveryDone, claim_delivery, finish_delivery
from models.tokens import hash_token, new_token
from streams.records import SurveyInvitation

log = structlog.get_logger("cxloop.mailer")


async def handle_invitation(rt: Runtime, event: faust.EventT[bytes], sender: SmtpSender) -> None:
    """Claim the invitation in SQL, send the mail, record the outcome; retry what is temporary."""
    try:
        invitation = SurveyInvitation.from_bytes(event.value)
    except (ValueError, TypeError) as exc:
        await send_to_dead_letters(rt, event, f"invalid survey invitation: {exc}")
        return
    structlog.contextvars.bind_contextvars(
        invitation_id=invitation.invitation_id, customer_id=invitation.customer_id
    )
    settings = rt.settings
    delay, failures = min(1.0, settings.smtp_backoff_max_s), 0
    while True:
        token = new_token()
        try:
            claim = await rt.db(
                claim_delivery,
                rt.engine,
                invitation.invitation_id,
                hash_token(token),
                rt.clock(),
                timedelta(days=settings.invitation_ttl_days),
            )
        except DeliveryDone as done:
            log.info("mail_skipped", delivery_status=done.status)
            return
        except LookupError:
            await send_to_dead_letters(rt, event, "invitation not found in the database")
            return
        message = build_invitation_mail(
            invitation_id=claim.invitation_id,
            to=claim.email,
            name=claim.name,
            locale=claim.locale,
            company=claim.company or settings.company_name,
            link=f"{settings.public_url.rstrip('/')}/s/{token}",
            expires_at=claim.expires_at,
            mail_from=settings.mail_from,
            sent_at=rt.clock(),
        )
        try:
            await sender.send(message)
        except SmtpFailure as failure:
            failures += 1
            gave_up = settings.smtp_max_attempts and failures >= settings.smtp_max_attempts
            if failure.kind is FailureKind.TRANSIENT and not gave_up:
                await rt.db(
                    finish_delivery,
                    rt.engine,
                    claim.invitation_id,
                    "pending",
                    rt.clock(),
                    failure.detail,
                )
                log.warning("mail_deferred", error=failure.detail, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, settings.smtp_backoff_max_s)
                continue
            status = "unknown" if failure.kind is FailureKind.AMBIGUOUS else "failed"
            await rt.db(
                finish_delivery, rt.engine, claim.invitation_id, status, rt.clock(), failure.detail
            )
            log.warning("mail_failed", delivery_status=status, error=failure.detail)
            return
        await rt.db(finish_delivery, rt.engine, claim.invitation_id, "sent", rt.clock())
        log.info("mail_sent", attempt=claim.attempt)
        return


def register(app: faust.App, rt: Runtime) -> None:
    sender = SmtpSender(rt.settings)

    @app.agent(rt.topics.survey_invitations, name="mailer")
    async def mailer(stream: faust.StreamT[bytes]) -> None:
        async def handle(rt: Runtime, event: faust.EventT[bytes]) -> None:
            await handle_invitation(rt, event, sender)

        try:
            await consume(rt, "mailer", stream, handle)
        finally:
            await sender.close()  # QUIT, so the relay sees a clean end
