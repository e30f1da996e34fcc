"""The cxloop command: up (everything on one machine), worker, emit."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import structlog
import typer
from aiokafka import AIOKafkaProducer
from sqlalchemy.engine import make_url

from agents.cli import db, followup, report, rules, staff
from agents.cli.drain import DrainingWorker, consumed_topics, left_behind, measure_lag
from agents.mail.mail_server import start_mail_server
from agents.runtime import Runtime
from agents.wiring import build_worker
from models.followup_rules import FollowupRulesError
from models.rules import RulesError
from models.store.backlog import Backlog, resume_backlog
from models.store.schema import SchemaError, upgrade
from models.store.staff_accounts import ensure_demo_staff
from models.webhook_signing import WebhookConfigError
from streams.app import CxApp
from streams.embedded_broker import EmbeddedBroker
from streams.logging import configure_logging
from streams.settings import Settings, get_settings
from streams.settings_doc import configuration_table
from streams.topic_admin import ensure_topics
from streams.topics import ALL_TOPICS, CONTACT_EVENTS

cli = typer.Typer(help="cxloop: closed-loop customer feedback on Kafka.", no_args_is_help=True)
cli.add_typer(rules.app, name="rules")
cli.add_typer(followup.app, name="followup")
cli.add_typer(staff.app, name="staff")
cli.add_typer(db.app, name="db")
cli.add_typer(report.app, name="report")
log = structlog.get_logger("cxloop.cli")


def run_worker(
    app: CxApp, settings: Settings, say: Callable[[str], None] | None = None
) -> dict[str, int] | None:
    """Create the topics, run the Faust worker until it is stopped (the first Ctrl-C or
    SIGTERM drains, the second stops at once), then return what its group left unconsumed
    per topic (None if the broker did not say). *say* tells the operator about the drain."""
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap,
            ALL_TOPICS,
            settings.topic_partitions,
            settings.topic_replication,
        )
    )
    # asyncio.run closed its loop; Faust's worker wants a current one of its own.
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = DrainingWorker(
        app,
        bootstrap=settings.kafka_bootstrap,
        drain_timeout_s=settings.drain_timeout_s,
        tell=say,
        loglevel=settings.log_level,
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.spinner = None  # it writes terminal escapes into the log stream
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    return asyncio.run(measure_lag(settings.kafka_bootstrap, settings.app_id, consumed_topics(app)))


@cli.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="Where the database, mail and logs go.")] = Path(
        "cxloop-data"
    ),
    host: Annotated[
        str, typer.Option(help="Address every embedded part listens on.")
    ] = "127.0.0.1",
    kafka_port: Annotated[int, typer.Option(help="Port of the embedded Kafka broker.")] = 9092,
    smtp_port: Annotated[int, typer.Option(help="Port of the local SMTP server.")] = 8025,
    web_port: Annotated[int, typer.Option(help="Port of the survey page, API and /mail.")] = 6066,
    database_url: Annotated[
        str | None, typer.Option(help="SQL database (default: SQLite file in the data dir).")
    ] = None,
    emit_file: Annotated[
        Path | None,
        typer.Option("--emit", help="JSON-lines contact events to send once the worker runs."),
    ] = None,
    rules_file: Annotated[
        Path | None,
        typer.Option("--rules", help="Survey rules file (TOML; default: the demo rules)."),
    ] = None,
    followup_file: Annotated[
        Path | None,
        typer.Option("--followup", help="Follow-up rules file (TOML; default: the shipped one)."),
    ] = None,
    complaint_port: Annotated[
        int | None,
        typer.Option(
            help="Port of the complaint intake SMTP server, 0 = off "
            "(default: CXLOOP_COMPLAINT_SMTP_PORT, else 2525)."
        ),
    ] = None,
    demo_staff: Annotated[
        bool,
        typer.Option(help="On a database without staff accounts, create demo inbox accounts."),
    ] = True,
    now: Annotated[bool, typer.Option("--now", help=NOW_HELP)] = False,
    drain_timeout: Annotated[
        float | None, typer.Option(help=DRAIN_HELP + " (default: CXLOOP_DRAIN_TIMEOUT_S, 30).")
    ] = None,
) -> None:
    """Start the embedded broker, a local SMTP server and a worker; stop them all on Ctrl-C
    (the first drains the topics, the second stops at once)."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    base = get_settings()
    configure_logging(base.log_level, base.log_format)
    staff_token = base.staff_token.get_secret_value() or _staff_token(data_dir)
    # Explicit values win over CXLOOP_* variables; everything else still comes from them.
    settings = Settings(
        kafka_bootstrap=f"{host}:{kafka_port}",
        database_url=database_url or f"sqlite:///{data_dir / 'cxloop.db'}",
        smtp_host=host,
        smtp_port=smtp_port,
        smtp_starttls=False,
        web_host=host,
        web_port=web_port,
        public_url=f"http://{host}:{web_port}",
        staff_token=staff_token,
        data_dir=data_dir,
        # An explicit None would hide CXLOOP_RULES_FILE, so fall back to it.
        rules_file=rules_file or base.rules_file,
        followup_file=followup_file or base.followup_file,
        complaint_smtp_host=host,
        complaint_smtp_port=(
            complaint_port if complaint_port is not None else base.complaint_smtp_port or 2525
        ),
        drain_timeout_s=base.drain_timeout_s if drain_timeout is None else drain_timeout,
    )
    mail_dir = data_dir / "mail"
    broker = EmbeddedBroker(host, kafka_port, data_dir / "broker.log")
    broker.start()
    mail_server = start_mail_server(mail_dir, host, smtp_port)
    try:
        try:
            app, runtime = build_worker(settings, mail_dir=mail_dir)
        except CONFIG_ERRORS as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        if emit_file is not None:
            _emit_on_start(app, runtime, _read_lines(str(emit_file), now))
        try:
            # One machine, one operator: `up` migrates its own database.
            upgrade(runtime.engine)
        except SchemaError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        accounts = (
            ensure_demo_staff(runtime.engine, runtime.followup, runtime.clock())
            if demo_staff
            else []
        )
        if accounts:
            _save_accounts(data_dir, accounts)
        _print_welcome(settings, data_dir, broker.bootstrap)
        typer.echo(resuming(resume_backlog(runtime.engine, runtime.clock())), err=True)
        lag = run_worker(app, settings, say=_say)
        typer.echo("Stopped. " + left_behind(lag, embedded=True, group=settings.app_id), err=True)
    finally:
        mail_server.stop()
        broker.stop()
        log.info("cxloop_stopped")


