"""answer: survey responses/s through a real worker's scoring and follow-up to tasks."""

from __future__ import annotations

import asyncio
import time

from tests.benchmarks.common import CpuMeter, Stack, epoch, out, rates_by_slice
from tests.benchmarks.report import Figure
from tests.benchmarks.runner_context import Context
from tests.benchmarks.workload import create_topics, produce, store_answers
from tests.harness.processes import broker_pid

NAME = "answer"


def run(ctx: Context) -> list[Figure]:
    n = ctx.pick(quick=15_000, full=60_000)
    with Stack(ctx.workdir / NAME) as stack:
        broker = stack.broker()
        smtp = stack.smtp_sink()
        url = ctx.worker_database(stack, stack.workdir, NAME)
        answers = store_answers(url, n, seed=21, detractors_only=False)
        detractors = sum(a.detractor for a in answers)
        asyncio.run(create_topics(broker.bootstrap))
        produce_s = asyncio.run(
            produce(
                broker.bootstrap,
                "survey-responses",
                [(a.customer_id.encode(), a.record) for a in answers],
            )
        )
        out(
            f"  stored {n:,} answered invitations ({detractors:,} detractors) and produced "
            f"their survey-responses records in {produce_s:.1f} s; starting the worker"
        )
        reader = stack.reader(url)
        worker = stack.worker("worker-1", broker.bootstrap, url, smtp.port)
        scored_sql = "SELECT count(*) FROM survey_responses WHERE scored_at IS NOT NULL"
        tasks_sql = "SELECT count(*) FROM followup_tasks WHERE origin = 'detractor'"
        deadline = time.monotonic() + 180
        while not reader.scalar(scored_sql):
            worker.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError("no answer scored within 180 s of starting the worker")
            time.sleep(0.05)
        meter = CpuMeter({"worker": worker.pid, "tansu": broker_pid(broker)})
        meter.start()
        if ctx.profile_dir:
            worker.start_profiler(ctx.profile_dir, NAME)
        deadline = time.monotonic() + ctx.pick(quick=60.0, full=240.0)
        partial = False
        samples: list[tuple[float, int]] = []
        while True:
            scored, tasks = int(reader.scalar(scored_sql)), int(reader.scalar(tasks_sql))
            end = time.time()
            samples.append((time.monotonic(), scored))
            if scored >= n and tasks >= detractors:
                break
            if time.monotonic() > deadline:
                partial = True
                break
            worker.check_alive()
            time.sleep(0.1)
        cpu = meter.stop()
        worker.stop_profiler()
        first = reader.scalar("SELECT min(scored_at) FROM survey_responses")
        first_batch = int(
            reader.scalar(
                "SELECT count(*) FROM survey_responses WHERE scored_at = "
                "(SELECT min(scored_at) FROM survey_responses)"
            )
        )
    seconds = end - epoch(first)
    # Answers handled after the first batch (whose time is `first`), per second until the
    # last task existed.
    done = min(scored, n)
    rate = (done - first_batch) / seconds if seconds > 0 else 0.0
    baseline = ctx.baseline_rate
    ratio = rate / baseline if baseline else None
    return [
        Figure(
            key="answer.responses_per_s",
            label="answer: responses → scored → tasks (1 worker)",
            value=rate,
            unit="responses/s",
            ratio=ratio,
            ratio_to=f"baseline ({baseline:,.0f}/s)" if baseline else "baseline (not measured)",
            target="≥ 0.5× baseline",
            passed=ratio is not None and ratio >= 0.5,
            note=f"partial: {scored}/{n} scored, {tasks}/{detractors} tasks" if partial else "",
            details={
                "responses": n,
                "detractors": detractors,
                "scored": scored,
                "tasks": tasks,
                "first_batch": first_batch,
                "seconds_first_score_to_last_task": round(seconds, 2),
                "cpu_percent_of_one_core": cpu,
                "worker_cpu_ms_per_response": round(10 * cpu["worker"] / max(rate, 1e-9), 3),
                "scored_per_s_by_fifth_of_the_run": rates_by_slice(samples),
                "database": url.split(":")[0],
            },
        )
    ]
