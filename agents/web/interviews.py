"""Phone surveys: interviewers work the call list on /interviews (signed-in browser pages)
or through /api/interviews (staff bearer token); an entered answer takes the same road as
an e-mailed one (stored, then survey-responses → scoring → follow-up).

No customer name, phone number or answer is logged, nor the interviewer's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import faust
import structlog
from faust.web import Request, Response

from agents.runtime import Runtime
from agents.timers.response_relay import publish_or_defer
from agents.web.pages.interviews import (
    call_list_page,
    call_page,
    interview_message_page,
    login_page,
)
from agents.web.requests import (
    CxView,
    JsonInvalidError,
    authorised,
    form_fields,
    json_object,
    route,
    staff_token_ok,
)
from agents.web.survey_page import template_for
from models.interview_sessions import (
    InterviewSession,
    cookie_value,
    csrf_ok,
    decode_session,
    encode_session,
    new_session,
    session_cookie,
    session_key,
)
from models.json_checks import NUL, NUL_MESSAGE
from models.store.call_list import (
    CALL_OUTCOMES,
    INTERVIEWER_MAX,
    CallAttempt,
    CallClosedError,
    CallExpiredError,
    CallUnknownError,
    OpenCall,
    call_to_make,
    open_calls,
    record_call_attempt,
    record_interview,
)
from models.store.surveys import AlreadyAnsweredError
from models.survey_templates import AnswerValue, SurveyTemplate, headline, parse_answers

log = structlog.get_logger("cxloop.interviews")

BASE = "/interviews"
LOGIN = f"{BASE}/login"
LOGOUT = f"{BASE}/logout"
LIST_LIMIT = 200
CSRF_FIELD = "_csrf"  # never a question id: those start with a letter
OUTCOME_FIELD = "_outcome"

_CALL_ERRORS: dict[type[Exception], tuple[int, str, str]] = {
    CallUnknownError: (404, "not_found", "There is no phone survey with this id."),
    CallExpiredError: (410, "expired", "This phone survey has expired."),
    AlreadyAnsweredError: (409, "answered", "This phone survey has already been answered."),
    CallClosedError: (409, "closed", "This customer has left the call list (not reachable)."),
}
_CALL_EXCEPTIONS = tuple(_CALL_ERRORS)


def _valid_interviewer(value: object) -> str | None:
    if not isinstance(value, str) or NUL in value:
        return None
    name = " ".join(value.split())
    return name if 0 < len(name) <= INTERVIEWER_MAX else None


def _interviewer_problem(value: object) -> str:
    if isinstance(value, str) and NUL in value:
        return f"your name {NUL_MESSAGE}"
    return f"required: a name of at most {INTERVIEWER_MAX} characters"


def call_json(call: OpenCall) -> dict[str, object]:
    return {
        "invitation_id": call.invitation_id,
        "customer_id": call.customer_id,
        "name": call.name,
        "phone": call.phone,
        "locale": call.locale,
        "programme": call.programme,
        "template": call.template,
        "company": call.company,
        "created_at": call.created_at.isoformat(),
        "expires_at": call.expires_at.isoformat(),
        "attempts": call.attempts,
    }


async def store_interview(
    rt: Runtime,
    call: OpenCall,
    template: SurveyTemplate,
    answers: Mapping[str, AnswerValue],
    interviewer: str,
) -> str:
    """Store the answers (one per invitation) and publish them, or leave that to the outbox."""
    scores = headline(template, answers)
    row = await rt.db_for_request(
        record_interview,
        rt.engine,
        call.invitation_id,
        answers,
        scores.nps,
        scores.csat,
        scores.ces,
        scores.comment,
        interviewer,
        rt.clock(),
    )
    structlog.contextvars.bind_contextvars(response_id=row.response_id)
    await publish_or_defer(rt, row)
    log.info("interview_recorded")
    return row.response_id


async def store_attempt(
    rt: Runtime, invitation_id: str, outcome: str, interviewer: str
) -> CallAttempt:
    attempt = await rt.db_for_request(
        record_call_attempt, rt.engine, invitation_id, outcome, interviewer, rt.clock()
    )
    log.info(
        "call_attempt_recorded", outcome=outcome, attempts=attempt.attempts, closed=attempt.closed
    )
    return attempt


def _company(rt: Runtime, call: OpenCall) -> str:
    return call.company or rt.settings.company_name


def redirect(view: CxView, to: str, cookie: str | None = None) -> Response:
    headers = {"Location": to, "Cache-Control": "no-store"}
    if cookie is not None:
        headers["Set-Cookie"] = cookie
    return view.text("", status=303, headers=headers)


def forbidden(view: CxView) -> Response:
    log.info("interview_form_refused", reason="csrf")
    return view.text("Forbidden: sign in again and use the form.", status=403)


def html(view: CxView, page: str, status: int = 200) -> Response:
    return view.html(page, status=status, headers={"Cache-Control": "no-store"})


def problem_page(view: CxView, exc: Exception) -> Response:
    status, _, message = _CALL_ERRORS[type(exc)]
    log.info("interview_call_refused", status=status)
    page = interview_message_page(title="Call not available", message=message, list_href=BASE)
    return html(view, page, status)


class InterviewView(CxView):
    """A view of the interviewers' pages: *key* signs their session cookies (None without
    a staff token: nobody can sign in)."""

    key: ClassVar[bytes | None]

    @property
    def secure(self) -> bool:
        return self.rt.settings.public_url.lower().startswith("https://")

    def current(self, request: Request) -> InterviewSession | None:
        cookie = cookie_value(request.headers.get("Cookie"))
        return decode_session(self.key, cookie, self.rt.clock())


class Login(InterviewView):
    """GET the sign-in form; POST name and staff token → session cookie → the call list."""

    async def get(self, request: Request) -> Response:
        return html(self, login_page(action=LOGIN))

    async def post(self, request: Request) -> Response:
        structlog.contextvars.clear_contextvars()
        form = form_fields(await request.post())
        token = form.get("token")
        interviewer = _valid_interviewer(form.get("interviewer"))
        given = token if isinstance(token, str) else ""
        if self.key is None or not staff_token_ok(self.rt, given):
            log.info("interviewer_sign_in_refused", reason="token")
            name = form.get("interviewer")
            page = login_page(
                action=LOGIN,
                interviewer=name if isinstance(name, str) else "",
                error="That staff token is not right.",
            )
            return html(self, page, 401)
        if interviewer is None:
            name = form.get("interviewer")
            error = (
                "Your name contains a NUL character. Please type it again."
                if isinstance(name, str) and NUL in name
                else f"Enter your name (at most {INTERVIEWER_MAX} characters)."
            )
            return html(self, login_page(action=LOGIN, error=error), 422)
        session = new_session(interviewer, self.rt.clock())
        log.info("interviewer_signed_in")
        cookie = session_cookie(encode_session(self.key, session), secure=self.secure)
        return redirect(self, BASE, cookie)


class Logout(InterviewView):
    async def post(self, request: Request) -> Response:
        form = form_fields(await request.post())
        if not csrf_ok(self.current(request), form.get(CSRF_FIELD)):
            return forbidden(self)
        return redirect(self, LOGIN, session_cookie("", secure=self.secure, max_age=0))


class CallList(InterviewView):
    """The open calls, oldest first."""

    async def get(self, request: Request) -> Response:
        structlog.contextvars.clear_contextvars()
        session = self.current(request)
        if session is None:
            return redirect(self, LOGIN)
        rt = self.rt
        calls = await rt.db_for_request(open_calls, rt.engine, rt.clock(), LIST_LIMIT)
        page = call_list_page(
            calls=calls,
            interviewer=session.interviewer,
            csrf=session.csrf,
            base=BASE,
            logout_action=LOGOUT,
            notice=request.query.get("saved"),
        )
        return html(self, page)


class Call(InterviewView):
    """GET the script and questions; POST the answers or why there was no interview."""

    async def get(self, request: Request, invitation_id: str) -> Response:
        structlog.contextvars.clear_contextvars()
        rt = self.rt
        session = self.current(request)
        if session is None:
            return redirect(self, LOGIN)
        try:
            call = await rt.db_for_request(call_to_make, rt.engine, invitation_id, rt.clock())
        except _CALL_EXCEPTIONS as exc:
            return problem_page(self, exc)
        return html(self, self._page(call, session))

    async def post(self, request: Request, invitation_id: str) -> Response:
        structlog.contextvars.clear_contextvars()
        rt = self.rt
        session = self.current(request)
        form = form_fields(await request.post())
        if session is None or not csrf_ok(session, form.pop(CSRF_FIELD, None)):
            return forbidden(self)
        outcome = form.pop(OUTCOME_FIELD, None)
        try:
            call = await rt.db_for_request(call_to_make, rt.engine, invitation_id, rt.clock())
            structlog.contextvars.bind_contextvars(
                invitation_id=call.invitation_id, customer_id=call.customer_id
            )
            if outcome is not None:
                if outcome not in CALL_OUTCOMES:
                    return self.text(f"outcome must be one of {CALL_OUTCOMES}", status=400)
                await store_attempt(rt, invitation_id, str(outcome), session.interviewer)
                return redirect(self, f"{BASE}?saved={outcome}")
            template = template_for(call.template, call.invitation_id)
            parsed = parse_answers(template, form, call.locale)
            if not parsed.ok:
                log.info("interview_answer_invalid", questions=sorted(parsed.codes))
                page = self._page(call, session, values=form, errors=parsed.errors)
                return html(self, page, 422)
            await store_interview(rt, call, template, parsed.answers, session.interviewer)
        except _CALL_EXCEPTIONS as exc:
            return problem_page(self, exc)
        return redirect(self, f"{BASE}?saved=answers")

    def _page(
        self,
        call: OpenCall,
        session: InterviewSession,
        values: Mapping[str, str | list[str]] | None = None,
        errors: Mapping[str, str] | None = None,
    ) -> str:
        return call_page(
            call=call,
            template=template_for(call.template, call.invitation_id),
            company=_company(self.rt, call),
            interviewer=session.interviewer,
            csrf=session.csrf,
            action=f"{BASE}/{call.invitation_id}",
            list_href=BASE,
            values=values,
            errors=errors,
        )


class CallsApi(CxView):
    """GET → {"calls": [...]}: the open phone surveys, oldest first."""

    async def get(self, request: Request) -> Response:
        if not authorised(self.rt, request):
            return self.unauthorised()
        rt = self.rt
        calls = await rt.db_for_request(open_calls, rt.engine, rt.clock(), LIST_LIMIT)
        return self.json({"calls": [call_json(c) for c in calls]})


class InterviewApi(CxView):
    """POST {"interviewer": ..., "answers": {question id: answer}} → 201 with the response
    id, or {"interviewer": ..., "outcome": "no_answer" | "refused" | "wrong_number"} → 200.
    """

    async def post(self, request: Request, invitation_id: str) -> Response:
        structlog.contextvars.clear_contextvars()
        if not authorised(self.rt, request):
            return self.unauthorised()
        try:
            body = json_object(await request.read())
        except JsonInvalidError as exc:
            return self.bad_json(exc)
        fields = _body_problems(body)
        if fields:
            return self.invalid(fields)
        interviewer = str(_valid_interviewer(body["interviewer"]))
        try:
            return await self._enter(invitation_id, body, interviewer)
        except _CALL_EXCEPTIONS as exc:
            status, error, _ = _CALL_ERRORS[type(exc)]
            return self.json({"error": error}, status=status)

    async def _enter(
        self, invitation_id: str, body: Mapping[str, Any], interviewer: str
    ) -> Response:
        rt = self.rt
        call = await rt.db_for_request(call_to_make, rt.engine, invitation_id, rt.clock())
        structlog.contextvars.bind_contextvars(
            invitation_id=call.invitation_id, customer_id=call.customer_id
        )
        if "outcome" in body:
            attempt = await store_attempt(self.rt, invitation_id, body["outcome"], interviewer)
            return self.json(
                {
                    "invitation_id": invitation_id,
                    "outcome": attempt.outcome,
                    "attempts": attempt.attempts,
                    "closed": attempt.closed,
                }
            )
        template = template_for(call.template, call.invitation_id)
        parsed = parse_answers(template, body["answers"])
        if not parsed.ok:
            return self.invalid(parsed.errors, parsed.codes)
        response_id = await store_interview(self.rt, call, template, parsed.answers, interviewer)
        return self.json({"response_id": response_id}, status=201)


def register(app: faust.App, rt: Runtime) -> None:
    # Settings do not change while the worker runs: derive the signing key once.
    key = session_key(rt.settings.staff_token.get_secret_value())
    # The fixed paths first: the router takes the first route that matches.
    route(app, LOGIN, Login, rt, key=key)
    route(app, LOGOUT, Logout, rt, key=key)
    route(app, BASE, CallList, rt, key=key)
    route(app, f"{BASE}/{{invitation_id}}", Call, rt, key=key)
    route(app, "/api/interviews", CallsApi, rt)
    route(app, "/api/interviews/{invitation_id}", InterviewApi, rt)


def _body_problems(body: Mapping[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    if _valid_interviewer(body.get("interviewer")) is None:
        fields["interviewer"] = _interviewer_problem(body.get("interviewer"))
    if ("answers" in body) == ("outcome" in body):
        fields["answers"] = "give either answers or an outcome"
    elif "answers" in body and not isinstance(body["answers"], dict):
        fields["answers"] = "must be an object: question id → answer"
    elif "outcome" in body and body["outcome"] not in CALL_OUTCOMES:
        fields["outcome"] = f"must be one of {list(CALL_OUTCOMES)}"
    return fields
