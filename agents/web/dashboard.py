"""The BI dashboard in the staff inbox, and the reports as files and JSON.

/inbox/dashboard             the page (signed-in staff: the inbox session or SSO header)
/api/reports/{report}        a report for scripts and the page's downloads: a bearer token
                             (global or personal) or the session; format=json (default),
                             csv or parquet

Every request reads the aggregates for the period asked (query: since, until as ISO dates
or 90d/12w/6m, grain day|week|month, by=<dimension> (repeatable), min_n); nothing is
cached, so a figure is as fresh as the last answer scored.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from datetime import date
from typing import cast
from urllib.parse import quote, urlencode

import faust
import structlog
from faust.web import Request, Response
from multidict import MultiMapping

from agents.runtime import Runtime
from agents.web.pages.dashboard import render_dashboard
from agents.web.pages.inbox import SECURITY_HEADERS, message_page
from agents.web.requests import CxView, route
from agents.web.staff_access import api_caller, find_caller, proxy_mode
from models.export import write_csv, write_parquet
from models.reports import REPORTS, Period, ReportError, Tabular, parse_day
from models.stats import MIN_N
from models.store.reports import dashboard_data, tabulate, today_in_report_zone
from models.store.tables import AGGREGATE_GRAINS

log = structlog.get_logger("cxloop.dashboard")

PAGE = "/inbox/dashboard"
REPORTS_API = "/api/reports"
LOGIN = "/inbox/login"
FORMATS = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}  # CSV is UTF-8
_MIN_N_MAX = 100_000
_HEADERS = dict(SECURITY_HEADERS)


class Query:
    """The filters of a dashboard or report request, checked."""

    def __init__(self, query: Mapping[str, str], today: date) -> None:
        since = str(query.get("since") or "90d")
        until = query.get("until")
        self.period = Period(
            parse_day(since, today), parse_day(str(until), today) if until else today
        )
        grain = query.get("grain")
        self.grain = str(grain) if grain else None  # per period only when asked
        if self.grain is not None and self.grain not in AGGREGATE_GRAINS:
            raise ReportError(f"unknown grain {self.grain!r}; choose from day, week, month")
        # aiohttp's query is a MultiDict (faust types it as a Mapping): ?by= repeats.
        self.by = [b for b in cast(MultiMapping[str], query).getall("by", []) if b]
        raw_min_n = str(query.get("min_n") or MIN_N)
        if not raw_min_n.isdigit() or not 1 <= int(raw_min_n) <= _MIN_N_MAX:
            raise ReportError(f"min_n must be a whole number from 1 to {_MIN_N_MAX}")
        self.min_n = int(raw_min_n)

    def encoded(self, grain: str) -> str:
        """The filters as a query string, for download links that hold what the page shows."""
        return urlencode(
            {
                "since": self.period.since.isoformat(),
                "until": self.period.until.isoformat(),
                "grain": grain,
                "min_n": self.min_n,
            }
        )


async def today(rt: Runtime) -> date:
    return await rt.db_for_request(today_in_report_zone, rt.engine, rt.clock())


def download(view: CxView, table: Tabular, report: str, fmt: str) -> Response:
    if fmt == "csv":
        text = io.StringIO(newline="")
        write_csv(table.rows, table.columns, text)
        body = text.getvalue().encode("utf-8")
    else:
        buffer = io.BytesIO()
        write_parquet(table.rows, table.columns, buffer)
        body = buffer.getvalue()
    out = {
        **_HEADERS,
        "Content-Disposition": f'attachment; filename="cxloop-{report}.{fmt}"',
    }
    return view.bytes(body, content_type=FORMATS[fmt], headers=out)


class Dashboard(CxView):
    """The dashboard for ?since=&until=&grain=&min_n= (default: 90 days by week)."""

    async def get(self, request: Request) -> Response:
        structlog.contextvars.clear_contextvars()
        rt = self.rt
        caller = await find_caller(rt, request)
        if caller is None:
            if proxy_mode(rt):
                page = message_page(title="Not signed in", message="Sign in to see the dashboard.")
                return self.html(page, status=401, headers=_HEADERS)
            target = quote(str(request.rel_url), safe="/")
            return self.text(
                "", status=303, headers={**_HEADERS, "Location": f"{LOGIN}?next={target}"}
            )
        try:
            query = Query(request.query, await today(rt))
            data = await rt.db_for_request(
                dashboard_data,
                rt.engine,
                query.period,
                query.grain or "week",
                rt.clock(),
                min_n=query.min_n,
            )
        except ReportError as exc:
            page = message_page(title="Cannot show that", message=str(exc))
            return self.html(page, status=400, headers=_HEADERS)
        links = {
            f"{name} ({fmt})": f"{REPORTS_API}/{name}?format={fmt}"
            for name in ("nps", "partners", "csat", "response-rate", "tasks")
            for fmt in FORMATS
        }
        # Drawing the charts takes a few hundred ms of CPU: off the event loop.
        page = await asyncio.to_thread(
            render_dashboard, data, export_links=links, filters_query=query.encoded(data.grain)
        )
        log.info("dashboard_shown", role=caller.viewer.role, grain=data.grain)
        return self.html(page, headers=_HEADERS)


class Reports(CxView):
    """GET → the report as JSON {"columns", "rows"} (or ?format=csv|parquet)."""

    async def get(self, request: Request, report: str) -> Response:
        rt = self.rt
        if await api_caller(rt, request) is None:
            return self.unauthorised()
        fmt = request.query.get("format", "json")
        try:
            if report not in REPORTS:
                raise ReportError(f"unknown report {report!r}; choose from {', '.join(REPORTS)}")
            if fmt != "json" and fmt not in FORMATS:
                raise ReportError(f"unknown format {fmt!r}; choose from json, csv, parquet")
            query = Query(request.query, await today(rt))
            table = await rt.db_for_request(
                tabulate,
                rt.engine,
                report,
                query.period,
                rt.clock(),
                by=query.by,
                grain=query.grain,
                min_n=query.min_n,
            )
        except ReportError as exc:
            return self.json({"error": "bad_request", "detail": str(exc)}, status=400)
        if fmt != "json":
            return download(self, table, report, fmt)
        rows = [
            {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
            for row in table.rows
        ]
        return self.json(
            {"columns": table.columns, "rows": rows}, headers={"Cache-Control": "no-store"}
        )


def register(app: faust.App, rt: Runtime) -> None:
    route(app, PAGE, Dashboard, rt)
    route(app, f"{REPORTS_API}/{{report}}", Reports, rt)
