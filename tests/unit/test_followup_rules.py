"""Follow-up rules files: the shipped defaults, errors that name file:line, routing, boosts."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from agents.cli.main import cli
from models.calendar import WeeklyWindow
from models.followup_rules import (
    DEFAULT_ROOT_CAUSES,
    PRIORITY_LEVELS,
    FollowupRules,
    FollowupRulesError,
    load_followup_rules,
    parse_followup_rules,
)

SOURCE = "teams.toml"

# Two teams and two routes, so a mistake in the second of anything must name its own line.
BASE = """\
version = "t-1"

[sla]
first_contact = "2 business days"
closure = "5 business days"

[routing]
default_team = "service"

[[team]]
name = "service"
timezone = "Europe/Amsterdam"

[[team]]
name = "complaints"
timezone = "America/New_York"
from = "09:00"
to = "17:00"

[[route]]
team = "complaints"
when = { origin = ["complaint"] }

[[route]]
team = "service"
when = { language = ["en"] }
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the *occurrence*-th line containing *needle*."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return found[occurrence - 1]


def error_of(text: str) -> str:
    with pytest.raises(FollowupRulesError) as caught:
        parse_followup_rules(text, SOURCE)
    return str(caught.value)


def rules(text: str) -> FollowupRules:
    return parse_followup_rules(text, SOURCE)


# ------------------------------------------------------------------------------ the defaults


def test_the_shipped_defaults_load_and_say_what_the_file_documents() -> None:
    shipped = load_followup_rules()
    assert shipped.source == "followup.toml (default)"
    assert re.fullmatch(r"followup-1@[0-9a-f]{12}", shipped.version)
    assert sorted(shipped.teams) == ["complaints", "service"]
    assert (shipped.sla.reminder_at, shipped.sla.lead_at, shipped.sla.manager_at) == (
        0.75,
        1.0,
        2.0,
    )
    assert shipped.tasks.root_causes == list(DEFAULT_ROOT_CAUSES)
    assert shipped.tasks.unreachable_after == 3
    assert shipped.team_for({"origin": "complaint"}) == "complaints"
    assert shipped.team_for({"origin": "detractor"}) == "service"
    # 08:30–17:00 is 8.5 h a day, so two business days are 17 h of working time.
    assert shipped.sla_amount("first_contact", "service") == timedelta(hours=17)
    assert shipped.sla_amount("closure", "service") == timedelta(hours=42.5)
    assert shipped.sla_amount("first_contact", "complaints") == timedelta(hours=16)
    christmas = shipped.calendar("service")
    assert date(2026, 12, 25) in christmas.holidays
    assert christmas.tz == ZoneInfo("Europe/Amsterdam")
    assert list(shipped.webhooks) == []


def test_loading_a_file_reads_it_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "followup.toml"
    path.write_text(BASE)
    loaded = load_followup_rules(path)
    assert loaded.source == str(path)
    assert loaded.team_for({"origin": "complaint"}) == "complaints"


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(FollowupRulesError, match=re.escape(str(path))):
        load_followup_rules(path)


def test_the_version_changes_with_the_text() -> None:
    one, two = rules(BASE), rules(BASE + "\n# a comment\n")
    assert one.version.split("@")[0] == two.version.split("@")[0] == "t-1"
    assert one.version != two.version
    assert rules(BASE).version == one.version


def test_a_minimal_file_gets_every_default() -> None:
    minimal = rules('version = "m"\n[[team]]\nname = "service"\n')
    assert minimal.sla.first_contact == "2 business days"
    assert minimal.team_for({"origin": "complaint"}) == "service"
    calendar = minimal.calendar("service")
    assert calendar.window == WeeklyWindow.parse("mon-fri", "08:30", "17:00")
    assert calendar.tz == ZoneInfo("Europe/Amsterdam")


