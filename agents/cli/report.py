"""`cxloop report`: NPS, CSAT, CES, response rate, partner ranking and task figures in the
terminal, or as CSV / Parquet; `cxloop report rebuild` recounts the aggregates."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from agents.cli.db import DatabaseOption
from agents.runtime import utc_now
from models.dashboard import insufficient_text
from models.export import write_csv, write_parquet
from models.reports import REPORTS, Period, ReportError, Tabular, parse_day
from models.stats import MIN_N
from models.store.aggregates import rebuild_aggregates
from models.store.engine import make_engine
from models.store.reports import tabulate, today_in_report_zone
from streams.settings import get_settings

app = typer.Typer(help="Reports on the BI tables: NPS, CSAT, CES, response rate, tasks.")

_FORMATS = ("table", "csv", "parquet")
_MOE_OF = {"nps": "nps_moe", "csat": "csat_moe", "response_rate": "response_rate_moe"}


def parse_where(items: list[str]) -> dict[str, str]:
    where = {}
    for item in items:
        dimension, sep, value = item.partition("=")
        if not sep:
            raise ReportError(f"--where wants dimension=value, got {item!r}")
        where[dimension.strip()] = value.strip()
    return where


def _cell(column: str, value: Any, row: dict[str, Any], min_n: int) -> str:
    if value is None:
        if column in _MOE_OF or column == "ces_mean":
            n = row.get("csat_n" if column == "csat" else "ces_n" if column == "ces_mean" else "n")
            if column == "response_rate":
                n = row.get("invited")
            return insufficient_text(n, min_n) if n is not None else "–"
        return "–"
    if isinstance(value, float):
        if column in _MOE_OF and row.get(_MOE_OF[column]) is not None:
            return f"{value:.1f} ± {row[_MOE_OF[column]]:.1f}"
        return f"{value:.1f}"
    if value == "":
        return "(unknown)"
    return str(value)


def print_table(title: str, table: Tabular, min_n: int) -> None:
    hidden = {"nps_moe", "csat_moe", "response_rate_moe", "nps_low", "nps_high"}
    hidden |= {"csat_low", "csat_high"}
    columns = [c for c in table.columns if c not in hidden]
    out = Table(title=title)
    for column in columns:
        out.add_column(column, justify="left" if column in ("team", "rank") else "right")
    for row in table.rows:
        out.add_row(*(_cell(c, row.get(c), row, min_n) for c in columns))
    Console().print(out)
    if not table.rows:
        Console().print("no data in this period")


def _report(report: str) -> Any:
    def command(
        by: Annotated[
            list[str] | None,
            typer.Option(
                "--by",
                help="Group by a dimension (repeatable): programme, partner, "
                "channel, touchpoint, product, team.",
            ),
        ] = None,
        since: Annotated[str, typer.Option(help="First day: 2026-01-31, 90d, 12w or 6m.")] = "90d",
        until: Annotated[str | None, typer.Option(help="Last day (default today).")] = None,
        grain: Annotated[
            str | None, typer.Option(help="Also per period: day, week or month.")
        ] = None,
        where: Annotated[
            list[str] | None, typer.Option("--where", help="Filter: dimension=value (repeatable).")
        ] = None,
        min_n: Annotated[int, typer.Option(help="Fewer answers than this: insufficient.")] = MIN_N,
        format_: Annotated[str, typer.Option("--format", help="table, csv or parquet.")] = "table",
        output: Annotated[
            Path | None, typer.Option(help="File to write (csv: default standard output).")
        ] = None,
        database_url: DatabaseOption = None,
    ) -> None:
        engine = make_engine(database_url or get_settings().database_url)
        now = utc_now()
        try:
            if format_ not in _FORMATS:
                raise ReportError(f"unknown format {format_!r}; choose from {', '.join(_FORMATS)}")
            if format_ == "parquet" and output is None:
                raise ReportError("--format parquet needs --output FILE")
            today = today_in_report_zone(engine, now)
            period = Period(parse_day(since, today), parse_day(until, today) if until else today)
            table = tabulate(
                engine,
                report,
                period,
                now,
                by=by or [],
                grain=grain,
                where=parse_where(where or []),
                min_n=min_n,
            )
        except ReportError as exc:
            typer.echo(f"cxloop report {report}: {exc}", err=True)
            raise typer.Exit(2) from None
        except SQLAlchemyError as exc:
            typer.echo(f"cxloop report {report}: database error: {type(exc).__name__}", err=True)
            raise typer.Exit(2) from None
        finally:
            engine.dispose()
        if format_ == "csv":
            if output is None:
                write_csv(table.rows, table.columns, sys.stdout)
            else:
                with output.open("w", newline="", encoding="utf-8") as handle:
                    write_csv(table.rows, table.columns, handle)
        elif format_ == "parquet" and output is not None:
            write_parquet(table.rows, table.columns, output)
        else:
            title = f"{report} {period.since} – {period.until}"
            print_table(title + (f" by {', '.join(by)}" if by else ""), table, min_n)

    command.__doc__ = {
        "nps": "NPS with its 95 % margin of error, promoters, passives and detractors.",
        "csat": "CSAT (top-2-box share) with its 95 % margin of error.",
        "ces": "CES: mean effort score and n.",
        "response-rate": "Surveys issued, answered, and the response rate.",
        "partners": "Business partners ranked by NPS, with margin of error and n.",
        "tasks": "Follow-up per team: open, overdue, contact within SLA, times, closure.",
    }[report]
    return command


for _name in REPORTS:
    app.command(name=_name)(_report(_name))


@app.command()
def rebuild(
    timezone: Annotated[
        str | None, typer.Option(help="Reporting time zone to bucket in from now on.")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Recount every aggregate from the raw rows (optionally in another time zone)."""
    engine = make_engine(database_url or get_settings().database_url)
    try:
        counted = rebuild_aggregates(engine, utc_now(), timezone)
    except ValueError as exc:
        typer.echo(f"cxloop report rebuild: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(f"aggregates rebuilt from {counted} answers")
