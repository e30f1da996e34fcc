"""Survey templates: which questions a survey asks, as data (templates/surveys/<name>.toml).

A template is a list of questions, each with an id, a type, whether it is required and its
text per locale. Answers are validated against the template here, for the survey page and the
JSON API alike; the headline scores (NPS, CSAT, CES) are read from the validated answers.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, model_validator

from models.errors import CxloopError
from models.json_checks import NUL

SURVEY_LOCALES = ("nl", "bg", "no", "en")
FALLBACK_LOCALE = "en"
DEFAULT_TEMPLATE = "transactional"
OPEN_TEXT_MAX = 4000
PLACEHOLDERS = frozenset({"company"})
# Each scored type and its scale; aspects are rated on the CSAT scale.
SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
ASPECT_SCALE = SCALES["csat"]

QuestionType = Literal["nps", "csat", "ces", "yes_no", "aspects", "open_text"]
AnswerValue = int | bool | str | dict[str, int]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")
_ASCII_NUMBER = re.compile(r"[0-9]{1,2}")
_YES_NO = {"yes": True, "no": False}


class TemplateUnknownError(CxloopError, KeyError):
    """No survey template has this name."""

    def __str__(self) -> str:
        return str(self.args[0])


class TemplateInvalidError(CxloopError, ValueError):
    """A template file does not describe a valid survey; the message names file and question."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalisedText(_Strict):
    """One text per locale; English is required and stands in for a missing locale."""

    en: str
    nl: str | None = None
    bg: str | None = None
    no: str | None = None

    def get(self, locale: str) -> str:
        """The text for *locale* (one of SURVEY_LOCALES), English when it has none."""
        value = getattr(self, locale, None) if locale in SURVEY_LOCALES else None
        return value or self.en

    def missing_locales(self) -> list[str]:
        """The locales that fall back to English."""
        return [loc for loc in SURVEY_LOCALES if not getattr(self, loc)]

    @model_validator(mode="after")
    def _known_placeholders(self) -> LocalisedText:
        for locale in SURVEY_LOCALES:
            text = getattr(self, locale)
            if text is None:
                continue
            if not text.strip():
                raise ValueError(f"{locale}: text is empty")
            try:
                names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
            except ValueError as exc:
                raise ValueError(f"{locale}: {exc}") from None
            if names - PLACEHOLDERS:
                raise ValueError(
                    f"{locale}: unknown placeholder {sorted(names - PLACEHOLDERS)}; "
                    f"only {{company}} is filled in"
                )
        return self


class Aspect(_Strict):
    """One thing rated 1–5 in an aspects question (speed, delivery, ...)."""

    id: Identifier
    text: LocalisedText


class Question(_Strict):
    id: Identifier
    type: QuestionType
    required: bool
    text: LocalisedText
    aspects: tuple[Aspect, ...] = ()
    max_length: int = OPEN_TEXT_MAX

    @model_validator(mode="after")
    def _type_specific(self) -> Question:
        if self.type == "aspects":
            if not self.aspects:
                raise ValueError("an aspects question needs at least one aspect")
            ids = [a.id for a in self.aspects]
            if len(set(ids)) != len(ids):
                raise ValueError(f"aspect ids repeat: {ids}")
        elif self.aspects:
            raise ValueError(f"only an aspects question has aspects, not {self.type}")
        if not 1 <= self.max_length <= OPEN_TEXT_MAX:
            raise ValueError(f"max_length must be 1..{OPEN_TEXT_MAX}")
        return self

    @property
    def scale(self) -> tuple[int, int] | None:
        """(lowest, highest) for a scored question or the aspects' scale, else None."""
        if self.type == "aspects":
            return ASPECT_SCALE
        return SCALES.get(self.type)


class SurveyTemplate(_Strict):
    name: str
    description: str = ""
    questions: tuple[Question, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> SurveyTemplate:
        if not self.questions:
            raise ValueError("a template needs at least one question")
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"question ids repeat: {ids}")
        return self

    def question(self, question_id: str) -> Question:
        """The question with this id (KeyError if the template has none)."""
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(question_id)


def _surveys() -> Any:
    return files("models").joinpath("templates", "surveys")


