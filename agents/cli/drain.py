"""Stopping a worker without dropping what it was given: drain on the first Ctrl-C or SIGTERM,
stop at once on the second, then say what is left on the topics.

The embedded broker keeps messages only in memory, so whatever a stopping `cxloop up` has
not consumed is gone; draining first makes that nothing in the usual case. On Kafka the rest
stays on the broker for the next worker, and draining only shortens the hand-over.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Mapping
from typing import Any

import faust
import structlog
from aiokafka.errors import KafkaError
from faust.types import AppT

from streams.consumer_lag import ConsumerLagUnknownError, consumer_lag
from streams.topics import (
    CALL_LIST,
    CONTACT_EVENTS,
    CUSTOMER_CONSENT,
    DEAD_LETTERS,
    FOLLOWUP_ACTIONS,
    FOLLOWUP_TASKS,
    SCORED_RESPONSES,
    SURVEY_INVITATIONS,
    SURVEY_RESPONSES,
)

log = structlog.get_logger("cxloop.drain")

POLL_S = 0.25
PROGRESS_EVERY_S = 5.0

# What an unconsumed message on each topic is, in the operator's words.
WAITING = {
    CONTACT_EVENTS: "contact events not yet decided",
    SURVEY_INVITATIONS: "survey invitations not yet handed to the mailer",
    SURVEY_RESPONSES: "survey answers not yet scored",
    SCORED_RESPONSES: "scored answers not yet checked for a follow-up task",
    FOLLOWUP_ACTIONS: "staff actions not yet recorded",
    CUSTOMER_CONSENT: "consent changes not yet applied",
    DEAD_LETTERS: "dead letters not yet stored",
    FOLLOWUP_TASKS: "task events not yet read",
    CALL_LIST: "phone surveys not yet read",
}


def consumed_topics(app: AppT) -> tuple[str, ...]:
    """The topics the app's agents read (cxloop's own, not Faust's internal ones)."""
    names = {name for agent in app.agents.values() for name in agent.channel.topics}
    return tuple(sorted(names))


def describe_waiting(lag: Mapping[str, int]) -> str:
    """'1,865 contact events not yet decided, 3 survey answers not yet scored'."""
    return ", ".join(
        f"{count:,} {WAITING.get(topic, f'messages on {topic}')}"
        for topic, count in sorted(lag.items())
        if count
    )


def left_behind(lag: Mapping[str, int] | None, *, embedded: bool, group: str) -> str:
    """The sentence a stopped worker ends with: what it leaves on the topics."""
    if lag is None:
        return "Could not ask the broker what is left on the topics."
    waiting = describe_waiting(lag)
    if not waiting:
        return "Nothing is left behind: every message on the topics was handled."
    if embedded:
        return (
            f"{waiting} will be lost: the embedded broker keeps nothing "
            "(everything already in SQL is kept)."
        )
    return f"{waiting} stay on the broker for the next worker of group {group}."


async def measure_lag(bootstrap: str, group: str, topics: tuple[str, ...]) -> dict[str, int] | None:
    """The group's lag per topic, or None (logged) when the broker does not answer."""
    try:
        return await consumer_lag(bootstrap, group, topics, timeout_s=5.0)
    except ConsumerLagUnknownError as exc:
        log.warning("consumer_lag_unknown", error=str(exc))
        return None


class DrainingWorker(faust.Worker):
    """A Faust worker whose first stop signal drains: it keeps consuming until the lag of
    every topic its agents read is zero or *drain_timeout_s* passed, then stops. A second
    signal stops at once."""

    def __init__(
        self,
        app: faust.App,
        *,
        bootstrap: str,
        drain_timeout_s: float,
        tell: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.bootstrap = bootstrap
        self.drain_timeout_s = drain_timeout_s
        self.tell_operator = tell  # mode's Service has a say() of its own
        self._draining: asyncio.Future[None] | None = None

    def _on_sigint(self) -> None:
        self._on_stop_signal(signal.SIGINT)

    def _on_sigterm(self) -> None:
        self._on_stop_signal(signal.SIGTERM)

    def _on_stop_signal(self, signum: signal.Signals) -> None:
        if self._draining is None and self.drain_timeout_s > 0 and not self._signal_stop_time:
            self._draining = asyncio.ensure_future(self._drain_then_stop(signum), loop=self.loop)
            return
        if self._draining is not None and not self._draining.done():
            self._draining.cancel()
            log.warning("drain_cut_short", signal=signum.name)
            self._tell("Stopping now.")
        self._stop(signum)

    def _stop(self, signum: signal.Signals) -> None:
        # Faust's own handlers: flag the shutdown and schedule the stop (once).
        if signum == signal.SIGINT:
            super()._on_sigint()
        else:
            super()._on_sigterm()

    def _tell(self, text: str) -> None:
        if self.tell_operator is not None:
            self.tell_operator(text)

    async def _drain_then_stop(self, signum: signal.Signals) -> None:
        try:
            await self._drain(signum)
        finally:
            self._stop(signum)

    async def _drain(self, signum: signal.Signals) -> None:
        topics = consumed_topics(self.app)
        group = self.app.conf.id
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.drain_timeout_s
        log.info("drain_started", signal=signum.name, timeout_s=self.drain_timeout_s)
        self._tell(
            f"Draining: consuming until every topic is read, at most "
            f"{self.drain_timeout_s:g} s (press Ctrl-C again to stop at once)."
        )
        next_progress = started + PROGRESS_EVERY_S
        lag: dict[str, int] | None = None
        while True:
            await self._commit()
            lag = await measure_lag(self.bootstrap, group, topics)
            now = loop.time()
            if lag is not None and not any(lag.values()):
                log.info("drain_done", seconds=round(now - started, 2))
                return
            if now >= deadline:
                log.warning(
                    "drain_timed_out",
                    seconds=round(now - started, 2),
                    **{f"waiting_{t}": n for t, n in sorted((lag or {}).items()) if n},
                )
                return
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY_S
                log.info(
                    "draining", **{f"waiting_{t}": n for t, n in sorted((lag or {}).items()) if n}
                )
            await asyncio.sleep(min(POLL_S, deadline - now))

    async def _commit(self) -> None:
        """Commit what the agents have acknowledged, so the lag shows their progress now
        rather than at Faust's next commit interval."""
        try:
            await self.app.consumer.commit()
        except KafkaError as exc:  # a rebalance in progress: the next round commits
            log.warning("drain_commit_failed", error=type(exc).__name__)
