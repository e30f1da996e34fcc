"""Who may read and change which task, against a real `cxloop up` (SQLite): every inbox
page and API endpoint refuses callers without a session or token (401), staff never see or
touch another team's tasks (403), only leads give a task to someone else, and browser
writes need their CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest

from models.store.staff_accounts import create_user, issue_api_token, update_user
from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop, running_loop

# Complaints of partner Bravo go to the service team (nobody assigned), the rest to the
# complaints team, whose staff get them least-loaded.
FOLLOWUP_RULES = """
version = "authz-1"

[routing]
default_team = "service"

[[team]]
name = "service"
assignment = "none"

[[team]]
name = "complaints"
assignment = "least_loaded"

[[route]]
team = "service"
when = { origin = ["complaint"], partner = ["Bravo BV"] }

[[route]]
team = "complaints"
when = { origin = ["complaint"] }
"""
PASSWORD = "a long test password"  # noqa: S105 - the test accounts' password
USERS = [  # name, role, team
    ("ann", "staff", "complaints"),
    ("ali", "staff", "complaints"),
    ("lou", "lead", "complaints"),
    ("ben", "staff", "service"),
    ("ada", "admin", None),
]


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLoop]:
    base = tmp_path_factory.mktemp("staff-authz")
    rules = base / "followup.toml"
    rules.write_text(FOLLOWUP_RULES)
    env = {"CXLOOP_FOLLOWUP_FILE": str(rules)}
    with running_loop(base, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(loop: RunningLoop) -> dict[str, str]:
    """The test accounts, made on the worker's database; their API tokens."""
    engine = loop.engine()
    try:
        now = datetime.now(UTC)
        for name, role, team in USERS:
            create_user(engine, name, role, now, team=team, display_name=name, password=PASSWORD)
        return {name: issue_api_token(engine, name) for name, _, _ in USERS}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def tasks(loop: RunningLoop, tokens: dict[str, str]) -> dict[str, str]:
    """A complaints-team task and a service-team task: team → task id."""
    loop.emit(
        contact_event("authz-a", customer="C-5001", kind="complaint", partner="Alfa BV"),
        contact_event("authz-b", customer="C-5002", kind="complaint", partner="Bravo BV"),
    )
    rows = wait_for(
        lambda: (
            found
            if len(found := loop.rows("SELECT team, task_id FROM followup_tasks")) == 2
            else None
        ),
        30,
        "both complaint tasks",
    )
    return dict(rows)  # type: ignore[arg-type]


@contextmanager
def sign_in(loop: RunningLoop, username: str) -> Iterator[httpx.Client]:
    """A client with an inbox session (the sign-in form's CSRF cookie included)."""
    with httpx.Client(base_url=loop.web, timeout=10) as client:
        form = client.get("/inbox/login")
        assert form.status_code == 200
        done = client.post(
            "/inbox/login",
            data={"_csrf": csrf_in(form.text), "username": username, "password": PASSWORD},
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/inbox"
        yield client


def csrf_in(html: str) -> str:
    match = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def assignee_of(loop: RunningLoop, task_id: str) -> str | None:
    rows = loop.rows("SELECT assignee FROM followup_tasks WHERE task_id = :t", t=task_id)
    return rows[0][0] if rows else None


def test_every_endpoint_refuses_a_caller_without_session_or_token(
    loop: RunningLoop, tasks: dict[str, str]
) -> None:
    task = tasks["complaints"]
    gets = [
        "/api/tasks",
        f"/api/tasks/{task}",
        f"/api/tasks/{task}/events",
        "/api/structural-fixes",
        "/inbox/poll",
        f"/inbox/tasks/{task}/state",
        "/inbox/live.js",
    ]
    posts = [f"/api/tasks/{task}/actions", f"/inbox/tasks/{task}/actions", "/inbox/logout"]
    action = {"type": "note", "note": "hallo"}
    credentials: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer cxs_" + "A" * 43},
        {"Authorization": "Basic YWRhOnBhc3N3b3Jk"},
        {"Cookie": "cxloop_staff=" + "B" * 43},
        {"X-Forwarded-User": "ada"},  # only a configured SSO proxy may name the user
    ]
    for headers in credentials:
        with httpx.Client(base_url=loop.web, headers=headers, timeout=10) as client:
            for path in gets:
                response = client.get(path)
                assert response.status_code == 401, (path, headers)
                assert response.json() == {"error": "unauthorised"}, path
            for path in posts:
                if path.startswith("/api"):
                    response = client.post(path, json=action)
                else:
                    response = client.post(path, data={**action, "_csrf": "x"})
                assert response.status_code == 401, (path, headers)
            # The pages send the browser to sign in, and back afterwards.
            for page in ("/inbox", f"/inbox/tasks/{task}"):
                response = client.get(page)
                assert response.status_code == 303, page
                assert response.headers["location"].startswith("/inbox/login")
    assert loop.rows("SELECT count(*) FROM followup_actions") == [(0,)]
    back = httpx.get(f"{loop.web}/inbox/tasks/{task}", timeout=10)
    assert back.headers["location"] == f"/inbox/login?next=/inbox/tasks/{task}"


