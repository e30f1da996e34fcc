"""escalation: the SLA ladder and the e-mails it sends to staff.

Every scheduler tick, each worker walks the escalation ladder (recording every due
reminder and escalation on its task, which queues the e-mails) and then sends the staff
e-mails that are due. Both read SQL, so a restart loses nothing.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import faust
import structlog

from agents.mail.smtp_sender import FailureKind, SmtpFailedError, SmtpSender
from agents.runtime import Runtime
from models.store.escalation import claim_notifications, escalate_due, finish_notification
from models.store.tables import StaffNotification

# The logger the ladder has always logged under (with the task event relay).
log = structlog.get_logger("cxloop.task_outbox")

MAX_MAIL_ATTEMPTS = 10


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
        except SmtpFailedError as exc:
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

    @app.timer(interval=rt.settings.scheduler_interval_s, name="followup_ladder")  # type: ignore[untyped-decorator]  # faust: untyped
    async def ladder() -> None:
        await escalate(rt)
        await send_notifications(rt, sender)
