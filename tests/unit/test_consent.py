"""Consent rules: the latest change covering a channel wins, whatever the arrival order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from functools import partial

import pytest

from models.consent import Consent, is_opted_out, latest_per_key
from tests.factories import consent_change

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


change = partial(consent_change, since=T0, source="api")


def test_no_changes_means_not_opted_out() -> None:
    assert not is_opted_out([], "email")


@pytest.mark.parametrize(
    ("changes", "email", "phone"),
    [
        ([change(1, "email", "opted_out")], True, False),
        ([change(1, "all", "opted_out")], True, True),
        # An e-mail opt-in after an 'all' opt-out allows e-mail, and only e-mail.
        ([change(1, "all", "opted_out", 0), change(2, "email", "opted_in", 1)], False, True),
        # An 'all' opt-out after an e-mail opt-in stops e-mail again.
        ([change(1, "email", "opted_in", 1), change(2, "all", "opted_out", 2)], True, True),
        # An 'all' opt-in after a phone opt-out allows the phone again.
        ([change(1, "phone", "opted_out", 0), change(2, "all", "opted_in", 1)], False, False),
        # An older 'all' opt-in does not undo a newer e-mail opt-out.
        ([change(1, "all", "opted_in", 0), change(2, "email", "opted_out", 1)], True, False),
    ],
)
def test_the_latest_change_covering_the_channel_wins(
    changes: list[Consent], email: bool, phone: bool
) -> None:
    for order in itertools.permutations(changes):
        assert is_opted_out(order, "email") is email
        assert is_opted_out(order, "phone") is phone


def test_on_a_tie_an_opt_out_wins_in_any_order() -> None:
    tie = [change(9, "email", "opted_in", 5), change(1, "all", "opted_out", 5)]
    for order in itertools.permutations(tie):
        assert is_opted_out(order, "email")
        assert latest_per_key(order)[("C-1", "all")].status == "opted_out"


def test_latest_per_key_is_independent_of_order() -> None:
    changes = [
        change(1, "email", "opted_out", 0),
        change(2, "email", "opted_in", 3),
        change(3, "email", "opted_out", 1),
        change(4, "phone", "opted_out", 0, customer="C-2"),
        change(5, "email", "opted_in", 3),  # the same instant and status: larger id wins
    ]
    expected = {("C-1", "email"): "c-5", ("C-2", "phone"): "c-4"}
    for order in itertools.permutations(changes):
        assert {k: v.consent_id for k, v in latest_per_key(order).items()} == expected


def test_consent_is_checked_per_survey_channel() -> None:
    with pytest.raises(ValueError, match="per survey channel"):
        is_opted_out([], "all")
