"""scale: trigger-path throughput of one worker vs two workers (same group, 8 partitions).

Both runs start their workers first, wait until every worker is ready (joined, no rebalance
under way), then produce the same contact events and time the first to the last decision.
The workers share one database (the SQLite file by default: one writer at a time).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from tests.benchmarks.bench_trigger import DecisionRun, measure_decisions
from tests.benchmarks.common import Stack, out
from tests.benchmarks.report import Figure
from tests.benchmarks.runner_context import Context
from tests.benchmarks.workload import contact_events, create_topics, prepare_database, produce
from tests.harness.processes import broker_pid

NAME = "scale"
TARGET = 1.8


def one_run(ctx: Context, workers: int, n: int) -> tuple[DecisionRun, dict[str, Any]]:
    workload = contact_events(n, seed=17)
    with Stack(ctx.workdir / f"{NAME}-{workers}") as stack:
        broker = stack.broker()
        smtp = stack.smtp_sink()
        url = ctx.worker_database(stack, stack.workdir, f"{NAME}{workers}")
        prepare_database(url)
        asyncio.run(create_topics(broker.bootstrap))
        running = [
            stack.worker(f"worker-{k + 1}", broker.bootstrap, url, smtp.port)
            for k in range(workers)
        ]
        started = time.monotonic()
        for worker in running:
            worker.wait_ready()
        # A late joiner triggers a rebalance: wait until all are ready twice, 1 s apart.
        for _ in range(2):
            time.sleep(1.0)
            for worker in running:
                worker.wait_ready()
        ready_s = time.monotonic() - started
        reader = stack.reader(url)
        asyncio.run(produce(broker.bootstrap, "contact-events", workload.messages))
        pids = {w.name: w.pid for w in running}
        pids |= {"tansu": broker_pid(broker), "bench": os.getpid()}
        result = measure_decisions(
            reader,
            workload,
            running,
            pids,
            timeout=ctx.pick(quick=60.0, full=240.0),
            profile=(ctx.profile_dir, f"{NAME}{workers}") if ctx.profile_dir else None,
        )
    return result, {"ready_after_s": round(ready_s, 1)}


def run(ctx: Context) -> list[Figure]:
    n = ctx.pick(quick=15_000, full=60_000)
    runs = {}
    for workers in (1, 2):
        result, extra = one_run(ctx, workers, n)
        runs[workers] = (result, extra)
        out(
            f"  {workers} worker(s): {result.events_per_s:,.0f} events/s "
            f"(CPU % of one core: {result.cpu})"
        )
    one, two = runs[1][0], runs[2][0]
    speedup = two.events_per_s / one.events_per_s if one.events_per_s else 0.0
    partial = one.partial or two.partial
    return [
        Figure(
            key="scale.two_workers_speedup",
            label=f"scale: 2 workers vs 1, trigger path ({ctx.worker_db})",
            value=speedup,
            unit="× one worker",
            ratio=speedup,
            ratio_to=f"1 worker ({one.events_per_s:,.0f} → {two.events_per_s:,.0f} events/s)",
            target=f"≥ {TARGET}×",
            passed=speedup >= TARGET,
            note="partial run" if partial else "",
            details={
                "events": n,
                "database": ctx.worker_db,
                **{
                    f"workers_{k}": {
                        "events_per_s": round(r.events_per_s, 1),
                        "mails_sent_per_s_meanwhile": round(
                            int(r.extra["mails_sent_by_then"] or 0) / max(r.seconds, 1e-9), 1
                        ),
                        "seconds_first_to_last_decision": round(r.seconds, 2),
                        "decisions": r.decisions,
                        "expected": r.expected,
                        "cpu_percent_of_one_core": r.cpu,
                        **extra,
                        **r.extra,
                    }
                    for k, (r, extra) in runs.items()
                },
            },
        )
    ]
