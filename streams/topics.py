"""Every cxloop topic, declared once: name, key, partitions. Keyed by customer id, except
customer-consent ('<customer id>|<channel>', records.consent_key) and dead-letters (the
customer id when known, else the dead-letter id; agents.consume)."""

from __future__ import annotations

from dataclasses import dataclass

import faust

CONTACT_EVENTS = "contact-events"
SURVEY_INVITATIONS = "survey-invitations"
SURVEY_RESPONSES = "survey-responses"
SCORED_RESPONSES = "scored-responses"
FOLLOWUP_TASKS = "followup-tasks"
FOLLOWUP_ACTIONS = "followup-actions"
DEAD_LETTERS = "dead-letters"
CUSTOMER_CONSENT = "customer-consent"  # compacted: the latest opt-in/opt-out per key
CALL_LIST = "call-list"  # phone surveys waiting for an interviewer

ALL_TOPICS = (
    CONTACT_EVENTS,
    SURVEY_INVITATIONS,
    SURVEY_RESPONSES,
    SCORED_RESPONSES,
    FOLLOWUP_TASKS,
    FOLLOWUP_ACTIONS,
    DEAD_LETTERS,
    CUSTOMER_CONSENT,
    CALL_LIST,
)
COMPACTED_TOPICS = frozenset({CUSTOMER_CONSENT})


@dataclass(frozen=True)
class Topics:
    """The app's topic objects. Values are raw bytes: agents decode them, so bad input
    can go to the dead letters with its original bytes instead of dying in Faust's codec."""

    contact_events: faust.TopicT
    survey_invitations: faust.TopicT
    survey_responses: faust.TopicT
    scored_responses: faust.TopicT
    followup_tasks: faust.TopicT
    followup_actions: faust.TopicT
    dead_letters: faust.TopicT
    customer_consent: faust.TopicT
    call_list: faust.TopicT


def declare_topics(app: faust.App, partitions: int, replication: int) -> Topics:
    """Declare cxloop's topics on *app*."""

    def topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            key_serializer="raw",
            value_type=bytes,
            value_serializer="raw",
            partitions=partitions,
            replicas=replication,
            compacting=name in COMPACTED_TOPICS,
        )

    return Topics(
        contact_events=topic(CONTACT_EVENTS),
        survey_invitations=topic(SURVEY_INVITATIONS),
        survey_responses=topic(SURVEY_RESPONSES),
        scored_responses=topic(SCORED_RESPONSES),
        followup_tasks=topic(FOLLOWUP_TASKS),
        followup_actions=topic(FOLLOWUP_ACTIONS),
        dead_letters=topic(DEAD_LETTERS),
        customer_consent=topic(CUSTOMER_CONSENT),
        call_list=topic(CALL_LIST),
    )
