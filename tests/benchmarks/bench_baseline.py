"""baseline: raw aiokafka consume → produce passthrough on tansu — the ceiling for one process."""

from __future__ import annotations

import asyncio
import os
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.benchmarks.common import CpuMeter, Stack, out
from tests.benchmarks.report import Figure
from tests.benchmarks.runner_context import Context
from tests.benchmarks.workload import create_topics, produce
from tests.harness.processes import broker_pid

NAME = "baseline"
SOURCE, SINK = "bench-in", "bench-out"


def payload(i: int) -> bytes:
    """A 300-byte JSON object."""
    body = {"event_id": f"evt-{i:09d}", "customer": f"C-{i % 100_000:07d}", "pad": ""}
    raw = orjson.dumps(body)
    body["pad"] = "x" * (300 - len(raw))
    value = orjson.dumps(body)
    assert len(value) == 300
    return value


async def passthrough(bootstrap: str, n: int, meter: CpuMeter) -> tuple[float, float]:
    """Consume *n* messages with getmany and produce each to another topic; committing
    consumed offsets after their produces are acked (every 0.5 s). Returns (seconds from
    the first record to the last ack, seconds to join the group)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    consumer = AIOKafkaConsumer(
        SOURCE,
        bootstrap_servers=bootstrap,
        group_id="bench-baseline",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        rebalance_timeout_ms=4000,
    )
    await producer.start()
    joined = time.perf_counter()
    await consumer.start()
    try:
        got, started, pending = 0, 0.0, []
        last_commit = time.perf_counter()
        while got < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                if records and not started:
                    meter.start()  # after the group join, from the first record
                    started = time.perf_counter()
                    joined = started - joined
                for record in records:
                    pending.append(await producer.send(SINK, value=record.value, key=record.key))
                got += len(records)
            if time.perf_counter() - last_commit > 0.5:
                await asyncio.gather(*pending)
                pending.clear()
                await consumer.commit()
                last_commit = time.perf_counter()
        await asyncio.gather(*pending)
        await consumer.commit()
        return time.perf_counter() - started, joined
    finally:
        await consumer.stop()
        await producer.stop()


def run(ctx: Context) -> list[Figure]:
    n = ctx.pick(quick=50_000, full=200_000)
    with Stack(ctx.workdir / NAME) as stack:
        broker = stack.broker()
        asyncio.run(create_topics(broker.bootstrap, (SOURCE, SINK)))
        messages = [(f"C-{i % 100_000:07d}".encode(), payload(i)) for i in range(n)]
        produce_s = asyncio.run(produce(broker.bootstrap, SOURCE, messages))
        out(f"  pre-produced {n:,} × 300 B in {produce_s:.1f} s ({n / produce_s:,.0f}/s)")
        meter = CpuMeter({"bench (consumer+producer)": os.getpid(), "tansu": broker_pid(broker)})
        seconds, join_s = asyncio.run(passthrough(broker.bootstrap, n, meter))
        cpu = meter.stop()
    rate = n / seconds
    ctx.baseline_rate = rate
    return [
        Figure(
            key="baseline.msgs_per_s",
            label="baseline: raw aiokafka passthrough",
            value=rate,
            unit="msgs/s",
            ratio=1.0,
            ratio_to="itself (the ceiling)",
            details={
                "messages": n,
                "bytes_per_message": 300,
                "seconds": round(seconds, 3),
                "group_join_s": round(join_s, 2),
                "produce_only_msgs_per_s": round(n / produce_s),
                "cpu_percent_of_one_core": cpu,
                "consumer": "getmany(max_records=5000), fetch_max_wait_ms=50, group commit",
                "producer": "linger_ms=5",
            },
        )
    ]
