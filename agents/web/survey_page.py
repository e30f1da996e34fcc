"""The survey page (/s/<token>) and its JSON twin (POST /api/responses)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
import structlog
from faust.web import Request, Response

from agents.runtime import Runtime
from agents.timers.response_relay import publish_or_defer
from agents.web.pages.survey import survey_form_page, survey_message_page
from agents.web.requests import (
    JSON,
    CxView,
    JsonInvalidError,
    form_fields,
    is_json,
    json_object,
    link_token_hash,
    preferred_locale,
    route,
)
from models.json_checks import NUL
from models.store.surveys import (
    AlreadyAnsweredError,
    TokenExpiredError,
    TokenUnknownError,
    invitation_for_token,
    record_response,
)
from models.store.tables import SurveyInvitation
from models.survey_templates import (
    DEFAULT_TEMPLATE,
    AnswerValue,
    SurveyTemplate,
    TemplateUnknownError,
    headline,
    load_template,
    parse_answers,
)
from models.tokens import hash_token

log = structlog.get_logger("cxloop.survey_page")

_TOKEN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    TokenUnknownError: (404, "error_not_found"),
    TokenExpiredError: (410, "error_expired"),
    AlreadyAnsweredError: (409, "error_answered"),
}
_TOKEN_REFUSALS = tuple(_TOKEN_ERRORS)


async def _open_invitation(rt: Runtime, token: str) -> SurveyInvitation:
    token_hash = link_token_hash(token)
    if token_hash is None:
        raise TokenUnknownError("malformed")
    return await rt.db_for_request(invitation_for_token, rt.engine, token_hash, rt.clock())


def _template_for(invitation: SurveyInvitation) -> SurveyTemplate:
    return template_for(invitation.template, invitation.invitation_id)


def template_for(name: str, invitation_id: str) -> SurveyTemplate:
    """The survey template called *name*; the default one if this worker does not know it."""
    try:
        return load_template(name)
    except TemplateUnknownError:
        log.warning(
            "survey_template_unknown",
            template=name[:100],
            invitation_id=invitation_id,
            used=DEFAULT_TEMPLATE,
        )
        return load_template(DEFAULT_TEMPLATE)


async def _store_answer(
    rt: Runtime, token: str, template: SurveyTemplate, answers: Mapping[str, AnswerValue]
) -> str:
    scores = headline(template, answers)
    row = await rt.db_for_request(
        record_response,
        rt.engine,
        hash_token(token),
        scores.nps,
        scores.csat,
        scores.comment,
        rt.clock(),
        ces=scores.ces,
        answers=answers,
    )
    structlog.contextvars.bind_contextvars(response_id=row.response_id, customer_id=row.customer_id)
    await publish_or_defer(rt, row)
    log.info("response_recorded")
    return row.response_id


class SurveyPage(CxView):
    """GET shows the template's questions (never uses up the token); POST records the
    answers, or shows the form again (422) with what was entered and what to fix."""

    async def get(self, request: Request, token: str) -> Response:
        structlog.contextvars.clear_contextvars()
        try:
            invitation = await _open_invitation(self.rt, token)
        except _TOKEN_REFUSALS as exc:
            return self._message(request, exc)
        return self.html(self._form(invitation, token, _template_for(invitation)))

    async def post(self, request: Request, token: str) -> Response:
        structlog.contextvars.clear_contextvars()
        try:
            invitation = await _open_invitation(self.rt, token)
            template = _template_for(invitation)
            form = form_fields(await request.post())
            parsed = parse_answers(template, form, invitation.locale)
            if not parsed.ok:
                log.info("survey_answer_invalid", questions=sorted(parsed.codes))
                page = self._form(invitation, token, template, form, parsed.errors)
                return self.html(page, status=422)
            await _store_answer(self.rt, token, template, parsed.answers)
        except _TOKEN_REFUSALS as exc:
            return self._message(request, exc)
        page = survey_message_page(
            locale=invitation.locale, title_key="thanks_title", message_key="thanks_body"
        )
        return self.html(page)

    def _form(
        self,
        invitation: SurveyInvitation,
        token: str,
        template: SurveyTemplate,
        values: Mapping[str, str | list[str]] | None = None,
        errors: Mapping[str, str] | None = None,
    ) -> str:
        return survey_form_page(
            locale=invitation.locale,
            company=invitation.partner or invitation.product or self.rt.settings.company_name,
            action=f"/s/{token}",
            template=template,
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


class ResponsesApi(CxView):
    """POST {"token": ..., "answers": {question id: answer}} → 201 with the response id.

    The answers are those of the invitation's template; the older body shape with the
    answers beside the token ({"token": ..., "nps": 7, "comment": "..."}) still works.
    Scores are JSON integers. Invalid answers → 422 with a message and a code per question;
    a body that is not application/json → 415.
    """

    async def post(self, request: Request) -> Response:
        structlog.contextvars.clear_contextvars()
        checked = await self._body(request)
        if not isinstance(checked, tuple):  # the answer (faust's Response is no real base)
            return checked
        token, given = checked
        try:
            invitation = await _open_invitation(self.rt, token)
            template = _template_for(invitation)
            parsed = parse_answers(template, given, json_types=True)
            if not parsed.ok:
                log.info("survey_answer_invalid", reasons=sorted(set(parsed.codes.values())))
                return self.invalid(parsed.errors, parsed.codes)
            response_id = await _store_answer(self.rt, token, template, parsed.answers)
        except _TOKEN_REFUSALS as exc:
            status, key = _TOKEN_ERRORS[type(exc)]
            return self.json({"error": key.removeprefix("error_")}, status=status)
        return self.json({"response_id": response_id}, status=201)

    async def _body(self, request: Request) -> tuple[str, dict[str, Any]] | Response:
        """The token and the answers given, or the 415, 400 or 422 answer."""
        if not is_json(request):
            log.info("survey_answer_refused", status=415)
            return self.json({"error": "unsupported_media_type", "expected": JSON}, status=415)
        try:
            body = json_object(await request.read())
        except JsonInvalidError as exc:
            return self.bad_json(exc)
        token = body.get("token")
        if not isinstance(token, str) or not token:
            return self.invalid({"token": "required: the token from the survey link"})
        if NUL in token:
            return self.nul_refused("token")
        given = body["answers"] if "answers" in body else _flat_answers(body)
        if not isinstance(given, dict):
            return self.invalid({"answers": "must be an object: question id → answer"})
        return token, given


def register(app: faust.App, rt: Runtime) -> None:
    route(app, "/s/{token}", SurveyPage, rt)
    route(app, "/api/responses", ResponsesApi, rt)


def _flat_answers(body: Mapping[str, Any]) -> dict[str, Any]:
    """The first API body shape: answers next to the token, e.g. nps and comment."""
    return {name: value for name, value in body.items() if name != "token"}
