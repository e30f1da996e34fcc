"""Delays may be zero; repeats may not (a zero repeat would schedule itself forever)."""

from __future__ import annotations

import pytest

from models.rules import RulesError, parse_rules

RULES = """
version = "durations"

[[programme]]
name = "relationship"
template = "relationship"

  [[programme.rule]]
  name = "after-first-invoice"
  on = ["first_invoice"]
  delay = "{delay}"
  repeat = "{repeat}"
"""


@pytest.mark.parametrize("delay", ["0", "0h", "0d", "90m"])
def test_any_delay_including_zero_is_accepted(delay: str) -> None:
    rules = parse_rules(RULES.format(delay=delay, repeat="1y").encode())
    [programme] = rules.programmes
    assert programme.rules[0].delay == delay


@pytest.mark.parametrize("repeat", ["0", "0s", "0mo"])
def test_a_zero_repeat_is_refused_with_its_line(repeat: str) -> None:
    with pytest.raises(RulesError) as raised:
        parse_rules(RULES.format(delay="1mo", repeat=repeat).encode(), "r.toml")
    assert "r.toml:12:" in str(raised.value)
    assert "repeat" in str(raised.value)
