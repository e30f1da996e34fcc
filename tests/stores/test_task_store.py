"""The follow-up task store on SQLite and PostgreSQL: opening, routing, assignment, the
lifecycle and its history, the escalation ladder, the stream outbox and answers."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from models.followup_rules import parse_followup_rules
from models.store.answer_tasks import ScoredAnswer, open_tasks_for_answers
from models.store.engine import transaction
from models.store.escalation import escalate_due
from models.store.tables import FollowupTask, SurveyInvitation, SurveyResponse
from models.store.task_actions import ActionCommand, ActionRefusedError, apply_action
from models.store.task_events import (
    SYSTEM_ACTOR,
    claim_unpublished_events,
    event_id_for,
    mark_events_published,
    task_history,
)
from models.store.task_queries import get_task
from models.store.tasks import open_tasks, open_tasks_in
from models.task_lifecycle import (
    ActionType,
    NewTask,
    TaskClosedError,
    TaskSubject,
    TransitionInvalidError,
    task_for_complaint,
)
from tests.conftest import wait_for
from tests.factories import add_staff_user, detractor_task

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

# Every team works around the clock, so business time is elapsed time and the ladder's
# steps are easy to name: first contact 10 h (reminder 7.5 h, lead 10 h, manager 20 h),
# closure 40 h (30 h, 40 h, 80 h).
RULES = parse_followup_rules(
    """
version = "store-test"

[sla]
first_contact = "10 business hours"
closure = "40 business hours"

[routing]
default_team = "service"

[[team]]
name = "service"
days = "daily"
from = "00:00"
to = "24:00"
assignment = "round_robin"
lead_email = "service-lead@example.com"
manager_email = "care-manager@example.com"

[[team]]
name = "complaints"
days = "daily"
from = "00:00"
to = "24:00"
assignment = "least_loaded"

[[team]]
name = "keyaccounts"
days = "daily"
from = "00:00"
to = "24:00"

[[team]]
name = "english"
days = "daily"
from = "00:00"
to = "24:00"

[[team]]
name = "manual"
days = "daily"
from = "00:00"
to = "24:00"
assignment = "none"

[[route]]
team = "complaints"
when = { origin = ["complaint"] }

[[route]]
team = "keyaccounts"
when = { partner = ["KeyAccount BV"] }

[[route]]
team = "english"
when = { language = ["en"] }

[[route]]
team = "manual"
when = { region = ["north"] }
""",
    "store-test.toml",
)
REMINDER, LEAD, MANAGER = timedelta(hours=7.5), timedelta(hours=10), timedelta(hours=20)
CLOSURE_REMINDER = timedelta(hours=30)


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql), params).all()]


def lock_waiters(engine: Engine) -> int:
    """How many sessions of this test's PostgreSQL database wait for a row lock."""
    [(waiting,)] = rows(
        engine,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()",
    )
    return int(waiting)


add_staff = partial(add_staff_user, created_at=NOW)  # (engine, username, team, role, ...)


def complaint(n: int | str, at: datetime = NOW, **subject: Any) -> NewTask:
    task = task_for_complaint(RULES, f"evt-{n}", at, TaskSubject(customer_id=f"C-{n}", **subject))
    assert task is not None
    return task


detractor = partial(detractor_task, at=NOW)  # (n, nps=3, **subject): answer r-n of C-n


def open_one(engine: Engine, task: NewTask, now: datetime = NOW) -> FollowupTask:
    [(stored, _new)] = open_tasks(engine, RULES, [task], now)
    return stored


_action_ids = itertools.count(1)


def act(
    engine: Engine,
    task_id: str,
    action: ActionType,
    note: str = "",
    now: datetime = NOW,
    actor: str = "alice",
    **details: Any,
) -> FollowupTask:
    result = apply_action(
        engine,
        RULES,
        ActionCommand(f"a-{next(_action_ids)}", task_id, action, note, actor, now, details),
    )
    assert result.fresh
    return result.task


def events(engine: Engine, task_id: str) -> list[str]:
    return [e.event_type for e in task_history(engine, task_id)]


# ----------------------------------------------------------------------------------- opening


def test_opening_the_same_task_twice_keeps_one_task_and_one_opened_event(
    engine: Engine,
) -> None:
    add_staff(engine, "dave", "complaints")
    task = complaint(1)
    first = open_tasks(engine, RULES, [task, task], NOW)
    again = open_tasks(engine, RULES, [task], NOW + timedelta(hours=1))
    assert [new for _, new in first] == [True]
    assert [new for _, new in again] == [False]
    assert again[0][0].task_id == task.task_id
    assert rows(engine, "SELECT task_id, status, assignee FROM followup_tasks") == [
        (task.task_id, "assigned", "dave")
    ]
    assert events(engine, task.task_id) == ["task_opened", "task_assigned"]
    opened = task_history(engine, task.task_id)[0]
    assert (opened.from_status, opened.to_status, opened.actor) == (None, "open", SYSTEM_ACTOR)
    assert opened.occurred_at == NOW
    assert opened.details == {"priority_name": "high"}


