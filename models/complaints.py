"""Complaint intake: a complaint mailed to the intake address or sent with the web form
becomes a complaint contact event (kind "complaint"), which opens a complaint task.

The customer is the customer number written in the subject or text, when there is one
("klantnummer 12345", "customer number: C-1001", "клиентски номер 778899",
"kundenummer 55501", also "klantnr", "customer no", "kundenr", "номер на клиент"; the
number has a digit and only letters, digits and dashes), else "email:" + the first 24 hex
digits of the SHA-256 of the lower-cased address. The same mail twice (same Message-ID)
and the same form sent twice (same per-page token) have one event id, so one complaint.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.errors import MessageError
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import Any

import orjson
from email_validator import EmailNotValidError, validate_email

from models.contact_events import CONTACT_EVENT_SCHEMA_VERSION, parse_contact_event
from models.errors import CxloopError
from models.json_checks import NUL
from models.survey_templates import FALLBACK_LOCALE, SURVEY_LOCALES, language_code
from models.task_lifecycle import TaskOrigin, task_id_for
from models.tokens import hash_token, looks_like_token

MAX_MAIL_BYTES = 1_000_000
MAX_FORM_BYTES = 20_000
COMMENT_MAX = 4000
NAME_MAX = 200
EMAIL_MAX = 320

# --- who the customer is ------------------------------------------------------------------

_NUMBER_WORDS = (
    r"klant\s*nummer",
    r"klantnr\.?",
    r"customer\s+(?:number|no\.?)",
    r"клиентски\s+номер",
    r"номер\s+на\s+клиент",
    r"kunde\s*nummer(?:et)?",
    r"kundenr\.?",
)
_CUSTOMER_NUMBER = re.compile(
    rf"(?<!\w)(?:{'|'.join(_NUMBER_WORDS)})"
    r"[\s:#=.\-]*(?:(?:is|er|е)[\s:]+)?"
    r"(?P<id>(?=[A-Za-z0-9-]*[0-9])[A-Za-z0-9][A-Za-z0-9-]{0,39})(?![\w-])",
    re.IGNORECASE,
)
_FORM_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")


def customer_number(text: str) -> str | None:
    """The customer number written after one of the documented words, or None."""
    match = _CUSTOMER_NUMBER.search(text)
    return match.group("id") if match else None


def email_customer_id(address: str) -> str:
    """The customer id of someone known only by e-mail address (stable, not the address)."""
    return "email:" + hashlib.sha256(address.strip().lower().encode()).hexdigest()[:24]


def usable_address(value: str) -> str | None:
    """*value* as a normalised e-mail address, or None when it is not one."""
    if not value or len(value) > EMAIL_MAX:
        return None
    try:
        return validate_email(value, check_deliverability=False, allow_smtputf8=True).normalized
    except EmailNotValidError:
        return None


def _one_line(value: str, limit: int) -> str:
    return " ".join(value.split())[:limit]


def supported_locale(value: str | None) -> str | None:
    """The survey locale a language tag names ('nl-NL' → 'nl', 'nb' → 'no'), or None."""
    code = language_code((value or "").split(",")[0])
    return code if code in SURVEY_LOCALES else None


def complaint_reference(event_id: str) -> str:
    """The reference a customer is given: the start of the complaint task's id."""
    return task_id_for(TaskOrigin.COMPLAINT, event_id)[:8].upper()


def _event(
    event_id: str, at: datetime, channel: str, customer: dict[str, Any], comment: str | None
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "occurred_at": at.isoformat(),
        "kind": "complaint",
        "channel": channel,
        "customer": {k: v for k, v in customer.items() if v},
        "comment": comment,
        "schema_version": CONTACT_EVENT_SCHEMA_VERSION,
    }


def _checked(event: dict[str, Any]) -> dict[str, Any]:
    """*event*, once the trigger's own contract (parse_contact_event) accepts it. One it
    refuses is a bug here, so ContactEventInvalidError propagates (its message quotes no values)."""
    parse_contact_event(orjson.dumps(event))
    return event


