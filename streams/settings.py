"""cxloop's settings: one class, environment prefix CXLOOP_, built once by get_settings()."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob cxloop has. The README's configuration table is generated from this class."""

    model_config = SettingsConfigDict(env_prefix="CXLOOP_", env_file=None, extra="ignore")

    # Kafka
    kafka_bootstrap: str = Field(
        "localhost:9092", description="Kafka bootstrap servers, comma-separated host:port."
    )
    app_id: str = Field("cxloop", description="Consumer group id and prefix of internal topics.")
    topic_partitions: int = Field(
        8, ge=1, description="Partitions of every cxloop topic (the unit of scale-out)."
    )
    topic_replication: int = Field(1, ge=1, description="Replication factor of cxloop topics.")
    fetch_max_wait_ms: int = Field(
        50, ge=1, description="How long the broker may hold a fetch; Faust's 1500 ms is too slow."
    )
    producer_linger_ms: int = Field(
        5, ge=0, description="Producer linger: batch sends for this long."
    )
    broker_session_timeout_s: float = Field(6.0, description="Consumer-group session timeout.")
    broker_heartbeat_interval_s: float = Field(1.0, description="Consumer-group heartbeat.")
    broker_rebalance_timeout_s: float = Field(4.0, description="Consumer-group rebalance timeout.")
    drain_timeout_s: float = Field(
        30.0,
        ge=0,
        description="On Ctrl-C or SIGTERM: keep consuming until the consumer lag of every "
        "topic the worker reads is zero, at most this long; 0 = stop at once.",
    )

    batch_max_events: int = Field(
        500, ge=1, description="Most events a hot-path agent takes per batch (one transaction)."
    )
    batch_within_ms: int = Field(
        20, ge=1, description="How long a hot-path agent waits to fill a batch."
    )
    max_message_bytes: int = Field(
        1_048_576,
        ge=1024,
        description="A larger message is dead-lettered as too_large (its size, SHA-256 and "
        "first 64 KiB kept).",
    )
    max_future_skew_s: float = Field(
        86_400.0,
        ge=0,
        description="A contact event whose occurred_at is further ahead of the clock than this "
        "is dead-lettered as occurred_in_future.",
    )

    # Database
    database_url: str = Field(
        "sqlite:///cxloop.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user:pw@host/db.",
    )

    # SMTP
    smtp_host: str = Field("localhost", description="SMTP relay host.")
    smtp_port: int = Field(25, description="SMTP relay port.")
    smtp_username: str | None = Field(None, description="SMTP user (optional).")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (optional).")
    smtp_starttls: bool = Field(
        True, description="Require STARTTLS. Only the embedded local SMTP server turns it off."
    )
    smtp_timeout_s: float = Field(10.0, description="SMTP connect and command timeout.")
    mail_from: str = Field("cxloop <survey@cxloop.invalid>", description="From: of survey mail.")
    company_name: str = Field(
        "cxloop demo", description="Named in surveys when an event has no partner or product."
    )
    smtp_connections: int = Field(
        4, ge=1, description="SMTP connections the mailer sends over at the same time."
    )
    smtp_max_attempts: int = Field(
        0,
        ge=0,
        description="Tries per mail on temporary SMTP failures; 0 = keep retrying (back-pressure).",
    )
    smtp_backoff_max_s: float = Field(30.0, description="Longest wait between SMTP retries.")

    # Web
    web_host: str = Field("127.0.0.1", description="Address the worker's web server binds to.")
    web_port: int = Field(6066, description="Port of the worker's web server.")
    public_url: str = Field(
        "http://127.0.0.1:6066",
        description="Base URL of the survey links in e-mails (what customers can reach).",
    )
    staff_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token for the staff API. Empty = staff API refuses every request.",
    )

    # Survey rules
    rules_file: Path | None = Field(
        None,
        description="Survey programmes (TOML, see `cxloop rules check`). Empty = the demo rules.",
    )
    scheduler_interval_s: float = Field(
        1.0, gt=0, description="How often each worker fires due survey timers and reminders."
    )
    invitation_ttl_days: int = Field(30, ge=1, description="A survey link expires after this.")

    # Follow-up
    followup_file: Path | None = Field(
        None,
        description="Follow-up rules (TOML, see `cxloop followup check`). Empty = the default.",
    )
    staff_mail_from: str = Field(
        "cxloop <followup@cxloop.invalid>", description="From: of SLA reminders and escalations."
    )
    inbox_auth: str = Field(
        "password",
        pattern="^(password|proxy)$",
        description="Staff inbox sign-in: password (argon2id) or proxy (a trusted SSO proxy "
        "sets the user header).",
    )
    inbox_proxy_header: str = Field(
        "X-Forwarded-User", description="With inbox_auth=proxy: the header naming the user."
    )
    inbox_session_hours: float = Field(
        10.0, gt=0, description="An inbox session ends this long after sign-in."
    )
    inbox_poll_s: float = Field(
        5.0, gt=0, description="How often an open inbox page checks for new or changed tasks."
    )
    cookie_secure: bool | None = Field(
        None,
        description="Secure flag on the inbox cookie; empty = on when public_url is https.",
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="Timeout of one webhook call.")
    complaint_smtp_port: int = Field(
        0,
        ge=0,
        description="Port of the complaint intake SMTP server (mail to it becomes a complaint); "
        "0 = off.",
    )
    complaint_smtp_host: str = Field(
        "127.0.0.1", description="Address the complaint intake SMTP server binds to."
    )
    clock_offset_file: Path | None = Field(
        None,
        description="Rehearsals and tests only: a file holding seconds to add to the clock "
        "(SLA and timer drills).",
    )

    # Runtime
    data_dir: Path = Field(Path("."), description="Where the worker keeps local files.")
    log_level: str = Field("info", description="crit | error | warn | info | debug.")
    log_format: str = Field("auto", description="json | console | auto (console on a terminal).")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once."""
    return Settings()
