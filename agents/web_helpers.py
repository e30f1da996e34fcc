"""Small pieces the web views share: a base view, the caller's language and JSON bodies."""

from __future__ import annotations

from typing import Any

import orjson
from faust.web import View

from agents.runtime import DatabaseUnavailable
from models.survey_content import FALLBACK_LOCALE, SUPPORTED_LOCALES


def preferred_locale(accept_language: str | None) -> str:
    """The first supported language in an Accept-Language header, else English."""
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower().split("-")[0]
        code = "no" if code in ("nb", "nn") else code
        if code in SUPPORTED_LOCALES:
            return code
    return FALLBACK_LOCALE


def form_fields(post: Any) -> dict[str, str | list[str]]:
    """A posted form as name → value, or → values when a name came more than once; an
    uploaded file is not an answer and counts as empty text."""
    fields: dict[str, str | list[str]] = {}
    for name in dict.fromkeys(post.keys()):
        values = [v if isinstance(v, str) else "" for v in post.getall(name)]
        fields[name] = values[0] if len(values) == 1 else values
    return fields


class BadJson(ValueError):
    """The request body is not a JSON object."""


def json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body or b"")
    except orjson.JSONDecodeError as exc:
        raise BadJson(f"body is not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise BadJson("body must be a JSON object")
    return data


class CxView(View):
    """A view that answers 503 (Retry-After) when the database does not answer in time."""

    async def dispatch(self, request: Any) -> Any:
        try:
            return await super().dispatch(request)
        except DatabaseUnavailable:
            return self.json(
                {"error": "database_unavailable"}, status=503, headers={"Retry-After": "5"}
            )