def test_workers_opening_the_same_tasks_at_once_open_each_once(engine: Engine) -> None:
    add_staff(engine, "alice", "service")
    add_staff(engine, "bob", "service")
    batch = [detractor(n) for n in range(10)]
    start = threading.Barrier(4)

    def worker(offset: int) -> list[bool]:
        start.wait()
        mine = batch[offset:] + batch[:offset]  # the same tasks in another order
        return [new for _, new in open_tasks(engine, RULES, mine, NOW)]

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    assert rows(engine, "SELECT count(*) FROM followup_tasks") == [(10,)]
    assert rows(
        engine,
        "SELECT event_type, count(*) FROM followup_task_events GROUP BY event_type "
        "ORDER BY event_type",
    ) == [("task_assigned", 10), ("task_opened", 10)]
    assert rows(engine, "SELECT count(*) FROM followup_tasks WHERE assignee IS NULL") == [(0,)]


def test_a_task_another_worker_opened_meanwhile_is_not_reported_new(
    engine: Engine,
) -> None:
    task = detractor(1)
    with ThreadPoolExecutor(1) as pool:
        with transaction(engine) as first:
            open_tasks_in(first, RULES, [task], NOW)
            second = pool.submit(open_tasks, engine, RULES, [task], NOW)
            if engine.dialect.name == "postgresql":  # SQLite's writer waits at BEGIN anyway
                wait_for(lambda: lock_waiters(engine) == 1, 10, "the second insert to wait")
        [(stored, new)] = second.result(timeout=30)
    assert stored.task_id == task.task_id
    assert events(engine, task.task_id) == ["task_opened"]
    assert new is False


def test_opening_sets_the_sla_times_of_the_team(engine: Engine) -> None:
    stored = open_one(engine, detractor(1))
    assert stored.first_contact_due_at == NOW + LEAD
    assert stored.sla_due_at == NOW + LEAD
    assert stored.due_at == NOW + timedelta(hours=40)
    assert stored.next_escalation_at == NOW + REMINDER
    assert stored.escalation_level == 0


@pytest.mark.parametrize(
    ("task", "team"),
    [
        (complaint(1, partner="KeyAccount BV", language="en"), "complaints"),  # first match
        (detractor(2, partner="KeyAccount BV", language="en"), "keyaccounts"),
        (detractor(3, partner="Small BV", language="en"), "english"),
        (detractor(4, language="nl"), "service"),
        (detractor(5, region="north"), "manual"),
        (detractor(6), "service"),
    ],
)
def test_tasks_are_routed_by_origin_partner_and_language(
    engine: Engine, task: NewTask, team: str
) -> None:
    assert open_one(engine, task).team == team
    assert rows(engine, "SELECT team FROM followup_tasks") == [(team,)]
    assert task_history(engine, task.task_id)[0].reason == f"{task.origin} → team {team}"


def test_round_robin_hands_tasks_to_members_in_turn(engine: Engine) -> None:
    for name in ("carol", "alice", "bob"):
        add_staff(engine, name, "service")
    add_staff(engine, "lena", "service", role="lead")  # leads only when there is no staff
    add_staff(engine, "olga", "service", active=False)
    add_staff(engine, "sven", "english")  # another team
    opened = [open_one(engine, detractor(n), NOW + timedelta(minutes=n)) for n in range(7)]
    assert [t.assignee for t in opened] == [
        "alice",
        "bob",
        "carol",
        "alice",
        "bob",
        "carol",
        "alice",
    ]
    assert {t.status for t in opened} == {"assigned"}
    assigned = task_history(engine, opened[1].task_id)[1]
    assert (assigned.event_type, assigned.from_status, assigned.to_status) == (
        "task_assigned",
        "open",
        "assigned",
    )
    assert (assigned.reason, assigned.details) == ("round_robin", {"assignee": "bob"})


def test_round_robin_keeps_turns_within_and_after_a_batch(engine: Engine) -> None:
    for name in ("alice", "bob", "carol"):
        add_staff(engine, name, "service")
    batch = open_tasks(engine, RULES, [detractor(n) for n in range(5)], NOW)
    assert [t.assignee for t, _ in batch] == ["alice", "bob", "carol", "alice", "bob"]
    assert open_one(engine, detractor(5), NOW + timedelta(minutes=1)).assignee == "carol"


def test_leads_get_tasks_when_the_team_has_no_staff(engine: Engine) -> None:
    add_staff(engine, "lena", "service", role="lead")
    assert open_one(engine, detractor(1)).assignee == "lena"


