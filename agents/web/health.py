"""Liveness and readiness for operations: /health and /ready."""

from __future__ import annotations

import asyncio

import faust
from faust.web import Request, Response
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from agents.runtime import Runtime
from agents.web.requests import CxView, route


def _ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


class Health(CxView):
    async def get(self, request: Request) -> Response:
        return self.json({"status": "ok"})


class Ready(CxView):
    """Ready when the database answers and the worker has joined its consumer group
    (at least one rebalance done, none under way)."""

    async def get(self, request: Request) -> Response:
        try:
            await asyncio.wait_for(asyncio.to_thread(_ping, self.rt.engine), timeout=5)
        except (SQLAlchemyError, TimeoutError) as exc:
            return self.json({"status": "unavailable", "database": type(exc).__name__}, status=503)
        if self.app.rebalancing or self.app.rebalancing_count == 0:
            return self.json({"status": "joining_group"}, status=503)
        return self.json({"status": "ready"})


def register(app: faust.App, rt: Runtime) -> None:
    route(app, "/health", Health, rt)
    route(app, "/ready", Ready, rt)
