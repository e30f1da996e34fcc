"""Small pieces the web views share: a base view and how it is served, the caller's
language, JSON bodies, the staff token and the survey link's token.

Views are module-level CxView subclasses that read the worker's Runtime from `self.rt`;
a module's register() serves each with route(), which binds the runtime (and whatever
else the view declares) to a subclass made for that registration."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import faust
import orjson
import structlog
from faust.web import Request, Response, View

from agents.errors import AgentError
from agents.rendering import FALLBACK_LOCALE, SUPPORTED_LOCALES
from agents.runtime import DatabaseUnavailableError, Runtime
from models.json_checks import NUL, NUL_MESSAGE, shown
from models.survey_templates import language_code
from models.tokens import hash_token, looks_like_token

log = structlog.get_logger("cxloop.web")


def preferred_locale(accept_language: str | None) -> str:
    """The first supported language in an Accept-Language header, else English."""
    for part in (accept_language or "").split(","):
        code = language_code(part.split(";")[0])
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


JSON = "application/json"


def is_json(request: Request) -> bool:
    """True when the request says its body is JSON (Content-Type application/json, with
    or without a charset)."""
    declared = request.headers.get("Content-Type", "")
    return declared.split(";")[0].strip().lower() == JSON


class JsonInvalidError(AgentError, ValueError):
    """The request body is not a JSON object."""


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; JsonInvalidError if it is not one."""
    try:
        data = orjson.loads(body or b"")
    except orjson.JSONDecodeError as exc:
        raise JsonInvalidError(f"body is not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise JsonInvalidError("body must be a JSON object")
    return data


def nul_in_url(request: Any) -> str | None:
    """The path or query parameter that holds a NUL character (%00), or None."""
    for name, value in (request.match_info or {}).items():
        if NUL in value:
            return str(name)
    for name, value in request.query.items():
        if NUL in name or NUL in value:
            return shown(name)
    return None


def staff_token_ok(rt: Runtime, given: str) -> bool:
    """True when *given* is the configured staff token (never when none is configured)."""
    expected = rt.settings.staff_token.get_secret_value()
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer_token(request: Request) -> str:
    """The token of an `Authorization: Bearer …` header; "" for none or another scheme."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


def authorised(rt: Runtime, request: Request) -> bool:
    """True when the request carries the configured staff bearer token."""
    return staff_token_ok(rt, bearer_token(request))


def link_token_hash(token: str) -> str | None:
    """The stored hash of a survey link's token (/s/ and /u/); None when *token* cannot be
    one, so a malformed link costs no database look-up."""
    return hash_token(token) if looks_like_token(token) else None


class CxView(View):
    """A view that answers 503 (Retry-After) when the database does not answer in time, with
    the JSON error answers the APIs share. *rt* is the worker's runtime (set by route())."""

    rt: ClassVar[Runtime]

    async def dispatch(self, request: Any) -> Any:
        where = nul_in_url(request)
        if where is not None:  # a path or query parameter no database column could take
            log.info("request_refused", reason="nul_character")
            return self.nul_refused(where)
        try:
            return await super().dispatch(request)
        except DatabaseUnavailableError:
            return self.json(
                {"error": "database_unavailable"}, status=503, headers={"Retry-After": "5"}
            )

    def unauthorised(self) -> Response:
        """401: no or the wrong staff bearer token."""
        return self.json(
            {"error": "unauthorised"}, status=401, headers={"WWW-Authenticate": "Bearer"}
        )

    def bad_json(self, exc: JsonInvalidError) -> Response:
        """400: the body is not a JSON object."""
        return self.json({"error": "bad_request", "detail": str(exc)}, status=400)

    def nul_refused(self, field: str) -> Response:
        """422: *field* holds a NUL character (PostgreSQL text cannot)."""
        return self.invalid({field: NUL_MESSAGE}, {field: "nul_character"})

    def invalid(
        self, fields: Mapping[str, str], codes: Mapping[str, str] | None = None
    ) -> Response:
        """422 with a message per field, and a stable code per field when there are codes."""
        body: dict[str, Any] = {"error": "validation_failed", "fields": fields}
        if codes is not None:
            body["codes"] = codes
        return self.json(body, status=422)


V = TypeVar("V", bound=CxView)


def route(app: faust.App, path: str, view: type[V], rt: Runtime, **bound: object) -> type[V]:
    """Serve *view* on *path* of *app*: a subclass made for this registration carries *rt*
    and *bound* (class attributes *view* declares, such as per-worker state), so two apps
    in one process never share them. Routes match in the order they are added."""
    declared = {name for klass in view.__mro__ for name in vars(klass).get("__annotations__", {})}
    unknown = sorted(set(bound) - declared)
    if unknown:
        raise TypeError(f"{view.__name__} declares no {', '.join(unknown)}")
    attributes = {
        **bound,
        "rt": rt,
        "__module__": view.__module__,
        "__qualname__": view.__qualname__,
        "__doc__": view.__doc__,
    }
    served: type[V] = type(view.__name__, (view,), attributes)
    app.page(path)(served)
    return served