def test_staff_cannot_read_or_change_another_teams_task(
    loop: RunningLoop, tokens: dict[str, str], tasks: dict[str, str]
) -> None:
    theirs = tasks["service"]
    note = {"type": "note", "note": "mag dit?"}
    with sign_in(loop, "ann") as browser:
        page = browser.get("/inbox")
        assert page.status_code == 200
        csrf = csrf_in(page.text)
        assert f"/inbox/tasks/{tasks['complaints']}" in page.text
        assert theirs not in page.text
        assert "C-5002" not in page.text
        for path in (f"/inbox/tasks/{theirs}", f"/inbox/tasks/{theirs}/state"):
            refused = browser.get(path)
            assert refused.status_code == 403, path
            assert "C-5002" not in refused.text
        posted = browser.post(f"/inbox/tasks/{theirs}/actions", data={**note, "_csrf": csrf})
        assert posted.status_code == 403
        assert browser.get("/inbox", params={"team": "service"}).status_code == 403
        assert browser.get("/inbox/poll", params={"team": "service"}).status_code == 403
        # The API takes the same session, and refuses the same way.
        api = browser.get(f"/api/tasks/{theirs}")
        assert api.status_code == 403
        assert api.json() == {"error": "forbidden"}
        headers = {"X-CSRF-Token": csrf}
        posted = browser.post(f"/api/tasks/{theirs}/actions", json=note, headers=headers)
        assert posted.status_code == 403

    bearer = {"Authorization": f"Bearer {tokens['ann']}"}
    with httpx.Client(base_url=loop.web, headers=bearer, timeout=10) as api:
        listed = api.get("/api/tasks")
        assert listed.status_code == 200
        assert [t["task_id"] for t in listed.json()["tasks"]] == [tasks["complaints"]]
        assert api.get("/api/tasks", params={"team": "service"}).status_code == 403
        for path in (f"/api/tasks/{theirs}", f"/api/tasks/{theirs}/events"):
            assert api.get(path).status_code == 403, path
        assert api.post(f"/api/tasks/{theirs}/actions", json=note).status_code == 403
        assert api.get("/api/tasks/no-such-task").status_code == 404
        assert api.get("/api/tasks", params={"status": "lost"}).status_code == 422
        assert api.get("/api/tasks", params={"overdue": "maybe"}).status_code == 422

    assert loop.rows("SELECT count(*) FROM followup_actions") == [(0,)]
    # The service team's own member and an admin do see it.
    for name in ("ben", "ada"):
        headers = {"Authorization": f"Bearer {tokens[name]}"}
        seen = httpx.get(f"{loop.web}/api/tasks/{theirs}", headers=headers, timeout=10)
        assert seen.status_code == 200, name
        assert seen.json()["contact"]["email"] == "c-5002@example.nl"
    with loop.staff() as integration:  # the global token: every team
        listed = integration.get("/api/tasks").json()["tasks"]
        assert sorted(t["team"] for t in listed) == ["complaints", "service"]