def test_an_all_day_every_day_team_has_24_hour_business_days() -> None:
    always = rules(
        'version = "a"\n[sla]\nfirst_contact = "1 business days"\n'
        '[[team]]\nname = "service"\ndays = "mon-sun"\nfrom = "00:00"\nto = "24:00"\n'
    )
    assert always.calendar("service").window == WeeklyWindow.always()
    assert always.sla_amount("first_contact", "service") == timedelta(hours=24)


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("16 business hours", 16),
        ("1 business hour", 1),
        ("4 bh", 4),
        ("1.5 business days", 12),
        ("2 bd", 16),
        ("  3 Business Days ", 24),
    ],
)
def test_sla_amounts_in_hours_or_team_days(text: str, hours: float) -> None:
    eight_hour_days = rules(
        f'version = "s"\n[sla]\nclosure = "{text}"\n'
        '[[team]]\nname = "service"\nfrom = "09:00"\nto = "17:00"\n'
    )
    assert eight_hour_days.sla_amount("closure", "service") == timedelta(hours=hours)


def test_an_unknown_team_uses_the_default_teams_calendar() -> None:
    two = rules(BASE)
    assert two.calendar("nobody") is two.calendar("service")
    assert two.calendar("complaints").tz == ZoneInfo("America/New_York")


# ------------------------------------------------------------------------- errors: file:line


def test_bad_toml_names_the_line() -> None:
    text = BASE.replace('timezone = "America/New_York"', "timezone = America/New_York")
    message = error_of(text)
    assert message.startswith(f"{SOURCE}:{line_of(text, 'America/New_York')}: ")


@pytest.mark.parametrize(
    ("change", "needle", "occurrence", "says"),
    [
        # An unknown key in a table, in the second of two teams, inside an inline table.
        (("[sla]", "[sla]\ncolour = 1"), "colour", 1, "sla.colour: Extra inputs"),
        (
            ('to = "17:00"', 'to = "17:00"\nlead_mail = "x@example.com"'),
            "lead_mail",
            1,
            "team.1.lead_mail: Extra inputs",
        ),
        (
            ('{ language = ["en"] }', '{ language = ["en"], colour = ["red"] }'),
            "colour",
            1,
            "route.1.when.colour: Extra inputs",
        ),
        # A route to a team that does not exist: the line of that route's team key.
        (('team = "service"\nwhen', 'team = "sales"\nwhen'), "sales", 1, "unknown team 'sales'"),
        (('default_team = "service"', 'default_team = "sales"'), "default_team", 1, "not a team"),
        # A bad time zone in the second team, not the first team's timezone line.
        (
            ('"America/New_York"', '"America/Springfield"'),
            "timezone",
            2,
            "team.1.timezone: Value error, 'America/Springfield' is not an IANA time zone",
        ),
        (
            ('closure = "5 business days"', 'closure = "5 days"'),
            "closure",
            1,
            "sla.closure: Value error, '5 days': expected e.g. '2 business days'",
        ),
        (
            ('first_contact = "2 business days"', 'first_contact = "0 business hours"'),
            "first_contact",
            1,
            "must be more than zero",
        ),
        (
            ('first_contact = "2 business days"', 'first_contact = "soon"'),
            "first_contact",
            1,
            "sla.first_contact",
        ),
        (('name = "complaints"', 'name = "service"'), "name", 2, "'service' is defined twice"),
        (('name = "complaints"', 'name = "Complaints!"'), "Complaints!", 1, "team.1.name"),
        (('from = "09:00"', 'from = "9 o\'clock"'), "[[team]]", 2, "team.1"),
    ],
)
def test_mistakes_name_the_file_and_line(
    change: tuple[str, str], needle: str, occurrence: int, says: str
) -> None:
    old, new = change
    assert old in BASE
    text = BASE.replace(old, new, 1)
    message = error_of(text)
    assert message.startswith(f"{SOURCE}:{line_of(text, needle, occurrence)}: "), message
    assert says in message


