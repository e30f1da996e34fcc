"""mailer: e-mail each survey invitation and reminder, at most once, with a fresh link."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

import faust
import structlog

from agents.consume import consume_batches, decode_or_dead_letter, send_to_dead_letters
from agents.mail.invitation import build_invitation_mail
from agents.mail.smtp_sender import FailureKind, SenderPool, SmtpFailedError
from agents.runtime import Runtime
from models.store.reminders import (
    ReminderClaim,
    claim_reminders,
    finish_reminders,
    reminder_id_for,
)
from models.store.surveys import DeliveryClaim, claim_deliveries, finish_deliveries
from models.tokens import hash_token, new_token
from streams.records import DeadLetterReason, SurveyInvitation, dead_letter_reason

Key = tuple[str, int]  # (invitation id, reminder number; 0 = the invitation itself)
MAX_REMINDERS = 3

log = structlog.get_logger("cxloop.mailer")

_NOT_FOUND = dead_letter_reason(DeadLetterReason.NOT_FOUND, "invitation not in the database")


async def handle_invitations(
    rt: Runtime, events: Sequence[faust.EventT[bytes]], pool: SenderPool
) -> None:
    """Claim, send and record the batch a few invitations at a time (as many as there are
    SMTP connections), so a crash leaves at most that many 'unknown' (claimed, maybe sent).

    Temporary failures are claimed again with a new token after a backoff, so the stream
    waits (back-pressure) while the relay is down; nothing is dropped.
    """
    first_event: dict[Key, faust.EventT[bytes]] = {}
    for event, invitation in await decode_or_dead_letter(rt, events, _invitation):
        key = (invitation.invitation_id, invitation.reminder)
        first_event.setdefault(key, event)  # a duplicate needs no mail
    settings = rt.settings
    tally: Counter[str] = Counter()
    wanted = list(first_event)
    delay, rounds = min(1.0, settings.smtp_backoff_max_s), 0
    while wanted:
        rounds += 1
        gave_up = bool(settings.smtp_max_attempts) and rounds >= settings.smtp_max_attempts
        retry: list[Key] = []
        size = settings.smtp_connections
        for chunk in (wanted[i : i + size] for i in range(0, len(wanted), size)):
            outcomes = await _claim_send_record(rt, pool, chunk, first_event, tally, gave_up)
            retry.extend(i for i, (status, _) in outcomes.items() if status == "pending")
        wanted = retry
        if wanted:
            log.warning("mail_deferred", count=len(wanted), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.smtp_backoff_max_s)
    log.info("mail_batch_done", **{f"mail_{k}": n for k, n in sorted(tally.items())})


def _invitation(raw: bytes) -> SurveyInvitation:
    invitation: SurveyInvitation = SurveyInvitation.from_bytes(raw)
    if not 0 <= invitation.reminder <= MAX_REMINDERS:
        raise ValueError(f"reminder: must be 0 to {MAX_REMINDERS}")
    return invitation


async def _claim(
    rt: Runtime, hashes: dict[Key, str]
) -> tuple[dict[Key, DeliveryClaim | ReminderClaim], dict[Key, str], set[Key]]:
    """Claim invitations (reminder 0) and reminders alike: (claimed, done, missing)."""
    claimed: dict[Key, DeliveryClaim | ReminderClaim] = {}
    done: dict[Key, str] = {}
    missing: set[Key] = set()
    first = {i: h for (i, n), h in hashes.items() if n == 0}
    if first:
        claims = await rt.db(
            claim_deliveries,
            rt.engine,
            first,
            rt.clock(),
            timedelta(days=rt.settings.invitation_ttl_days),
        )
        claimed.update({(i, 0): c for i, c in claims.claimed.items()})
        done.update({(i, 0): s for i, s in claims.done.items()})
        missing.update((i, 0) for i in claims.missing)
    later = {k: h for k, h in hashes.items() if k[1] > 0}
    if later:
        reminders = await rt.db(claim_reminders, rt.engine, later, rt.clock())
        claimed.update(reminders.claimed)
        done.update(reminders.done)
        missing.update(reminders.missing)
    return claimed, done, missing


async def _finish(rt: Runtime, outcomes: dict[Key, tuple[str, str | None]]) -> None:
    first = {i: o for (i, n), o in outcomes.items() if n == 0}
    if first:
        await rt.db(finish_deliveries, rt.engine, first, rt.clock())
    later = {reminder_id_for(i, n): o for (i, n), o in outcomes.items() if n > 0}
    if later:
        await rt.db(finish_reminders, rt.engine, later, rt.clock())


async def _claim_send_record(
    rt: Runtime,
    pool: SenderPool,
    keys: list[Key],
    first_event: dict[Key, faust.EventT[bytes]],
    tally: Counter[str],
    gave_up: bool,
) -> dict[Key, tuple[str, str | None]]:
    tokens = {key: new_token() for key in keys}
    claimed, done, missing = await _claim(rt, {k: hash_token(t) for k, t in tokens.items()})
    for key in missing:
        await send_to_dead_letters(rt, first_event[key], _NOT_FOUND)
    tally.update(f"skipped_{status}" for status in done.values())
    results = await asyncio.gather(
        *(_send(rt, pool, claim, tokens[k], k[1]) for k, claim in claimed.items())
    )
    outcomes = dict(zip(claimed, results, strict=True))
    if gave_up:
        outcomes = {
            i: ("failed", f"gave up after temporary failures: {error}")
            if status == "pending"
            else (status, error)
            for i, (status, error) in outcomes.items()
        }
    await _finish(rt, outcomes)
    tally.update(status for status, _ in outcomes.values())
    return outcomes


async def _send(
    rt: Runtime, pool: SenderPool, claim: DeliveryClaim | ReminderClaim, token: str, reminder: int
) -> tuple[str, str | None]:
    """Send one claimed invitation or reminder; (status, error) to record."""
    settings = rt.settings
    base = settings.public_url.rstrip("/")
    message = build_invitation_mail(
        invitation_id=claim.invitation_id,
        to=claim.email,
        name=claim.name,
        locale=claim.locale,
        company=claim.company or settings.company_name,
        link=f"{base}/s/{token}",
        expires_at=claim.expires_at,
        mail_from=settings.mail_from,
        sent_at=rt.clock(),
        unsubscribe_link=f"{base}/u/{token}",  # the same token: agents/web/unsubscribe.py
        reminder=reminder,
    )
    try:
        await pool.send(message)
    except SmtpFailedError as failure:
        status = {
            FailureKind.TRANSIENT: "pending",
            FailureKind.PERMANENT: "failed",
            FailureKind.AMBIGUOUS: "unknown",
        }[failure.kind]
        return status, failure.detail
    return "sent", None


def register(app: faust.App, rt: Runtime) -> None:
    pool = SenderPool(rt.settings, rt.settings.smtp_connections)

    async def handle(rt: Runtime, events: Sequence[faust.EventT[bytes]]) -> None:
        await handle_invitations(rt, events, pool)

    @app.agent(rt.topics.survey_invitations, name="mailer")
    async def mailer(stream: faust.StreamT[bytes]) -> None:
        try:
            await consume_batches(rt, "mailer", stream, handle)
        finally:
            await pool.close()  # QUIT, so the relay sees a clean end
