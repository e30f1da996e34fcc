"""Rules files: the shipped sets load, and every kind of mistake names its file and line."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest

from models.rules import RulesError, load_rules

RULE_SETS = Path(str(files("models").joinpath("rule_sets")))

# Line numbers below are counted in this text (line 1 is `version = ...`).
BASE = """\
version = "t-1"

[defaults]
timezone = "Europe/Amsterdam"
cap = "180d"

[[programme]]
name = "transactional"
template = "transactional"
cancel_on = ["complaint"]

  [[programme.rule]]
  name = "after-purchase"
  on = ["purchase"]
  delay = "2h"

[[programme]]
name = "support"
template = "support"
window = { days = "mon-fri", from = "09:00", to = "18:00" }

  [[programme.rule]]
  name = "after-support"
  on = ["support_contact"]
  per = "case"
  delay = "24h"
"""


def _edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def _load(tmp_path: Path, text: str) -> RulesError:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    return caught.value


def _line(message: str, path: Path) -> int:
    """The line an error names: `file:LINE:` for validation, `(at line LINE` for syntax."""
    located = re.match(rf"{re.escape(str(path))}:(\d+): ", message)
    if located:
        return int(located.group(1))
    syntax = re.search(r"\(at line (\d+), column \d+\)", message)
    assert syntax, message
    assert message.startswith(f"{path}: "), message
    return int(syntax.group(1))


def test_the_shipped_rule_sets_load() -> None:
    demo = load_rules()
    example = load_rules(RULE_SETS / "example.toml")
    assert demo.version == "demo-1"
    assert [p.name for p in demo.programmes] == [
        "transactional",
        "relationship",
        "complaint-handling",
        "recovery",
    ]
    assert example.version == "example-2026.11"
    assert [p.name for p in example.programmes] == [
        "transactional",
        "support",
        "relationship",
        "complaint-handling",
        "recovery",
    ]
    assert load_rules(RULE_SETS / "demo.toml").digest == demo.digest


def test_the_base_file_of_these_tests_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(BASE)
    assert [p.name for p in load_rules(path).programmes] == ["transactional", "support"]


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        pytest.param(
            _edit('template = "support"', 'template = "support'), 19, "Illegal character", id="toml"
        ),
        pytest.param(
            _edit('cancel_on = ["complaint"]', 'cancel_on = ["complaint"]\ncolour = "blue"'),
            11,
            "programme.0.colour: Extra inputs are not permitted",
            id="unknown-key",
        ),
        pytest.param(
            _edit('  per = "case"', '  per = "case"\n  when = "now"'),
            26,
            "programme.1.rule.0.when: Extra inputs are not permitted",
            id="unknown-key-in-second-programme-rule",
        ),
        pytest.param(
            _edit('delay = "24h"', 'delay = "3x"'),
            26,
            "programme.1.rule.0.delay: Value error, invalid duration '3x'",
            id="bad-duration",
        ),
        pytest.param(
            _edit('cap = "180d"', 'cap = "3x"'),
            5,
            "defaults.cap: Value error, invalid duration '3x'",
            id="bad-global-cap",
        ),
        pytest.param(
            _edit('on = ["support_contact"]', 'on = ["support_contact", "smoke_signal"]'),
            24,
            "programme.1.rule.0.on.1: Input should be 'purchase'",
            id="unknown-contact-kind",
        ),
        pytest.param(
            _edit('cancel_on = ["complaint"]', 'cancel_on = ["complain"]'),
            10,
            "programme.0.cancel_on.0: Input should be",
            id="unknown-cancel-kind",
        ),
        pytest.param(
            _edit('timezone = "Europe/Amsterdam"', 'timezone = "Europe/Atlantis"'),
            4,
            "unknown time zone 'Europe/Atlantis'",
            id="bad-time-zone",
        ),
        pytest.param(
            _edit('template = "support"\n', 'template = "support"\ncap = "30d"\n'),
            20,
            "programme 'support': cap 30d is looser than the global cap 180d; "
            "set override_global_cap = true",
            id="cap-looser-than-global",
        ),
        pytest.param(
            _edit('to = "18:00"', 'to = "25:00"'),
            20,
            "programme.1.window: Value error, send window: invalid time of day '25:00'",
            id="bad-window",
        ),
        pytest.param(
            _edit('template = "support"\n', 'template = "support"\nsampling = 1.5\n'),
            20,
            "programme.1.sampling: Input should be less than or equal to 1",
            id="sampling-above-one",
        ),
        pytest.param(
            _edit('per = "case"', 'per = "ticket"'),
            25,
            "programme.1.rule.0.per: Input should be 'event', 'case' or 'customer'",
            id="bad-episode-scope",
        ),
        pytest.param(
            _edit('name = "support"', 'name = "transactional"'),
            18,
            "programme 'transactional' is defined twice",
            id="duplicate-programme",
        ),
        pytest.param(
            _edit('  delay = "24h"\n', '  delay = "24h"\n\n  [[programme.rule]]\n')
            + '  name = "after-support"\n  on = ["inquiry"]\n',
            29,
            "programme 'support' has two rules named 'after-support'",
            id="duplicate-rule",
        ),
    ],
)
def test_a_broken_file_names_its_line(tmp_path: Path, text: str, line: int, says: str) -> None:
    error = _load(tmp_path, text)
    message = str(error)
    assert says in message
    assert _line(message, tmp_path / "rules.toml") == line


def test_an_unreadable_file_is_a_rules_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"missing\.toml: cannot read"):
        load_rules(tmp_path / "missing.toml")


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(BASE.encode() + b"# \xff\n")
    with pytest.raises(RulesError, match=r"not UTF-8 \(byte \d+\)"):
        load_rules(path)