# --- e-mail -------------------------------------------------------------------------------


class MailRefusedError(CxloopError, ValueError):
    """A mail that does not become a complaint: *reason* for the log, *reply* for SMTP
    (a 250 for automatic mail, so an auto-responder gets no bounce to answer)."""

    def __init__(self, reason: str, reply: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


def too_large() -> MailRefusedError:
    # A new exception per raise: a shared one would keep the last mail's frames alive
    # through its traceback.
    return MailRefusedError("too_large", "552 5.3.4 Message too big for the complaint intake")


def no_sender() -> MailRefusedError:
    return MailRefusedError("no_sender", "550 5.1.7 No usable From: address")


def nul_character(where: str) -> MailRefusedError:
    """A NUL character in the sender's name, the subject or the text: PostgreSQL cannot
    store it, so the sender is told at once instead of the complaint being lost later."""
    return MailRefusedError(
        "nul_character",
        f"550 5.6.0 The {where} contains a NUL character; send the complaint without it",
    )


_AUTOMATIC_REPLY = "250 2.0.0 Automatic message ignored"
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "auto_reply", "list", "junk"})


def automatic(message: Message) -> str | None:
    """Why *message* was sent by a machine (auto-reply, list, bounce), or None."""
    submitted = str(message.get("Auto-Submitted") or "").strip().lower()
    if submitted and submitted != "no":
        return "auto_submitted"
    if str(message.get("Precedence") or "").strip().lower() in _AUTOMATIC_PRECEDENCE:
        return "precedence"
    for name in ("X-Autoreply", "X-Autorespond"):
        value = message.get(name)
        if value is not None and str(value).strip().lower() != "no":
            return "autoreply_header"
    if message.get_content_type() == "multipart/report":
        return "delivery_report"
    return None


class _TextOfHtml(HTMLParser):
    """The readable text of an HTML part: no tags, scripts or styles; blocks on new lines."""

    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The text a reader sees in *html*."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    return tidy("".join(parser.parts))


def tidy(text: str) -> str:
    """One space between words, at most one empty line between paragraphs."""
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n")]
    joined = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", joined).strip()