def test_only_a_lead_gives_a_task_to_someone_else(
    loop: RunningLoop, tokens: dict[str, str], tasks: dict[str, str]
) -> None:
    task = tasks["complaints"]
    first = wait_for(lambda: assignee_of(loop, task), 15, "the least-loaded assignment")
    other = "ali" if first == "ann" else "ann"
    as_staff = {"Authorization": f"Bearer {tokens[str(first)]}"}
    give = {"type": "assign", "details": {"assignee": other}}
    refused = httpx.post(
        f"{loop.web}/api/tasks/{task}/actions", json=give, headers=as_staff, timeout=10
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    with sign_in(loop, str(first)) as browser:
        csrf = csrf_in(browser.get(f"/inbox/tasks/{task}").text)
        form = {"_csrf": csrf, "type": "assign", "assignee": other}
        assert browser.post(f"/inbox/tasks/{task}/actions", data=form).status_code == 403
        # Nor may staff cancel a task.
        cancel = {"_csrf": csrf, "type": "cancel", "note": "dubbel"}
        assert browser.post(f"/inbox/tasks/{task}/actions", data=cancel).status_code == 403
    assert loop.rows("SELECT count(*) FROM followup_actions") == [(0,)]

    # The lead reassigns in the inbox; closure records it.
    with sign_in(loop, "lou") as lead:
        page = lead.get(f"/inbox/tasks/{task}")
        assert "Reassign to" in page.text
        form = {"_csrf": csrf_in(page.text), "type": "assign", "assignee": other}
        done = lead.post(f"/inbox/tasks/{task}/actions", data=form)
        assert done.status_code == 303
        assert done.headers["location"] == f"/inbox/tasks/{task}?sent=assign"
        wait_for(lambda: assignee_of(loop, task) == other, 15, "the reassignment")
        actor = loop.rows("SELECT actor, type FROM followup_actions WHERE task_id = :t", t=task)
        assert actor == [("lou", "assign")]
        # Not to another team's member, though (the API, this time with the session).
        headers = {"X-CSRF-Token": csrf_in(page.text)}
        away = {"type": "assign", "details": {"assignee": "ben"}}
        moved = lead.post(f"/api/tasks/{task}/actions", json=away, headers=headers)
        assert moved.status_code == 403
        # A browser session writes only with its CSRF token.
        bare = lead.post(f"/api/tasks/{task}/actions", json={"type": "note", "note": "x"})
        assert bare.status_code == 403
        assert bare.json() == {"error": "csrf_failed"}
        form["_csrf"] = "wrong"
        assert lead.post(f"/inbox/tasks/{task}/actions", data=form).status_code == 403


def test_the_api_checks_the_action_like_closure_would(
    loop: RunningLoop, tokens: dict[str, str], tasks: dict[str, str]
) -> None:
    task = tasks["complaints"]
    url = f"{loop.web}/api/tasks/{task}/actions"
    lead = {"Authorization": f"Bearer {tokens['lou']}"}
    cases = [
        ({"type": "close", "details": {"root_cause": "billing"}}, 409, "not_possible_now"),
        ({"type": "fly"}, 422, "validation_failed"),
        ({"type": "customer_informed", "note": ""}, 409, "not_possible_now"),
        ({"type": "note", "note": ""}, 422, "validation_failed"),
        ({"type": "note", "note": "x", "details": {"colour": "red"}}, 422, "validation_failed"),
    ]
    for body, status, error in cases:
        response = httpx.post(url, json=body, headers=lead, timeout=10)
        assert (response.status_code, response.json()["error"]) == (status, error), body
    assert httpx.post(url, content=b"[1]", headers=lead, timeout=10).status_code == 400

    key = {**lead, "Idempotency-Key": "call-1"}
    call = {"type": "call_attempt", "note": "Klant gesproken"}
    first = httpx.post(url, json=call, headers=key, timeout=10)
    again = httpx.post(url, json=call, headers=key, timeout=10)
    assert first.status_code == again.status_code == 202
    assert first.json()["action_id"] == again.json()["action_id"]
    wait_for(
        lambda: (
            loop.rows("SELECT status FROM followup_tasks WHERE task_id = :t", t=task)
            == [("contacted",)]
        ),
        15,
        "the call attempt",
    )
    detail = httpx.get(f"{loop.web}/api/tasks/{task}", headers=lead, timeout=10).json()
    assert detail["status"] == "contacted"
    assert "customer_informed" in detail["allowed_actions"]
    assert "close" not in detail["allowed_actions"]
    calls = [e for e in detail["events"] if e["details"].get("action_type") == "call_attempt"]
    assert [(e["actor"], e["note"]) for e in calls] == [("lou", "Klant gesproken")]
    events = httpx.get(f"{loop.web}/api/tasks/{task}/events", headers=lead, timeout=10)
    assert [e["seq"] for e in events.json()["events"]] == [e["seq"] for e in detail["events"]]

    # Nothing personal reached the log on the way.
    text = loop.log_path.read_text(errors="replace")
    assert "call_attempt" in text
    for secret in (PASSWORD, "c-5001@example.nl", "Anna de Vries", "Klant gesproken"):
        assert secret not in text


def test_signing_out_ends_the_session_for_the_inbox_and_the_api(
    loop: RunningLoop, tokens: dict[str, str]
) -> None:
    with sign_in(loop, "ada") as browser:
        session = browser.cookies.get("cxloop_staff", path="/inbox")
        assert session == browser.cookies.get("cxloop_staff", path="/api")
        page = browser.get("/inbox")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert browser.get("/api/tasks").status_code == 200
        assert browser.post("/inbox/logout", data={"_csrf": "wrong"}).status_code == 403
        out = browser.post("/inbox/logout", data={"_csrf": csrf_in(page.text)})
        assert out.status_code == 303
        assert out.headers["location"] == "/inbox/login"
        assert sorted(out.headers.get_list("set-cookie")) == [
            "cxloop_staff=; Path=/api; Max-Age=0; HttpOnly; SameSite=Lax",
            "cxloop_staff=; Path=/inbox; Max-Age=0; HttpOnly; SameSite=Lax",
        ]
    stale = {"Cookie": f"cxloop_staff={session}"}
    with httpx.Client(base_url=loop.web, headers=stale, timeout=10) as client:
        assert client.get("/api/tasks").status_code == 401
        assert client.get("/inbox/poll").status_code == 401
        assert client.get("/inbox").status_code == 303


def test_repeated_failed_sign_ins_are_refused_for_a_while(
    loop: RunningLoop, tokens: dict[str, str]
) -> None:
    with httpx.Client(base_url=loop.web, timeout=10) as client:
        csrf = csrf_in(client.get("/inbox/login").text)
        statuses = []
        for _ in range(11):
            answer = client.post(
                "/inbox/login", data={"_csrf": csrf, "username": "ben", "password": "guess"}
            )
            statuses.append(answer.status_code)
            csrf = csrf_in(answer.text)
        assert statuses == [401] * 10 + [429]
        right = {"_csrf": csrf, "username": "ben", "password": PASSWORD}
        assert client.post("/inbox/login", data=right).status_code == 429
        assert "cxloop_staff" not in client.cookies
        # Without the sign-in form's own cookie the form is refused.
        client.cookies.clear()
        assert client.post("/inbox/login", data=right).status_code == 403


@pytest.fixture(scope="module")
def proxy_loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLoop]:
    """A loop whose inbox trusts an SSO proxy's X-Remote-User header."""
    env = {"CXLOOP_INBOX_AUTH": "proxy", "CXLOOP_INBOX_PROXY_HEADER": "X-Remote-User"}
    with running_loop(tmp_path_factory.mktemp("staff-proxy"), env=env) as running:
        engine = running.engine()
        try:
            now = datetime.now(UTC)
            create_user(engine, "ann@example.com", "staff", now, team="complaints")
            create_user(engine, "gone@example.com", "staff", now, team="complaints")
            update_user(engine, "gone@example.com", active=False)
        finally:
            engine.dispose()
        yield running


