"""The Kafka clients integrators already have, against a running `cxloop up` (embedded tansu):
librdkafka through the confluent-kafka wheel produces contact events and consumes cxloop's
topics with a consumer group of its own; Debian 12's kcat (librdkafka 2.0.2) reads topics
only with the settings the README gives.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from streams.topics import CONTACT_EVENTS, FOLLOWUP_TASKS, SURVEY_INVITATIONS
from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import running_loop

# kcat 1.7.1 / librdkafka 2.0.2 cannot parse tansu 0.6.0's ApiVersions v3 answer ("Local:
# Read underflow"); without that request it falls back to the 0.9 protocol: metadata and
# fetches from absolute offsets work, produce, ListOffsets and consumer groups do not.
KCAT_LEGACY = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0"]


def test_confluent_kafka_produces_contact_events_and_consumes_cxloop_topics(
    tmp_path: Path,
) -> None:
    """Contact events produced by librdkafka are surveyed (and a complaint opens a task);
    a librdkafka consumer group reads the invitations and the task event, and commits."""
    with running_loop(tmp_path) as loop:
        surveyed = [contact_event(f"ck-{n}", customer=f"CK-{n}") for n in range(10)]
        complaint = contact_event("ck-complaint", customer="CK-99", kind="complaint")
        producer = Producer({"bootstrap.servers": loop.bootstrap, "acks": "all"})
        failures: list[KafkaError] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failures.append(error)

        for event in [*surveyed, complaint]:
            producer.produce(
                CONTACT_EVENTS,
                key=event["customer"]["id"].encode(),
                value=orjson.dumps(event),
                on_delivery=delivered,
            )
        assert producer.flush(30) == 0, "librdkafka did not deliver every contact event"
        assert failures == []

        consumer = Consumer(
            {
                "bootstrap.servers": loop.bootstrap,
                "group.id": "crm-integration",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                # tansu's group join takes ~30 s with the defaults (DESIGN: use short ones)
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 1000,
            }
        )
        try:
            consumer.subscribe([SURVEY_INVITATIONS, FOLLOWUP_TASKS])
            invitations: dict[str, dict[str, Any]] = {}
            task_events: list[dict[str, Any]] = []

            def read() -> bool:
                message = consumer.poll(0.5)
                if message is not None:
                    assert message.error() is None, message.error()
                    record = orjson.loads(message.value())
                    if message.topic() == SURVEY_INVITATIONS:
                        invitations[record["event_id"]] = record
                    else:
                        task_events.append(record)
                return len(invitations) >= len(surveyed) and bool(task_events)

            wait_for(read, 60, "the invitations and the task event through librdkafka", 0)
            consumer.commit(asynchronous=False)
            committed = consumer.committed(
                [
                    TopicPartition(t, p)
                    for t in (SURVEY_INVITATIONS, FOLLOWUP_TASKS)
                    for p in range(8)
                ],
                timeout=10,
            )
        finally:
            consumer.close()

    assert set(invitations) == {e["event_id"] for e in surveyed}
    assert {r["customer_id"] for r in invitations.values()} == {
        e["customer"]["id"] for e in surveyed
    }
    assert [(r["event_type"], r["customer_id"]) for r in task_events[:1]] == [
        ("task_opened", "CK-99")
    ]
    assert sum(max(tp.offset, 0) for tp in committed) >= len(surveyed) + 1


def test_debian_kcat_reads_cxloop_topics_with_the_legacy_protocol(tmp_path: Path) -> None:
    """The kcat command lines the README gives: metadata, and every survey invitation read
    from offset 0 of each partition."""
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is missing: `apt-get install -y kcat` (make test installs it as root)")
    with running_loop(tmp_path) as loop:
        loop.emit(*(contact_event(f"kc-{n}", customer=f"KC-{n}") for n in range(5)))
        wait_for(
            lambda: len(loop.rows("SELECT 1 FROM survey_invitations")) == 5,
            30,
            "five invitations",
        )
        metadata = _kcat(kcat, "-b", loop.bootstrap, *KCAT_LEGACY, "-L", "-m", "10")
        started = time.monotonic()
        read = _kcat(
            kcat,
            "-b",
            loop.bootstrap,
            *KCAT_LEGACY,
            "-C",
            "-t",
            SURVEY_INVITATIONS,
            "-o",
            "0",
            "-e",
            "-q",
            "-f",
            "%s\\n",
        )
        wanted = {row[0] for row in loop.rows("SELECT invitation_id FROM survey_invitations")}

    assert f'topic "{SURVEY_INVITATIONS}" with 8 partitions' in metadata
    assert f'topic "{CONTACT_EVENTS}" with 8 partitions' in metadata
    records = [orjson.loads(line) for line in read.splitlines() if line.strip()]
    assert {r["invitation_id"] for r in records} == wanted
    assert time.monotonic() - started < 30


def _kcat(kcat: str, *args: str) -> str:
    done = subprocess.run([kcat, *args], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, f"kcat {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout
