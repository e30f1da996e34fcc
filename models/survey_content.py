"""What the customer reads: the invitation e-mail and the survey page, in their language."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from functools import cache
from importlib.resources import files
from typing import Any

import jinja2

SUPPORTED_LOCALES = ("nl", "bg", "no", "en")
FALLBACK_LOCALE = "en"
COMMENT_MAX = 4000
_ASCII_SCORE = re.compile(r"[0-9]{1,2}")


@cache
def _catalogue() -> dict[str, dict[str, str]]:
    raw = files("models").joinpath("templates", "messages.toml").read_text("utf-8")
    return tomllib.loads(raw)


def messages(locale: str | None) -> dict[str, str]:
    """The wording for *locale* ('nb'/'nn' count as 'no'), falling back to English per key."""
    catalogue = _catalogue()
    code = (locale or FALLBACK_LOCALE).lower().replace("_", "-").split("-")[0]
    code = "no" if code in ("nb", "nn") else code
    return {**catalogue[FALLBACK_LOCALE], **catalogue.get(code, {})}


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("models", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


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
) -> EmailMessage:
    """The survey invitation: a text and an HTML part, nothing from the customer in headers
    except the validated address."""
    t = messages(locale)
    name, company = _one_line(name), " ".join(company.split())
    words = {
        "lang": t["lang"],
        "subject": t["subject"],
        "greeting": t["greeting"].format(name=name) if name else t["greeting_anonymous"],
        "intro": t["intro"].format(company=company),
        "nps_question": t["nps_question"].format(company=company),
        "button": t["button"],
        "expiry": t["expiry"].format(expires=expires_at.strftime("%Y-%m-%d")),
        "signature": t["signature"],
        "link": link,
    }
    message = EmailMessage(policy=SMTP)
    message["Subject"] = t["subject"]
    message["From"] = mail_from
    message["To"] = to
    message["Message-ID"] = make_msgid(idstring=invitation_id, domain="cxloop.invalid")
    if sent_at is not None:
        message["Date"] = format_datetime(sent_at)
    message["X-Cxloop-Invitation"] = invitation_id
    message.set_content(render("invitation.txt.j2", **words))
    message.add_alternative(render("invitation.html.j2", **words), subtype="html")
    return message


def _one_line(value: str | None) -> str | None:
    # Names come from other systems: line breaks in them must not become lines of the mail.
    return " ".join(value.split()) if value else value


@dataclass(frozen=True)
class Answer:
    nps: int
    comment: str | None


@dataclass
class InvalidAnswer(ValueError):
    """Per-field problems with a submitted answer (field name → message key)."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{name}: {key}" for name, key in self.errors.items())


def parse_answer(nps: object, comment: object) -> Answer:
    """Validate an NPS answer from a form or JSON: an integer 0–10 and an optional comment."""
    errors: dict[str, str] = {}
    score: int | None = None
    if isinstance(nps, bool):
        errors["nps"] = "error_nps_required"
    elif isinstance(nps, int):
        score = nps
    elif isinstance(nps, str) and _ASCII_SCORE.fullmatch(nps.strip()):
        score = int(nps.strip())
    else:
        errors["nps"] = "error_nps_required"
    if score is not None and not 0 <= score <= 10:
        errors["nps"] = "error_nps_required"
    if (comment is not None and not isinstance(comment, str)) or (
        isinstance(comment, str) and len(comment) > COMMENT_MAX
    ):
        errors["comment"] = "error_comment_too_long"
    if errors or score is None:
        raise InvalidAnswer(errors or {"nps": "error_nps_required"})
    text = comment.strip() if isinstance(comment, str) else None
    return Answer(nps=score, comment=text or None)


def survey_form_page(
    *,
    locale: str,
    company: str,
    action: str,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> str:
    """The survey form; *values* and *errors* re-fill it after an invalid submission."""
    t = messages(locale)
    return render(
        "survey_form.html.j2",
        t=t,
        title=f"{t['form_has_errors']} – {t['page_title']}" if errors else t["page_title"],
        nps_question=t["nps_question"].format(company=company),
        action=action,
        values=values or {},
        errors={name: t[key] for name, key in (errors or {}).items()},
    )


def survey_message_page(*, locale: str, title_key: str, message_key: str) -> str:
    """A page with one message: thanks, or why the link no longer works."""
    t = messages(locale)
    return render("survey_message.html.j2", t=t, title=t[title_key], message=t[message_key])
