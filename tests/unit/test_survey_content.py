"""What the customer reads: wording per locale, the invitation mail, answers and the form."""

from __future__ import annotations

import string
import tomllib
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models import survey_content
from models.survey_content import (
    COMMENT_MAX,
    InvalidAnswer,
    build_invitation_mail,
    messages,
    parse_answer,
    survey_form_page,
)

# The translators' file, read directly so the tests do not trust messages() to read it.
MESSAGES_TOML = Path(survey_content.__file__).parent / "templates" / "messages.toml"
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
    monkeypatch.setattr(survey_content, "_catalogue", lambda: partial)

    words = messages("nl")

    assert words["subject"] == "Alleen het onderwerp"
    assert words["button"] == CATALOGUE["en"]["button"]
    assert set(words) == set(CATALOGUE["en"])


def test_the_supported_locales_are_in_the_catalogue() -> None:
    assert set(survey_content.SUPPORTED_LOCALES) <= set(CATALOGUE)
    assert survey_content.FALLBACK_LOCALE in CATALOGUE


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


# ---------------------------------------------------------------------------- parse_answer


@pytest.mark.parametrize("score", range(11))
def test_parse_answer_accepts_every_score_as_text_and_int(score: int) -> None:
    assert parse_answer(str(score), None).nps == score
    assert parse_answer(score, None).nps == score


@given(st.integers(min_value=0, max_value=10), st.sampled_from(["", " ", "  ", "\t", "\n"]))
def test_parse_answer_ignores_surrounding_whitespace(score: int, pad: str) -> None:
    assert parse_answer(f"{pad}{score}{pad}", None).nps == score


@pytest.mark.parametrize(
    "nps",
    [11, -1, "11", "-1", "7.5", 7.5, True, False, None, "seven", "", " ", "7 8", [7], {"v": 7}],
)
def test_parse_answer_rejects_bad_scores(nps: object) -> None:
    with pytest.raises(InvalidAnswer) as info:
        parse_answer(nps, None)
    assert info.value.errors == {"nps": "error_nps_required"}
    assert "nps" in str(info.value)


@given(st.integers().filter(lambda n: not 0 <= n <= 10))
def test_parse_answer_rejects_every_out_of_range_integer(nps: int) -> None:
    with pytest.raises(InvalidAnswer) as info:
        parse_answer(nps, None)
    assert set(info.value.errors) == {"nps"}


@pytest.mark.parametrize(
    "nps",
    [
        pytest.param("²", id="superscript-two"),
        pytest.param("--5", id="double-minus"),
        pytest.param("٧", id="arabic-indic-seven"),
        pytest.param("1" * 5000, id="5000-digits"),
    ],
)
def test_parse_answer_rejects_odd_digit_strings_as_invalid_answer(nps: str) -> None:
    with pytest.raises(InvalidAnswer) as info:
        parse_answer(nps, None)
    assert set(info.value.errors) == {"nps"}


def test_parse_answer_comment_limit() -> None:
    assert parse_answer("3", "x" * COMMENT_MAX).comment == "x" * COMMENT_MAX
    with pytest.raises(InvalidAnswer) as info:
        parse_answer("3", "x" * (COMMENT_MAX + 1))
    assert info.value.errors == {"comment": "error_comment_too_long"}


def test_comment_limit_is_the_one_the_page_promises() -> None:
    assert COMMENT_MAX == 4000
    assert "4000" in CATALOGUE["en"]["error_comment_too_long"]


@pytest.mark.parametrize("comment", [42, ["a"], {"text": "a"}, True])
def test_parse_answer_rejects_non_text_comment(comment: object) -> None:
    with pytest.raises(InvalidAnswer) as info:
        parse_answer("3", comment)
    assert set(info.value.errors) == {"comment"}


def test_parse_answer_reports_both_fields() -> None:
    with pytest.raises(InvalidAnswer) as info:
        parse_answer("seven", "x" * (COMMENT_MAX + 1))
    assert set(info.value.errors) == {"nps", "comment"}


@pytest.mark.parametrize(
    ("comment", "stored"), [(None, None), ("", None), ("  ", None), (" slow ", "slow")]
)
def test_parse_answer_normalises_comment(comment: str | None, stored: str | None) -> None:
    assert parse_answer("5", comment).comment == stored


@given(st.integers(min_value=0, max_value=10), st.text(max_size=COMMENT_MAX))
def test_parse_answer_keeps_any_comment_within_the_limit(score: int, comment: str) -> None:
    answer = parse_answer(str(score), comment)
    assert answer.nps == score
    assert answer.comment == (comment.strip() or None)


# ---------------------------------------------------------------------------- survey form


class FormPage(HTMLParser):
    """The parts of the survey form a test looks at."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.radios: dict[str, dict[str, str | None]] = {}
        self.textarea = ""
        self.errors: list[str] = []
        self.form_action: str | None = None
        self._in: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("type") == "radio":
            self.radios[a["value"] or ""] = a
        if tag == "form":
            self.form_action = a.get("action")
        if tag == "textarea":
            self._in.append("textarea")
        elif "error" in (a.get("class") or "").split():
            self._in.append("error")
            self.errors.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._in and tag in {"textarea", "p", "span"}:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "textarea":
            self.textarea += data
        elif self._in and self._in[-1] == "error":
            self.errors[-1] += data

    def checked(self) -> list[str]:
        return [v for v, a in self.radios.items() if "checked" in a]


def form(
    locale: str = "nl",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> FormPage:
    html = survey_form_page(
        locale=locale, company="CBG Connect", action="/s/tok", values=values, errors=errors
    )
    return FormPage(html)


def test_empty_form_has_eleven_unchecked_radios_and_no_errors() -> None:
    page = form()
    assert sorted(page.radios, key=int) == [str(n) for n in range(11)]
    assert page.checked() == []
    assert page.errors == []
    assert page.textarea == ""
    assert page.form_action == "/s/tok"


@pytest.mark.parametrize("score", range(11))
def test_form_marks_the_chosen_radio(score: int) -> None:
    page = form(values={"nps": str(score), "comment": ""})
    assert page.checked() == [str(score)]


@pytest.mark.parametrize("locale", LOCALES)
def test_form_refills_values_and_shows_the_error_in_the_customers_language(locale: str) -> None:
    comment = 'Too <b>slow</b> & "late"\nsecond line'
    page = form(
        locale,
        values={"nps": "4", "comment": comment},
        errors={"comment": "error_comment_too_long"},
    )
    words = CATALOGUE[locale]
    assert page.checked() == ["4"]
    assert page.textarea == comment
    assert words["form_has_errors"] in page.errors
    assert words["error_comment_too_long"] in page.errors


def test_form_shows_the_nps_error() -> None:
    page = form("bg", values={"nps": "", "comment": "ok"}, errors={"nps": "error_nps_required"})
    assert page.checked() == []
    assert page.textarea == "ok"
    assert CATALOGUE["bg"]["error_nps_required"] in page.errors


def test_form_escapes_the_refilled_comment() -> None:
    html = survey_form_page(
        locale="en",
        company="CBG Connect",
        action="/s/tok",
        values={"nps": "3", "comment": "</textarea><script>alert(1)</script>"},
    )
    assert "<script>" not in html
    assert FormPage(html).textarea == "</textarea><script>alert(1)</script>"


def test_form_ignores_a_value_that_is_not_a_score() -> None:
    page = form(values={"nps": '7" onfocus="x', "comment": ""})
    assert page.checked() == []
    assert all("onfocus" not in a for a in page.radios.values())
