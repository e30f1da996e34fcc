"""What interviewers see: sign-in, the call list and one call with its script and questions.

The staff-facing text is English; the script and the questions are in the customer's
language, because the interviewer reads them out (the same question rendering as the
customer's own survey page, agents.web.pages.survey.question_views).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agents.rendering import messages, render
from agents.web.pages.survey import question_views
from models.store.call_list import OpenCall
from models.survey_templates import SurveyTemplate

STAFF_LOCALE = "en"
LANGUAGES = {"nl": "Dutch", "bg": "Bulgarian", "no": "Norwegian", "en": "English"}
NOTICES = {
    "answers": "The answers were saved.",
    "no_answer": "The unanswered call was counted.",
    "refused": "The refusal was recorded; the customer left the call list.",
    "wrong_number": "The wrong number was recorded; the customer left the call list.",
}


def _language(locale: str) -> str:
    return LANGUAGES.get(locale, locale)


def _when(call: OpenCall) -> str:
    return call.expires_at.strftime("%Y-%m-%d %H:%M UTC")


def login_page(*, action: str, interviewer: str = "", error: str | None = None) -> str:
    t = messages(STAFF_LOCALE)
    return render(
        "interview_login.html.j2",
        t=t,
        title="Sign in – interviews",
        action=action,
        interviewer=interviewer,
        error=error,
    )


@dataclass(frozen=True)
class _Row:
    href: str
    label: str
    phone: str
    programme: str
    language: str
    attempts: int
    expires: str
    expires_iso: str


def call_list_page(
    *,
    calls: Sequence[OpenCall],
    interviewer: str,
    csrf: str,
    base: str,
    logout_action: str,
    notice: str | None = None,
) -> str:
    """The open calls, oldest first; each customer's name links to the call."""
    rows = [
        _Row(
            href=f"{base}/{call.invitation_id}",
            label=call.name or call.customer_id,
            phone=call.phone or "",
            programme=call.programme or "",
            language=_language(call.locale),
            attempts=call.attempts,
            expires=_when(call),
            expires_iso=call.expires_at.isoformat(),
        )
        for call in calls
    ]
    return render(
        "interview_list.html.j2",
        t=messages(STAFF_LOCALE),
        title="Calls to make",
        calls=rows,
        interviewer=interviewer,
        csrf=csrf,
        logout_action=logout_action,
        notice=NOTICES.get(notice or ""),
    )


def call_page(
    *,
    call: OpenCall,
    template: SurveyTemplate,
    company: str,
    interviewer: str,
    csrf: str,
    action: str,
    list_href: str,
    values: Mapping[str, str | list[str]] | None = None,
    errors: Mapping[str, str] | None = None,
) -> str:
    """One call: who and where, the script, the template's questions, and the outcomes
    for a call that did not become an interview. After an invalid submission the page
    shows what was entered and what to fix."""
    customer = messages(call.locale)
    questions, other_errors = question_views(
        locale=call.locale, company=company, template=template, values=values, errors=errors
    )
    who = call.name or call.customer_id
    t = messages(STAFF_LOCALE)
    return render(
        "interview_call.html.j2",
        t=t,
        title=f"{t['form_has_errors']} – Call {who}" if errors else f"Call {who}",
        heading=f"Call {who}",
        call=call,
        language=_language(call.locale),
        locale=customer["lang"],
        expires=_when(call),
        expires_iso=call.expires_at.isoformat(),
        script=customer["call_script"].format(interviewer=interviewer, company=company),
        questions=questions,
        other_errors=other_errors,
        csrf=csrf,
        action=action,
        list_href=list_href,
    )


def interview_message_page(*, title: str, message: str, list_href: str) -> str:
    """Why a call cannot be worked (answered, expired, closed, unknown)."""
    return render(
        "interview_message.html.j2",
        t=messages(STAFF_LOCALE),
        title=title,
        message=message,
        list_href=list_href,
    )
