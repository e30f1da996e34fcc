"""Complaint intake as pure functions: a mail or a form post becomes a complaint contact
event that the contact-event contract accepts, or a refusal saying why."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.web.pages.complaint import complaint_form_page
from models.complaints import (
    COMMENT_MAX,
    MAX_MAIL_BYTES,
    MailRefusedError,
    complaint_from_form,
    complaint_from_mail,
    complaint_reference,
    customer_number,
    email_customer_id,
    html_text,
)
from models.contact_events import parse_contact_event
from models.task_lifecycle import TaskOrigin, task_id_for

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def mail(
    body: str = "Mijn factuur is te hoog.",
    *,
    sender: str = '"Anna de Vries" <Anna.deVries@Example.NL>',
    subject: str = "Klacht",
    message_id: str | None = "<complaint-1@mail.example.nl>",
    html: str | None = None,
    **headers: str,
) -> bytes:
    message = EmailMessage()
    if sender:
        message["From"] = sender
    message["To"] = "klachten@cxloop.example"
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for name, value in headers.items():  # after the content: set_content drops Content-*
        message[name.replace("_", "-")] = value
    return message.as_bytes()


# --- customer numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Mijn klantnummer is 123456, de factuur klopt niet", "123456"),
        ("Klantnummer: K-77881", "K-77881"),
        ("klantnr. 998877", "998877"),
        ("My customer number: C-1001.", "C-1001"),
        ("Customer no 5511", "5511"),
        ("Моят клиентски номер е 778899", "778899"),
        ("Номер на клиент: BG-2231", "BG-2231"),
        ("Kundenummer 55501", "55501"),
        ("kundenummeret mitt er ... ", None),
        ("kundenr: N-1", "N-1"),
        ("I do not know my customer number, sorry", None),
        ("Klantnummer onbekend", None),
        ("number 12345 without the word", None),
    ],
)
def test_customer_numbers_in_the_documented_patterns(text: str, number: str | None) -> None:
    assert customer_number(text) == number


def test_without_a_customer_number_the_id_is_a_hash_of_the_lower_cased_address() -> None:
    expected = "email:" + hashlib.sha256(b"anna.devries@example.nl").hexdigest()[:24]
    assert email_customer_id("Anna.deVries@Example.NL ") == expected
    assert "example" not in expected


# --- e-mail -------------------------------------------------------------------------------


def test_a_mail_becomes_a_complaint_contact_event() -> None:
    event = complaint_from_mail(
        mail(subject="Factuur, klantnummer 123456", Content_Language="nl-NL"), NOW
    )
    parsed = parse_contact_event(orjson.dumps(event))  # the trigger's own contract
    assert parsed.kind == "complaint"
    assert parsed.channel == "email"
    assert parsed.occurred_at == NOW
    assert parsed.customer.id == "123456"
    assert parsed.customer.email == "Anna.deVries@example.nl"
    assert parsed.customer.name == "Anna de Vries"
    assert parsed.customer.locale == "nl"
    assert event["comment"] == "Factuur, klantnummer 123456\n\nMijn factuur is te hoog."


def test_a_mail_without_a_number_is_known_by_its_hashed_address() -> None:
    event = complaint_from_mail(mail(sender="anna@example.nl", Content_Language="de"), NOW)
    assert event["customer"]["id"] == email_customer_id("anna@example.nl")
    assert "name" not in event["customer"]
    assert "locale" not in event["customer"]  # only the survey languages


def test_the_same_mail_twice_is_one_complaint_and_another_mail_is_another() -> None:
    first = complaint_from_mail(mail(), NOW)
    again = complaint_from_mail(mail(), datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    other = complaint_from_mail(mail(message_id="<complaint-2@mail.example.nl>"), NOW)
    assert first["event_id"] == again["event_id"]
    assert first["event_id"] != other["event_id"]
    assert "complaint-1" not in first["event_id"]  # hashed
    without_id = [complaint_from_mail(mail(message_id=None), NOW) for _ in range(2)]
    assert without_id[0]["event_id"] == without_id[1]["event_id"]


def test_the_plain_text_part_is_preferred_and_html_alone_is_turned_into_text() -> None:
    both = complaint_from_mail(mail("Plain words.", html="<p>HTML words</p>"), NOW)
    assert both["comment"] == "Klacht\n\nPlain words."
    message = EmailMessage()
    message["From"] = "anna@example.nl"
    message["Message-ID"] = "<html-only@example.nl>"
    message.set_content(
        "<html><head><style>p {color: red}</style></head><body><p>De monteur kwam "
        "<b>niet</b>.</p><script>alert(1)</script><p>Klantnummer: 4455 &amp; boos</p>"
        "</body></html>",
        subtype="html",
    )
    event = complaint_from_mail(message.as_bytes(), NOW)
    assert event["comment"] == "De monteur kwam niet.\n\nKlantnummer: 4455 & boos"
    assert event["customer"]["id"] == "4455"


def test_html_text_keeps_paragraphs_and_drops_markup() -> None:
    assert html_text("<div>a<br>b</div><ul><li>c</li><li>d</li></ul>") == "a\nb\n\nc\n\nd"


def test_a_long_mail_is_cut_to_the_comment_limit() -> None:
    event = complaint_from_mail(mail("x" * 10_000), NOW)
    assert len(event["comment"]) == COMMENT_MAX


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Auto_Submitted": "auto-generated"},
        {"Precedence": "bulk"},
        {"Precedence": "auto_reply"},
        {"Precedence": "list"},
        {"X_Autoreply": "yes"},
    ],
)
def test_automatic_mail_is_ignored_with_a_250(headers: dict[str, str]) -> None:
    with pytest.raises(MailRefusedError) as refused:
        complaint_from_mail(mail(**headers), NOW)
    assert refused.value.reply.startswith("250 ")


def test_auto_submitted_no_is_a_person() -> None:
    assert complaint_from_mail(mail(Auto_Submitted="no"), NOW)["channel"] == "email"


@pytest.mark.parametrize("sender", ["", "undisclosed-recipients:;", "Anna <not-an-address>"])
def test_mail_without_a_usable_from_is_refused_with_a_550(sender: str) -> None:
    with pytest.raises(MailRefusedError) as refused:
        complaint_from_mail(mail(sender=sender), NOW)
    assert refused.value.reason == "no_sender"
    assert refused.value.reply.startswith("550 5.1.7")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=2000)
    | st.builds(
        lambda headers, body: headers + b"\r\n\r\n" + body,
        st.lists(
            st.sampled_from(
                [
                    b"From: =?utf-8?q?=E2=28?= <a@b",
                    b"From: <>",
                    b"From: a@b.example",
                    b'From: "x" <a@[127.0.0.1]>',
                    b"Subject: =?x-unknown?b?AAAA?=",
                    b"Content-Type: text/plain; charset=x-unknown",
                    b"Content-Type: multipart/mixed; boundary=",
                    b"Content-Transfer-Encoding: base64",
                    b"Message-ID: <",
                    b"Content-Language: \xff\xfe",
                ]
            ),
            max_size=6,
        ).map(b"\r\n".join),
        st.binary(max_size=300),
    )
)
def test_any_bytes_become_an_event_or_a_refusal_never_a_crash(raw: bytes) -> None:
    try:
        event = complaint_from_mail(raw, NOW)
    except MailRefusedError as refused:
        reply = refused.reply
    else:
        reply = "250"
        parse_contact_event(orjson.dumps(event))  # the trigger's contract holds
    assert reply[:3] in {"250", "550", "552", "554"}


def test_mail_over_the_size_limit_is_refused_with_a_552() -> None:
    raw = mail("y" * (MAX_MAIL_BYTES + 1))
    with pytest.raises(MailRefusedError) as refused:
        complaint_from_mail(raw, NOW)
    assert refused.value.reply.startswith("552 ")


# --- the web form -------------------------------------------------------------------------

FORM = {
    "name": "  Ivan Petrov ",
    "email": "ivan@example.bg",
    "phone": "+359 88 123 4567",
    "customer_number": "",
    "message": "Internet down for three days.\r\nNobody called back.",
    "language": "bg",
    "form_token": "t0k3n-abcdefghijklmnopqrstuvwx",
    "website": "",
}


def test_a_form_post_becomes_a_web_complaint_event() -> None:
    result = complaint_from_form(FORM, NOW)
    assert result.errors == {}
    assert result.event is not None
    parsed = parse_contact_event(orjson.dumps(result.event))
    assert parsed.kind == "complaint"
    assert parsed.channel == "web"
    assert parsed.customer.id == email_customer_id("ivan@example.bg")
    assert parsed.customer.name == "Ivan Petrov"
    assert parsed.customer.phone == "+359 88 123 4567"
    assert parsed.customer.locale == "bg"
    assert result.event["comment"] == "Internet down for three days.\nNobody called back."


def test_the_same_page_sent_twice_is_one_complaint() -> None:
    first = complaint_from_form(FORM, NOW).event
    again = complaint_from_form({**FORM, "message": "Again"}, NOW).event
    other = complaint_from_form({**FORM, "form_token": "another-token-0123456789"}, NOW).event
    assert first is not None and again is not None and other is not None
    assert first["event_id"] == again["event_id"] != other["event_id"]
    assert FORM["form_token"] not in first["event_id"]
    no_token = [complaint_from_form({**FORM, "form_token": ""}, NOW).event for _ in range(2)]
    assert no_token[0] is not None and no_token[1] is not None
    assert no_token[0]["event_id"] != no_token[1]["event_id"]


def test_a_customer_number_on_the_form_is_the_customer_id() -> None:
    result = complaint_from_form({**FORM, "customer_number": "BG-2231"}, NOW)
    assert result.event is not None
    assert result.event["customer"]["id"] == "BG-2231"


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"message": "   "}, {"message": "error_message_required"}),
        ({"message": "x" * (COMMENT_MAX + 1)}, {"message": "error_message_too_long"}),
        (
            {"name": "", "email": ""},
            {"name": "error_name_required", "email": "error_email_required"},
        ),
        ({"email": "ivan@"}, {"email": "error_email_invalid"}),
        ({"phone": "call me"}, {"phone": "error_phone_invalid"}),
        ({"phone": "12-34"}, {"phone": "error_phone_invalid"}),
        ({"customer_number": "12 34"}, {"customer_number": "error_customer_number_invalid"}),
    ],
)
def test_invalid_entries_give_a_message_per_field_and_keep_the_rest(
    changes: dict[str, str], errors: dict[str, str]
) -> None:
    result = complaint_from_form({**FORM, **changes}, NOW)
    assert result.event is None
    assert result.errors == errors
    assert result.values["email"] == changes.get("email", FORM["email"])
    assert result.values["form_token"] == FORM["form_token"]


def test_a_filled_honeypot_is_a_bot_and_makes_no_event() -> None:
    result = complaint_from_form({**FORM, "website": "http://spam.example"}, NOW)
    assert result.bot
    assert result.event is None


def test_an_unknown_language_falls_back_to_english() -> None:
    result = complaint_from_form({**FORM, "language": "xx"}, NOW)
    assert result.values["language"] == "en"


def test_the_reference_is_the_start_of_the_complaint_tasks_id() -> None:
    reference = complaint_reference("web-abc")
    assert reference == task_id_for(TaskOrigin.COMPLAINT, "web-abc")[:8].upper()


def test_the_form_page_shows_errors_and_entries_in_the_customers_language() -> None:
    page = complaint_form_page(
        locale="no",
        action="/complaint",
        token="tok-0123456789abcdef",  # noqa: S106 - a form token, not a password
        values={"name": "Kari <Nordmann>", "email": "kari@example.no"},
        errors={"message": "error_message_required"},
    )
    assert '<html lang="no">' in page
    assert "Beskriv klagen din." in page
    assert 'href="#message"' in page
    assert 'value="Kari &lt;Nordmann&gt;"' in page
    assert 'name="form_token" value="tok-0123456789abcdef"' in page
    assert 'aria-invalid="true"' in page