@pytest.mark.parametrize(
    ("ladder", "key", "says"),
    [
        ("reminder_at = 0.75\nlead_at = 1.0\nmanager_at = 1.0", "manager_at", "greater than 1"),
        ("reminder_at = 1.0", "reminder_at", "less than 1"),
        ("reminder_at = 0.5\nlead_at = 0.9", "lead_at", "greater than or equal to 1"),
        ("reminder_at = 0.5\nlead_at = 2.0\nmanager_at = 1.5", "[sla]", "reminder_at < lead_at"),
        ("reminder_at = 0.5\nlead_at = 3.0\nmanager_at = 3.0", "[sla]", "reminder_at < lead_at"),
        ("reminder_at = 0", "reminder_at", "greater than 0"),
    ],
)
def test_the_ladder_must_go_reminder_then_lead_then_manager(
    ladder: str, key: str, says: str
) -> None:
    text = BASE.replace("[sla]\n", f"[sla]\n{ladder}\n", 1)
    message = error_of(text)
    assert message.startswith(f"{SOURCE}:{line_of(text, key)}: "), message
    assert says in message


def test_every_problem_is_reported_with_its_own_line() -> None:
    text = BASE.replace('closure = "5 business days"', 'closure = "a week"').replace(
        '"America/New_York"', '"Nowhere/Atlantis"'
    )
    problems = error_of(text).splitlines()
    assert problems == [
        f"{SOURCE}:{line_of(text, 'a week')}: sla.closure: Value error, 'a week': expected e.g. "
        "'2 business days' or '16 business hours'",
        f"{SOURCE}:{line_of(text, 'Atlantis')}: team.1.timezone: Value error, "
        "'Nowhere/Atlantis' is not an IANA time zone",
    ]


def test_a_file_without_teams_is_refused() -> None:
    assert "team: Field required" in error_of('version = "x"\n')


@pytest.mark.parametrize(
    ("causes", "says"),
    [
        ("[]", "non-empty"),
        ('["billing", "billing"]', "without repeats"),
        ('["Billing"]', "lower-case"),
    ],
)
def test_root_causes_are_checked(causes: str, says: str) -> None:
    text = BASE.replace("[sla]", f"[tasks]\nroot_causes = {causes}\n\n[sla]", 1)
    message = error_of(text)
    assert message.startswith(f"{SOURCE}:{line_of(text, 'root_causes')}: ")
    assert says in message


def test_webhooks_need_an_http_url_and_unique_names() -> None:
    hook = '\n[[webhook]]\nname = "crm"\nurl = "{url}"\nsecret_env = "CXLOOP_WEBHOOK_CRM"\n'
    bad_url = BASE + hook.format(url="ftp://crm.example.com")
    assert error_of(bad_url).startswith(f"{SOURCE}:{line_of(bad_url, 'ftp://')}: webhook.0.url")
    twice = BASE + hook.format(url="https://a.example.com") + hook.format(url="https://b.example")
    message = error_of(twice)
    second = line_of(twice, 'name = "crm"', 2)
    assert message.startswith(f"{SOURCE}:{second}: webhook.1.name")
    assert "'crm' is defined twice" in message


# ---------------------------------------------------------------------------------- routing

ROUTED = """\
version = "r"
[routing]
default_team = "service"
[[team]]
name = "service"
[[team]]
name = "keyaccounts"
[[team]]
name = "english"
[[team]]
name = "complaints"

[[route]]
team = "keyaccounts"
when = { partner = ["KeyAccount BV", "Big Corp"], origin = ["detractor", "complaint"] }
[[route]]
team = "complaints"
when = { origin = ["complaint"] }
[[route]]
team = "english"
when = { language = ["en"] }
"""


