"""The survey page the customer answers on, in their language."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agents.rendering import messages, render
from models.json_checks import shown
from models.survey_templates import (
    ASPECT_SCALE,
    DEFAULT_TEMPLATE,
    SCALES,
    Question,
    SurveyTemplate,
    load_template,
    wording,
)


@dataclass(frozen=True)
class _Option:
    """One radio button."""

    id: str
    value: str
    label: str
    checked: bool
    number: str | None = None  # the score shown in a scale box


@dataclass(frozen=True)
class _Group:
    """One set of radios under one name: a question, or one aspect of an aspects question."""

    name: str
    legend: str | None
    options: list[_Option]


@dataclass(frozen=True)
class _QuestionView:
    """A question as the form template draws it."""

    id: str
    type: str
    text: str
    optional: str | None
    error: str | None
    anchor: str  # the id of the first control, where the error summary links to
    described_by: str
    groups: list[_Group] = field(default_factory=list)
    hint: str | None = None
    ends: tuple[str, str] | None = None
    text_value: str = ""
    max_length: int = 0


def survey_form_page(
    *,
    locale: str,
    company: str,
    action: str,
    template: SurveyTemplate | None = None,
    values: Mapping[str, str | list[str]] | None = None,
    errors: Mapping[str, str] | None = None,
) -> str:
    """The survey form for *template* (default: transactional).

    *values* are the submitted form fields and *errors* the messages per question id
    (ParsedAnswers.errors): after an invalid submission the page shows both.
    """
    t = messages(locale)
    questions, other_errors = question_views(
        locale=locale, company=company, template=template, values=values, errors=errors
    )
    return render(
        "survey_form.html.j2",
        t=t,
        title=f"{t['form_has_errors']} – {t['page_title']}" if errors else t["page_title"],
        action=action,
        questions=questions,
        other_errors=other_errors,
    )


def question_views(
    *,
    locale: str,
    company: str,
    template: SurveyTemplate | None = None,
    values: Mapping[str, str | list[str]] | None = None,
    errors: Mapping[str, str] | None = None,
) -> tuple[list[_QuestionView], list[str]]:
    """The template's questions as survey_questions.html.j2 draws them, in *locale*, and the
    errors for fields the form does not have (only a hand-made request sends those)."""
    t = messages(locale)
    w = wording(locale)
    chosen = template or load_template(DEFAULT_TEMPLATE)
    given = values or {}
    problems = dict(errors or {})
    questions = [
        _question_view(q, locale, company, given, problems.get(q.id), t, w)
        for q in chosen.questions
    ]
    known = {q.id for q in chosen.questions}
    # Named, so whoever made the request sees which field it was.
    return questions, [f"{shown(n)}: {m}" for n, m in problems.items() if n not in known]


def _first(value: str | list[str] | None) -> str:
    if isinstance(value, list):
        return value[0] if value else ""
    return value or ""


def _question_view(
    question: Question,
    locale: str,
    company: str,
    values: Mapping[str, str | list[str]],
    error: str | None,
    t: Mapping[str, str],
    w: Mapping[str, str],
) -> _QuestionView:
    qid = question.id
    text = question.text.get(locale).format(company=company)
    optional = None if question.required else w["optional"]
    error_id = f"{qid}-error"
    hint_id = f"{qid}-hint"

    def radios(
        name: str, prefix: str, choices: Sequence[tuple[str, str, str | None]]
    ) -> list[_Option]:
        picked = _first(values.get(name)).strip()
        return [
            _Option(f"{prefix}-{value}", value, label, value == picked, number)
            for value, label, number in choices
        ]

    hint: str | None = None
    ends: tuple[str, str] | None = None
    groups: list[_Group] = []
    text_value = ""
    if question.type == "nps":
        ends = (f"0 = {t['nps_low']}", f"10 = {t['nps_high']}")
        groups = [
            _Group(qid, None, radios(qid, qid, [(str(n), str(n), str(n)) for n in range(11)]))
        ]
    elif question.type in ("csat", "ces"):
        low, high = SCALES[question.type]
        scale = [(str(n), w[f"{question.type}_{n}"], str(n)) for n in range(low, high + 1)]
        groups = [_Group(qid, None, radios(qid, qid, scale))]
    elif question.type == "yes_no":
        groups = [
            _Group(qid, None, radios(qid, qid, [("yes", w["yes"], None), ("no", w["no"], None)]))
        ]
    elif question.type == "aspects":
        low, high = ASPECT_SCALE
        hint = f"{low} = {w[f'csat_{low}']}, {high} = {w[f'csat_{high}']}"
        scale = [(str(n), str(n), str(n)) for n in range(low, high + 1)]
        groups = [
            _Group(
                f"{qid}.{aspect.id}",
                aspect.text.get(locale),
                radios(f"{qid}.{aspect.id}", f"{qid}-{aspect.id}", scale),
            )
            for aspect in question.aspects
        ]
    else:
        text_value = _first(values.get(qid))
    described = [hint_id] if hint else []
    if ends:
        described.append(f"{qid}-ends")
    if error:
        described.append(error_id)
    anchor = groups[0].options[0].id if groups else qid
    return _QuestionView(
        id=qid,
        type=question.type,
        text=text,
        optional=optional,
        error=error,
        anchor=anchor,
        described_by=" ".join(described),
        groups=groups,
        hint=hint,
        ends=ends,
        text_value=text_value,
        max_length=question.max_length,
    )


def survey_message_page(*, locale: str, title_key: str, message_key: str) -> str:
    """A page with one message: thanks, or why the link no longer works."""
    t = messages(locale)
    return render("survey_message.html.j2", t=t, title=t[title_key], message=t[message_key])
