"""The README's configuration table is the one generated from Settings."""

from __future__ import annotations

from pathlib import Path

from streams.settings_doc import configuration_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_matches_settings() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- config-table:start -->\n") + len("<!-- config-table:start -->\n")
    end = text.index("<!-- config-table:end -->")
    assert text[start:end] == configuration_table(), "run `cxloop config-table` into README.md"


def test_every_setting_has_a_description() -> None:
    for line in configuration_table().splitlines()[2:]:
        assert not line.rstrip().endswith("|  |"), line
