"""Liveness and readiness for operations: /health and /ready."""

from __future__ import annotations

import asyncio

import faust
from faust.web import Request, Response, View
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from agents.runtime import Runtime


def _ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def register(app: faust.App, rt: Runtime) -> None:
    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/ready")
    class Ready(View):
        """Ready when the database answers and the worker has joined its consumer group
        (at least one rebalance done, none under way)."""

        async def get(self, request: Request) -> Response:
            try:
                await asyncio.wait_for(asyncio.to_thread(_ping, rt.engine), timeout=5)
            except (SQLAlchemyError, TimeoutError) as exc:
                return self.json(
                    {"status": "unavailable", "database": type(exc).__name__}, status=503
                )
            if app.rebalancing or app.rebalancing_count == 0:
                return self.json({"status": "joining_group"}, status=503)
            return self.json({"status": "ready"})
