"""Consent end to end through `cxloop up`: the unsubscribe link in a real mail, the opt-out
on the real broker, the row in SQL, and the next invitation cancelled at send time."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from models.store.engine import transaction
from models.store.tables import SurveyInvitation as InvitationRow
from streams.records import SurveyInvitation
from tests.conftest import wait_for
from tests.factories import live_contact_event as contact_event
from tests.harness.loop import RunningLoop, running_loop

CUSTOMER = "C-8008"
ADDRESS = "c-8008@example.nl"


@pytest.fixture
def loop(tmp_path: Path, database_url: str) -> Iterator[RunningLoop]:
    # No contact-frequency cap, so the second contact is surveyed (and then refused at send).
    no_cap = {"CXLOOP_SURVEY_CAP_DAYS": "0"}
    with running_loop(tmp_path, database_url=database_url, env=no_cap) as running:
        yield running


def topic_config(loop: RunningLoop, topic: str) -> dict[str, str]:
    async def describe() -> dict[str, str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=loop.bootstrap)
        await admin.start()
        try:
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
        finally:
            await admin.close()
        entries = responses[0].resources[0][4]
        return {str(entry[0]): str(entry[1]) for entry in entries}

    return asyncio.run(describe())


def invitation_status(loop: RunningLoop, event_id: str) -> list[tuple[str, str | None]]:
    return [
        (str(row[0]), row[1])
        for row in loop.rows(
            "SELECT delivery_status, delivery_error FROM survey_invitations WHERE event_id = :e",
            e=event_id,
        )
    ]


def send_invitation_decided_earlier(loop: RunningLoop, n: str) -> None:
    """What the trigger leaves when it decided before the opt-out: a pending invitation row
    and its message on survey-invitations (on the real broker, for the real mailer)."""
    created = datetime.now(UTC) - timedelta(minutes=1)
    row = InvitationRow(
        invitation_id=f"inv-{n}",
        event_id=f"evt-{n}",
        customer_id=CUSTOMER,
        email=ADDRESS,
        locale="nl",
        kind="purchase",
        channel="shop",
        created_at=created,
    )
    engine = loop.engine()
    try:
        with transaction(engine) as session:
            session.add(row)
    finally:
        engine.dispose()
    message = SurveyInvitation(
        invitation_id=row.invitation_id,
        event_id=row.event_id,
        customer_id=CUSTOMER,
        locale="nl",
        created_at=created,
    )

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=loop.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                "survey-invitations", value=message.to_bytes(), key=CUSTOMER.encode()
            )
        finally:
            await producer.stop()

    asyncio.run(produce())


def test_unsubscribe_link_stops_the_next_survey(loop: RunningLoop) -> None:
    assert topic_config(loop, "customer-consent").get("cleanup.policy") == "compact"

    loop.emit(contact_event("consent-1", customer=CUSTOMER))
    mail = wait_for(lambda: loop.mails_to(ADDRESS), 15, "the survey e-mail")[0]  # type: ignore[index]
    token = loop.survey_token(mail)
    unsubscribe = f"{loop.web}/u/{token}"
    assert mail["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain = mail.get_body(preferencelist=("plain",))
    assert plain is not None and unsubscribe in plain.get_content()

    # Answered first: the unsubscribe link keeps working after the survey is over.
    answered = httpx.post(f"{loop.web}/s/{token}", data={"nps": "9"}, timeout=10)
    assert answered.status_code == 200

    page = httpx.get(unsubscribe, timeout=10)  # what a link scanner does
    assert page.status_code == 200
    assert "Afmelden" in page.text  # in the customer's language (nl)
    assert re.search(rf'<form method="post" action="/u/{re.escape(token)}">', page.text)
    assert "<script" not in page.text.lower()
    assert httpx.get(f"{loop.web}/u/{'x' * 43}", timeout=10).status_code == 404
    assert httpx.post(f"{loop.web}/u/{'x' * 43}", timeout=10).status_code == 404

    # RFC 8058 one-click, as a mail provider sends it.
    done = httpx.post(
        unsubscribe,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert done.status_code == 200
    assert "U ontvangt geen enquêtes meer" in done.text
    consent = wait_for(
        lambda: loop.rows("SELECT customer_id, channel, status, source FROM customer_consent"),
        15,
        "the consent row",
    )
    assert consent == [(CUSTOMER, "email", "opted_out", "unsubscribe_link")]
    on_topic = loop.topic_messages("customer-consent", expect=1)
    assert [m.key for m in on_topic] == [f"{CUSTOMER}|email".encode()]
    assert orjson.loads(on_topic[0].value)["status"] == "opted_out"

    # An invitation decided before the opt-out and sent after it: refused at send time.
    send_invitation_decided_earlier(loop, "consent-early")
    wait_for(
        lambda: invitation_status(loop, "evt-consent-early") == [("cancelled", "opted out")],
        15,
        "the earlier-decided invitation cancelled by the mailer",
    )
    # A later contact (no cap here) is not mailed either: refused when decided or when sent.
    loop.emit(contact_event("consent-2", customer=CUSTOMER))
    decided = wait_for(
        lambda: loop.rows(
            "SELECT outcome, reason, invitation_id FROM survey_decisions WHERE event_id = :e",
            e="evt-consent-2",
        ),
        15,
        "the later contact's decision",
    )
    if decided[0][2] is not None:  # type: ignore[index]
        wait_for(
            lambda: invitation_status(loop, "evt-consent-2") == [("cancelled", "opted out")],
            15,
            "the later invitation cancelled",
        )
    else:
        assert decided == [("suppressed", "opted_out", None)]
    assert len(loop.mails_to(ADDRESS)) == 1
    log_text = loop.log_path.read_text()
    assert token not in log_text and ADDRESS not in log_text
    events = {line.get("event") for line in loop.log_lines()}
    assert {"unsubscribe_requested", "consents_recorded"} <= events
