"""The Faust app, tuned for low latency on the embedded broker and on Kafka alike."""

from __future__ import annotations

from typing import Any

import faust

from streams import kafka_transport
from streams.settings import Settings


class CxApp(faust.App):
    """Faust app that carries the consumer fetch wait for cxloop's transport."""

    fetch_max_wait_ms: int = kafka_transport.DEFAULT_FETCH_MAX_WAIT_MS


def create_app(settings: Settings, **overrides: Any) -> CxApp:
    """A Faust app for *settings*; no agents yet (agents.wiring adds them)."""
    kafka_transport.register()
    brokers = ";".join(
        f"{kafka_transport.SCHEME}://{host.strip()}"
        for host in settings.kafka_bootstrap.split(",")
        if host.strip()
    )
    options: dict[str, Any] = {
        "broker": brokers,
        "store": "memory://",
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        "producer_linger_ms": settings.producer_linger_ms,
        "broker_session_timeout": settings.broker_session_timeout_s,
        "broker_heartbeat_interval": settings.broker_heartbeat_interval_s,
        "broker_rebalance_timeout": settings.broker_rebalance_timeout_s,
        "consumer_auto_offset_reset": "earliest",
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "web_in_thread": False,
        "datadir": str(settings.data_dir / "faust"),
        "loghandlers": [],
    }
    options.update(overrides)
    app = CxApp(settings.app_id, **options)
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms
    return app
