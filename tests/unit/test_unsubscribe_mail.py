"""The unsubscribe link in the invitation mail and the unsubscribe pages, per language."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from agents.mail.invitation import build_invitation_mail
from agents.rendering import messages
from agents.web.pages.unsubscribe import (
    unsubscribe_error_page,
    unsubscribe_form_page,
    unsubscribed_page,
)

LOCALES = ["nl", "bg", "no", "en"]
LINK_KEY = "Zq3-token_ABCdef0123456789xyzXYZ0123456789a"
# Longer than a header line: folded the default way it would become an encoded word.
UNSUBSCRIBE = f"https://feedback.a-rather-long-company-name.example.com/u/{LINK_KEY}"


def mail(locale: str, unsubscribe_link: str | None = UNSUBSCRIBE) -> EmailMessage:
    built = build_invitation_mail(
        invitation_id="i-1",
        to="anna@example.nl",
        name="Anna",
        locale=locale,
        company="CBG Connect",
        link=f"https://feedback.example.com/s/{LINK_KEY}",
        expires_at=datetime(2026, 12, 20, 10, 0, tzinfo=UTC),
        mail_from="survey@example.com",
        unsubscribe_link=unsubscribe_link,
    )
    raw = built.as_bytes()
    assert all(len(line) <= 998 for line in raw.splitlines())
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


@pytest.mark.parametrize("locale", LOCALES)
def test_the_mail_carries_rfc_8058_headers_and_shows_the_link(locale: str) -> None:
    message = mail(locale)
    words = messages(locale)
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert UNSUBSCRIBE in body(message, "plain")
    assert words["unsubscribe_text"] in body(message, "plain")
    assert f'href="{UNSUBSCRIBE}"' in body(message, "html")
    assert words["unsubscribe_action"] in body(message, "html")


def test_a_header_breaking_link_is_refused() -> None:
    with pytest.raises(ValueError, match="linefeed"):
        mail("en", unsubscribe_link=UNSUBSCRIBE + "\r\nBcc: evil@example.com")
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        mail("en", unsubscribe_link=UNSUBSCRIBE + "ä")  # would need an encoded word


def test_without_a_link_there_is_no_unsubscribe_header_or_text() -> None:
    message = mail("en", unsubscribe_link=None)
    assert message["List-Unsubscribe"] is None
    assert messages("en")["unsubscribe_text"] not in body(message, "plain")


@pytest.mark.parametrize("locale", LOCALES)
def test_the_confirmation_page_is_a_post_form_without_script(locale: str) -> None:
    page = unsubscribe_form_page(locale=locale, action=f"/u/{LINK_KEY}")
    words = messages(locale)
    assert f'<html lang="{words["lang"]}">' in page
    assert words["unsubscribe_question"] in page
    assert f'<form method="post" action="/u/{LINK_KEY}">' in page
    assert "<script" not in page.lower()
    done = unsubscribed_page(locale=locale)
    assert words["unsubscribe_done_body"] in done
    assert words["unsubscribe_not_found"] in unsubscribe_error_page(
        locale=locale, message_key="unsubscribe_not_found"
    )