def template_names() -> list[str]:
    """The names of the shipped templates, sorted."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in _surveys().iterdir()
        if entry.name.endswith(".toml") and _NAME.fullmatch(entry.name.removesuffix(".toml"))
    )


@cache
def load_template(name: str) -> SurveyTemplate:
    """The template called *name*, validated; TemplateUnknownError or TemplateInvalidError
    otherwise."""
    if not _NAME.fullmatch(name) or name not in template_names():
        raise TemplateUnknownError(
            f"no survey template {name!r}; known: {', '.join(template_names())}"
        )
    where = f"templates/surveys/{name}.toml"
    try:
        raw = tomllib.loads(_surveys().joinpath(f"{name}.toml").read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TemplateInvalidError(f"{where}: not valid TOML: {exc}") from None
    if "name" in raw:
        raise TemplateInvalidError(f"{where}: 'name' comes from the file name, do not set it")
    try:
        return SurveyTemplate.model_validate({"name": name, **raw})
    except ValidationError as exc:
        raise TemplateInvalidError(f"{where}: {_describe(exc, raw)}") from None


def _describe(exc: ValidationError, raw: Mapping[str, Any]) -> str:
    """Pydantic's errors with each question named by its position and id."""
    problems = []
    questions = raw.get("questions")
    for error in exc.errors():
        loc = list(error["loc"])
        where = ".".join(str(part) for part in loc) or "template"
        if len(loc) >= 2 and loc[0] == "questions" and isinstance(loc[1], int):
            index = loc[1]
            question = questions[index] if isinstance(questions, list) else None
            qid = question.get("id") if isinstance(question, dict) else None
            rest = ".".join(str(part) for part in loc[2:])
            where = f"question {index + 1} (id {qid!r})" + (f" {rest}" if rest else "")
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


# --- answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedAnswers:
    """The validated answers (question id → value) or, when any is invalid, the errors.

    answers holds only what was answered: an optional question left empty is absent.
    errors maps a question id to a message in the customer's language; codes maps it to
    a stable code for the API (required, invalid, too_long, nul_character,
    unknown_question).
    """

    answers: dict[str, AnswerValue] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.codes


@dataclass(frozen=True)
class Headline:
    """The scores the pipeline works with, taken from the first question of each type."""

    nps: int | None = None
    csat: int | None = None
    ces: int | None = None
    comment: str | None = None


