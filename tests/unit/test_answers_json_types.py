"""parse_answers for a JSON API (json_types): scores are JSON integers; and the NUL rule for
text answers, from a form and from JSON alike."""

from __future__ import annotations

from typing import Any

import pytest

from models.survey_templates import load_template, parse_answers


@pytest.mark.parametrize(
    ("answers", "question"),
    [
        ({"nps": "3"}, "nps"),
        ({"nps": [3]}, "nps"),
        ({"nps": 3.0}, "nps"),
        ({"nps": True}, "nps"),
        ({"nps": 4, "aspects": {"speed": "4"}}, "aspects"),
        ({"nps": 4, "aspects": {"speed": [4]}}, "aspects"),
        ({"nps": 4, "reason": ["a"]}, "reason"),
    ],
)
def test_a_json_score_must_be_a_json_integer(answers: dict[str, Any], question: str) -> None:
    parsed = parse_answers(load_template("relationship"), answers, json_types=True)
    assert parsed.codes == {question: "invalid"}


def test_json_integers_and_the_form_strings_are_both_still_good() -> None:
    template = load_template("relationship")
    answers = {"nps": 4, "aspects": {"speed": 2}, "reason": "Te laat"}
    assert parse_answers(template, answers, json_types=True).answers == answers
    form = {"nps": "4", "aspects.speed": "2", "reason": "Te laat"}
    assert parse_answers(template, form).answers == answers


@pytest.mark.parametrize("json_types", [False, True])
@pytest.mark.parametrize("locale", ["en", "nl", "bg", "no"])
def test_text_with_a_nul_is_refused_in_the_customers_language(
    json_types: bool, locale: str
) -> None:
    parsed = parse_answers(
        load_template("transactional"),
        {"nps": 3 if json_types else "3", "comment": "te\x00laat"},
        locale,
        json_types=json_types,
    )
    assert parsed.codes == {"comment": "nul_character"}
    assert "NUL" in parsed.errors["comment"]
