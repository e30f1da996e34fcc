"""What a customer sees behind the unsubscribe link in a survey mail, in their language."""

from __future__ import annotations

from agents.rendering import messages, render
from agents.web.pages.survey import survey_message_page


def unsubscribe_form_page(*, locale: str, action: str) -> str:
    """Asks to confirm with a POST form: opening the link (or a mail scanner fetching it)
    changes nothing."""
    t = messages(locale)
    return render(
        "unsubscribe_form.html.j2",
        t=t,
        title=t["unsubscribe_title"],
        question=t["unsubscribe_question"],
        button=t["unsubscribe_action"],
        action=action,
    )


def unsubscribed_page(*, locale: str) -> str:
    """The customer will get no more survey mail."""
    return survey_message_page(
        locale=locale, title_key="unsubscribe_done_title", message_key="unsubscribe_done_body"
    )


def unsubscribe_error_page(*, locale: str, message_key: str) -> str:
    """Why the unsubscribe did not happen: unknown link, or try again later."""
    return survey_message_page(
        locale=locale, title_key="unsubscribe_title", message_key=message_key
    )
