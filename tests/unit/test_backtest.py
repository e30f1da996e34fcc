"""The backtest: hand-made contact streams replayed through the shipped rules, with exact
forecasts, and a property over any interleaving of contacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.backtest import Forecast, backtest, read_input
from models.eligibility import Reason
from models.rules import Rules, approx_timedelta, load_rules, parse_rules
from tests.factories import file_contact_event as contact
from tests.factories import file_contact_event_data as event_data

AMS = ZoneInfo("Europe/Amsterdam")
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=AMS)  # before the spring DST change: UTC+1
DEMO = load_rules()
EXAMPLE = load_rules(Path(str(files("models").joinpath("rule_sets", "example.toml"))))


# The "customers" part of a forecast over one customer's contacts.
ONE_CUSTOMER_SURVEYED_ONCE = {
    "seen": 1,
    "surveyed": 1,
    "reach": 1.0,
    "surveys_per_customer": {"0": 0, "1": 1, "2": 0, "3+": 0},
}
ONE_CUSTOMER_NOT_SURVEYED = {
    "seen": 1,
    "surveyed": 0,
    "reach": 0.0,
    "surveys_per_customer": {"0": 1, "1": 0, "2": 0, "3+": 0},
}


def summary(f: Forecast) -> dict[str, Any]:
    """The parts of a forecast the tests pin down exactly."""
    data = f.to_json()
    return {
        "surveys_per_week": data["surveys_per_week"],
        "reasons": data["reasons"],
        "customers": data["customers"],
    }


def test_three_purchases_in_a_week_survey_once() -> None:
    events = [contact(f"e{i}", "purchase", MONDAY + timedelta(days=2 * i)) for i in range(3)]
    forecast = backtest(DEMO, events)
    assert summary(forecast) == {
        "surveys_per_week": {"transactional": {"2026-W10": 1}},
        "reasons": {"transactional": {"recently_surveyed": 2, "surveyed": 1}},
        "customers": ONE_CUSTOMER_SURVEYED_ONCE,
    }
    assert forecast.rules_version == DEMO.label
    assert forecast.until == events[-1].occurred_at + timedelta(days=60)
    surveyed = [r for r in forecast.resolutions if r.reason is Reason.SURVEYED]
    assert [(r.programme, r.at) for r in surveyed] == [("transactional", MONDAY)]


def test_a_support_episode_is_surveyed_once_after_its_last_contact() -> None:
    times = [MONDAY, MONDAY.replace(hour=15), MONDAY.replace(day=3, hour=8)]
    events = [contact(f"s{i}", "support_contact", at, case_id="K-77") for i, at in enumerate(times)]
    forecast = backtest(EXAMPLE, events)
    assert summary(forecast) == {
        "surveys_per_week": {"support": {"2026-W10": 1}},
        "reasons": {"support": {"superseded": 2, "surveyed": 1}},
        "customers": ONE_CUSTOMER_SURVEYED_ONCE,
    }
    # Due Wednesday 08:00, before the 09:00 send window opens: deferred, then sent at 09:00.
    (survey,) = [r for r in forecast.resolutions if r.reason is Reason.SURVEYED]
    assert survey.at == datetime(2026, 3, 4, 9, 0, tzinfo=AMS)
    assert forecast.deferred == 1
    superseded = {r.decision_id for r in forecast.resolutions if r.reason is Reason.SUPERSEDED}
    assert survey.decision_id not in superseded


def test_a_cancellation_within_the_month_cancels_the_relationship_survey() -> None:
    events = [
        contact("i1", "first_invoice", MONDAY),
        contact("x1", "cancellation", MONDAY + timedelta(days=20)),
    ]
    forecast = backtest(EXAMPLE, events)
    assert summary(forecast) == {
        "surveys_per_week": {},
        "reasons": {"relationship": {"cancelled": 1}, "-": {"no_programme": 1}},
        "customers": ONE_CUSTOMER_NOT_SURVEYED,
    }


def test_sampling_half_is_deterministic_and_about_half() -> None:
    events = [
        contact(f"p{n}", "purchase", MONDAY + timedelta(minutes=n), customer=f"C-{n}")
        for n in range(2000)
    ]
    first = backtest(EXAMPLE, events)
    second = backtest(EXAMPLE, list(reversed(events)))
    sampled_out = first.reasons["transactional"]["sampled_out"]
    assert first.reasons == second.reasons
    assert 800 <= sampled_out <= 1200
    assert first.reasons == {
        "transactional": {"sampled_out": sampled_out, "surveyed": 2000 - sampled_out}
    }
    assert first.customers_surveyed == 2000 - sampled_out


def test_a_complaint_stays_open_for_the_complaint_days() -> None:
    events = [
        contact("c1", "complaint", MONDAY),
        contact("p1", "purchase", MONDAY + timedelta(days=2)),
        contact("p2", "purchase", MONDAY + timedelta(days=20)),
    ]
    forecast = backtest(DEMO, events)
    assert forecast.reasons == {
        "transactional": {"open_complaint": 1, "surveyed": 1},
        "-": {"open_complaint": 1},
    }
    longer = backtest(DEMO, events, complaint_days=30)
    assert longer.reasons["transactional"] == {"open_complaint": 2}


def test_a_closed_complaint_is_surveyed_and_counts_against_the_cap() -> None:
    events = [
        contact("c1", "complaint", MONDAY),
        contact("cc1", "complaint_closed", MONDAY + timedelta(days=1)),
        contact("p1", "purchase", MONDAY + timedelta(days=2)),
    ]
    forecast = backtest(DEMO, events)
    assert forecast.reasons == {
        "transactional": {"recently_surveyed": 1},
        "complaint-handling": {"surveyed": 1},
        "-": {"open_complaint": 1},
    }
    assert forecast.surveys == {"complaint-handling": 1}


def test_a_yearly_rule_repeats_until_the_end_of_the_replay() -> None:
    events = [contact("i1", "first_invoice", datetime(2026, 1, 15, 10, tzinfo=UTC))]
    short = backtest(DEMO, events)
    assert short.reasons == {"relationship": {"surveyed": 1, "scheduled": 1}}
    assert short.surveys_per_week == {"relationship": {"2026-W07": 1}}
    long = backtest(DEMO, events, until=datetime(2027, 3, 1, tzinfo=UTC))
    assert long.reasons == {"relationship": {"surveyed": 2, "scheduled": 1}}
    assert long.surveys_per_week == {"relationship": {"2026-W07": 1, "2027-W07": 1}}
    assert long.surveys_per_customer == {"0": 0, "1": 0, "2": 1, "3+": 0}


def test_events_after_until_are_not_replayed() -> None:
    events = [
        contact("p1", "purchase", MONDAY),
        contact("p2", "purchase", MONDAY + timedelta(days=400), customer="C-2"),
    ]
    forecast = backtest(DEMO, events, until=MONDAY + timedelta(days=30))
    assert forecast.after_until == 1
    assert forecast.customers_seen == 1
    assert forecast.reasons == {"transactional": {"surveyed": 1}}


def test_no_address_and_no_programme_are_counted() -> None:
    events = [
        contact("p1", "purchase", MONDAY, with_email=False),
        contact("x1", "cancellation", MONDAY + timedelta(hours=1)),
    ]
    assert backtest(DEMO, events).reasons == {
        "transactional": {"no_contact_address": 1},
        "-": {"no_programme": 1},
    }


def test_input_lines_duplicates_invalid_lines_and_consent() -> None:
    lines = [
        orjson.dumps(event_data("p1", "purchase", MONDAY)),
        b"",
        b'{"event_id": "broken", "kind": ',
        orjson.dumps(event_data("p1", "purchase", MONDAY)),  # a replay of line 1
        orjson.dumps({**event_data("p2", "purchase", MONDAY), "kind": "telepathy"}),
        orjson.dumps(
            {
                "consent_id": "k1",
                "customer_id": "C-2",
                "channel": "all",
                "status": "opted_out",
                "changed_at": MONDAY.isoformat(),
            }
        ),
        orjson.dumps(event_data("p3", "purchase", MONDAY + timedelta(hours=1), customer="C-2")),
        orjson.dumps({"consent_id": "k2", "customer_id": "C-2", "channel": "fax"}),
        b"[1, 2]",
    ]
    forecast = backtest(DEMO, read_input(lines))
    assert [(i.line, i.reason) for i in forecast.invalid] == [
        (3, "not_json: unexpected end of data at position 30"),
        (
            5,
            "invalid_field: kind: Input should be 'purchase', 'after_sales', 'contract_change', "
            "'inquiry', 'support_contact', 'complaint', 'first_invoice', 'cancellation', "
            "'complaint_closed' or 'followup_closed'",
        ),
        (
            8,
            "invalid_field: consent change: channel: Input should be 'email', 'phone' or 'all'; "
            "status: Field required; changed_at: Field required",
        ),
        (9, "not_json: not a JSON object but list"),
    ]
    assert forecast.lines == 9
    assert forecast.contacts == 2
    assert forecast.duplicate_events == 1
    assert forecast.consent_changes == 1
    assert forecast.reasons == {
        "transactional": {"opted_out": 1, "surveyed": 1},
        "-": {"duplicate_event": 1},
    }
    assert "telepathy" not in str(forecast.to_json())


def test_an_opt_in_after_an_opt_out_allows_the_survey_again() -> None:
    def consent(n: int, status: str, at: datetime) -> bytes:
        change = {"customer_id": "C-1", "channel": "email", "status": status}
        return orjson.dumps({"consent_id": f"k{n}", **change, "changed_at": at.isoformat()})

    lines = [
        consent(1, "opted_out", MONDAY),
        consent(2, "opted_in", MONDAY + timedelta(days=1)),
        orjson.dumps(event_data("p1", "purchase", MONDAY + timedelta(hours=1))),
        orjson.dumps(event_data("p2", "purchase", MONDAY + timedelta(days=2))),
    ]
    forecast = backtest(DEMO, read_input(lines))
    assert forecast.reasons == {"transactional": {"opted_out": 1, "surveyed": 1}}


COOLDOWN_RULES = b"""
version = "cooldown-1"
[defaults]
cap = "1d"
window = "always"
[[programme]]
name = "transactional"
template = "transactional"
cooldown = "30d"
  [[programme.rule]]
  name = "after-purchase"
  on = ["purchase"]