DRAIN_HELP = (
    "Seconds the first Ctrl-C or SIGTERM keeps consuming until every topic is read "
    "(a second one stops at once); 0 = stop at once"
)


def _say(text: str) -> None:
    typer.echo(text, err=True)


def resuming(backlog: Backlog) -> str:
    """One line on what this start picks up from SQL (counts only)."""
    if backlog.empty:
        return "Resuming from SQL: nothing waiting."
    parts = [
        f"{count:,} {what}"
        for what, count in (
            (
                f"survey timers pending ({backlog.survey_timers_due:,} due now)",
                backlog.survey_timers,
            ),
            ("invitations not yet mailed", backlog.invitations_to_mail),
            ("invitations interrupted mid-send (not sent again)", backlog.invitations_interrupted),
            ("reminders not yet mailed", backlog.reminders_to_mail),
            ("answers not yet published", backlog.answers_to_publish),
            ("task events not yet published", backlog.task_events_to_publish),
            ("webhooks pending", backlog.webhooks_pending),
            ("staff e-mails pending", backlog.staff_mail_pending),
        )
        if count
    ]
    return "Resuming from SQL: " + ", ".join(parts) + "."


def _staff_token(data_dir: Path) -> str:
    path = data_dir / "staff-token"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _save_accounts(data_dir: Path, accounts: list[tuple[str, str, str | None, str]]) -> None:
    """The demo inbox accounts and their passwords, readable by this user only."""
    path = data_dir / "staff-accounts"
    lines = [
        f"{name}\t{role}\t{team or '-'}\t{password}" for name, role, team, password in accounts
    ]
    path.write_text("user\trole\tteam\tpassword\n" + "\n".join(lines) + "\n")
    path.chmod(0o600)


def _print_welcome(settings: Settings, data_dir: Path, bootstrap: str) -> None:
    url = settings.public_url
    typer.echo(
        "\n".join(
            [
                "cxloop is up.",
                f"  Kafka (embedded tansu)  {bootstrap}",
                f"  SMTP (keeps all mail)   {settings.smtp_host}:{settings.smtp_port}"
                f"  → {data_dir / 'mail'}",
                f"  Mail you sent           {url}/mail",
                f"  Survey pages            {url}/s/<token>",
                f"  Staff inbox             {url}/inbox  (accounts: {data_dir / 'staff-accounts'})",
                f"  Staff API               {url}/api/tasks?status=active",
                f"  Staff token             {data_dir / 'staff-token'}",
                f"  Complaint form          {url}/complaint",
                *(
                    [
                        f"  Complaints by e-mail    {settings.complaint_smtp_host}:"
                        f"{settings.complaint_smtp_port}"
                    ]
                    if settings.complaint_smtp_port
                    else []
                ),
                f"  Dashboard               {url}/inbox/dashboard",
                f"  Database                {_redacted(settings.database_url)}",
                f"Send a contact event:     cxloop emit examples/contact-event.jsonl"
                f" --bootstrap {bootstrap}",
                "Stop with Ctrl-C: it first reads what is on the topics (at most "
                f"{settings.drain_timeout_s:g} s); twice stops at once.",
            ]
        ),
        err=True,
    )


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


