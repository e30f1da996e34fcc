"""Figures, the final table, the JSON file and the comparison with the previous run."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.benchmarks.common import out


@dataclass
class Figure:
    """One measured number, its ratio to a baseline of the same run, and its target."""

    key: str  # stable id for comparisons, e.g. "trigger.events_per_s"
    label: str  # what the table shows
    value: float | None
    unit: str
    ratio: float | None = None
    ratio_to: str = ""  # what the ratio divides by, with its value
    target: str = ""  # e.g. "≥ 0.5× baseline"
    passed: bool | None = None  # None: no target
    higher_is_better: bool = True
    note: str = ""  # partial run, error, …
    details: dict[str, Any] = field(default_factory=dict)

    def verdict(self) -> str:
        if self.passed is None:
            return ""
        return "PASS" if self.passed else "FAIL"

    def line(self) -> str:
        parts = [f"  {self.label}: {fmt(self.value)} {self.unit}"]
        if self.ratio is not None:
            parts.append(f"= {self.ratio:.3g}× {self.ratio_to}")
        if self.target:
            parts.append(f"[target {self.target}: {self.verdict()}]")
        if self.note:
            parts.append(f"({self.note})")
        return " ".join(parts)


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def change(old: float | None, new: float | None, higher_is_better: bool) -> str:
    if old is None or new is None or math.isinf(old) or math.isinf(new):
        return ""
    if old == 0:
        return "" if new == 0 else "new"
    pct = 100 * (new - old) / abs(old)
    better = pct > 0 if higher_is_better else pct < 0
    mark = "" if abs(pct) < 5 else (" better" if better else " worse")
    return f"{pct:+.1f}%{mark}"


def load_previous(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def previous_values(previous: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    if not previous:
        return {}
    return {f["key"]: f for f in previous.get("figures", []) if isinstance(f, dict)}


def _json_number(value: float | None) -> float | str | None:
    if value is not None and math.isinf(value):
        return "inf"
    return value


def _from_json(value: Any) -> float | None:
    if value == "inf":
        return math.inf
    return float(value) if isinstance(value, (int, float)) else None


def write_json(path: Path, run: dict[str, Any], figures: list[Figure]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for figure in figures:
        row = asdict(figure)
        row["value"] = _json_number(figure.value)
        row["verdict"] = figure.verdict()
        rows.append(row)
    data = {"run": run, "figures": rows}
    path.write_bytes(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
    )


def print_comparison(previous: dict[str, Any] | None, figures: list[Figure], quick: bool) -> None:
    if previous is None:
        out("No previous results to compare with.")
        return
    before = previous_values(previous)
    run = previous.get("run", {})
    mode = "quick" if run.get("quick") else "full"
    code = run.get("code", {}).get("source_sha256", "?")
    out(f"Change against the previous run ({run.get('started', '?')}, {mode}, code {code}):")
    if run.get("quick") is not None and bool(run.get("quick")) != quick:
        out("  (the previous run used the other mode: sizes and durations differ)")
    for figure in figures:
        old = before.get(figure.key)
        if old is None:
            out(f"  {figure.key}: {fmt(figure.value)} {figure.unit} (new figure)")
            continue
        old_value = _from_json(old.get("value"))
        delta = change(old_value, figure.value, figure.higher_is_better)
        out(
            f"  {figure.key}: {fmt(old_value)} → {fmt(figure.value)} {figure.unit}"
            + (f"  {delta}" if delta else "")
        )


def print_table(figures: list[Figure], previous: dict[str, Any] | None, title: str) -> None:
    before = previous_values(previous)
    headers = ["benchmark", "figure", "unit", "ratio to baseline", "target", "result", "Δ prev"]
    rows = []
    for f in figures:
        old = before.get(f.key)
        delta = change(_from_json(old.get("value")), f.value, f.higher_is_better) if old else ""
        ratio = f"{f.ratio:.3g}× {f.ratio_to}" if f.ratio is not None else ""
        value = fmt(f.value) + (f" ({f.note})" if f.note else "")
        rows.append([f.label, value, f.unit, ratio, f.target, f.verdict(), delta])
    try:
        from rich.console import Console  # noqa: PLC0415 - optional
        from rich.table import Table  # noqa: PLC0415
    except ImportError:
        _plain_table(title, headers, rows)
        return
    table = Table(title=title, show_lines=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        style = {"PASS": "green", "FAIL": "red"}.get(row[5], "")
        table.add_row(*row[:5], f"[{style}]{row[5]}[/]" if style else row[5], row[6])
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)


def _plain_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    out(title)
    out("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    out("  ".join("-" * w for w in widths))
    for row in rows:
        out("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