def test_least_loaded_picks_the_member_with_fewest_active_tasks(engine: Engine) -> None:
    for name in ("dave", "erin", "frank"):
        add_staff(engine, name, "complaints")
    first = [open_one(engine, complaint(n), NOW + timedelta(minutes=n)) for n in range(3)]
    assert [t.assignee for t in first] == ["dave", "erin", "frank"]
    # Frank's task needs no follow-up: he has none left, although he had the last one.
    act(engine, first[2].task_id, ActionType.CANCEL, "duplicate complaint", actor="lena")
    assert open_one(engine, complaint(3), NOW + timedelta(minutes=3)).assignee == "frank"
    # Everyone has one now: the longest since the last assignment (dave) is next.
    assert open_one(engine, complaint(4), NOW + timedelta(minutes=4)).assignee == "dave"
    # An unreachable task waits for the customer, so it does not count either.
    for attempt in range(3):
        act(engine, first[1].task_id, ActionType.NO_ANSWER, now=NOW + timedelta(hours=attempt))
    assert get_task(engine, first[1].task_id).status == "unreachable"
    assert open_one(engine, complaint(5), NOW + timedelta(minutes=5)).assignee == "erin"


@pytest.mark.parametrize(
    ("task", "team"), [(detractor(1), "service"), (detractor(2, region="north"), "manual")]
)
def test_without_members_or_with_hand_assignment_a_task_stays_open(
    engine: Engine, task: NewTask, team: str
) -> None:
    add_staff(engine, "mia", "manual")  # the manual team assigns by hand
    stored = open_one(engine, task)
    assert (stored.team, stored.status, stored.assignee) == (team, "open", None)
    assert events(engine, task.task_id) == ["task_opened"]


# --------------------------------------------------------------------------------- lifecycle


def test_the_whole_lifecycle_with_a_structural_fix_shared_by_two_tasks(engine: Engine) -> None:
    add_staff(engine, "alice", "service")
    add_staff(engine, "bob", "service")
    one, two = (open_one(engine, detractor(n)).task_id for n in (1, 2))
    assert get_task(engine, one).assignee == "alice"

    task = act(engine, one, ActionType.ASSIGN, actor="lena", assignee="bob")
    assert (task.status, task.assignee) == ("assigned", "bob")
    task = act(engine, one, ActionType.CALL_ATTEMPT, "Reached her", NOW + timedelta(hours=1))
    assert (task.status, task.contacted_at) == ("contacted", NOW + timedelta(hours=1))
    with pytest.raises(ActionRefusedError, match="what the customer was told"):
        act(engine, one, ActionType.CUSTOMER_INFORMED, "  ")
    task = act(engine, one, ActionType.RESOLVED, "Refunded the second invoice")
    assert task.resolution == "Refunded the second invoice"
    later = NOW + timedelta(hours=2)
    task = act(engine, one, ActionType.CUSTOMER_INFORMED, "Told her about the refund", later)
    assert (task.status, task.informed_at) == ("customer_informed", later)
    for cause in (None, "weather"):
        with pytest.raises(ActionRefusedError, match="root_cause must be one of"):
            act(engine, one, ActionType.CLOSE, root_cause=cause)
    assert get_task(engine, one).status == "customer_informed"  # refusals change nothing

    closed_at = NOW + timedelta(hours=3)
    task = act(
        engine,
        one,
        ActionType.CLOSE,
        now=closed_at,
        root_cause="billing",
        needs_structural_fix=True,
        structural_fix_title="Invoices count a cancelled month",
    )
    assert (task.status, task.root_cause, task.closed_at) == ("closed", "billing", closed_at)
    fixes = rows(engine, "SELECT fix_id, title, root_cause, status FROM structural_fixes")
    assert [f[1:] for f in fixes] == [("Invoices count a cancelled month", "billing", "open")]
    fix_id = fixes[0][0]
    assert task.structural_fix_id == fix_id
    assert task.next_escalation_at is None
    assert events(engine, one) == [
        "task_opened",
        "task_assigned",
        "task_assigned",
        "task_action_recorded",
        "task_action_recorded",
        "task_action_recorded",
        "task_closed",
    ]
    assert task_history(engine, one)[-1].details["structural_fix_id"] == fix_id

    act(engine, two, ActionType.CALL_ATTEMPT, "Reached him")
    act(engine, two, ActionType.CUSTOMER_INFORMED, "Same invoice problem")
    with pytest.raises(ActionRefusedError, match="no structural fix"):
        act(engine, two, ActionType.CLOSE, root_cause="billing", structural_fix_id="nope")
    linked = act(engine, two, ActionType.CLOSE, root_cause="billing", structural_fix_id=fix_id)
    assert (linked.structural_fix_id, linked.needs_structural_fix) == (fix_id, True)
    assert rows(engine, "SELECT count(*) FROM structural_fixes") == [(1,)]
    assert rows(
        engine, "SELECT count(*) FROM followup_tasks WHERE structural_fix_id = :f", f=fix_id
    ) == [(2,)]


