"""scheduler: fire due survey timers and reminders, on every worker, every second.

Timers live in SQL (survey_timers, survey_invitations.next_reminder_at), so they survive
restarts and any worker can fire them; each tick takes only what is due, through an
index, a bounded batch at a time.
"""

from __future__ import annotations

import asyncio

import faust
import structlog

from agents.pipeline.survey_dispatch import dispatch_invitations, send_invitation
from agents.runtime import Runtime
from models.store.reminders import fire_due_reminders
from models.store.survey_timers import fire_due_timers

log = structlog.get_logger("cxloop.scheduler")

BATCH = 500


async def fire_due(rt: Runtime) -> int:
    """Fire every timer due now, a batch at a time; the number of timers resolved."""
    total = 0
    while True:
        fired = await rt.db(fire_due_timers, rt.engine, rt.rules, rt.clock(), BATCH)
        await dispatch_invitations(rt, fired.invitations)
        done = sum(fired.reasons.values())
        total += done
        if fired.reasons or fired.deferred:
            log.info(
                "timers_fired",
                deferred=fired.deferred,
                **{f"reason_{r}": n for r, n in sorted(fired.reasons.items())},
            )
        if done + fired.deferred < BATCH:
            return total


async def remind_due(rt: Runtime) -> int:
    """Create every reminder due now and hand it to the mailer; the number created."""
    total = 0
    while True:
        fired = await rt.db(fire_due_reminders, rt.engine, rt.rules, rt.clock(), BATCH)
        await asyncio.gather(*(send_invitation(rt, r, r.number) for r in fired.due))
        total += len(fired.due)
        if fired.due or fired.stopped or fired.deferred:
            log.info(
                "reminders_fired",
                created=len(fired.due),
                deferred=fired.deferred,
                **{f"stopped_{r}": n for r, n in sorted(fired.stopped.items())},
            )
        if len(fired.due) + sum(fired.stopped.values()) + fired.deferred < BATCH:
            return total


def register(app: faust.App, rt: Runtime) -> None:
    @app.timer(interval=rt.settings.scheduler_interval_s, name="scheduler")  # type: ignore[untyped-decorator]  # faust: untyped
    async def scheduler() -> None:
        await fire_due(rt)
        await remind_due(rt)
