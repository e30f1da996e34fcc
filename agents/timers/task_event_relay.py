"""task_outbox: the follow-up ladder and what it tells people.

Every change to a task is stored with its history event in one transaction; this module
puts those events on followup-tasks (keyed by customer, in order per task), walks the SLA
escalation ladder on every worker each scheduler tick, and sends the reminder and
escalation e-mails the ladder queued. All three read SQL, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from email.message import EmailMessage
from email.utils import make_msgid

import faust
import orjson
import structlog

from agents.mail.smtp_sender import FailureKind, SmtpFailure, SmtpSender
from agents.runtime import Runtime
from models.store.escalation import claim_notifications, escalate_due, finish_notification
from models.store.tables import StaffNotification
from models.store.task_events import claim_unpublished_events, mark_events_published

log = structlog.get_logger("cxloop.task_outbox")

RELAY_BATCH = 500
RELAY_IDLE_S = 0.5  # the longest an event waits when no nudge came
MAX_MAIL_ATTEMPTS = 10


async def relay_once(rt: Runtime) -> int:
    """Publish every waiting task event; the number published."""
    total = 0
    while True:
        claimed = await rt.db(claim_unpublished_events, rt.engine, rt.clock(), RELAY_BATCH)
        if not claimed:
            return total
        for event in claimed:  # in order: one task's events must not overtake
            customer = event.payload["customer_id"]
            await rt.send(rt.topics.followup_tasks, customer, orjson.dumps(event.payload))
        await rt.db(mark_events_published, rt.engine, [e.event_id for e in claimed], rt.clock())
        total += len(claimed)
        if len(claimed) < RELAY_BATCH:
            return total


async def escalate(rt: Runtime) -> int:
    """Record every due reminder and escalation; the number of ladder events."""
    result = await rt.db(escalate_due, rt.engine, rt.followup, rt.clock())
    if result.events:
        rt.task_events_waiting.set()
        log.info(
            "tasks_escalated",
            tasks=result.tasks,
            events=result.events,
            notifications=result.notifications,
        )
    return result.events


def staff_mail(rt: Runtime, row: StaffNotification) -> EmailMessage:
    message = EmailMessage()
    message["From"] = rt.settings.staff_mail_from
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Message-ID"] = make_msgid(idstring=row.notification_id[:16], domain="cxloop")
    message["Auto-Submitted"] = "auto-generated"
    inbox = rt.settings.public_url.rstrip("/") + "/inbox"
    message.set_content(row.body + f"\n{inbox}\n")
    return message


async def send_notifications(rt: Runtime, sender: SmtpSender) -> int:
    """Send the staff e-mails that are due; the number sent."""
    sent = 0
    rows = await rt.db(claim_notifications, rt.engine, rt.clock())
    for row in rows:
        error: str | None = None
        final = False
        try:
            await sender.send(staff_mail(rt, row))
            sent += 1
        except SmtpFailure as exc:
            error = exc.detail
            # An ambiguous failure may have been delivered: a second copy is better than
            # a lost escalation, but not ten of them.
            final = exc.kind is FailureKind.PERMANENT or row.attempts >= MAX_MAIL_ATTEMPTS
        await rt.db(finish_notification, rt.engine, row.notification_id, rt.clock(), error, final)
        if error is not None:
            log.warning("staff_mail_failed", error=error[:200], final=final)
    if sent:
        log.info("staff_mail_sent", count=sent)
    return sent


def register(app: faust.App, rt: Runtime) -> None:
    sender = SmtpSender(rt.settings)

    @app.task  # type: ignore[untyped-decorator]  # faust: untyped
    async def task_event_relay() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.task_events_waiting.wait(), RELAY_IDLE_S)
            rt.task_events_waiting.clear()
            try:
                published = await relay_once(rt)
            except Exception as exc:  # noqa: BLE001 - the events stay stored; next round
                log.warning("task_event_relay_failed", error=type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            if published:
                log.debug("task_events_published", count=published)

    @app.timer(interval=rt.settings.scheduler_interval_s, name="followup_ladder")  # type: ignore[untyped-decorator]  # faust: untyped
    async def ladder() -> None:
        await escalate(rt)
        await send_notifications(rt, sender)