def test_three_unanswered_calls_make_a_task_unreachable(engine: Engine) -> None:
    add_staff(engine, "alice", "service")
    task_id = open_one(engine, detractor(1)).task_id
    for attempt in (1, 2):
        task = act(engine, task_id, ActionType.NO_ANSWER, "voicemail")
        assert (task.status, task.failed_attempts) == ("assigned", attempt)
    task = act(engine, task_id, ActionType.NO_ANSWER, "voicemail again")
    assert (task.status, task.failed_attempts, task.next_escalation_at) == ("unreachable", 3, None)
    history = task_history(engine, task_id)
    assert [e.event_type for e in history][-2:] == ["task_action_recorded", "task_unreachable"]
    assert (history[-2].from_status, history[-2].to_status) == ("assigned", "unreachable")
    assert history[-1].actor == SYSTEM_ACTOR
    assert history[-1].details == {"failed_attempts": 3}
    # The customer calls back: contacted, and the closure SLA runs.
    task = act(engine, task_id, ActionType.CALL_ATTEMPT, "She called us")
    assert task.status == "contacted"
    assert task.next_escalation_at == NOW + CLOSURE_REMINDER


@pytest.mark.parametrize("final", [ActionType.CLOSE, ActionType.CANCEL])
def test_closed_and_cancelled_tasks_refuse_every_action(engine: Engine, final: ActionType) -> None:
    add_staff(engine, "alice", "service")
    task_id = open_one(engine, detractor(1)).task_id
    if final is ActionType.CLOSE:
        act(engine, task_id, ActionType.CALL_ATTEMPT)
        act(engine, task_id, ActionType.CUSTOMER_INFORMED, "Told")
        act(engine, task_id, ActionType.CLOSE, root_cause="other")
    else:
        act(engine, task_id, ActionType.CANCEL, "Customer asked not to be called")
    before = [e.event_id for e in task_history(engine, task_id)]
    for action in ActionType:
        with pytest.raises(TaskClosedError):
            act(engine, task_id, action, "again", assignee="alice", root_cause="other")
    assert [e.event_id for e in task_history(engine, task_id)] == before
    assert rows(engine, "SELECT count(*) FROM followup_actions") == [(len(before) - 2,)]


@pytest.mark.parametrize(
    ("steps", "refused"),
    [
        ([], ActionType.CLOSE),
        ([], ActionType.CUSTOMER_INFORMED),
        ([], ActionType.RESOLVED),
        ([ActionType.CALL_ATTEMPT, ActionType.CUSTOMER_INFORMED], ActionType.NO_ANSWER),
        ([ActionType.CALL_ATTEMPT, ActionType.CUSTOMER_INFORMED], ActionType.CANCEL),
        ([ActionType.CALL_ATTEMPT, ActionType.CUSTOMER_INFORMED], ActionType.CALL_ATTEMPT),
    ],
)
def test_impossible_transitions_are_refused_and_change_nothing(
    engine: Engine, steps: list[ActionType], refused: ActionType
) -> None:
    add_staff(engine, "alice", "service")
    task_id = open_one(engine, detractor(1)).task_id
    for step in steps:
        act(engine, task_id, step, "note")
    before = get_task(engine, task_id)
    with pytest.raises(TransitionInvalidError):
        act(engine, task_id, refused, "note", root_cause="other")
    after = get_task(engine, task_id)
    assert (after.status, after.version) == (before.status, before.version)


def test_a_replayed_action_id_changes_nothing(engine: Engine) -> None:
    add_staff(engine, "alice", "service")
    task_id = open_one(engine, detractor(1)).task_id
    first = apply_action(
        engine, RULES, ActionCommand("act-1", task_id, ActionType.NO_ANSWER, "", "alice", NOW, {})
    )
    assert first.fresh and first.task.failed_attempts == 1
    later = NOW + timedelta(hours=1)
    for action in (ActionType.NO_ANSWER, ActionType.CALL_ATTEMPT):  # whatever it says now
        again = apply_action(
            engine, RULES, ActionCommand("act-1", task_id, action, "", "bob", later, {})
        )
        assert not again.fresh
        assert again.action.type == "no_answer"
        assert again.action.actor == "alice"
    task = get_task(engine, task_id)
    assert (task.status, task.failed_attempts, task.version) == ("assigned", 1, 3)
    assert rows(engine, "SELECT action_id FROM followup_actions") == [("act-1",)]
    assert len(task_history(engine, task_id)) == 3


