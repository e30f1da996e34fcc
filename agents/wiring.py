"""The composition root: one worker app with every agent, view and timer."""

from __future__ import annotations

from pathlib import Path

from agents.mail import complaint_intake
from agents.mail.mail_server import register_viewer
from agents.pipeline import (
    closure,
    consent,
    dead_letters,
    mailer,
    scoring,
    task_opening,
    trigger,
)
from agents.runtime import OffsetClock, Runtime, utc_now
from agents.timers import escalation, response_relay, scheduler, task_event_relay, webhook_sender
from agents.web import (
    complaint_form,
    dashboard,
    health,
    inbox,
    interviews,
    staff_api,
    survey_page,
    unsubscribe,
)
from models.followup_rules import load_followup_rules
from models.rules import load_rules
from models.store.engine import make_engine
from streams.app import CxApp, create_app
from streams.settings import Settings
from streams.topics import declare_topics

AGENT_MODULES = (
    trigger,
    mailer,
    scoring,
    task_opening,
    closure,
    dead_letters,
    response_relay,
    scheduler,
    task_event_relay,
    escalation,  # after task_event_relay: the ladder nudges the relay with its events
    survey_page,
    unsubscribe,
    consent,
    staff_api,
    interviews,
    dashboard,  # before inbox: /inbox/dashboard is not a task page
    inbox,
    webhook_sender,
    complaint_form,
    complaint_intake,
    health,
)


def build_worker(settings: Settings, mail_dir: Path | None = None) -> tuple[CxApp, Runtime]:
    """The worker's Faust app and runtime for *settings*; *mail_dir* adds the /mail pages."""
    app = create_app(settings)
    topics = declare_topics(app, settings.topic_partitions, settings.topic_replication)
    runtime = Runtime(
        settings=settings,
        engine=make_engine(settings.database_url),
        topics=topics,
        rules=load_rules(settings.rules_file),
        followup=load_followup_rules(settings.followup_file),
        clock=OffsetClock(settings.clock_offset_file) if settings.clock_offset_file else utc_now,
    )
    for module in AGENT_MODULES:
        module.register(app, runtime)
    if mail_dir is not None:
        register_viewer(app, mail_dir)
    return app, runtime
