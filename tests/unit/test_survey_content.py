"""What the customer reads: wording per locale, the invitation mail and the survey form."""

from __future__ import annotations

import string
import tomllib
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path

import pytest

from agents import rendering
from agents.mail.invitation import build_invitation_mail
from agents.rendering import messages
from agents.web.pages.survey import survey_form_page
from models.survey_templates import load_template, template_names, wording

# The translators' file, read directly so the tests do not trust messages() to read it.
MESSAGES_TOML = Path(str(files("models").joinpath("templates", "messages.toml")))
CATALOGUE: dict[str, dict[str, str]] = tomllib.loads(MESSAGES_TOML.read_text("utf-8"))
LOCALES = ["nl", "bg", "no", "en"]
LINK = "https://survey.example.com/s/Zq3-token_ABCdef0123456789xyzXYZ"
EXPIRES = datetime(2026, 12, 20, 10, 0, tzinfo=UTC)
INJECTION = "\r\nBcc: evil@example.com"


def mail(
    locale: str = "en", name: str | None = "Anna de Vries", company: str = "CBG Connect"
) -> EmailMessage:
    built = build_invitation_mail(
        invitation_id="6c2f8a1e-0f7e-5d0b-9a43-0c2b4f6f9d11",
        to="anna@example.nl",
        name=name,
        locale=locale,
        company=company,
        link=LINK,
        expires_at=EXPIRES,
        mail_from="Klantenservice <survey@example.com>",
    )
    # What the SMTP server receives, parsed back as a mail client would.
    parsed = message_from_bytes(built.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            assert isinstance(part, EmailMessage)
            found[part.get_content_type()] = part.get_content()
    return found


def all_headers(message: EmailMessage) -> list[tuple[str, str]]:
    return [(k, str(v)) for part in message.walk() for k, v in part.items()]


# ---------------------------------------------------------------------------- messages()


@pytest.mark.parametrize("locale", LOCALES)
def test_messages_for_each_supported_locale(locale: str) -> None:
    assert messages(locale) == CATALOGUE[locale]


@pytest.mark.parametrize(
    ("asked", "served"),
    [
        ("nb", "no"),
        ("nn", "no"),
        ("no-NO", "no"),
        ("nb-NO", "no"),
        ("nb_NO", "no"),
        ("NN", "no"),
        ("nl-BE", "nl"),
        ("NL", "nl"),
        ("bg-BG", "bg"),
        ("en-GB", "en"),
        ("de", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_messages_maps_locale_codes(asked: str | None, served: str) -> None:
    assert messages(asked) == CATALOGUE[served]


def test_messages_fall_back_to_english_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    partial = {"en": CATALOGUE["en"], "nl": {"subject": "Alleen het onderwerp"}}
    monkeypatch.setattr(rendering, "_catalogue", lambda: partial)

    words = messages("nl")

    assert words["subject"] == "Alleen het onderwerp"
    assert words["button"] == CATALOGUE["en"]["button"]
    assert set(words) == set(CATALOGUE["en"])


def test_the_supported_locales_are_in_the_catalogue() -> None:
    assert set(rendering.SUPPORTED_LOCALES) <= set(CATALOGUE)
    assert rendering.FALLBACK_LOCALE in CATALOGUE


@pytest.mark.parametrize("locale", sorted(CATALOGUE))
def test_every_locale_has_exactly_the_english_keys(locale: str) -> None:
    missing = set(CATALOGUE["en"]) - set(CATALOGUE[locale])
    extra = set(CATALOGUE[locale]) - set(CATALOGUE["en"])
    assert not missing, f"{locale} lacks {sorted(missing)}"
    assert not extra, f"{locale} has keys English lacks: {sorted(extra)}"


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("locale", sorted(CATALOGUE))
def test_every_translation_keeps_the_english_placeholders(locale: str) -> None:
    for key, english in CATALOGUE["en"].items():
        assert placeholders(CATALOGUE[locale][key]) == placeholders(english), (locale, key)


@pytest.mark.parametrize("locale", [loc for loc in sorted(CATALOGUE) if loc != "en"])
def test_translations_are_not_english_copies(locale: str) -> None:
    for key in ("subject", "intro", "nps_question", "thanks_body"):
        assert CATALOGUE[locale][key] != CATALOGUE["en"][key], (locale, key)


# ---------------------------------------------------------------------------- invitation mail


@pytest.mark.parametrize("locale", LOCALES)
def test_invitation_is_text_and_html_with_the_link(locale: str) -> None:
    message = mail(locale)

    assert message.get_content_type() == "multipart/alternative"
    bodies = parts(message)
    assert set(bodies) == {"text/plain", "text/html"}
    for body in bodies.values():
        assert LINK in body
    assert f'href="{LINK}"' in bodies["text/html"]


@pytest.mark.parametrize("locale", LOCALES)
def test_invitation_is_in_the_customers_language(locale: str) -> None:
    words = CATALOGUE[locale]
    message = mail(locale)
    bodies = parts(message)

    assert message["Subject"] == words["subject"]
    assert f'<html lang="{words["lang"]}">' in bodies["text/html"]
    assert words["greeting"].format(name="Anna de Vries") in bodies["text/plain"]
    assert words["nps_question"].format(company="CBG Connect") in bodies["text/plain"]
    assert "2026-12-20" in bodies["text/plain"]


def test_subjects_differ_per_language() -> None:
    assert len({mail(locale)["Subject"] for locale in LOCALES}) == len(LOCALES)


def test_norwegian_bokmal_customer_gets_norwegian() -> None:
    assert mail("nb-NO")["Subject"] == CATALOGUE["no"]["subject"]


def test_invitation_without_name_uses_anonymous_greeting() -> None:
    text = parts(mail("nl", name=None))["text/plain"]
    assert text.startswith(CATALOGUE["nl"]["greeting_anonymous"])


def test_invitation_headers() -> None:
    message = mail()
    assert message["To"] == "anna@example.nl"
    assert message["From"].addresses[0].addr_spec == "survey@example.com"
    assert message["X-Cxloop-Invitation"] == "6c2f8a1e-0f7e-5d0b-9a43-0c2b4f6f9d11"
    assert message["Message-ID"].endswith("@cxloop.invalid>")


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("where", ["name", "company"])
def test_crlf_in_name_or_company_cannot_add_a_header(locale: str, where: str) -> None:
    if where == "name":
        message = mail(locale, name="Anna" + INJECTION)
    else:
        message = mail(locale, company="CBG" + INJECTION)

    headers = all_headers(message)
    assert not [k for k, _ in headers if k.lower() in {"bcc", "cc"}], headers
    assert not [v for _, v in headers if "evil" in v], headers
    assert message.get_all("To") == ["anna@example.nl"]
    # It is in the body, as text the customer sees, and nowhere else.
    assert any("evil@example.com" in body for body in parts(message).values())


def test_crlf_in_the_address_is_refused_not_sent() -> None:
    with pytest.raises(ValueError, match="linefeed"):
        build_invitation_mail(
            invitation_id="i-1",
            to="anna@example.nl" + INJECTION,
            name="Anna",
            locale="en",
            company="CBG Connect",
            link=LINK,
            expires_at=EXPIRES,
            mail_from="survey@example.com",
        )


def test_crlf_in_name_does_not_add_lines_to_the_text_body() -> None:
    plain = parts(mail("en", name="Anna Bcc: evil@example.com"))["text/plain"]
    injected = parts(mail("en", name="Anna" + INJECTION))["text/plain"]
    assert len(injected.splitlines()) == len(plain.splitlines())


@pytest.mark.parametrize("locale", LOCALES)
def test_html_part_escapes_name_and_company(locale: str) -> None:
    message = mail(locale, name="<script>alert(1)</script>", company='<b onclick="x()">ACME</b>')
    html = parts(message)["text/html"]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b " not in html
    assert "&lt;b onclick=" in html
    # Plain text needs no escaping: the customer's name reads as written.
    assert "<script>alert(1)</script>" in parts(message)["text/plain"]


# ---------------------------------------------------------------------------- survey form


class FormPage(HTMLParser):
    """The parts of the survey form a test looks at."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.radios: dict[str, dict[str, str | None]] = {}
        self.textareas: dict[str, dict[str, str | None]] = {}
        self.texts: dict[str, str] = {}
        self.errors: dict[str, str] = {}  # id of the error → its text
        self.summary: list[tuple[str, str]] = []  # (link target, text)
        self.legends: list[str] = []
        self.labels: dict[str, str] = {}
        self.form_action: str | None = None
        self._capture: tuple[str, str] | None = None
        self._buffer = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("type") == "radio":
            self.radios[a["id"] or ""] = a
        if tag == "form":
            self.form_action = a.get("action")
        target = None
        if tag == "textarea":
            self.textareas[a["id"] or ""] = a
            target = ("textarea", a["id"] or "")
        elif "error" in (a.get("class") or "").split():
            target = ("error", a.get("id") or "")
        elif tag == "a" and (a.get("href") or "").startswith("#"):
            target = ("summary", (a.get("href") or "")[1:])
        elif tag == "legend":
            target = ("legend", "")
        elif tag == "label":
            target = ("label", a.get("for") or "")
        if target and self._capture is None:
            self._capture, self._buffer = target, ""

    def handle_endtag(self, tag: str) -> None:
        if self._capture is None:
            return
        kind, key = self._capture
        ends = {"textarea": "textarea", "error": "p", "summary": "a", "legend": "legend"}
        if tag != ends.get(kind, "label"):
            return
        if kind == "textarea":
            self.texts[key] = self._buffer
        elif kind == "error":
            self.errors[key] = self._buffer
        elif kind == "summary":
            self.summary.append((key, self._buffer))
        elif kind == "legend":
            self.legends.append(self._buffer.strip())
        else:
            self.labels[key] = " ".join(self._buffer.split())
        self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._buffer += data

    def checked(self) -> list[str]:
        return [i for i, a in self.radios.items() if "checked" in a]


def form(
    locale: str = "nl",
    template: str = "transactional",
    values: dict[str, str | list[str]] | None = None,
    errors: dict[str, str] | None = None,
) -> FormPage:
    html = survey_form_page(
        locale=locale,
        company="CBG Connect",
        action="/s/tok",
        template=load_template(template),
        values=values,
        errors=errors,
    )
    return FormPage(html)


def test_default_form_is_the_transactional_survey() -> None:
    html = survey_form_page(locale="nl", company="CBG Connect", action="/s/tok")
    page = FormPage(html)
    assert [f"nps-{n}" for n in range(11)] == [i for i in page.radios if i.startswith("nps-")]
    assert set(page.radios) - {f"nps-{n}" for n in range(11)} == {
        "question_answered-yes",
        "question_answered-no",
    }
    assert page.checked() == []
    assert page.errors == {}
    assert page.summary == []
    assert page.texts == {"comment": ""}
    assert page.form_action == "/s/tok"
    assert page.legends[0] == CATALOGUE["nl"]["nps_question"].format(company="CBG Connect")
    assert page.labels["comment"] == CATALOGUE["nl"]["comment_label"]


@pytest.mark.parametrize("score", range(11))
def test_form_marks_the_chosen_radio(score: int) -> None:
    page = form(values={"nps": str(score), "comment": ""})
    assert page.checked() == [f"nps-{score}"]


@pytest.mark.parametrize("locale", LOCALES)
def test_form_refills_values_and_shows_the_error_in_the_customers_language(locale: str) -> None:
    comment = 'Too <b>slow</b> & "late"\nsecond line'
    page = form(
        locale,
        values={"nps": "4", "question_answered": "no", "comment": comment},
        errors={"comment": "Houd het kort"},
    )
    assert sorted(page.checked()) == ["nps-4", "question_answered-no"]
    assert page.texts["comment"] == comment
    assert page.errors == {"comment-error": "Houd het kort"}
    assert page.summary == [("comment", "Houd het kort")]
    assert CATALOGUE[locale]["form_has_errors"] in survey_form_page(
        locale=locale, company="X", action="/s/tok", errors={"comment": "Houd het kort"}
    )


def test_an_error_is_tied_to_its_field() -> None:
    page = form("bg", values={"nps": "", "comment": "ok"}, errors={"nps": "Моля"})
    assert page.checked() == []
    assert page.texts["comment"] == "ok"
    assert page.summary == [("nps-0", "Моля")]
    for n in range(11):
        radio = page.radios[f"nps-{n}"]
        assert radio["aria-invalid"] == "true"
        assert "nps-error" in (radio["aria-describedby"] or "").split()
    assert "aria-invalid" not in page.textareas["comment"]
    assert "aria-invalid" not in page.radios["question_answered-yes"]


def test_form_escapes_the_refilled_comment() -> None:
    html = survey_form_page(
        locale="en",
        company="CBG Connect",
        action="/s/tok",
        values={"nps": "3", "comment": "</textarea><script>alert(1)</script>"},
    )
    assert "<script>" not in html
    assert FormPage(html).texts["comment"] == "</textarea><script>alert(1)</script>"


def test_form_escapes_the_company_name() -> None:
    html = survey_form_page(locale="en", company="<b>ACME</b>", action="/s/tok")
    assert "<b>ACME" not in html
    assert "&lt;b&gt;ACME&lt;/b&gt;" in html


def test_form_ignores_a_value_that_is_not_a_score() -> None:
    page = form(values={"nps": '7" onfocus="x', "comment": ""})
    assert page.checked() == []
    assert all("onfocus" not in a for a in page.radios.values())


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", template_names())
def test_every_template_renders_every_question_with_visible_labels(locale: str, name: str) -> None:
    template = load_template(name)
    page = form(locale, name)
    words = wording(locale)
    for question in template.questions:
        text = question.text.get(locale).format(company="CBG Connect")
        if question.type == "open_text":
            assert page.labels[question.id].startswith(text)
            assert page.textareas[question.id]["maxlength"] == str(question.max_length)
        else:
            assert any(legend.startswith(text) for legend in page.legends), (question.id, text)
        if not question.required:
            assert any(words["optional"] in x for x in [*page.legends, *page.labels.values()])
        for aspect in question.aspects:
            assert aspect.text.get(locale) in page.legends
            assert [f"{question.id}-{aspect.id}-{n}" in page.radios for n in range(1, 6)] == [
                True
            ] * 5
    for radio_id in page.radios:
        assert page.labels.get(radio_id), f"radio {radio_id} has no visible label"


def test_aspects_refill_per_aspect() -> None:
    page = form(
        "no",
        "relationship",
        values={"nps": "8", "aspects.speed": "2", "aspects.delivery": "5", "reason": "Pris"},
        errors={"nps": "x"},
    )
    assert sorted(page.checked()) == ["aspects-delivery-5", "aspects-speed-2", "nps-8"]
    assert page.texts["reason"] == "Pris"
    assert page.radios["aspects-speed-2"]["name"] == "aspects.speed"
    assert "aspects-hint" in (page.radios["aspects-speed-2"]["aria-describedby"] or "")


@pytest.mark.parametrize(
    ("template", "question", "labels"),
    [
        ("support", "csat", ["csat_1", "csat_2", "csat_3", "csat_4", "csat_5"]),
        ("support", "ces", [f"ces_{n}" for n in range(1, 8)]),
        ("complaint_handling", "complaint_solved", ["yes", "no"]),
    ],
)
def test_answer_labels_come_from_the_wording(
    template: str, question: str, labels: list[str]
) -> None:
    page = form("nl", template)
    words = wording("nl")
    shown = [text for key, text in page.labels.items() if key.startswith(f"{question}-")]
    assert [text.split(" ", 1)[-1] if text[0].isdigit() else text for text in shown] == [
        words[label] for label in labels
    ]


def test_a_field_error_the_form_has_no_field_for_is_still_listed() -> None:
    html = survey_form_page(
        locale="en", company="X", action="/s/tok", errors={"extra": "Not part of it"}
    )
    assert "Not part of it" in html
