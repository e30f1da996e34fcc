"""The complaint form and the page that confirms a complaint arrived, in the customer's
language (the checks and the contact event are models.complaints)."""

from __future__ import annotations

from collections.abc import Mapping

from agents.rendering import render
from models.complaints import FORM_FIELDS, HONEYPOT
from models.survey_templates import in_locale, read_catalogue


def wording(locale: str | None) -> dict[str, str]:
    """The form's texts in *locale*, English per missing key."""
    return in_locale(read_catalogue("complaint/messages.toml"), locale)


def complaint_form_page(
    *,
    locale: str,
    action: str,
    token: str,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str | None = None,
) -> str:
    """The complaint form; after a bad post with the entries and a message per field."""
    t = wording(locale)
    shown = {name: (values or {}).get(name, "") for name in FORM_FIELDS}
    messages = {name: t[key] for name, key in (errors or {}).items()}
    title = f"{t['form_has_errors']} – {t['title']}" if messages else t["title"]
    return render(
        "complaint/form.html.j2",
        t=t,
        title=title,
        action=action,
        token=token,
        locale=locale,
        values=shown,
        errors=messages,
        notice=t[notice] if notice else None,
        honeypot=HONEYPOT,
    )


def complaint_received_page(*, locale: str, reference: str) -> str:
    """The complaint arrived: thanks, and the reference to quote."""
    t = wording(locale)
    return render("complaint/received.html.j2", t=t, title=t["received_title"], reference=reference)