def test_behind_an_sso_proxy_the_header_names_a_known_active_user(
    proxy_loop: RunningLoop,
) -> None:
    loop = proxy_loop
    loop.emit(contact_event("proxy-1", customer="C-5101", kind="complaint"))
    task = wait_for(
        lambda: loop.rows("SELECT task_id FROM followup_tasks WHERE assignee IS NOT NULL"),
        30,
        "the complaint task",
    )[0][0]  # type: ignore[index]
    for header in (
        {},
        {"X-Remote-User": "nobody@example.com"},
        {"X-Remote-User": "gone@example.com"},
    ):
        with httpx.Client(base_url=loop.web, headers=header, timeout=10) as client:
            assert client.get("/inbox").status_code == 401, header
            assert client.get("/api/tasks").status_code == 401, header
            assert client.get(f"/inbox/tasks/{task}/state").status_code == 401, header

    with httpx.Client(
        base_url=loop.web, headers={"X-Remote-User": "Ann@Example.com"}, timeout=10
    ) as client:
        assert client.get("/inbox/login").headers["location"] == "/inbox"
        login = {"username": "ann@example.com", "password": "whatever it is"}
        assert client.post("/inbox/login", data=login).status_code == 401
        page = client.get("/inbox")
        assert page.status_code == 200
        assert f"/inbox/tasks/{task}" in page.text
        assert "Sign out" not in page.text  # the proxy signs people out
        assert client.cookies.get("cxloop_staff_csrf", path="/inbox")
        note = {"type": "note", "note": "Via SSO"}
        refused = client.post(f"/inbox/tasks/{task}/actions", data={**note, "_csrf": "nope"})
        assert refused.status_code == 403
        csrf = csrf_in(client.get(f"/inbox/tasks/{task}").text)
        assert csrf == client.cookies.get("cxloop_staff_csrf", path="/inbox")
        sent = client.post(f"/inbox/tasks/{task}/actions", data={**note, "_csrf": csrf})
        assert sent.status_code == 303
    wait_for(
        lambda: (
            loop.rows("SELECT actor, type, note FROM followup_actions")
            == [("ann@example.com", "note", "Via SSO")]
        ),
        15,
        "the note by the proxy's user",
    )
