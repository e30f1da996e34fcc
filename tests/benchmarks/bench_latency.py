"""latency: answer published → follow-up task on followup-tasks, at 200/s and 1,000/s offered.

Detractor answers are stored as the survey page stores them, then their SurveyResponse
records are produced to survey-responses on an open-loop schedule (answer i is due at
t0 + i/rate, whatever happened before). An aiokafka consumer on followup-tasks takes the
arrival time of each task; latency = arrival − due time, so a stalled pipeline or a
lagging sender shows up instead of hiding (no coordinated omission). Answers whose task has
not arrived by the end of the drain time count as infinitely late.

Baseline: the same schedule over three raw aiokafka relays (consume → produce, fetch wait
50 ms, linger 5 ms) — the hops answer → scoring → follow-up → task — on the same broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.benchmarks.common import CpuMeter, Stack, out
from tests.benchmarks.report import Figure
from tests.benchmarks.runner_context import Context
from tests.benchmarks.workload import StoredAnswer, create_topics, store_answers
from tests.harness.processes import broker_pid

NAME = "latency"
RATES = (200, 1000)
TARGET_MS = 250.0
TARGET_RATE = 1000
WARMUP = 100
RAW_TOPICS = ("lat-0", "lat-1", "lat-2", "lat-3")


@dataclass
class Probe:
    """Due times of what was sent and arrival times of what came back, by id."""

    due: dict[str, float] = field(default_factory=dict)
    arrived: dict[str, float] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for_all(self, ids: Sequence[str], limit_s: float) -> None:
        """Until every id has arrived, or *limit_s* seconds."""

        async def all_arrived() -> None:
            missing = [i for i in ids if i not in self.arrived]
            while missing:
                self.changed.clear()
                await self.changed.wait()
                missing = [i for i in missing if i not in self.arrived]

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_arrived(), limit_s)

    def latencies_ms(self, ids: Sequence[str]) -> list[float]:
        return sorted(
            1000 * (self.arrived[i] - self.due[i]) if i in self.arrived else math.inf for i in ids
        )


def percentile(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(p * len(sorted_values)) - 1)]


async def watch(bootstrap: str, topic: str, probe: Probe, ready: asyncio.Event) -> None:
    """Record when each id arrives on *topic* (read from the end, all partitions)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        ready.set()
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    key = orjson.loads(record.value).get("task_id")
                    if key is not None and key not in probe.arrived:
                        probe.arrived[key] = now
            if batch:
                probe.changed.set()
    finally:
        await consumer.stop()


