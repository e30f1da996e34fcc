"""The survey invitation e-mail (and its reminders), in the customer's language."""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy, Policy
from email.utils import format_datetime, make_msgid
from functools import cache

from agents.rendering import messages, render


class _UrlListHeader(UnstructuredHeader, BaseHeader):
    """A header of <URL>s (List-Unsubscribe) written on one line: folded the default way,
    a URL longer than a line would become an RFC 2047 encoded word no client can use."""

    def fold(self, *, policy: Policy) -> str:
        value = str(self)
        if not value.isascii() or any(c in value for c in "\r\n") or len(value) > 900:
            raise ValueError(f"{self.name}: not a one-line list of URLs")
        return f"{self.name}: {value}{policy.linesep}"


@cache
def _mail_policy() -> EmailPolicy[EmailMessage]:
    headers = HeaderRegistry()
    headers.map_to_type("list-unsubscribe", _UrlListHeader)
    return SMTP.clone(header_factory=headers)


def build_invitation_mail(
    *,
    invitation_id: str,
    to: str,
    name: str | None,
    locale: str,
    company: str,
    link: str,
    expires_at: datetime,
    mail_from: str,
    sent_at: datetime | None = None,
    unsubscribe_link: str | None = None,
    reminder: int = 0,
) -> EmailMessage:
    """The survey invitation: a text and an HTML part, nothing from the customer in headers
    except the validated address. With *unsubscribe_link* (the mailer always gives one) the
    mail shows it and carries List-Unsubscribe and RFC 8058 one-click headers. A *reminder*
    (its number, 1..3) says it is one in the subject and first line."""
    t = messages(locale)
    subject = t["reminder_subject"] if reminder else t["subject"]
    intro = t["intro"].format(company=" ".join(company.split()))
    if reminder:
        intro = f"{t['reminder_intro']} {intro}"
    name, company = _one_line(name), " ".join(company.split())
    words = {
        "lang": t["lang"],
        "subject": subject,
        "greeting": t["greeting"].format(name=name) if name else t["greeting_anonymous"],
        "intro": intro,
        "nps_question": t["nps_question"].format(company=company),
        "button": t["button"],
        "expiry": t["expiry"].format(expires=expires_at.strftime("%Y-%m-%d")),
        "signature": t["signature"],
        "link": link,
        "unsubscribe_text": t["unsubscribe_text"],
        "unsubscribe_action": t["unsubscribe_action"],
        "unsubscribe_link": unsubscribe_link,
    }
    message = EmailMessage(policy=_mail_policy())
    message["Subject"] = subject
    message["From"] = mail_from
    message["To"] = to
    message["Message-ID"] = make_msgid(
        idstring=f"{invitation_id}.r{reminder}" if reminder else invitation_id,
        domain="cxloop.invalid",
    )
    if sent_at is not None:
        message["Date"] = format_datetime(sent_at)
    message["X-Cxloop-Invitation"] = invitation_id
    if reminder:
        message["X-Cxloop-Reminder"] = str(reminder)
    if unsubscribe_link is not None:
        message["List-Unsubscribe"] = f"<{unsubscribe_link}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(render("invitation.txt.j2", **words))
    message.add_alternative(render("invitation.html.j2", **words), subtype="html")
    return message


def _one_line(value: str | None) -> str | None:
    # Names come from other systems: line breaks in them must not become lines of the mail.
    return " ".join(value.split()) if value else value
