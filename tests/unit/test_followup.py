"""Follow-up tasks: which answers open one, priority, ids and the lifecycle's transitions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from models.followup_rules import load_followup_rules, parse_followup_rules
from models.task_lifecycle import (
    FINAL_STATUSES,
    ActionType,
    TaskClosedError,
    TaskOrigin,
    TaskStatus,
    TaskSubject,
    TransitionInvalidError,
    allowed_actions,
    status_after,
    task_for_answer,
    task_for_complaint,
    task_id_for,
)

ANSWERED = datetime(2026, 11, 20, 10, 15, tzinfo=timezone(timedelta(hours=1)))
RULES = load_followup_rules()
WHO = TaskSubject(customer_id="C-1", partner="CBG Connect", language="nl")

aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-7))]),
)
source_ids = st.text(min_size=1, max_size=80)


# ---------------------------------------------------------------------------- which answers


@pytest.mark.parametrize("score", range(11))
def test_every_nps_detractor_gets_a_task_and_nobody_else(score: int) -> None:
    task = task_for_answer(RULES, "r-1", ANSWERED, WHO, score, None, None)
    if score <= 6:
        assert task is not None
        assert task.origin is TaskOrigin.DETRACTOR
        assert task.source_id == "r-1"
        assert task.nps == score
    else:
        assert task is None


@pytest.mark.parametrize(
    ("score", "priority"), [(s, 0) for s in range(4)] + [(s, 1) for s in range(4, 7)]
)
def test_detractor_priority_0_to_3_high_4_to_6_normal(score: int, priority: int) -> None:
    task = task_for_answer(RULES, "r-1", ANSWERED, WHO, score, None, None)
    assert task is not None
    assert task.priority == priority


@pytest.mark.parametrize(("csat", "opens", "priority"), [(1, True, 0), (2, True, 1), (3, False, 0)])
def test_csat_1_and_2_open_a_task(csat: int, opens: bool, priority: int) -> None:
    task = task_for_answer(RULES, "r-1", ANSWERED, WHO, None, csat, None)
    assert (task is not None) is opens
    if task is not None:
        assert task.origin is TaskOrigin.UNHAPPY
        assert task.priority == priority


def test_ces_opens_a_task_only_when_the_rules_say_so() -> None:
    assert task_for_answer(RULES, "r-1", ANSWERED, WHO, None, None, 1) is None
    strict = parse_followup_rules(
        'version = "t"\n[tasks]\nces_max = 2\n[[team]]\nname = "service"\n'
    )
    task = task_for_answer(strict, "r-1", ANSWERED, WHO, None, None, 2)
    assert task is not None and task.origin is TaskOrigin.UNHAPPY


def test_thresholds_are_configurable() -> None:
    lenient = parse_followup_rules(
        'version = "t"\n[tasks]\nnps_detractor_max = 4\ncsat_max = 1\n[[team]]\nname = "service"\n'
    )
    assert task_for_answer(lenient, "r", ANSWERED, WHO, 5, None, None) is None
    assert task_for_answer(lenient, "r", ANSWERED, WHO, 4, None, None) is not None
    assert task_for_answer(lenient, "r", ANSWERED, WHO, None, 2, None) is None


def test_a_key_account_boost_makes_a_normal_detractor_high_priority() -> None:
    boosted = parse_followup_rules(
        'version = "t"\n[[team]]\nname = "service"\n'
        '[[priority_boost]]\nwhen = { partner = ["CBG Connect"] }\npriority = "high"\n'
    )
    task = task_for_answer(boosted, "r-1", ANSWERED, WHO, 5, None, None)
    assert task is not None and task.priority == 0
    other = TaskSubject(customer_id="C-2", partner="Other")
    plain = task_for_answer(boosted, "r-2", ANSWERED, other, 5, None, None)
    assert plain is not None and plain.priority == 1


def test_answer_without_scores_gets_no_task() -> None:
    assert task_for_answer(RULES, "r-1", ANSWERED, WHO, None, None, None) is None


# ---------------------------------------------------------------------------- complaints


@given(occurred_at=aware_datetimes, event_id=source_ids)
def test_complaint_task_is_urgent_and_opened_when_the_complaint_came(
    occurred_at: datetime, event_id: str
) -> None:
    task = task_for_complaint(RULES, event_id, occurred_at, WHO, "It broke again")
    assert task is not None
    assert task.priority == 0
    assert task.origin is TaskOrigin.COMPLAINT
    assert task.source_id == event_id
    assert task.opened_at == occurred_at
    assert task.comment == "It broke again"


def test_complaint_tasks_can_be_turned_off() -> None:
    off = parse_followup_rules(
        'version = "t"\n[tasks]\ncomplaints = false\n[[team]]\nname = "service"\n'
    )
    assert task_for_complaint(off, "e-1", ANSWERED, WHO) is None


# ---------------------------------------------------------------------------- task ids


@given(source_id=source_ids, score=st.integers(min_value=0, max_value=6))
def test_task_id_is_stable_for_the_same_source(source_id: str, score: int) -> None:
    first = task_for_answer(RULES, source_id, ANSWERED, WHO, score, None, None)
    # A replay, later, must land on the same task.
    again = task_for_answer(RULES, source_id, ANSWERED + timedelta(days=1), WHO, score, None, None)
    assert first is not None and again is not None
    assert first.task_id == again.task_id
    assert uuid.UUID(first.task_id).version == 5


@given(a=source_ids, b=source_ids)
def test_task_ids_differ_for_different_sources(a: str, b: str) -> None:
    assume(a != b)
    assert task_id_for(TaskOrigin.DETRACTOR, a) != task_id_for(TaskOrigin.DETRACTOR, b)
    assert task_id_for(TaskOrigin.COMPLAINT, a) != task_id_for(TaskOrigin.COMPLAINT, b)


@given(source_id=source_ids)
def test_task_ids_differ_for_different_origins(source_id: str) -> None:
    # A response id and a complaint event id that happen to be equal are different tasks.
    assert task_id_for(TaskOrigin.DETRACTOR, source_id) != task_id_for(
        TaskOrigin.COMPLAINT, source_id
    )


def test_one_answer_opens_one_task_whether_nps_or_csat_made_it_unhappy() -> None:
    assert task_id_for(TaskOrigin.UNHAPPY, "r-1") == task_id_for(TaskOrigin.DETRACTOR, "r-1")


# ---------------------------------------------------------------------------- transitions


def run(*actions: ActionType, unreachable_after: int = 3) -> TaskStatus:
    status, failed = TaskStatus.OPEN, 0
    for action in actions:
        failed += action is ActionType.NO_ANSWER
        status = status_after(status, action, failed, unreachable_after)
    return status


def test_the_whole_loop_ends_closed_and_then_refuses_actions() -> None:
    status = run(
        ActionType.ASSIGN,
        ActionType.CALL_ATTEMPT,
        ActionType.RESOLVED,
        ActionType.CUSTOMER_INFORMED,
        ActionType.CLOSE,
    )
    assert status is TaskStatus.CLOSED
    for action in ActionType:
        with pytest.raises(TaskClosedError):
            status_after(status, action, 0, 3)


def test_each_step_of_the_loop_has_its_own_status() -> None:
    assert run(ActionType.ASSIGN) is TaskStatus.ASSIGNED
    assert run(ActionType.ASSIGN, ActionType.CALL_ATTEMPT) is TaskStatus.CONTACTED
    informed = run(ActionType.CALL_ATTEMPT, ActionType.CUSTOMER_INFORMED)
    assert informed is TaskStatus.CUSTOMER_INFORMED


def test_closing_needs_the_customer_informed_first() -> None:
    with pytest.raises(TransitionInvalidError):
        run(ActionType.CALL_ATTEMPT, ActionType.CLOSE)
    with pytest.raises(TransitionInvalidError):
        run(ActionType.CLOSE)


@pytest.mark.parametrize("limit", [1, 3, 5])
def test_unreachable_after_the_configured_failed_attempts(limit: int) -> None:
    almost = [ActionType.NO_ANSWER] * (limit - 1)
    assert run(*almost, unreachable_after=limit) is TaskStatus.OPEN
    assert run(*almost, ActionType.NO_ANSWER, unreachable_after=limit) is TaskStatus.UNREACHABLE


def test_a_customer_who_calls_back_makes_an_unreachable_task_contacted() -> None:
    status = run(*[ActionType.NO_ANSWER] * 3, ActionType.CALL_ATTEMPT)
    assert status is TaskStatus.CONTACTED


def test_no_answer_after_contact_does_not_make_it_unreachable() -> None:
    actions = [ActionType.CALL_ATTEMPT] + [ActionType.NO_ANSWER] * 5
    assert run(*actions) is TaskStatus.CONTACTED


@pytest.mark.parametrize("status", list(TaskStatus))
@pytest.mark.parametrize("action", list(ActionType))
def test_allowed_actions_agree_with_status_after(status: TaskStatus, action: ActionType) -> None:
    allowed = action in allowed_actions(status)
    try:
        status_after(status, action, 0, 3)
        took = True
    except (TaskClosedError, TransitionInvalidError):
        took = False
    assert took is allowed
    if status in FINAL_STATUSES:
        assert allowed_actions(status) == []


def test_refusals_are_value_errors() -> None:
    # Agents dead-letter ValueErrors as bad input rather than retrying them.
    assert issubclass(TaskClosedError, ValueError)
    assert issubclass(TransitionInvalidError, ValueError)


def test_action_types_are_the_wire_strings() -> None:
    # FollowupAction.type carries these; the staff API and the inbox accept exactly them.
    assert {a.value for a in ActionType} == {
        "assign",
        "call_attempt",
        "no_answer",
        "resolved",
        "customer_informed",
        "close",
        "cancel",
        "note",
    }