def test_the_same_action_delivered_twice_at_once_is_recorded_once(
    engine: Engine,
) -> None:
    add_staff(engine, "alice", "service")
    task_id = open_one(engine, detractor(1)).task_id

    def deliver(_: int) -> bool:
        return apply_action(
            engine,
            RULES,
            ActionCommand("act-1", task_id, ActionType.NO_ANSWER, "", "alice", NOW, {}),
        ).fresh

    with ThreadPoolExecutor(2) as pool:
        with transaction(engine) as blocker:  # both deliveries queue behind this lock
            blocker.get(FollowupTask, task_id, with_for_update=True)
            delivered = [pool.submit(deliver, n) for n in range(2)]
            if engine.dialect.name == "postgresql":  # SQLite's writers wait at BEGIN anyway
                wait_for(lambda: lock_waiters(engine) == 2, 10, "both deliveries to wait")
        fresh = sorted(d.result(timeout=30) for d in delivered)
    assert fresh == [False, True]
    assert get_task(engine, task_id).failed_attempts == 1
    assert rows(engine, "SELECT count(*) FROM followup_actions") == [(1,)]


def test_one_tasks_events_are_claimed_in_sequence_whatever_their_clocks(engine: Engine) -> None:
    task_id = open_one(engine, detractor(1)).task_id
    act(engine, task_id, ActionType.NOTE, "on a worker whose clock is ahead", NOW + timedelta(2))
    act(engine, task_id, ActionType.NOTE, "on one whose clock is right", NOW + timedelta(1))
    claimed = claim_unpublished_events(engine, NOW + timedelta(days=3))
    assert [e.seq for e in claimed] == [1, 2, 3]


def test_every_change_is_a_history_row_in_sequence(engine: Engine) -> None:
    add_staff(engine, "alice", "service", email="alice@example.com")
    task_id = open_one(engine, detractor(1)).task_id
    escalate_due(engine, RULES, NOW + REMINDER)
    act(engine, task_id, ActionType.NO_ANSWER, "", NOW + timedelta(hours=8), actor="alice")
    act(engine, task_id, ActionType.NOTE, "Try after five", NOW + timedelta(hours=8), actor="bo")
    act(engine, task_id, ActionType.CALL_ATTEMPT, "", NOW + timedelta(hours=9), actor="alice")
    act(engine, task_id, ActionType.CUSTOMER_INFORMED, "Told", NOW + timedelta(hours=9))
    act(engine, task_id, ActionType.CLOSE, "", NOW + timedelta(hours=9), root_cause="price")
    history = task_history(engine, task_id)
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    assert [e.event_id for e in history] == [event_id_for(task_id, e.seq) for e in history]
    assert [(e.event_type, e.from_status, e.to_status, e.actor) for e in history] == [
        ("task_opened", None, "open", SYSTEM_ACTOR),
        ("task_assigned", "open", "assigned", SYSTEM_ACTOR),
        ("task_reminder", "assigned", "assigned", SYSTEM_ACTOR),
        ("task_action_recorded", "assigned", "assigned", "alice"),
        ("task_action_recorded", "assigned", "assigned", "bo"),
        ("task_action_recorded", "assigned", "contacted", "alice"),
        ("task_action_recorded", "contacted", "customer_informed", "alice"),
        ("task_closed", "customer_informed", "closed", "alice"),
    ]
    for earlier, later in itertools.pairwise(history):
        assert later.from_status == earlier.to_status
    assert get_task(engine, task_id).version == len(history)


# -------------------------------------------------------------------------------- escalation


def notifications(engine: Engine) -> list[tuple[str, str]]:
    """(to, subject word) of every queued staff mail, in order."""
    found = rows(
        engine,
        "SELECT to_address, subject FROM staff_notifications ORDER BY created_at, subject",
    )
    return [(to, subject.split(":")[0].removeprefix("[cxloop] ")) for to, subject in found]


def ladder_events(engine: Engine, task_id: str) -> list[tuple[str, int, str]]:
    return [
        (e.event_type, e.details["level"], e.details["sla"])
        for e in task_history(engine, task_id)
        if e.event_type in ("task_reminder", "task_escalated")
    ]


def test_the_ladder_reminds_then_escalates_to_lead_then_manager_once_each(
    engine: Engine,
) -> None:
    add_staff(engine, "alice", "service", email="alice@example.com")
    task_id = open_one(engine, detractor(1)).task_id
    second = timedelta(seconds=1)
    assert escalate_due(engine, RULES, NOW + REMINDER - second).events == 0
    expected = [
        (REMINDER, ("task_reminder", 1, "first_contact"), ("alice@example.com", "Reminder")),
        (LEAD, ("task_escalated", 2, "first_contact"), ("service-lead@example.com", "Overdue")),
        (
            MANAGER,
            ("task_escalated", 3, "first_contact"),
            ("care-manager@example.com", "Escalation"),
        ),
    ]
    for step, (after, event, mail) in enumerate(expected, start=1):
        result = escalate_due(engine, RULES, NOW + after)
        assert (result.events, result.notifications, result.tasks) == (1, 1, 1)
        for _ in range(3):  # every later tick before the next step finds nothing
            assert escalate_due(engine, RULES, NOW + after + second).events == 0
        assert ladder_events(engine, task_id)[-1] == event
        assert notifications(engine)[-1] == mail
        task = get_task(engine, task_id)
        assert task.escalation_level == step
    assert get_task(engine, task_id).next_escalation_at is None
    assert escalate_due(engine, RULES, NOW + timedelta(days=30)).events == 0
    assert len(ladder_events(engine, task_id)) == 3
    assert len(notifications(engine)) == 3
    assert rows(engine, "SELECT DISTINCT status FROM staff_notifications") == [("pending",)]


