"""What the customer reads: the invitation e-mail and the survey page, in their language."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy, Policy
from email.utils import format_datetime, make_msgid
from functools import cache
from typing import Any

import jinja2

from models.survey_templates import (
    ASPECT_SCALE,
    DEFAULT_TEMPLATE,
    SCALES,
    SURVEY_LOCALES,
    Question,
    SurveyTemplate,
    in_locale,
    load_template,
    read_catalogue,
    wording,
)
from models.survey_templates import FALLBACK_LOCALE as FALLBACK_LOCALE  # noqa: PLC0414 - a re-export

SUPPORTED_LOCALES = SURVEY_LOCALES


def _catalogue() -> dict[str, dict[str, str]]:
    return read_catalogue("messages.toml")


def messages(locale: str | None) -> dict[str, str]:
    """The wording for *locale* ('nb'/'nn' count as 'no'), falling back to English per key."""
    return in_locale(_catalogue(), locale)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("agents", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


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


@dataclass(frozen=True)
class _Option:
    """One radio button."""

    id: str
    value: str
    label: str
    checked: bool
    number: str | None = None  # the score shown in a scale box


@dataclass(frozen=True)
class _Group:
    """One set of radios under one name: a question, or one aspect of an aspects question."""

    name: str
    legend: str | None
    options: list[_Option]


@dataclass(frozen=True)
class _QuestionView:
    """A question as the form template draws it."""

    id: str
    type: str
    text: str
    optional: str | None
    error: str | None
    anchor: str  # the id of the first control, where the error summary links to
    described_by: str
    groups: list[_Group] = field(default_factory=list)
    hint: str | None = None
    ends: tuple[str, str] | None = None
    text_value: str = ""
    max_length: int = 0


def survey_form_page(
    *,
    locale: str,
    company: str,
    action: str,
    template: SurveyTemplate | None = None,
    values: Mapping[str, str | list[str]] | None = None,
    errors: Mapping[str, str] | None = None,
) -> str:
    """The survey form for *template* (default: transactional).

    *values* are the submitted form fields and *errors* the messages per question id
    (ParsedAnswers.errors): after an invalid submission the page shows both.
    """
    t = messages(locale)
    questions, other_errors = question_views(
        locale=locale, company=company, template=template, values=values, errors=errors
    )
    return render(
        "survey_form.html.j2",
        t=t,
        title=f"{t['form_has_errors']} – {t['page_title']}" if errors else t["page_title"],
        action=action,
        questions=questions,
        other_errors=other_errors,
    )


def question_views(
    *,
    locale: str,
    company: str,
    template: SurveyTemplate | None = None,
    values: Mapping[str, str | list[str]] | None = None,
    errors: Mapping[str, str] | None = None,
) -> tuple[list[_QuestionView], list[str]]:
    """The template's questions as survey_questions.html.j2 draws them, in *locale*, and the
    errors for fields the form does not have (only a hand-made request sends those)."""
    t = messages(locale)
    w = wording(locale)
    chosen = template or load_template(DEFAULT_TEMPLATE)
    given = values or {}
    problems = dict(errors or {})
    questions = [
        _question_view(q, locale, company, given, problems.get(q.id), t, w)
        for q in chosen.questions
    ]
    known = {q.id for q in chosen.questions}
    return questions, [message for name, message in problems.items() if name not in known]


def _first(value: str | list[str] | None) -> str:
    if isinstance(value, list):
        return value[0] if value else ""
    return value or ""


def _question_view(
    question: Question,
    locale: str,
    company: str,
    values: Mapping[str, str | list[str]],
    error: str | None,
    t: Mapping[str, str],
    w: Mapping[str, str],
) -> _QuestionView:
    qid = question.id
    text = question.text.get(locale).format(company=company)
    optional = None if question.required else w["optional"]
    error_id = f"{qid}-error"
    hint_id = f"{qid}-hint"

    def radios(
        name: str, prefix: str, choices: Sequence[tuple[str, str, str | None]]
    ) -> list[_Option]:
        picked = _first(values.get(name)).strip()
        return [
            _Option(f"{prefix}-{value}", value, label, value == picked, number)
            for value, label, number in choices
        ]

    hint: str | None = None
    ends: tuple[str, str] | None = None
    groups: list[_Group] = []
    text_value = ""
    if question.type == "nps":
        ends = (f"0 = {t['nps_low']}", f"10 = {t['nps_high']}")
        groups = [
            _Group(qid, None, radios(qid, qid, [(str(n), str(n), str(n)) for n in range(11)]))
        ]
    elif question.type in ("csat", "ces"):
        low, high = SCALES[question.type]
        scale = [(str(n), w[f"{question.type}_{n}"], str(n)) for n in range(low, high + 1)]
        groups = [_Group(qid, None, radios(qid, qid, scale))]
    elif question.type == "yes_no":
        groups = [
            _Group(qid, None, radios(qid, qid, [("yes", w["yes"], None), ("no", w["no"], None)]))
        ]
    elif question.type == "aspects":
        low, high = ASPECT_SCALE
        hint = f"{low} = {w[f'csat_{low}']}, {high} = {w[f'csat_{high}']}"
        scale = [(str(n), str(n), str(n)) for n in range(low, high + 1)]
        groups = [
            _Group(
                f"{qid}.{aspect.id}",
                aspect.text.get(locale),
                radios(f"{qid}.{aspect.id}", f"{qid}-{aspect.id}", scale),
            )
            for aspect in question.aspects
        ]
    else:
        text_value = _first(values.get(qid))
    described = [hint_id] if hint else []
    if ends:
        described.append(f"{qid}-ends")
    if error:
        described.append(error_id)
    anchor = groups[0].options[0].id if groups else qid
    return _QuestionView(
        id=qid,
        type=question.type,
        text=text,
        optional=optional,
        error=error,
        anchor=anchor,
        described_by=" ".join(described),
        groups=groups,
        hint=hint,
        ends=ends,
        text_value=text_value,
        max_length=question.max_length,
    )


def survey_message_page(*, locale: str, title_key: str, message_key: str) -> str:
    """A page with one message: thanks, or why the link no longer works."""
    t = messages(locale)
    return render("survey_message.html.j2", t=t, title=t[title_key], message=t[message_key])