@pytest.mark.parametrize(
    ("attributes", "team"),
    [
        # The first matching route wins, even when later ones match too.
        ({"partner": "KeyAccount BV", "origin": "complaint", "language": "en"}, "keyaccounts"),
        ({"partner": "Big Corp", "origin": "detractor"}, "keyaccounts"),
        # Every key of a route must match: a key account's unhappy CSAT is not theirs.
        ({"partner": "KeyAccount BV", "origin": "unhappy", "language": "en"}, "english"),
        ({"partner": "Small BV", "origin": "complaint", "language": "en"}, "complaints"),
        ({"origin": "detractor", "language": "en"}, "english"),
        # A missing attribute never matches a route that asks for it.
        ({"origin": "detractor", "language": None}, "service"),
        ({}, "service"),
    ],
)
def test_the_first_matching_route_wins(attributes: dict[str, str | None], team: str) -> None:
    assert rules(ROUTED).team_for(attributes) == team


attribute_values = st.sampled_from(
    [None, "KeyAccount BV", "Big Corp", "Small", "en", "nl", "complaint", "web", "Fibre"]
)
attribute_sets = st.fixed_dictionaries(
    dict.fromkeys(
        ("partner", "product", "channel", "region", "language", "origin"), attribute_values
    )
)


CATCH_ALL_FIRST = rules(ROUTED.replace("[[route]]", '[[route]]\nteam = "english"\n\n[[route]]', 1))
CATCH_ALL_LAST = rules(ROUTED + '[[route]]\nteam = "keyaccounts"\n')


@given(attribute_sets)
def test_a_catch_all_route_first_takes_everything(attributes: dict[str, str | None]) -> None:
    assert CATCH_ALL_FIRST.team_for(attributes) == "english"


@given(attribute_sets)
def test_a_catch_all_route_last_only_takes_what_went_to_the_default(
    attributes: dict[str, str | None],
) -> None:
    before = rules(ROUTED).team_for(attributes)
    after = CATCH_ALL_LAST.team_for(attributes)
    assert after == ("keyaccounts" if before == "service" else before)


# ------------------------------------------------------------------------------------ boosts

BOOSTED = """\
version = "b"
[[team]]
name = "service"

[[priority_boost]]
when = { partner = ["KeyAccount BV"] }
priority = "high"

[[priority_boost]]
when = { channel = ["web"] }
priority = "low"

[[priority_boost]]
when = { product = ["Fibre"] }
priority = "normal"
"""


@pytest.mark.parametrize(
    ("priority", "attributes", "expected"),
    [
        (1, {"partner": "KeyAccount BV"}, 0),
        (2, {"partner": "KeyAccount BV", "channel": "web"}, 0),  # the highest boost wins
        (2, {"channel": "web"}, 2),  # a "low" boost never lowers
        (0, {"channel": "web", "product": "Fibre"}, 0),
        (2, {"product": "Fibre"}, 1),
        (1, {"partner": "Other"}, 1),
        (1, {}, 1),
    ],
)
def test_boosts_raise_priority_and_never_lower_it(
    priority: int, attributes: dict[str, str | None], expected: int
) -> None:
    assert rules(BOOSTED).boosted(priority, attributes) == expected


BOOSTED_RULES = rules(BOOSTED)


@given(st.integers(0, 2), attribute_sets)
def test_a_boost_gives_the_highest_matching_priority(
    priority: int, attributes: dict[str, str | None]
) -> None:
    boosted = BOOSTED_RULES.boosted(priority, attributes)
    assert boosted <= priority
    matching = [
        PRIORITY_LEVELS[name]
        for key, value, name in [
            ("partner", "KeyAccount BV", "high"),
            ("channel", "web", "low"),
            ("product", "Fibre", "normal"),
        ]
        if attributes.get(key) == value
    ]
    assert boosted == min([priority, *matching])


def test_the_check_command_lists_teams_and_names_the_bad_line(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(cli, ["followup", "check"])
    assert good.exit_code == 0, good.output
    assert "complaints" in good.output and "round_rob" in good.output
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "x"\n[[team]]\nname = "a"\n[[route]]\nteam = "b"\n')
    refused = runner.invoke(cli, ["followup", "check", str(bad)])
    assert refused.exit_code == 2
    assert f"{bad}:5:" in refused.output and "unknown team 'b'" in refused.output