def test_sweepers_on_several_workers_take_each_step_once(engine: Engine) -> None:
    add_staff(engine, "alice", "service", email="alice@example.com")
    open_tasks(engine, RULES, [detractor(n) for n in range(20)], NOW)
    for after in (REMINDER, LEAD):
        start = threading.Barrier(4)

        def sweep(_: int, at: datetime = NOW + after, start: threading.Barrier = start) -> int:
            start.wait()
            return escalate_due(engine, RULES, at, limit=7).events

        with ThreadPoolExecutor(4) as pool:
            swept = sum(pool.map(sweep, range(4)))
        # Four sweepers of seven rows cover the twenty tasks in one round between them.
        assert swept == 20
    assert rows(
        engine,
        "SELECT event_type, count(*) FROM followup_task_events "
        "WHERE event_type IN ('task_reminder', 'task_escalated') GROUP BY event_type "
        "ORDER BY event_type",
    ) == [("task_escalated", 20), ("task_reminder", 20)]
    assert rows(
        engine, "SELECT to_address, count(*) FROM staff_notifications GROUP BY 1 ORDER BY 1"
    ) == [("alice@example.com", 20), ("service-lead@example.com", 20)]


def test_a_task_found_late_gets_every_missed_step_in_order(engine: Engine) -> None:
    add_staff(engine, "alice", "service", email="alice@example.com")
    task_id = open_one(engine, detractor(1)).task_id
    result = escalate_due(engine, RULES, NOW + timedelta(days=3))
    assert (result.events, result.notifications) == (3, 3)
    assert [level for _, level, _ in ladder_events(engine, task_id)] == [1, 2, 3]
    assert sorted(to for to, _ in notifications(engine)) == [
        "alice@example.com",
        "care-manager@example.com",
        "service-lead@example.com",
    ]
    assert escalate_due(engine, RULES, NOW + timedelta(days=4)).events == 0


def test_without_addresses_in_the_rules_leads_and_admins_of_the_team_hear_it(
    engine: Engine,
) -> None:
    add_staff(engine, "dave", "complaints")  # no e-mail address: the lead is reminded
    add_staff(engine, "lena", "complaints", role="lead", email="lena@example.com")
    add_staff(engine, "lars", "complaints", role="lead", email="lars@example.com")
    add_staff(engine, "leo", "service", role="lead", email="leo@example.com")  # other team
    add_staff(engine, "ada", None, role="admin", email="ada@example.com")
    add_staff(engine, "old", None, role="admin", email="old@example.com", active=False)
    task_id = open_one(engine, complaint(1)).task_id
    assert get_task(engine, task_id).assignee == "dave"
    escalate_due(engine, RULES, NOW + REMINDER)
    assert sorted(notifications(engine)) == [
        ("lars@example.com", "Reminder"),
        ("lena@example.com", "Reminder"),
    ]
    escalate_due(engine, RULES, NOW + MANAGER)
    assert Counter(notifications(engine)) == Counter(
        [
            ("lars@example.com", "Reminder"),
            ("lena@example.com", "Reminder"),
            ("lars@example.com", "Overdue"),
            ("lena@example.com", "Overdue"),
            ("ada@example.com", "Escalation"),
        ]
    )


def test_after_first_contact_the_closure_ladder_starts_from_the_bottom(engine: Engine) -> None:
    add_staff(engine, "alice", "service", email="alice@example.com")
    task_id = open_one(engine, detractor(1)).task_id
    escalate_due(engine, RULES, NOW + timedelta(hours=8))
    assert get_task(engine, task_id).escalation_level == 1
    task = act(engine, task_id, ActionType.CALL_ATTEMPT, "", NOW + timedelta(hours=9))
    assert (task.escalation_level, task.next_escalation_at) == (0, NOW + CLOSURE_REMINDER)
    assert task.sla_due_at == task.due_at == NOW + timedelta(hours=40)
    # Past the first-contact breach and manager steps: the first-contact ladder is over.
    assert escalate_due(engine, RULES, NOW + MANAGER + timedelta(hours=1)).events == 0
    escalate_due(engine, RULES, NOW + CLOSURE_REMINDER)
    assert ladder_events(engine, task_id) == [
        ("task_reminder", 1, "first_contact"),
        ("task_reminder", 1, "closure"),
    ]
    assert notifications(engine) == [
        ("alice@example.com", "Reminder"),
        ("alice@example.com", "Reminder"),
    ]
    assert get_task(engine, task_id).next_escalation_at == NOW + timedelta(hours=40)


