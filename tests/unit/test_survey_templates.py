"""Survey templates as data: the shipped files, the loader's checks and answer validation."""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models import survey_templates
from models.survey_templates import (
    OPEN_TEXT_MAX,
    SURVEY_LOCALES,
    Headline,
    SurveyTemplate,
    TemplateInvalidError,
    TemplateUnknownError,
    form_values,
    headline,
    load_template,
    parse_answers,
    template_names,
    wording,
)

SURVEYS = Path(survey_templates.__file__).parent / "templates" / "surveys"
WORDING: dict[str, dict[str, str]] = tomllib.loads(
    (SURVEYS.parent / "survey_wording.toml").read_text("utf-8")
)
SHIPPED = ["complaint_handling", "relationship", "support", "transactional"]


@pytest.fixture
def template_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory of templates in place of the shipped ones."""
    monkeypatch.setattr(survey_templates, "_surveys", lambda: tmp_path)
    load_template.cache_clear()
    yield tmp_path
    load_template.cache_clear()


# ---------------------------------------------------------------------------- shipped files


def test_the_shipped_templates() -> None:
    assert template_names() == SHIPPED
    assert {p.stem for p in SURVEYS.glob("*.toml")} == set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_text_of_every_template_is_in_every_locale(name: str) -> None:
    template = load_template(name)
    assert template.name == name
    assert template.description
    for question in template.questions:
        assert question.text.missing_locales() == [], question.id
        for aspect in question.aspects:
            assert aspect.text.missing_locales() == [], (question.id, aspect.id)
        for locale in SURVEY_LOCALES:
            text = question.text.get(locale)
            assert text.format(company="ACME")  # no placeholder but {company}
            if locale != "en":
                assert text != question.text.en, (name, question.id, locale)


@pytest.mark.parametrize(
    ("name", "types"),
    [
        ("transactional", {"nps": "nps", "question_answered": "yes_no", "comment": "open_text"}),
        ("relationship", {"nps": "nps", "reason": "open_text", "aspects": "aspects"}),
        (
            "support",
            {
                "csat": "csat",
                "ces": "ces",
                "solved_first_contact": "yes_no",
                "comment": "open_text",
            },
        ),
        (
            "complaint_handling",
            {"csat": "csat", "complaint_solved": "yes_no", "comment": "open_text"},
        ),
    ],
)
def test_what_each_template_asks(name: str, types: dict[str, str]) -> None:
    assert {q.id: q.type for q in load_template(name).questions} == types


def test_the_transactional_survey_asks_what_the_one_question_page_asked() -> None:
    # The page before templates: NPS required, "what should we do better?" optional.
    template = load_template("transactional")
    nps, comment = template.question("nps"), template.question("comment")
    assert nps.required
    assert not comment.required
    messages = tomllib.loads((SURVEYS.parent / "messages.toml").read_text("utf-8"))
    for locale in SURVEY_LOCALES:
        assert nps.text.get(locale) == messages[locale]["nps_question"]
        assert messages[locale]["comment_label"].startswith(comment.text.get(locale))


def test_the_aspects_are_the_documented_ones() -> None:
    aspects = load_template("relationship").question("aspects").aspects
    assert [a.id for a in aspects] == [
        "information",
        "speed",
        "materials",
        "process_efficiency",
        "price_quality",
        "communication",
        "delivery",
    ]


def test_norwegian_is_bokmal() -> None:
    assert wording("nb-NO") == wording("no")
    assert load_template("support").question("comment").text.get("no") == "Hva bør vi gjøre bedre?"


@pytest.mark.parametrize("locale", sorted(WORDING))
def test_the_wording_has_the_english_keys_and_placeholders(locale: str) -> None:
    assert set(WORDING[locale]) == set(WORDING["en"])
    for key, english in WORDING["en"].items():
        fields = {f for _, f, _, _ in string.Formatter().parse(english) if f}
        assert {f for _, f, _, _ in string.Formatter().parse(WORDING[locale][key]) if f} == fields
    assert set(SURVEY_LOCALES) <= set(WORDING)


def test_the_wording_falls_back_to_english_for_an_unknown_locale() -> None:
    assert wording("de") == WORDING["en"]
    assert wording(None) == WORDING["en"]
    assert wording("nl-BE") == WORDING["nl"]


# ---------------------------------------------------------------------------- loader


@pytest.mark.parametrize("name", ["nope", "", "../messages", "Transactional", "surveys/x", "a b"])
def test_an_unknown_name_is_a_clear_key_error(name: str) -> None:
    with pytest.raises(TemplateUnknownError) as info:
        load_template(name)
    assert isinstance(info.value, KeyError)
    assert "no survey template" in str(info.value)
    assert "transactional" in str(info.value)  # says which exist


def test_templates_are_loaded_once() -> None:
    assert load_template("support") is load_template("support")


QUESTION = """
[[questions]]
id = "{id}"
type = "{type}"
required = true
text.en = "{text}"
"""


def write(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.toml").write_text(body, "utf-8")


def test_a_template_needs_only_english(template_dir: Path) -> None:
    write(template_dir, "mini", QUESTION.format(id="q", type="yes_no", text="Good?"))
    template = load_template("mini")
    assert template_names() == ["mini"]
    assert [q.text.get(loc) for q in template.questions for loc in SURVEY_LOCALES] == ["Good?"] * 4
    assert template.questions[0].text.missing_locales() == ["nl", "bg", "no"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[[questions]]\nid = "q1"\ntype = "nps"\nrequired = true\n', "(id 'q1') text: Field"),
        (QUESTION.format(id="q1", type="stars", text="x"), "(id 'q1') type: Input should be"),
        (QUESTION.format(id="Q 1", type="nps", text="x"), "(id 'Q 1') id: String should"),
        (QUESTION.format(id="q", type="nps", text="Hi {name}"), "(id 'q') text: Value error"),
        (QUESTION.format(id="q", type="nps", text="x") * 2, "question ids repeat"),
        (QUESTION.format(id="a", type="aspects", text="x"), "(id 'a'): Value error, an aspects"),
        (QUESTION.format(id="q", type="nps", text="x") + "colour = 1\n", "(id 'q') colour: Extra"),
        ("questions = []\n", "at least one question"),
        ('description = "no questions"\n', "questions: Field required"),
        ('name = "other"\n' + QUESTION.format(id="q", type="nps", text="x"), "'name' comes from"),
        ("[[questions]\n", "not valid TOML"),
    ],
)
def test_an_invalid_template_names_the_file_and_the_question(
    template_dir: Path, body: str, expected: str
) -> None:
    write(template_dir, "broken", body)
    with pytest.raises(TemplateInvalidError) as info:
        load_template("broken")
    assert str(info.value).startswith("templates/surveys/broken.toml: ")
    assert expected in str(info.value)


def test_a_text_error_names_the_question_position_and_locale(template_dir: Path) -> None:
    write(template_dir, "t", QUESTION.format(id="a", type="nps", text="ok") + 'text.nl = ""\n')
    with pytest.raises(
        TemplateInvalidError, match=r"question 1 \(id 'a'\) text: .*nl: text is empty"
    ):
        load_template("t")


# ---------------------------------------------------------------------------- parse_answers


def test_valid_form_answers() -> None:
    parsed = parse_answers(
        load_template("relationship"),
        {
            "nps": " 9 ",
            "reason": "  Snel\r\ngeholpen ",
            "aspects.speed": "5",
            "aspects.price_quality": "",
        },
    )
    assert parsed.ok
    assert parsed.answers == {"nps": 9, "reason": "Snel\ngeholpen", "aspects": {"speed": 5}}
    assert (parsed.errors, parsed.codes) == ({}, {})


def test_valid_json_answers() -> None:
    parsed = parse_answers(
        load_template("support"),
        {"csat": 4, "ces": 7, "solved_first_contact": True, "comment": None},
    )
    assert parsed.answers == {"csat": 4, "ces": 7, "solved_first_contact": True}


def test_optional_questions_may_stay_empty() -> None:
    parsed = parse_answers(load_template("transactional"), {"nps": "0", "comment": "   "})
    assert parsed.answers == {"nps": 0}


@pytest.mark.parametrize(
    ("template", "form", "codes"),
    [
        ("transactional", {}, {"nps": "required"}),
        ("transactional", {"nps": ""}, {"nps": "required"}),
        ("transactional", {"nps": "11"}, {"nps": "invalid"}),
        ("transactional", {"nps": "7.5"}, {"nps": "invalid"}),
        ("transactional", {"nps": 7.5}, {"nps": "invalid"}),
        ("transactional", {"nps": True}, {"nps": "invalid"}),
        ("transactional", {"nps": "٧"}, {"nps": "invalid"}),
        ("transactional", {"nps": ["3", "4"]}, {"nps": "invalid"}),
        (
            "transactional",
            {"nps": "3", "question_answered": "maybe"},
            {"question_answered": "invalid"},
        ),
        ("transactional", {"nps": "3", "question_answered": 1}, {"question_answered": "invalid"}),
        ("transactional", {"nps": "3", "comment": "x" * 4001}, {"comment": "too_long"}),
        ("transactional", {"nps": "3", "comment": 42}, {"comment": "invalid"}),
        ("transactional", {"nps": "3", "colour": "blue"}, {"colour": "unknown_question"}),
        (
            "support",
            {"csat": "0", "ces": "8"},
            {"csat": "invalid", "ces": "invalid", "solved_first_contact": "required"},
        ),
        ("relationship", {"nps": "5", "aspects.speed": "6"}, {"aspects": "invalid"}),
        ("relationship", {"nps": "5", "aspects": {"taste": 3}}, {"aspects": "invalid"}),
        ("relationship", {"nps": "5", "aspects": [3]}, {"aspects": "invalid"}),
        ("relationship", {"nps": "5", "aspects.taste": "3"}, {"aspects.taste": "unknown_question"}),
    ],
)
def test_invalid_answers_get_a_code_per_question(
    template: str, form: dict[str, Any], codes: dict[str, str]
) -> None:
    parsed = parse_answers(load_template(template), form)
    assert not parsed.ok
    assert parsed.codes == codes
    assert set(parsed.errors) == set(codes)
    assert parsed.answers == {}


def test_a_comment_of_exactly_the_limit_is_kept() -> None:
    text = "x" * OPEN_TEXT_MAX
    assert (
        parse_answers(load_template("transactional"), {"nps": "1", "comment": text}).answers[
            "comment"
        ]
        == text
    )


def test_crlf_line_breaks_count_as_one_character() -> None:
    text = "ab\r\n" * 1000  # 4000 characters as the browser counts them, 3999 after strip
    parsed = parse_answers(load_template("transactional"), {"nps": "1", "comment": text})
    assert parsed.ok


@pytest.mark.parametrize(
    ("locale", "messages"),
    [
        (
            "nl",
            {
                "csat": "Kies een antwoord van 1 tot en met 5.",
                "solved_first_contact": "Kies ja of nee.",
            },
        ),
        (
            "en",
            {
                "csat": "Please choose an answer from 1 to 5.",
                "solved_first_contact": "Please choose yes or no.",
            },
        ),
        ("no", {"csat": "Velg et svar fra 1 til 5.", "solved_first_contact": "Velg ja eller nei."}),
        (
            "bg",
            {
                "csat": "Моля, изберете отговор от 1 до 5.",
                "solved_first_contact": "Моля, изберете „Да“ или „Не“.",
            },
        ),
    ],
)
def test_error_messages_are_in_the_customers_language(
    locale: str, messages: dict[str, str]
) -> None:
    parsed = parse_answers(load_template("support"), {"ces": "3"}, locale)
    assert parsed.errors == messages


def test_the_too_long_message_names_the_limit() -> None:
    parsed = parse_answers(load_template("support"), {"comment": "x" * 5000}, "nl")
    assert parsed.errors["comment"] == "Houd uw antwoord korter dan 4000 tekens."


def test_a_required_aspects_question_needs_every_aspect(template_dir: Path) -> None:
    write(
        template_dir,
        "rate",
        QUESTION.format(id="rate", type="aspects", text="Rate")
        + '[[questions.aspects]]\nid = "speed"\ntext.en = "Speed"\n'
        + '[[questions.aspects]]\nid = "price"\ntext.en = "Price"\n',
    )
    template = load_template("rate")
    assert parse_answers(template, {"rate.speed": "4"}).codes == {"rate": "required"}
    assert parse_answers(template, {"rate": {"speed": 4, "price": "2"}}).answers == {
        "rate": {"speed": 4, "price": 2}
    }


# ---------------------------------------------------------------------------- round trip


def _answer(question: Any) -> st.SearchStrategy[Any]:
    if question.type == "aspects":
        ids = [a.id for a in question.aspects]
        return st.dictionaries(
            st.sampled_from(ids), st.integers(1, 5), min_size=len(ids) if question.required else 1
        )
    if question.type == "yes_no":
        return st.booleans()
    if question.type == "open_text":
        text = st.text(min_size=1, max_size=question.max_length).map(
            lambda t: t.replace("\r", "").replace("\x00", "").strip()  # NUL: not an answer
        )
        return text.filter(bool)
    low, high = survey_templates.SCALES[question.type]
    return st.integers(low, high)


@st.composite
def valid_answers(draw: st.DrawFn) -> tuple[SurveyTemplate, dict[str, Any]]:
    template = load_template(draw(st.sampled_from(SHIPPED)))
    answers: dict[str, Any] = {}
    for question in template.questions:
        if question.required or draw(st.booleans()):
            answers[question.id] = draw(_answer(question))
    return template, answers


@given(valid_answers())
def test_any_valid_answers_round_trip_through_the_form(
    case: tuple[SurveyTemplate, dict[str, Any]],
) -> None:
    template, answers = case
    assert parse_answers(template, form_values(template, answers)).answers == answers
    assert parse_answers(template, answers).answers == answers  # the JSON API's shape


def test_headline_takes_the_first_question_of_each_type() -> None:
    assert headline(load_template("support"), {"csat": 2, "ces": 6, "comment": "x"}) == Headline(
        nps=None, csat=2, ces=6, comment="x"
    )
    assert headline(load_template("relationship"), {"nps": 9, "aspects": {"speed": 1}}) == Headline(
        nps=9
    )
    assert headline(load_template("transactional"), {"nps": 3, "comment": "Te laat"}).comment == (
        "Te laat"
    )