[[programme]]
name = "support"
template = "support"
  [[programme.rule]]
  name = "after-support"
  on = ["support_contact"]
"""


def test_a_programme_cooldown_outlasts_the_global_cap() -> None:
    rules = parse_rules(COOLDOWN_RULES)
    events = [
        contact("p1", "purchase", MONDAY),
        contact("p2", "purchase", MONDAY + timedelta(days=5)),
        contact("s1", "support_contact", MONDAY + timedelta(days=6)),
        contact("p3", "purchase", MONDAY + timedelta(days=31)),
    ]
    forecast = backtest(rules, events)
    assert forecast.reasons == {
        "transactional": {"surveyed": 2, "recently_surveyed": 1},
        "support": {"surveyed": 1},
    }
    assert forecast.surveys_per_customer == {"0": 0, "1": 0, "2": 0, "3+": 1}


KINDS = ("purchase", "support_contact", "complaint", "first_invoice", "cancellation")
contacts = st.lists(
    st.tuples(
        st.integers(0, 2),  # customer
        st.sampled_from(KINDS),
        st.integers(0, 400 * 24 * 60),  # minute of the ~400 days
        st.integers(0, 2),  # case id
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(rules=st.sampled_from([DEMO, EXAMPLE]), drawn=contacts)
def test_no_survey_within_the_cap_and_no_cancelled_survey(
    rules: Rules, drawn: list[tuple[int, str, int, int]]
) -> None:
    events = [
        contact(
            f"e{n}",
            kind,
            MONDAY + timedelta(minutes=minute),
            customer=f"C-{customer}",
            case_id=f"K-{case}",
        )
        for n, (customer, kind, minute, case) in enumerate(drawn)
    ]
    forecast = backtest(rules, events)
    cap = approx_timedelta(rules.cap)
    overrides = {p.name for p in rules.programmes if p.override_global_cap}
    surveys = sorted(
        (r for r in forecast.resolutions if r.reason is Reason.SURVEYED), key=lambda r: r.at
    )
    for i, later in enumerate(surveys):
        if later.programme in overrides:
            continue
        for earlier in surveys[:i]:
            if earlier.customer_id == later.customer_id:
                assert later.at - earlier.at >= cap, (earlier, later)
    resolved = [r.decision_id for r in forecast.resolutions if r.programme is not None]
    assert len(resolved) == len(set(resolved)), "a decision ended twice"
    cancelled = {r.decision_id for r in forecast.resolutions if r.reason is Reason.CANCELLED}
    assert not cancelled & {r.decision_id for r in surveys}
    assert sum(forecast.surveys_per_customer.values()) == forecast.customers_seen


@pytest.mark.parametrize("rules", [DEMO, EXAMPLE], ids=["demo", "example"])
def test_an_empty_stream_forecasts_nothing(rules: Rules) -> None:
    forecast = backtest(rules, [])
    assert forecast.reasons == {}
    assert forecast.customers_seen == 0
    assert forecast.reach == 0.0