# ------------------------------------------------------------------------------ stream outbox


def test_claimed_events_are_leased_until_published(engine: Engine) -> None:
    add_staff(engine, "alice", "service")
    tasks = open_tasks(engine, RULES, [detractor(1), detractor(2)], NOW)
    claimed = claim_unpublished_events(engine, NOW)
    ids = [e.event_id for e in claimed]
    assert sorted(ids) == sorted(event_id_for(t.task_id, seq) for t, _ in tasks for seq in (1, 2))
    for task, _ in tasks:  # one task's events never overtake each other
        assert [e.seq for e in claimed if e.task_id == task.task_id] == [1, 2]
    assert claim_unpublished_events(engine, NOW + timedelta(seconds=1)) == []  # leased
    # The relay died: after the lease someone else publishes them again.
    again = claim_unpublished_events(engine, NOW + timedelta(minutes=2))
    assert sorted(e.event_id for e in again) == sorted(ids)
    mark_events_published(engine, ids[:3], NOW + timedelta(minutes=2))
    left = claim_unpublished_events(engine, NOW + timedelta(minutes=4))
    assert [e.event_id for e in left] == ids[3:]
    mark_events_published(engine, ids[3:], NOW + timedelta(minutes=4))
    assert claim_unpublished_events(engine, NOW + timedelta(hours=1)) == []
    act(engine, tasks[0][0].task_id, ActionType.NOTE, "hi", NOW + timedelta(hours=1))
    [fresh] = claim_unpublished_events(engine, NOW + timedelta(hours=1))
    assert (fresh.task_id, fresh.seq, fresh.event_type) == (
        tasks[0][0].task_id,
        3,
        "task_action_recorded",
    )
    assert rows(engine, "SELECT count(*) FROM followup_task_events WHERE published_at IS NULL") == [
        (1,)
    ]


# ----------------------------------------------------------------------------------- answers


def invite(
    engine: Engine,
    n: int | str,
    kind: str = "support_contact",
    event_id: str | None = None,
    **fields: Any,
) -> str:
    invitation_id = f"inv-{n}"
    with Session(engine) as session:
        session.add(
            SurveyInvitation(
                invitation_id=invitation_id,
                event_id=event_id or f"evt-{n}",
                customer_id=f"C-{n}",
                email=f"c-{n}@example.nl",
                phone="+31 6 1234 5678",
                name="Anna de Vries",
                locale=fields.pop("locale", "nl"),
                kind=kind,
                channel="phone",
                partner=fields.pop("partner", "CBG Connect"),
                product="KPN EEN",
                created_at=NOW - timedelta(days=1),
                **fields,
            )
        )
        session.commit()
    return invitation_id


def answer(
    engine: Engine,
    n: int | str,
    nps: int | None = None,
    csat: int | None = None,
    comment: str | None = None,
    **invitation: Any,
) -> ScoredAnswer:
    invitation_id = invite(engine, n, **invitation)
    with Session(engine) as session:
        session.add(
            SurveyResponse(
                response_id=f"r-{n}",
                invitation_id=invitation_id,
                customer_id=f"C-{n}",
                nps=nps,
                csat=csat,
                comment=comment,
                submitted_at=NOW,
            )
        )
        session.commit()
    return ScoredAnswer(f"r-{n}", invitation_id, f"C-{n}", NOW, nps, csat, None)


def test_unhappy_answers_open_tasks_with_priority_and_happy_ones_do_not(engine: Engine) -> None:
    answers = [answer(engine, f"n{score}", nps=score) for score in range(11)]
    answers += [answer(engine, f"c{score}", csat=score) for score in range(1, 6)]
    stored, recovered = open_tasks_for_answers(engine, RULES, answers, NOW)
    assert recovered == 0
    assert all(new for _, new in stored)
    found = rows(
        engine, "SELECT source_id, origin, priority, status FROM followup_tasks ORDER BY source_id"
    )
    assert found == sorted(
        [(f"r-n{s}", "detractor", 0 if s <= 3 else 1, "open") for s in range(7)]
        + [("r-c1", "unhappy", 0, "open"), ("r-c2", "unhappy", 1, "open")]
    )
    # Replayed answers open nothing new.
    again, _ = open_tasks_for_answers(engine, RULES, answers, NOW + timedelta(hours=1))
    assert not any(new for _, new in again)
    assert rows(engine, "SELECT count(*) FROM followup_tasks") == [(9,)]
    assert rows(
        engine, "SELECT count(*) FROM followup_task_events WHERE event_type = 'task_opened'"
    ) == [(9,)]


