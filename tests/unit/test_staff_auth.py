"""Staff accounts, API tokens, sessions (models.store.staff_accounts, on SQLite), passwords
(models.passwords), rights (models.staff_roles) and the sign-in throttle."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlmodel import Session, col

from models import passwords
from models.followup_rules import load_followup_rules
from models.passwords import StaffUserError
from models.sign_in_throttle import SignInThrottle
from models.staff_roles import ActionRequest, ActionRequestInvalidError, Viewer, vet_action
from models.store import staff_accounts as staff_auth
from models.store.engine import make_engine
from models.store.schema import create_schema
from models.store.staff_accounts import (
    StaffUserExistsError,
    authenticate,
    create_user,
    end_session,
    ensure_demo_staff,
    issue_api_token,
    session_user,
    set_password,
    start_session,
    update_user,
    user_for_token,
)
from models.store.tables import FollowupTask, StaffSession, StaffUser
from models.task_lifecycle import ActionType, TaskStatus, allowed_actions
from models.tokens import hash_token
from tests.factories import followup_task, staff_user

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"  # noqa: S105 - a test account's password
ROOT_CAUSES = tuple(load_followup_rules().tasks.root_causes)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/staff.db")
    create_schema(engine)
    yield engine
    engine.dispose()


def stored(engine: Engine, username: str) -> StaffUser:
    with Session(engine) as session:
        user = session.get(StaffUser, username)
        assert user is not None
        return user


# --- passwords -----------------------------------------------------------------------------


def test_a_password_is_stored_as_an_argon2id_hash_and_verified(db: Engine) -> None:
    create_user(db, "Jan.Jansen", "staff", NOW, team="service", password=PASSWORD)
    user = stored(db, "jan.jansen")  # names are kept in lower case
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash

    signed_in = authenticate(db, "JAN.JANSEN", PASSWORD)
    assert signed_in is not None
    assert (signed_in.username, signed_in.role, signed_in.team) == (
        "jan.jansen",
        "staff",
        "service",
    )
    assert authenticate(db, "jan.jansen", PASSWORD + "!") is None
    assert authenticate(db, "jan.jansen", "") is None


def test_unknown_inactive_and_password_less_users_cost_one_verification_and_fail(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_user(db, "piet", "staff", NOW, team="service", password=PASSWORD)
    create_user(db, "robot", "staff", NOW, team="service")  # API token only
    update_user(db, "piet", active=False)
    checked: list[str] = []
    real = passwords.verify_password

    def counting(stored_hash: str, password: str) -> bool:
        checked.append(stored_hash)
        return real(stored_hash, password)

    monkeypatch.setattr(staff_auth, "verify_password", counting)
    for name in ("nobody", "piet", "robot", "not a valid name!"):
        assert authenticate(db, name, PASSWORD) is None
    # One argon2 verification each, against the dummy hash: timing does not tell them apart.
    assert checked == [passwords.dummy_hash()] * 4


def test_an_old_hash_is_replaced_on_sign_in(db: Engine) -> None:
    create_user(db, "oud", "lead", NOW, team="service", password=PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    with db.begin() as connection:
        connection.execute(
            text("UPDATE staff_users SET password_hash = :h WHERE username = 'oud'"), {"h": weak}
        )
    assert authenticate(db, "oud", PASSWORD) is not None
    renewed = stored(db, "oud").password_hash
    assert renewed is not None
    assert renewed != weak
    assert not PasswordHasher().check_needs_rehash(renewed)
    assert authenticate(db, "oud", PASSWORD) is not None


def test_accounts_are_checked_when_created(db: Engine) -> None:
    teams = ("service", "complaints")
    create_user(db, "anna", "staff", NOW, team="service", password=PASSWORD, teams=teams)
    with pytest.raises(StaffUserExistsError):
        create_user(db, "ANNA", "staff", NOW, team="service", teams=teams)
    bad = [
        {"username": "x", "role": "boss", "team": "service"},
        {"username": "y", "role": "staff", "team": None},
        {"username": "z", "role": "lead", "team": "billing"},
        {"username": "-dash", "role": "staff", "team": "service"},
        {"username": "a b", "role": "staff", "team": "service"},
    ]
    for case in bad:
        with pytest.raises(StaffUserError):
            create_user(db, case["username"], case["role"], NOW, team=case["team"], teams=teams)
    with pytest.raises(StaffUserError, match="at least 10"):
        create_user(db, "kort", "staff", NOW, team="service", password="short")  # noqa: S106
    admin = create_user(db, "baas", "admin", NOW, teams=teams)
    assert admin.team is None
    assert [u.username for u in staff_auth.list_users(db)] == ["anna", "baas"]


# --- API tokens ------------------------------------------------------------------------------


def test_an_api_token_is_shown_once_and_stored_as_its_hash(db: Engine) -> None:
    create_user(db, "integratie", "staff", NOW, team="service")
    token = issue_api_token(db, "integratie")
    assert token.startswith("cxs_")
    assert len(token) > 40
    assert stored(db, "integratie").api_token_hash == hashlib.sha256(token.encode()).hexdigest()
    user = user_for_token(db, token)
    assert user is not None
    assert user.username == "integratie"

    second = issue_api_token(db, "integratie")
    assert second != token
    assert user_for_token(db, token) is None  # the old one stopped working
    assert user_for_token(db, second) is not None
    for wrong in ("", "cxs_", "cxs_" + "A" * 43, second[:-1], second[4:], "x" * 500):
        assert user_for_token(db, wrong) is None

    update_user(db, "integratie", active=False)
    assert user_for_token(db, second) is None
    assert stored(db, "integratie").api_token_hash is None


# --- sessions ------------------------------------------------------------------------------


def test_a_session_lives_until_it_expires_and_the_cookie_value_is_not_stored(db: Engine) -> None:
    create_user(db, "lead1", "lead", NOW, team="complaints", display_name="Lia Lead")
    ttl = timedelta(hours=10)
    started = start_session(db, "lead1", NOW, ttl)
    other = start_session(db, "lead1", NOW, ttl)
    assert started.session_id != other.session_id
    assert started.csrf_token != other.csrf_token
    with Session(db) as session:
        hashes = set(session.execute(select(col(StaffSession.session_hash))).scalars())
    assert hashes == {hash_token(s.session_id) for s in (started, other)}
    assert started.session_id not in hashes

    signed = session_user(db, started.session_id, NOW + ttl - timedelta(seconds=1))
    assert signed is not None
    assert signed.viewer == Viewer("lead1", "lead", "complaints")
    assert (signed.csrf_token, signed.display_name) == (started.csrf_token, "Lia Lead")
    assert session_user(db, started.session_id, NOW + ttl) is None
    assert session_user(db, "not-a-session", NOW) is None

    end_session(db, started.session_id)
    assert session_user(db, started.session_id, NOW) is None
    assert session_user(db, other.session_id, NOW) is not None


def test_expired_sessions_are_swept_and_a_password_change_ends_sessions(db: Engine) -> None:
    create_user(db, "s1", "staff", NOW, team="service", password=PASSWORD)
    old = start_session(db, "s1", NOW, timedelta(minutes=5))
    start_session(db, "s1", NOW + timedelta(hours=1), timedelta(hours=1))
    with Session(db) as session:
        rows = session.execute(select(StaffSession)).scalars().all()
    assert [r.session_hash for r in rows] != [hash_token(old.session_id)]
    assert len(rows) == 1  # the expired one went when the next began

    current = start_session(db, "s1", NOW, timedelta(hours=1))
    set_password(db, "s1", "another long password")
    assert session_user(db, current.session_id, NOW) is None
    assert authenticate(db, "s1", "another long password") is not None


def test_deactivating_a_user_ends_their_sessions(db: Engine) -> None:
    create_user(db, "weg", "staff", NOW, team="service")
    started = start_session(db, "weg", NOW, timedelta(hours=1))
    update_user(db, "weg", active=False)
    assert session_user(db, started.session_id, NOW) is None


def test_demo_staff_are_made_once_with_working_passwords(db: Engine) -> None:
    rules = load_followup_rules()
    made = ensure_demo_staff(db, rules, NOW)
    assert [(name, role, team) for name, role, team, _ in made] == [
        ("admin", "admin", None),
        ("service-lead", "lead", "service"),
        ("service-staff", "staff", "service"),
        ("complaints-lead", "lead", "complaints"),
        ("complaints-staff", "staff", "complaints"),
    ]
    assert len({password for *_, password in made}) == len(made)
    name, _, _, password = made[4]
    assert authenticate(db, name, password) is not None
    assert ensure_demo_staff(db, rules, NOW) == []
    assert len(staff_auth.list_users(db)) == 5


# --- rights --------------------------------------------------------------------------------

ADMIN = Viewer("root", "admin", None)
LEAD_A = Viewer("lia", "lead", "service")
STAFF_A = Viewer("sam", "staff", "service")
STAFF_B = Viewer("bo", "staff", "complaints")


def task(team: str = "service", status: TaskStatus = TaskStatus.ASSIGNED) -> FollowupTask:
    return followup_task(team=team, status=status.value)


def member(username: str, team: str | None, role: str = "staff", active: bool = True) -> StaffUser:
    return staff_user(username, team, role, active=active, display_name=username)


SAM = member("sam", "service")
SAL = member("sal", "service")
BO = member("bo", "complaints")
LIA = member("lia", "service", "lead")


def test_the_rights_matrix() -> None:
    a, b = task("service"), task("complaints")
    assert (ADMIN.visible_teams(), LEAD_A.visible_teams(), STAFF_A.visible_teams()) == (
        None,
        ("service",),
        ("service",),
    )
    assert Viewer("x", "staff", None).visible_teams() == ()
    assert [v.can_see(a) for v in (ADMIN, LEAD_A, STAFF_A, STAFF_B)] == [True, True, True, False]
    assert [v.can_see(b) for v in (ADMIN, LEAD_A, STAFF_A, STAFF_B)] == [True, False, False, True]

    # Staff work their team's tasks, but cancel nothing and give tasks to nobody else.
    assert STAFF_A.can_act(a, ActionType.CALL_ATTEMPT)
    assert not STAFF_A.can_act(a, ActionType.CANCEL)
    assert STAFF_A.can_act(a, ActionType.ASSIGN, SAM)
    assert not STAFF_A.can_act(a, ActionType.ASSIGN, SAL)
    assert not STAFF_A.can_act(a, ActionType.ASSIGN, None)
    assert not STAFF_A.can_act(b, ActionType.CALL_ATTEMPT)
    # Leads reassign and cancel within their team.
    assert LEAD_A.can_act(a, ActionType.CANCEL)
    assert LEAD_A.can_act(a, ActionType.ASSIGN, SAL)
    assert LEAD_A.can_act(a, ActionType.ASSIGN, LIA)
    assert not LEAD_A.can_act(a, ActionType.ASSIGN, BO)
    assert not LEAD_A.can_act(b, ActionType.CANCEL)
    # Admins everywhere, to anyone active in a team.
    assert ADMIN.can_act(b, ActionType.CANCEL)
    assert ADMIN.can_act(a, ActionType.ASSIGN, BO)
    assert not ADMIN.can_act(a, ActionType.ASSIGN, member("old", "service", active=False))
    assert not ADMIN.can_act(a, ActionType.ASSIGN, member("boss", None, "admin"))


viewers = st.builds(
    Viewer,
    username=st.sampled_from(["sam", "sal", "bo", "lia", "root"]),
    role=st.sampled_from(["staff", "lead", "admin"]),
    team=st.sampled_from([None, "service", "complaints"]),
)
assignees = st.builds(
    member,
    username=st.sampled_from(["sam", "sal", "bo", "lia", "root"]),
    team=st.sampled_from([None, "service", "complaints"]),
    role=st.sampled_from(["staff", "lead", "admin"]),
    active=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    viewer=viewers,
    team=st.sampled_from(["service", "complaints"]),
    action=st.sampled_from(list(ActionType)),
    assignee=st.none() | assignees,
)
def test_rights_hold_for_any_viewer_task_and_action(
    viewer: Viewer, team: str, action: ActionType, assignee: StaffUser | None
) -> None:
    subject = task(team)
    allowed = viewer.can_act(subject, action, assignee)
    # Nobody acts on what they cannot see; what staff and leads see is their team.
    if allowed:
        assert viewer.can_see(subject)
    teams = viewer.visible_teams()
    assert viewer.can_see(subject) == (teams is None or team in teams)
    if viewer.role != "admin" and viewer.team != team:
        assert not allowed
    # Only leads and admins cancel; staff assign to themselves only; an assignee is active
    # and in a team, and within the lead's team.
    if action is ActionType.CANCEL:
        assert allowed == (viewer.role in ("lead", "admin") and viewer.can_see(subject))
    if action is ActionType.ASSIGN and allowed:
        assert assignee is not None
        assert assignee.active
        assert assignee.team is not None
        assert assignee.role != "admin"
        if viewer.role == "staff":
            assert assignee.username == viewer.username
        if viewer.role == "lead":
            assert assignee.team == viewer.team == team
    if action not in (ActionType.CANCEL, ActionType.ASSIGN):
        assert allowed == viewer.can_see(subject)


@settings(max_examples=200, deadline=None)
@given(
    viewer=viewers,
    status=st.sampled_from(list(TaskStatus)),
    action=st.sampled_from(list(ActionType)),
)
def test_vetting_refuses_by_rights_then_status(
    viewer: Viewer, status: TaskStatus, action: ActionType
) -> None:
    subject = task("service", status)
    note = "Told the customer the engineer comes on Monday."
    details = {"root_cause": "billing"} if action is ActionType.CLOSE else {}
    if action is ActionType.ASSIGN:
        details = {"assignee": viewer.username}
    role = "staff" if viewer.role == "admin" else viewer.role
    me = member(viewer.username, viewer.team or "service", role)
    outcome = vet_or_problem(viewer, subject, action, note, details, me)
    may = viewer.can_act(subject, action, me)
    possible = action in allowed_actions(status)
    if not may:
        assert isinstance(outcome, ActionRequestInvalidError)
        assert outcome.status == 403
    elif not possible:
        assert isinstance(outcome, ActionRequestInvalidError)
        assert outcome.status == 409
    else:
        assert isinstance(outcome, ActionRequest)
        assert outcome.type is action


def vet_or_problem(
    viewer: Viewer,
    subject: FollowupTask,
    action: ActionType,
    note: object,
    details: object,
    assignee: StaffUser | None = None,
    fix_ids: tuple[str, ...] = (),
) -> ActionRequestInvalidError | ActionRequest:
    try:
        return vet_action(
            viewer,
            subject,
            action,
            note,
            details,
            root_causes=ROOT_CAUSES,
            assignee=assignee,
            fix_ids=fix_ids,
        )
    except ActionRequestInvalidError as refused:
        return refused


def vet(
    viewer: Viewer,
    action: ActionType,
    note: object = "",
    details: object = None,
    status: TaskStatus = TaskStatus.CONTACTED,
    assignee: StaffUser | None = None,
    fix_ids: tuple[str, ...] = (),
) -> ActionRequestInvalidError | ActionRequest:
    subject = task("service", status)
    return vet_or_problem(
        viewer, subject, action, note, {} if details is None else details, assignee, fix_ids
    )


def problem(result: object) -> tuple[int, str, dict[str, str]]:
    assert isinstance(result, ActionRequestInvalidError), result
    return result.status, result.code, result.fields


def test_vetting_explains_what_is_wrong() -> None:
    assert problem(vet(STAFF_B, ActionType.NOTE, "x"))[:2] == (403, "forbidden")
    assert problem(vet(STAFF_A, ActionType.CANCEL, "dubbel"))[:2] == (403, "forbidden")
    closed = vet(LEAD_A, ActionType.NOTE, "x", status=TaskStatus.CLOSED)
    assert problem(closed)[:2] == (409, "task_closed")
    assert problem(vet(STAFF_A, ActionType.CLOSE, status=TaskStatus.OPEN))[:2] == (
        409,
        "not_possible_now",
    )
    status, _, fields = problem(vet(STAFF_A, ActionType.CUSTOMER_INFORMED, "  "))
    assert (status, list(fields)) == (422, ["note"])
    status, _, fields = problem(vet(STAFF_A, ActionType.NOTE, 42))
    assert (status, list(fields)) == (422, ["note"])
    status, _, fields = problem(vet(STAFF_A, ActionType.CALL_ATTEMPT, "", {"assignee": "x"}))
    assert (status, list(fields)) == (422, ["details"])
    status, _, fields = problem(vet(STAFF_A, ActionType.CALL_ATTEMPT, "", ["not", "an object"]))
    assert (status, list(fields)) == (422, ["details"])

    informed = TaskStatus.CUSTOMER_INFORMED
    status, _, fields = problem(vet(STAFF_A, ActionType.CLOSE, "", {}, informed))
    assert (status, list(fields)) == (422, ["root_cause"])
    status, _, fields = problem(
        vet(
            STAFF_A,
            ActionType.CLOSE,
            "",
            {"root_cause": "billing", "structural_fix_id": "f"},
            informed,
        )
    )
    assert (status, list(fields)) == (422, ["structural_fix_id"])
    linked = vet(
        STAFF_A,
        ActionType.CLOSE,
        " done ",
        {"root_cause": "billing", "structural_fix_id": "f"},
        informed,
        fix_ids=("f",),
    )
    assert isinstance(linked, ActionRequest)
    assert linked.note == "done"
    assert linked.details == {
        "root_cause": "billing",
        "needs_structural_fix": True,
        "structural_fix_id": "f",
    }
    new_fix = vet(
        STAFF_A,
        ActionType.CLOSE,
        "",
        {"root_cause": "capacity", "structural_fix_title": " More engineers "},
        informed,
    )
    assert isinstance(new_fix, ActionRequest)
    assert new_fix.details["structural_fix_title"] == "More engineers"


def test_reassigning_needs_a_lead_within_the_team() -> None:
    assign = ActionType.ASSIGN
    assert problem(vet(STAFF_A, assign, "", {"assignee": "sal"}, assignee=SAL))[0] == 403
    assert problem(vet(STAFF_A, assign, "", {"assignee": "ghost"}))[0] == 403
    taken = vet(STAFF_A, assign, "", {"assignee": "sam"}, assignee=SAM)
    assert isinstance(taken, ActionRequest)
    assert taken.details == {"assignee": "sam"}
    assert problem(vet(LEAD_A, assign, "", {"assignee": "bo"}, assignee=BO))[0] == 403
    status, _, fields = problem(vet(LEAD_A, assign, "", {"assignee": "ghost"}))
    assert (status, list(fields)) == (422, ["assignee"])
    given_away = vet(LEAD_A, assign, "", {"assignee": "sal"}, assignee=SAL)
    assert isinstance(given_away, ActionRequest)
    moved = vet(ADMIN, assign, "", {"assignee": "bo"}, assignee=BO)
    assert isinstance(moved, ActionRequest)
    # Rights come before the status: a staff member's reassign on a closed task is 403.
    closed = vet(STAFF_A, assign, "", {"assignee": "sal"}, TaskStatus.CLOSED, assignee=SAL)
    assert problem(closed)[0] == 403


# --- the staff CLI -------------------------------------------------------------------------


def test_the_staff_cli_adds_lists_tokens_and_deactivates(tmp_path: Path) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415 - only this test drives the CLI

    from agents.cli.main import cli  # noqa: PLC0415

    url = f"sqlite:///{tmp_path}/cli.db"
    runner = CliRunner()
    secret = "a password nobody sees"  # noqa: S105 - the test account's password
    add = ["staff", "add", "Jan", "--role", "lead", "--team", "service", "--name", "Jan J"]
    added = runner.invoke(
        cli, [*add, "--password-stdin", "--database-url", url], input=secret + "\n"
    )
    assert added.exit_code == 0, added.output
    assert added.output == "added lead jan (team service)\n"
    refused = runner.invoke(
        cli,
        ["staff", "add", "piet", "--team", "billing", "--no-password", "--database-url", url],
    )
    assert refused.exit_code == 1
    assert "unknown team 'billing'" in refused.output

    issued = runner.invoke(cli, ["staff", "token", "jan", "--database-url", url])
    assert issued.exit_code == 0
    token = issued.output.strip()
    engine = make_engine(url)
    try:
        assert authenticate(engine, "jan", secret) is not None
        user = user_for_token(engine, token)
        assert user is not None
        assert (user.username, user.display_name) == ("jan", "Jan J")
        listed = runner.invoke(cli, ["staff", "list", "--database-url", url])
        assert listed.output == "jan\tlead\tservice\tactive\ttoken\n"
        assert secret not in added.output + listed.output

        gone = runner.invoke(cli, ["staff", "deactivate", "jan", "--database-url", url])
        assert gone.exit_code == 0
        assert user_for_token(engine, token) is None
        assert authenticate(engine, "jan", secret) is None
        missing = runner.invoke(cli, ["staff", "token", "nobody", "--database-url", url])
        assert missing.exit_code == 1
    finally:
        engine.dispose()


def test_sign_ins_are_throttled_per_user_name_after_repeated_failures() -> None:
    throttle = SignInThrottle(limit=3, window=timedelta(minutes=15), names=2)
    for minute in range(3):
        assert not throttle.blocked("Jan", NOW + timedelta(minutes=minute))
        throttle.failed("jan ", NOW + timedelta(minutes=minute))
    assert throttle.blocked("JAN", NOW + timedelta(minutes=3))
    assert not throttle.blocked("piet", NOW + timedelta(minutes=3))
    # The oldest failure leaves the window: one more try.
    assert not throttle.blocked("jan", NOW + timedelta(minutes=15))
    throttle.failed("jan", NOW + timedelta(minutes=15))
    assert throttle.blocked("jan", NOW + timedelta(minutes=15, seconds=30))
    throttle.succeeded("jan")
    assert not throttle.blocked("jan", NOW + timedelta(minutes=15, seconds=30))
    # Memory is bounded: the least recently failed names are forgotten.
    for name in ("a", "b", "c"):
        for _ in range(3):
            throttle.failed(name, NOW)
    assert [throttle.blocked(n, NOW) for n in ("a", "b", "c")] == [False, True, True]