class _AnswerInvalidError(CxloopError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def parse_answers(
    template: SurveyTemplate,
    form: Mapping[str, object],
    locale: str = FALLBACK_LOCALE,
    *,
    json_types: bool = False,
) -> ParsedAnswers:
    """Validate answers to *template* from an HTML form or a JSON object.

    Form values are strings (a list when a name was sent more than once); JSON values may
    also be integers, booleans and, for an aspects question, an object of aspect ratings.
    An aspects question also takes one form field per aspect, named '<question>.<aspect>'.
    With *json_types* (a JSON API) a score must be a JSON integer: "3", [3], 3.0 and true
    are invalid. Text with a NUL character is refused as nul_character (no database
    column can keep it).
    """
    words = wording(locale)
    answers: dict[str, AnswerValue] = {}
    codes: dict[str, str] = {}
    errors: dict[str, str] = {}
    known: set[str] = set()
    for question in template.questions:
        known.add(question.id)
        known.update(f"{question.id}.{a.id}" for a in question.aspects)
        try:
            value = _parse_question(question, form, json_types)
        except _AnswerInvalidError as problem:
            codes[question.id] = problem.code
            errors[question.id] = _message(question, problem.code, words)
            continue
        if value is not None:
            answers[question.id] = value
    for name in form:
        if name not in known:
            codes[name] = "unknown_question"
            errors[name] = words["error_unknown"]
    if codes:
        return ParsedAnswers(errors=errors, codes=codes)
    return ParsedAnswers(answers=answers)


def _message(question: Question, code: str, words: Mapping[str, str]) -> str:
    if code == "nul_character":
        return words["error_nul_character"]
    if code == "too_long":
        return words["error_too_long"].format(max=question.max_length)
    return words[f"error_{question.type}"]


def _single(value: object, json_types: bool) -> object:
    if isinstance(value, list):
        if json_types or len(value) != 1:
            raise _AnswerInvalidError("invalid")
        return value[0]
    return value


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _parse_question(
    question: Question, form: Mapping[str, object], json_types: bool
) -> AnswerValue | None:
    if question.type == "aspects":
        return _parse_aspects(question, form, json_types)
    value = _single(form.get(question.id), json_types)
    if question.type == "open_text":
        return _parse_text(question, value)
    if _blank(value):
        if question.required:
            raise _AnswerInvalidError("required")
        return None
    if question.type == "yes_no":
        return _parse_yes_no(value)
    low, high = SCALES[question.type]
    return _parse_score(value, low, high, json_types)


def _parse_score(value: object, low: int, high: int, json_types: bool) -> int:
    if isinstance(value, bool):
        raise _AnswerInvalidError("invalid")
    if isinstance(value, int):
        score = value
    elif json_types:
        raise _AnswerInvalidError("invalid")
    elif isinstance(value, str) and _ASCII_NUMBER.fullmatch(value.strip()):
        score = int(value.strip())
    else:
        raise _AnswerInvalidError("invalid")
    if not low <= score <= high:
        raise _AnswerInvalidError("invalid")
    return score


def _parse_yes_no(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _YES_NO:
        return _YES_NO[value.strip().lower()]
    raise _AnswerInvalidError("invalid")


def _parse_text(question: Question, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _AnswerInvalidError("invalid")
    # Browsers send a textarea's line breaks as CRLF but count them as one character.
    text = (value or "").replace("\r\n", "\n").strip()
    if NUL in text:
        raise _AnswerInvalidError("nul_character")
    if len(text) > question.max_length:
        raise _AnswerInvalidError("too_long")
    if not text:
        if question.required:
            raise _AnswerInvalidError("required")
        return None
    return text


def _parse_aspects(
    question: Question, form: Mapping[str, object], json_types: bool
) -> dict[str, int] | None:
    given = form.get(question.id)
    if given is not None and not isinstance(given, Mapping):
        raise _AnswerInvalidError("invalid")
    nested: Mapping[str, object] = given or {}
    if set(nested) - {a.id for a in question.aspects}:
        raise _AnswerInvalidError("invalid")
    low, high = ASPECT_SCALE
    ratings: dict[str, int] = {}
    for aspect in question.aspects:
        value = _single(nested.get(aspect.id, form.get(f"{question.id}.{aspect.id}")), json_types)
        if _blank(value):
            continue
        ratings[aspect.id] = _parse_score(value, low, high, json_types)
    if question.required and len(ratings) < len(question.aspects):
        raise _AnswerInvalidError("required")
    return ratings or None


def headline(template: SurveyTemplate, answers: Mapping[str, object]) -> Headline:
    """NPS, CSAT and CES from the first question of each type; the first open answer given."""
    scores: dict[str, int | None] = {}
    comment: str | None = None
    for question in template.questions:
        value = answers.get(question.id)
        if question.type in SCALES and question.type not in scores:
            scores[question.type] = value if isinstance(value, int) else None
        elif question.type == "open_text" and comment is None and isinstance(value, str):
            comment = value
    return Headline(
        nps=scores.get("nps"), csat=scores.get("csat"), ces=scores.get("ces"), comment=comment
    )


def form_values(template: SurveyTemplate, answers: Mapping[str, object]) -> dict[str, str]:
    """Validated answers as the survey form would send them (the inverse of parse_answers)."""
    values: dict[str, str] = {}
    for question in template.questions:
        value = answers.get(question.id)
        if value is None:
            continue
        if isinstance(value, Mapping):
            values.update({f"{question.id}.{k}": str(v) for k, v in value.items()})
        elif isinstance(value, bool):
            values[question.id] = "yes" if value else "no"
        else:
            values[question.id] = str(value)
    return values


@cache
def read_catalogue(file_name: str) -> dict[str, dict[str, str]]:
    """A wording catalogue under templates/: locale → key → text."""
    raw = files("models").joinpath("templates", file_name).read_text("utf-8")
    return tomllib.loads(raw)


def language_code(tag: str) -> str:
    """The primary language of a tag, as cxloop's locales name it: 'nl-NL' → 'nl',
    'nb_NO' → 'no' (Bokmål and Nynorsk are both 'no')."""
    code = tag.strip().lower().replace("_", "-").split("-")[0]
    return "no" if code in ("nb", "nn") else code


def in_locale(catalogue: Mapping[str, Mapping[str, str]], locale: str | None) -> dict[str, str]:
    """*catalogue*'s texts for *locale* ('nb'/'nn' count as 'no'), English per missing key."""
    code = language_code(locale or FALLBACK_LOCALE)
    return {**catalogue[FALLBACK_LOCALE], **catalogue.get(code, {})}


def wording(locale: str | None) -> dict[str, str]:
    """Answer labels and error messages for *locale*, English per missing key."""
    return in_locale(read_catalogue("survey_wording.toml"), locale)