def test_a_task_from_an_answer_carries_the_survey_and_contact_details(engine: Engine) -> None:
    add_staff(engine, "emma", "english")
    scored = answer(engine, 1, nps=2, comment="Nobody called back", locale="en")
    [(task, new)] = open_tasks_for_answers(engine, RULES, [scored], NOW)[0]
    assert new
    assert (task.team, task.assignee, task.customer_id) == ("english", "emma", "C-1")
    assert (task.partner, task.product, task.channel, task.language) == (
        "CBG Connect",
        "KPN EEN",
        "phone",
        "en",
    )
    assert (task.email, task.phone, task.name) == (
        "c-1@example.nl",
        "+31 6 1234 5678",
        "Anna de Vries",
    )
    assert (task.nps, task.comment, task.opened_at) == (2, "Nobody called back", NOW)


def test_a_recovery_answer_is_recorded_on_the_task_it_follows(engine: Engine) -> None:
    add_staff(engine, "alice", "service")
    [(task, _)] = open_tasks_for_answers(engine, RULES, [answer(engine, 1, nps=2)], NOW)[0]
    act(engine, task.task_id, ActionType.CALL_ATTEMPT)
    act(engine, task.task_id, ActionType.CUSTOMER_INFORMED, "Told")
    act(engine, task.task_id, ActionType.CLOSE, root_cause="billing")

    recovery = "recovery:" + task.task_id
    happy = answer(engine, 2, nps=9, kind="followup_closed", event_id=recovery)
    stored, recovered = open_tasks_for_answers(engine, RULES, [happy], NOW + timedelta(days=2))
    assert (stored, recovered) == ([], 1)
    after = get_task(engine, task.task_id)
    assert (after.recovery_response_id, after.recovery_nps, after.recovered) == ("r-2", 9, True)
    # A second recovery answer, even an unhappy one, neither overwrites it nor opens a task.
    unhappy = answer(engine, 3, nps=1, kind="followup_closed", event_id=recovery)
    stored, recovered = open_tasks_for_answers(engine, RULES, [unhappy], NOW + timedelta(days=3))
    assert (stored, recovered) == ([], 0)
    after = get_task(engine, task.task_id)
    assert (after.recovery_response_id, after.recovery_nps, after.recovered) == ("r-2", 9, True)
    assert rows(engine, "SELECT count(*) FROM followup_tasks") == [(1,)]


@pytest.mark.parametrize(
    ("nps", "csat", "recovered"), [(6, None, False), (None, 2, False), (None, 3, True)]
)
def test_recovered_means_no_longer_unhappy(
    engine: Engine, nps: int | None, csat: int | None, recovered: bool
) -> None:
    [(task, _)] = open_tasks_for_answers(engine, RULES, [answer(engine, 1, nps=0)], NOW)[0]
    again = answer(
        engine, 2, nps=nps, csat=csat, kind="followup_closed", event_id="recovery:" + task.task_id
    )
    assert open_tasks_for_answers(engine, RULES, [again], NOW) == ([], 1)
    after = get_task(engine, task.task_id)
    assert (after.recovery_nps, after.recovered) == (nps, recovered)


def test_a_task_reassigned_to_another_team_runs_on_that_teams_calendar(engine: Engine) -> None:
    rules = parse_followup_rules(
        'version = "t"\n[sla]\nfirst_contact = "4 business hours"\n'
        '[[team]]\nname = "service"\ndays = "daily"\nfrom = "00:00"\nto = "24:00"\n'
        '[[team]]\nname = "tokyo"\ntimezone = "Asia/Tokyo"\ndays = "mon-fri"\n'
        'from = "09:00"\nto = "17:00"\nassignment = "none"\n'
    )
    add_staff(engine, "kenji", "tokyo")
    [(task, _)] = open_tasks(engine, rules, [detractor(1)], NOW)
    assert task.first_contact_due_at == NOW + timedelta(hours=4)
    moved = apply_action(
        engine,
        rules,
        ActionCommand(
            "a-move", task.task_id, ActionType.ASSIGN, "", "lead", NOW, {"assignee": "kenji"}
        ),
    ).task
    # Monday 09:00 UTC is 18:00 in Tokyo, after hours: four hours from Tuesday 09:00 JST.
    assert (moved.team, moved.assignee) == ("tokyo", "kenji")
    assert moved.first_contact_due_at == datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
    assert moved.sla_due_at == moved.first_contact_due_at
    # The next ladder step (reminder at 75 %) is on Tokyo's calendar too: 3 h in.
    assert moved.next_escalation_at == datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
