"""trigger: contact events/s through a real `cxloop worker` to recorded survey decisions."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

from tests.benchmarks.common import (
    CpuMeter,
    Reader,
    Stack,
    epoch,
    out,
    rates_by_slice,
    rss_bytes,
)
from tests.benchmarks.report import Figure
from tests.benchmarks.runner_context import Context
from tests.benchmarks.workload import (
    ContactWorkload,
    contact_events,
    create_topics,
    prepare_database,
    produce,
)
from tests.harness.processes import CxloopProcess, broker_pid

NAME = "trigger"


@dataclass
class DecisionRun:
    events: int
    decisions: int
    expected: int
    seconds: float  # first decision → last decision (the workers' decided_at)
    partial: bool
    cpu: dict[str, float]
    extra: dict[str, Any]

    first_batch: int  # decisions that share the first decided_at (1 without batching)

    @property
    def decisions_per_s(self) -> float:
        """Decisions after the first batch per second until the last one."""
        if self.seconds <= 0:
            return 0.0
        return max(self.decisions - self.first_batch, 0) / self.seconds

    @property
    def events_per_s(self) -> float:
        # Duplicate event ids are read and handled like the rest but add no decision; they
        # are spread evenly, so scale decisions/s by events per distinct event.
        return self.decisions_per_s * self.events / self.expected


def measure_decisions(
    reader: Reader,
    workload: ContactWorkload,
    workers: list[CxloopProcess],
    pids: dict[str, int],
    timeout: float,
    profile: tuple[Any, str] | None = None,
) -> DecisionRun:
    """Wait for the first decision, then until every distinct event has one (or *timeout*)."""
    expected = workload.distinct_events
    deadline = time.monotonic() + 180
    while not reader.scalar("SELECT count(*) FROM survey_decisions"):
        for worker in workers:
            worker.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError("no survey decision within 180 s of starting the worker(s)")
        time.sleep(0.05)
    meter = CpuMeter(pids)
    meter.start()
    if profile is not None:
        for worker in workers:
            worker.start_profiler(profile[0], profile[1])
    rss_start = {w.name: rss_bytes(w.pid) for w in workers}
    deadline = time.monotonic() + timeout
    count, partial = 0, False
    samples: list[tuple[float, int]] = []
    while True:
        count = int(reader.scalar("SELECT count(*) FROM survey_decisions") or 0)
        samples.append((time.monotonic(), count))
        if count >= expected:
            break
        if time.monotonic() > deadline:
            partial = True
            break
        for worker in workers:
            worker.check_alive()
        time.sleep(0.25)
    cpu = meter.stop()
    rss_end = {w.name: rss_bytes(w.pid) for w in workers}
    for worker in workers:
        worker.stop_profiler()
    first, last = reader.one("SELECT min(decided_at), max(decided_at) FROM survey_decisions")
    first_batch = int(
        reader.scalar(
            "SELECT count(*) FROM survey_decisions WHERE decided_at = "
            "(SELECT min(decided_at) FROM survey_decisions)"
        )
    )
    outcomes = {
        reason: int(n)
        for reason, n in reader.all("SELECT reason, count(*) FROM survey_decisions GROUP BY 1")
    }
    extra = {
        "decisions_per_s_by_fifth_of_the_run": rates_by_slice(samples),
        "reasons": outcomes,
        "mails_sent_by_then": reader.scalar(
            "SELECT count(*) FROM survey_invitations WHERE delivery_status = 'sent'"
        ),
        "invitations": reader.scalar("SELECT count(*) FROM survey_invitations"),
        "worker_rss_mb": {k: round(v / 2**20, 1) for k, v in rss_end.items()},
        "worker_rss_growth_bytes": {k: rss_end[k] - rss_start[k] for k in rss_end},
    }
    return DecisionRun(
        events=len(workload.messages),
        decisions=count,
        expected=expected,
        seconds=epoch(last) - epoch(first),
        partial=partial,
        first_batch=first_batch,
        cpu=cpu,
        extra=extra,
    )


def run(ctx: Context) -> list[Figure]:
    n = ctx.pick(quick=15_000, full=60_000)
    workload = contact_events(n)
    with Stack(ctx.workdir / NAME) as stack:
        broker = stack.broker()
        smtp = stack.smtp_sink()
        url = ctx.worker_database(stack, stack.workdir, NAME)
        seeded = prepare_database(url)
        asyncio.run(create_topics(broker.bootstrap))
        produce_s = asyncio.run(produce(broker.bootstrap, "contact-events", workload.messages))
        out(
            f"  pre-produced {n:,} contact events ({workload.distinct_events:,} distinct, "
            f"{workload.distinct_customers:,} customers) in {produce_s:.1f} s; starting the worker"
        )
        reader = stack.reader(url)
        worker = stack.worker("worker-1", broker.bootstrap, url, smtp.port)
        assert smtp.process is not None
        pids = {
            "worker": worker.pid,
            "tansu": broker_pid(broker),
            "smtp sink": smtp.process.pid,
            "bench (polling)": os.getpid(),
        }
        result = measure_decisions(
            reader,
            workload,
            [worker],
            pids,
            timeout=ctx.pick(quick=60.0, full=240.0),
            profile=(ctx.profile_dir, NAME) if ctx.profile_dir else None,
        )
    rate = result.events_per_s
    ctx.trigger_rate = rate
    baseline = ctx.baseline_rate
    ratio = rate / baseline if baseline else None
    details = {
        "events": n,
        "distinct_events": workload.distinct_events,
        "repeat_customer_events": workload.repeat_events,
        "duplicate_event_ids": workload.duplicate_events,
        "decisions_done": result.decisions,
        "seconds_first_to_last_decision": round(result.seconds, 2),
        "decisions_per_s": round(result.decisions_per_s, 1),
        "first_batch": result.first_batch,
        "cpu_percent_of_one_core": result.cpu,
        "worker_cpu_ms_per_event": round(10 * result.cpu["worker"] / max(rate, 1e-9), 3),
        "seeded_state": seeded,
        "database": url.split(":")[0],
        **result.extra,
    }
    return [
        Figure(
            key="trigger.events_per_s",
            label="trigger: contact events → decisions (1 worker)",
            value=rate,
            unit="events/s",
            ratio=ratio,
            ratio_to=f"baseline ({baseline:,.0f}/s)" if baseline else "baseline (not measured)",
            target="≥ 0.5× baseline",
            passed=ratio is not None and ratio >= 0.5,
            note=f"partial: {result.decisions}/{result.expected} decided" if result.partial else "",
            details=details,
        )
    ]