CONFIG_ERRORS = (RulesError, FollowupRulesError, WebhookConfigError)


@cli.command()
def worker(
    drain_timeout: Annotated[
        float | None, typer.Option(help=DRAIN_HELP + " (default: CXLOOP_DRAIN_TIMEOUT_S, 30).")
    ] = None,
) -> None:
    """Run one worker against the Kafka, database and SMTP relay in CXLOOP_* settings."""
    settings = get_settings()
    if drain_timeout is not None:
        settings = settings.model_copy(update={"drain_timeout_s": drain_timeout})
    configure_logging(settings.log_level, settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        app, runtime = build_worker(settings)
    except CONFIG_ERRORS as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    try:
        db.require_schema(runtime.engine)  # refuses a schema behind this cxloop
    except typer.Exit:
        runtime.engine.dispose()
        raise
    backlog = resume_backlog(runtime.engine, runtime.clock())
    log.info("worker_resuming", **backlog.counts())
    lag = run_worker(app, settings)
    log.info(
        "worker_stopped",
        left_behind=left_behind(lag, embedded=False, group=settings.app_id),
        **{f"waiting_{topic}": count for topic, count in sorted((lag or {}).items())},
    )


@cli.command()
def emit(
    file: Annotated[str, typer.Argument(help="JSON-lines file of contact events, or - for stdin.")],
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka bootstrap servers (default: CXLOOP_KAFKA_BOOTSTRAP).")
    ] = None,
    topic: Annotated[str, typer.Option(help="Topic to produce to.")] = CONTACT_EVENTS,
    now: Annotated[bool, typer.Option("--now", help=NOW_HELP)] = False,
) -> None:
    """Produce contact events, one JSON object per line, keyed by customer id."""
    lines = _read_lines(file, now)
    servers = bootstrap or get_settings().kafka_bootstrap
    sent = asyncio.run(_produce(servers, topic, lines))
    typer.echo(f"sent {sent} event(s) to {topic}", err=True)


NOW_HELP = (
    "Set each event's occurred_at to the current time (example files: the rules count "
    "delays and expiry from when a contact happened)."
)


def _read_lines(file: str, now: bool = False) -> list[bytes]:
    source = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    with source:
        lines = [line.rstrip(b"\r\n") for line in source if line.strip()]
    return [stamped_now(line) for line in lines] if now else lines


def stamped_now(line: bytes) -> bytes:
    """*line* with occurred_at set to now; a line that is not a JSON object stays as it is
    (it is sent on, to be dead-lettered like any bad input)."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    if not isinstance(data, dict):
        return line
    data["occurred_at"] = datetime.now(UTC).isoformat()
    return orjson.dumps(data)


def _emit_on_start(app: CxApp, runtime: Runtime, lines: list[bytes]) -> None:
    """Send *lines* to contact-events once the worker has started (the demo's first event)."""

    @app.task  # type: ignore[untyped-decorator]  # faust's task decorator is untyped
    async def emit_demo_events() -> None:
        for line in lines:
            await runtime.topics.contact_events.send(key=customer_key(line), value=line)
        log.info("demo_events_sent", count=len(lines))


def customer_key(line: bytes) -> bytes | None:
    """The partition key of a contact event: its customer id, if the line has one (a
    number is no customer id: the trigger refuses the event whatever its key)."""
    try:
        data = orjson.loads(line)
        customer_id = data["customer"]["id"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    # The trigger compares the key with customer.id as it reads it: surrounding spaces cut.
    return customer_id.strip().encode("utf-8") if isinstance(customer_id, str) else None


async def _produce(bootstrap: str, topic: str, lines: list[bytes]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value=line, key=customer_key(line)) for line in lines]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(lines)


@cli.command("config-table")
def config_table() -> None:
    """Print the configuration reference (Markdown) that the README carries."""
    typer.echo(configuration_table(), nl=False)


def main() -> None:
    cli()
