"""The survey page (/s/<token>) and its JSON twin (POST /api/responses)."""

from __future__ import annotations

from typing import Any

import faust
import structlog
from faust.web import Request, Response

from agents.response_outbox import publish_response
from agents.runtime import Runtime
from agents.web_helpers import BadJson, CxView, json_object, preferred_locale
from models.survey_content import (
    InvalidAnswer,
    parse_answer,
    survey_form_page,
    survey_message_page,
)
from models.survey_store import (
    AlreadyAnswered,
    TokenExpired,
    TokenUnknown,
    invitation_for_token,
    record_response,
)
from models.tables import SurveyInvitation
from models.tokens import hash_token, looks_like_token

log = structlog.get_logger("cxloop.survey_page")

_TOKEN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    TokenUnknown: (404, "error_not_found"),
    TokenExpired: (410, "error_expired"),
    AlreadyAnswered: (409, "error_answered"),
}


async def _open_invitation(rt: Runtime, token: str) -> SurveyInvitation:
    if not looks_like_token(token):
        raise TokenUnknown("malformed")
    return await rt.db_for_request(invitation_for_token, rt.engine, hash_token(token), rt.clock())


async def _store_answer(rt: Runtime, token: str, nps: int, comment: str | None) -> str:
    row = await rt.db_for_request(
        record_response, rt.engine, hash_token(token), nps, None, comment, rt.clock()
    )
    structlog.contextvars.bind_contextvars(response_id=row.response_id, customer_id=row.customer_id)
    try:
        await publish_response(rt, row, rt.db_for_request)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the answer to the outbox relay
        log.warning("response_publish_deferred", error=type(exc).__name__)
    log.info("response_recorded")
    return row.response_id


def register(app: faust.App, rt: Runtime) -> None:
    @app.page("/s/{token}")
    class SurveyPage(CxView):
        """GET shows the question (never uses up the token); POST records the answer."""

        async def get(self, request: Request, token: str) -> Response:
            structlog.contextvars.clear_contextvars()
            try:
                invitation = await _open_invitation(rt, token)
            except (TokenUnknown, TokenExpired, AlreadyAnswered) as exc:
                return self._message(request, exc)
            return self.html(self._form(invitation, token))

        async def post(self, request: Request, token: str) -> Response:
            structlog.contextvars.clear_contextvars()
            try:
                invitation = await _open_invitation(rt, token)
            except (TokenUnknown, TokenExpired, AlreadyAnswered) as exc:
                return self._message(request, exc)
            form = dict(await request.post())
            values = {k: str(form.get(k, "")) for k in ("nps", "comment")}
            try:
                answer = parse_answer(form.get("nps"), form.get("comment"))
            except InvalidAnswer as exc:
                page = self._form(invitation, token, values=values, errors=exc.errors)
                return self.html(page, status=422)
            try:
                await _store_answer(rt, token, answer.nps, answer.comment)
            except (TokenUnknown, TokenExpired, AlreadyAnswered) as exc:
                return self._message(request, exc)
            page = survey_message_page(
                locale=invitation.locale, title_key="thanks_title", message_key="thanks_body"
            )
            return self.html(page)

        def _form(
            self,
            invitation: SurveyInvitation,
            token: str,
            values: dict[str, str] | None = None,
            errors: dict[str, str] | None = None,
        ) -> str:
            return survey_form_page(
                locale=invitation.locale,
                company=invitation.partner or invitation.product or rt.settings.company_name,
                action=f"/s/{token}",
                values=values,
                errors=errors,
            )

        def _message(self, request: Request, exc: Exception) -> Response:
            status, key = _TOKEN_ERRORS[type(exc)]
            locale = getattr(exc, "locale", None) or preferred_locale(
                request.headers.get("Accept-Language")
            )
            page = survey_message_page(locale=locale, title_key="page_title", message_key=key)
            log.info("survey_link_refused", status=status)
            return self.html(page, status=status)

    @app.page("/api/responses")
    class ResponsesApi(CxView):
        """POST {"token": ..., "nps": 0-10, "comment": "..."} → 201 with the response id."""

        async def post(self, request: Request) -> Response:
            structlog.contextvars.clear_contextvars()
            try:
                body = json_object(await request.read())
            except BadJson as exc:
                return self.json({"error": "bad_request", "detail": str(exc)}, status=400)
            token = body.get("token")
            if not isinstance(token, str) or not token:
                return self._invalid({"token": "required: the token from the survey link"})
            try:
                await _open_invitation(rt, token)
                answer = parse_answer(body.get("nps"), body.get("comment"))
                response_id = await _store_answer(rt, token, answer.nps, answer.comment)
            except InvalidAnswer as exc:
                return self._invalid(_field_messages(exc))
            except (TokenUnknown, TokenExpired, AlreadyAnswered) as exc:
                status, key = _TOKEN_ERRORS[type(exc)]
                return self.json({"error": key.removeprefix("error_")}, status=status)
            return self.json({"response_id": response_id}, status=201)

        def _invalid(self, fields: dict[str, str]) -> Response:
            return self.json({"error": "validation_failed", "fields": fields}, status=422)


def _field_messages(exc: InvalidAnswer) -> dict[str, Any]:
    wording = {
        "nps": "must be an integer from 0 to 10",
        "comment": "must be a string of at most 4000 characters",
    }
    return {name: wording[name] for name in exc.errors}
