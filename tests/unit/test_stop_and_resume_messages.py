"""What cxloop says when it stops (left on the topics) and starts (resumed from SQL)."""

from __future__ import annotations

from dataclasses import replace

from agents.cli.drain import left_behind
from agents.cli.main import resuming
from models.store.backlog import Backlog

NOTHING = Backlog(0, 0, 0, 0, 0, 0, 0, 0, 0)


def test_a_drained_stop_says_nothing_is_left_behind() -> None:
    lag = {"contact-events": 0, "survey-invitations": 0}
    assert left_behind(lag, embedded=True, group="cxloop") == (
        "Nothing is left behind: every message on the topics was handled."
    )


def test_the_embedded_broker_loses_what_is_left_and_says_so_per_topic() -> None:
    lag = {"contact-events": 1865, "survey-invitations": 12, "survey-responses": 0}
    assert left_behind(lag, embedded=True, group="cxloop") == (
        "1,865 contact events not yet decided, 12 survey invitations not yet handed to the "
        "mailer will be lost: the embedded broker keeps nothing (everything already in SQL "
        "is kept)."
    )


def test_on_kafka_what_is_left_stays_on_the_broker() -> None:
    said = left_behind({"followup-actions": 3}, embedded=False, group="cxloop")
    assert said == (
        "3 staff actions not yet recorded stay on the broker for the next worker of group cxloop."
    )


def test_an_unknown_lag_is_said_plainly() -> None:
    assert left_behind(None, embedded=True, group="cxloop") == (
        "Could not ask the broker what is left on the topics."
    )


def test_the_resume_line_names_only_what_is_waiting() -> None:
    assert resuming(NOTHING) == "Resuming from SQL: nothing waiting."
    backlog = replace(
        NOTHING, survey_timers=1200, survey_timers_due=3, invitations_to_mail=7, webhooks_pending=2
    )
    assert resuming(backlog) == (
        "Resuming from SQL: 1,200 survey timers pending (3 due now), "
        "7 invitations not yet mailed, 2 webhooks pending."
    )