def _part_text(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
    except (LookupError, UnicodeError, ValueError):
        content = None
    if not isinstance(content, str):
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return html_text(content) if part.get_content_type() == "text/html" else tidy(content)


def mail_text(message: EmailMessage) -> str:
    """The text of a mail: its text/plain body, else the text of its HTML body."""
    part = message.get_body(preferencelist=("plain", "html"))
    return _part_text(part) if part is not None else ""


def _sender(message: EmailMessage) -> tuple[str, str | None]:
    try:
        header = message["From"]
        addresses = getattr(header, "addresses", ()) if header is not None else ()
    except (IndexError, ValueError, TypeError):
        addresses = ()
    if not addresses:
        raise no_sender()
    address = usable_address(addresses[0].addr_spec)
    if address is None:
        raise no_sender()
    name = _one_line(addresses[0].display_name or "", NAME_MAX)
    return address, (name if name and "@" not in name else None)


def mail_event_id(message: EmailMessage, sender: str, text: str) -> str:
    """A stable event id: the hashed Message-ID, else a hash of what the mail says."""
    message_id = str(message.get("Message-ID") or "").strip()
    seed = message_id or f"{sender}\n{message.get('Date')}\n{message.get('Subject')}\n{text}"
    return "mail-" + hashlib.sha256(seed.encode("utf-8", "replace")).hexdigest()[:32]


def complaint_from_mail(raw: bytes, received_at: datetime) -> dict[str, Any]:
    """The complaint contact event of a received mail; MailRefusedError when it is none."""
    if len(raw) > MAX_MAIL_BYTES:
        raise too_large()
    try:
        event = _mail_event(raw, received_at)
    except MailRefusedError:
        raise
    except (MessageError, LookupError, ValueError, TypeError):
        # Malformed beyond what the parser tolerates; the sender gets a permanent answer.
        raise MailRefusedError("unreadable", "554 5.6.0 The message could not be read") from None
    return _checked(event)


def _mail_event(raw: bytes, received_at: datetime) -> dict[str, Any]:
    parsed = message_from_bytes(raw, policy=policy.default)
    if not isinstance(parsed, EmailMessage):
        raise no_sender()
    why = automatic(parsed)
    if why is not None:
        raise MailRefusedError(why, _AUTOMATIC_REPLY)
    address, name = _sender(parsed)
    subject = _one_line(str(parsed.get("Subject") or ""), 300)
    body = mail_text(parsed)
    for where, text in (("sender's name", name or ""), ("subject", subject), ("text", body)):
        if NUL in text:
            raise nul_character(where)
    comment = "\n\n".join(p for p in (subject, body) if p)[:COMMENT_MAX]
    number = customer_number(subject) or customer_number(body)
    customer = {
        "id": number or email_customer_id(address),
        "email": address,
        "name": name,
        "locale": supported_locale(str(parsed.get("Content-Language") or "")),
    }
    event_id = mail_event_id(parsed, address, body)
    return _event(event_id, received_at, "email", customer, comment or None)


# --- the web form -------------------------------------------------------------------------

_PHONE = re.compile(r"[0-9+() ./-]{6,40}")
HONEYPOT = "website"  # hidden from people; bots fill it in


def form_event_id(token: str) -> str:
    """The event id of a form post: the hashed page token (models.tokens.new_token, one per
    rendering of the form, so sending it twice is one complaint), or a fresh id without it."""
    if looks_like_token(token):
        return "web-" + hash_token(token)[:32]
    return "web-" + uuid.uuid4().hex


@dataclass(frozen=True)
class FormResult:
    """A checked form: the event, or the message key per field that is wrong; the entries
    as they are shown again. *bot* when the honeypot was filled in."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    event: dict[str, Any] | None = None
    bot: bool = False


FORM_FIELDS = ("name", "email", "phone", "customer_number", "message", "language", "form_token")


_CHECKED_FIELDS = ("name", "email", "phone", "customer_number", "message")


def _field_errors(values: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    nul = {f: "error_nul_character" for f in _CHECKED_FIELDS if NUL in values[f]}
    if nul:
        return nul, None
    errors: dict[str, str] = {}
    name, phone, number = values["name"], values["phone"], values["customer_number"]
    if not name:
        errors["name"] = "error_name_required"
    elif len(name) > NAME_MAX:
        errors["name"] = "error_name_too_long"
    address = usable_address(values["email"])
    if not values["email"]:
        errors["email"] = "error_email_required"
    elif address is None:
        errors["email"] = "error_email_invalid"
    if phone and (not _PHONE.fullmatch(phone) or sum(c.isdigit() for c in phone) < 6):
        errors["phone"] = "error_phone_invalid"
    if number and not _FORM_NUMBER.fullmatch(number):
        errors["customer_number"] = "error_customer_number_invalid"
    if not values["message"].strip():
        errors["message"] = "error_message_required"
    elif len(values["message"]) > COMMENT_MAX:
        errors["message"] = "error_message_too_long"
    return errors, address


def complaint_from_form(fields: Mapping[str, str], now: datetime) -> FormResult:
    """Check a posted complaint form and make its contact event (channel "web")."""
    values = {name: fields.get(name, "").strip() for name in FORM_FIELDS}
    values["message"] = values["message"].replace("\r\n", "\n")
    values["language"] = supported_locale(values["language"]) or FALLBACK_LOCALE
    if fields.get(HONEYPOT, "").strip():
        return FormResult(values=values, bot=True)
    errors, address = _field_errors(values)
    if errors or address is None:
        return FormResult(values=values, errors=errors)
    customer = {
        "id": values["customer_number"] or email_customer_id(address),
        "email": address,
        "name": _one_line(values["name"], NAME_MAX),
        "phone": values["phone"] or None,
        "locale": values["language"],
    }
    event = _event(form_event_id(values["form_token"]), now, "web", customer, values["message"])
    return FormResult(values=values, event=_checked(event))
