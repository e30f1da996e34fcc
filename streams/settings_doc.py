"""The README's configuration table, generated from Settings so the two cannot drift."""

from __future__ import annotations

from pydantic import SecretStr

from streams.settings import Settings


def configuration_table() -> str:
    """A Markdown table: variable, default, meaning."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            shown = "(empty)" if not default.get_secret_value() else "(set)"
        elif default is None:
            shown = "(none)"
        else:
            shown = f"`{default}`"
        meaning = (field.description or "").replace("|", "\\|")
        lines.append(f"| `CXLOOP_{name.upper()}` | {shown} | {meaning} |")
    return "\n".join(lines) + "\n"
