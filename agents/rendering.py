"""Rendering for the customer and staff: the jinja2 templates in agents/templates, and the
survey wording catalogue (messages.toml) per locale, which the invitation mail and the
pages share."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from models.survey_templates import FALLBACK_LOCALE as FALLBACK_LOCALE  # noqa: PLC0414 - a re-export
from models.survey_templates import SURVEY_LOCALES, in_locale, read_catalogue

SUPPORTED_LOCALES = SURVEY_LOCALES


def _catalogue() -> dict[str, dict[str, str]]:
    return read_catalogue("messages.toml")


def messages(locale: str | None) -> dict[str, str]:
    """The wording for *locale* ('nb'/'nn' count as 'no'), falling back to English per key."""
    return in_locale(_catalogue(), locale)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("agents", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)