async def relay(bootstrap: str, source: str, target: str, ready: asyncio.Event) -> None:
    """A raw aiokafka hop: consume *source*, produce each value to *target*."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await producer.start()
    await consumer.start()
    try:
        await consumer.topics()
        assigned = [
            TopicPartition(source, p) for p in sorted(consumer.partitions_for_topic(source) or ())
        ]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        ready.set()
        while True:
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            for records in batch.values():
                for record in records:
                    await producer.send(target, value=record.value, key=record.key)
    finally:
        await consumer.stop()
        await producer.stop()


@dataclass(frozen=True)
class Message:
    id: str
    key: bytes
    value: bytes


async def offer(
    producer: AIOKafkaProducer,
    topic: str,
    messages: Sequence[Message],
    rate: float,
    probe: Probe,
    drain_s: float,
    pids: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Send *messages* at *rate*/s on an open-loop schedule; wait for their arrival."""
    meter = CpuMeter(pids or {})
    meter.start()
    t0 = time.perf_counter() + 0.05
    lag = 0.0
    i = 0
    while i < len(messages):
        now = time.perf_counter()
        due_count = min(len(messages), max(0, math.floor((now - t0) * rate) + 1))
        while i < due_count:
            message = messages[i]
            due = t0 + i / rate
            probe.due[message.id] = due
            lag = max(lag, time.perf_counter() - due)
            await producer.send(topic, value=message.value, key=message.key)
            i += 1
        await asyncio.sleep(0.002)
    cpu = meter.stop()
    ids = [m.id for m in messages]
    await probe.wait_for_all(ids, drain_s)
    values = probe.latencies_ms(ids)
    fifth = max(len(ids) // 5, 1)
    by_fifth = [
        percentile(probe.latencies_ms(ids[k : k + fifth]), 0.99) for k in range(0, len(ids), fifth)
    ]
    arrivals = sorted(probe.arrived[i] for i in ids if i in probe.arrived)
    achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    return {
        "sent": len(ids),
        "arrived": len(arrivals),
        "p50_ms": percentile(values, 0.50),
        "p95_ms": percentile(values, 0.95),
        "p99_ms": percentile(values, 0.99),
        "max_ms": values[-1] if values else math.nan,
        "arrivals_per_s": round(achieved, 1),
        "max_sender_lag_ms": round(1000 * lag, 1),
        "p99_ms_by_fifth_of_the_run": [
            round(v, 1) if math.isfinite(v) else str(v) for v in by_fifth
        ],
        "cpu_percent_of_one_core_while_sending": cpu,
    }


async def schedule_runs(
    bootstrap: str,
    source_topic: str,
    watched_topic: str,
    loads: list[tuple[int, list[Message]]],
    warmup: list[Message],
    drain_s: float,
    relays: Sequence[tuple[str, str]] = (),
    pids: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    probe = Probe()
    ready = [asyncio.Event() for _ in range(len(relays) + 1)]
    tasks = [asyncio.create_task(watch(bootstrap, watched_topic, probe, ready[0]))]
    tasks += [
        asyncio.create_task(relay(bootstrap, src, dst, ready[k + 1]))
        for k, (src, dst) in enumerate(relays)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 30)
        await offer(producer, source_topic, warmup, 100, probe, 60)
        results = []
        for rate, messages in loads:
            result = await offer(producer, source_topic, messages, rate, probe, drain_s, pids)
            results.append({"rate": rate, **result})
        return results
    finally:
        await producer.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _split(
    messages: list[Message], duration: float
) -> tuple[list[Message], list[tuple[int, list[Message]]]]:
    warmup, rest = messages[:WARMUP], messages[WARMUP:]
    loads = []
    for rate in RATES:
        count = int(rate * duration)
        loads.append((rate, rest[:count]))
        rest = rest[count:]
    return warmup, loads


def run(ctx: Context) -> list[Figure]:
    duration = ctx.pick(quick=5.0, full=30.0)
    drain = ctx.pick(quick=15.0, full=45.0)
    total = WARMUP + sum(int(r * duration) for r in RATES)
    with Stack(ctx.workdir / NAME) as stack:
        broker = stack.broker()
        smtp = stack.smtp_sink()
        url = ctx.worker_database(stack, stack.workdir, NAME)
        answers: list[StoredAnswer] = store_answers(url, total, seed=33, detractors_only=True)
        asyncio.run(create_topics(broker.bootstrap))
        asyncio.run(create_topics(broker.bootstrap, RAW_TOPICS))
        # Baseline first, while no worker runs: the same schedule over three raw hops.
        raw_messages = [
            Message(f"raw-{i}", a.customer_id.encode(), orjson.dumps({"task_id": f"raw-{i}"}))
            for i, a in enumerate(answers)
        ]
        raw_duration = min(duration, 10.0)
        raw_warmup, raw_loads = _split(raw_messages, raw_duration)
        raw = asyncio.run(
            schedule_runs(
                broker.bootstrap,
                RAW_TOPICS[0],
                RAW_TOPICS[-1],
                raw_loads,
                raw_warmup,
                drain,
                relays=list(itertools.pairwise(RAW_TOPICS)),
                pids={"tansu": broker_pid(broker), "bench (3 relays)": os.getpid()},
            )
        )
        for r in raw:
            out(
                f"  raw 3 hops at {r['rate']}/s: p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms"
            )
        worker = stack.worker("worker-1", broker.bootstrap, url, smtp.port)
        worker.wait_ready()
        messages = [Message(a.task_id, a.customer_id.encode(), a.record) for a in answers]
        warmup, loads = _split(messages, duration)
        pids = {"worker": worker.pid, "tansu": broker_pid(broker), "bench": os.getpid()}
        if ctx.profile_dir:
            worker.start_profiler(ctx.profile_dir, NAME)
        results = asyncio.run(
            schedule_runs(
                broker.bootstrap,
                "survey-responses",
                "followup-tasks",
                loads,
                warmup,
                drain,
                pids=pids,
            )
        )
        worker.stop_profiler()
    figures = []
    for result, base in zip(results, raw, strict=True):
        rate = result["rate"]
        p99, base_p99 = result["p99_ms"], base["p99_ms"]
        target = rate == TARGET_RATE
        figures.append(
            Figure(
                key=f"latency.rate_{rate}.p99_ms",
                label=f"latency: answer → task at {rate}/s, {duration:.0f} s",
                value=p99,
                unit="ms p99",
                ratio=p99 / base_p99 if base_p99 and math.isfinite(p99) else None,
                ratio_to=f"raw 3-hop aiokafka p99 ({base_p99:.0f} ms)",
                target=f"< {TARGET_MS:.0f} ms" if target else "",
                passed=(p99 < TARGET_MS) if target else None,
                higher_is_better=False,
                note=f"p50 {result['p50_ms']:.0f}, p95 {result['p95_ms']:.0f} ms"
                + (
                    ""
                    if result["arrived"] == result["sent"]
                    else f"; {result['sent'] - result['arrived']} lost/late"
                ),
                details={
                    **{k: _finite(v) for k, v in result.items()},
                    "raw_3_hops": {k: _finite(v) for k, v in base.items()},
                    "raw_duration_s": raw_duration,
                },
            )
        )
    return figures


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
