"""`cxloop rules`: check a rules file, forecast it on past contacts, explain a customer."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from models.backtest import (
    DEFAULT_COMPLAINT_DAYS,
    BacktestInput,
    Forecast,
    backtest,
    read_input,
)
from models.calendar import Duration
from models.rules import Rules, RulesError, load_rules, rules_summary
from models.store.engine import make_engine
from models.store.explain import customer_timeline
from streams.settings import get_settings

app = typer.Typer(help="Check, forecast (backtest) and explain survey rules.", no_args_is_help=True)

# Rich wraps tables to 80 columns when output is not a terminal; in a pipe or a file one
# row per line is what grep and people expect (tables only take the width they need).
_PIPE_WIDTH = 1000


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def _console(err: bool = False) -> Console:
    console = Console(stderr=err, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=err, highlight=False, width=_PIPE_WIDTH)
    return console


def _rules_or_exit(path: Path) -> Rules:
    try:
        return load_rules(path)
    except RulesError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="The rules file (TOML) to validate.")],
) -> None:
    """Validate a rules file and list its programmes; exit 1 naming file:line if invalid."""
    rules = _rules_or_exit(file)
    console = _console()
    console.print(Text(f"{file}: valid"))
    console.print(Text(f"version  {rules.version}"))
    console.print(Text(f"digest   {rules.digest}"))
    console.print(Text(f"label    {rules.label}  (what decisions record)"))
    console.print(Text(f"timezone {rules.timezone.key}, global cap {_duration_text(rules.cap)}"))
    rows = rules_summary(rules)
    table = Table(title="programmes and rules")
    columns = list(rows[0]) if rows else []
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(Text(str(row[c])) for c in columns))
    console.print(table)


def _duration_text(d: Duration) -> str:
    # Duration's canonical text writes 180 days as "25w5d"; people wrote "180d".
    return f"{d.days}d" if d.days and not (d.months or d.seconds) else str(d)


@app.command("backtest")
def backtest_command(
    rules_file: Annotated[Path, typer.Option("--rules", help="The rules file (TOML) to forecast.")],
    events: Annotated[
        str, typer.Option("--events", help="JSON-lines contact events, or - for stdin.")
    ],
    until: Annotated[
        str | None,
        typer.Option(help="Simulate up to this ISO time (default: 60 days after the last event)."),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table or json.")
    ] = OutputFormat.TABLE,
    complaint_days: Annotated[
        float, typer.Option(min=0, help="How long a complaint stays open in the replay.")
    ] = DEFAULT_COMPLAINT_DAYS,
) -> None:
    """Replay past contact events through a rules file and forecast what it would survey.

    Nothing is sent and nothing is written: the replay is in memory.
    """
    rules = _rules_or_exit(rules_file)
    end = _parse_until(until, rules) if until else None
    try:
        data = _read_events(events)
    except OSError as exc:
        typer.echo(f"{events}: cannot read: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    forecast = backtest(rules, data, until=end, complaint_days=complaint_days)
    if output is OutputFormat.JSON:
        sys.stdout.write(orjson.dumps(forecast.to_json(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        _print_forecast(_console(), forecast)


def _parse_until(text: str, rules: Rules) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO date or time", param_hint="--until"
        ) from None
    # A date or time without an offset is read on the rules' wall clock, like the rules.
    return at.replace(tzinfo=rules.timezone) if at.tzinfo is None else at


def _read_events(name: str) -> BacktestInput:
    source: IO[bytes] = sys.stdin.buffer if name == "-" else Path(name).open("rb")  # noqa: SIM115
    with source:
        return read_input(source)


def _print_forecast(console: Console, f: Forecast) -> None:
    console.print(Text(f"rules version {f.rules_version}"))
    start = f.start.isoformat() if f.start else "-"
    console.print(Text(f"replayed {start} .. {f.until.isoformat()}"))
    console.print(
        Text(
            f"input: {f.lines} line(s), {f.contacts} contact(s), {f.consent_changes} consent "
            f"change(s), {f.duplicate_events} duplicate(s), {len(f.invalid)} invalid, "
            f"{f.after_until} after --until"
        )
    )
    console.print(
        Text(
            f"customers: {f.customers_seen} seen, {f.customers_surveyed} surveyed at least "
            f"once ({f.reach:.1%})"
        )
    )

    weeks = sorted({w for per in f.surveys_per_week.values() for w in per})
    surveys = Table(title="surveys per programme per ISO week")
    surveys.add_column("week")
    programmes = list(f.surveys_per_week)
    for p in programmes:
        surveys.add_column(p, justify="right")
    for week in weeks:
        surveys.add_row(week, *(str(f.surveys_per_week[p].get(week, 0)) for p in programmes))
    surveys.add_row("total", *(str(f.surveys[p]) for p in programmes))
    console.print(surveys)

    reasons = Table(title="decisions per programme and reason")
    reasons.add_column("programme")
    reasons.add_column("reason")
    reasons.add_column("count", justify="right")
    for programme, counts in f.reasons.items():
        for reason, count in counts.items():
            reasons.add_row(Text(programme), reason, str(count))
    console.print(reasons)

    per_customer = Table(title="surveys per customer")
    per_customer.add_column("surveys")
    per_customer.add_column("customers", justify="right")
    for bucket, count in f.surveys_per_customer.items():
        per_customer.add_row(bucket, str(count))
    console.print(per_customer)

    if f.invalid:
        console.print(Text(f"invalid lines ({len(f.invalid)}):"))
        for bad in f.invalid[:20]:
            console.print(Text(f"  line {bad.line}: {bad.reason}"))
        if len(f.invalid) > 20:
            console.print(Text(f"  … and {len(f.invalid) - 20} more (see --format json)"))
    for note in f.notes:
        console.print(Text(f"note: {note}"))


@app.command()
def explain(
    customer_id: Annotated[str, typer.Argument(help="The customer to explain.")],
    database_url: Annotated[
        str | None, typer.Option(help="SQL database (default: CXLOOP_DATABASE_URL).")
    ] = None,
) -> None:
    """Show one customer's contacts, survey decisions and why, surveys, answers and tasks."""
    url = database_url or get_settings().database_url
    parsed = make_url(url)
    safe = parsed.render_as_string(hide_password=True)
    database = parsed.database or ""
    # SQLite would create an empty file for a mistyped path; a look-up must not.
    is_file = parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if is_file and not Path(database).exists():
        typer.echo(f"no database at {safe}", err=True)
        raise typer.Exit(1)
    engine = make_engine(url)
    try:
        timeline = customer_timeline(engine, customer_id)
    except SQLAlchemyError as exc:
        typer.echo(f"cannot read {safe}: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if not timeline:
        typer.echo(f"no records for customer {customer_id}", err=True)
        raise typer.Exit(1)
    table = Table(title=Text(f"customer {customer_id}"))
    for column in ("time (UTC)", "what", "programme", "rule", "rules version", "outcome"):
        table.add_column(column, no_wrap=True)
    table.add_column("details and why", overflow="fold")
    for entry in timeline:
        table.add_row(
            entry.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            entry.what,
            Text(entry.programme or ""),
            Text(entry.rule or ""),
            Text(entry.rules_version or ""),
            Text(" / ".join(x for x in (entry.outcome, entry.reason) if x)),
            Text(entry.detail),
        )
    _console().print(table)
