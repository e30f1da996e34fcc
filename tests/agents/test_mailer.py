"""mailer agent against a real local SMTP server: one mail per invitation, outcome in SQL."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from sqlalchemy import text
from structlog.testing import capture_logs

from agents.mail import smtp_sender
from agents.mail.smtp_sender import SmtpSender
from agents.pipeline import mailer
from models.consent import Consent
from models.store.consent import record_consents
from models.store.engine import transaction
from models.store.tables import SurveyInvitation as InvitationRow
from models.tokens import hash_token
from streams import records
from tests.agents.conftest import NOW, Harness, decided_invitation, settled
from tests.harness.smtp import SmtpServer

LINK = re.compile(r"https://survey\.example\.test/s/([A-Za-z0-9_-]+)")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that records what it accepts."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def senders(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[SmtpSender]]:
    """The mailer's real SMTP senders, closed (QUIT) before the test's event loop ends."""
    opened: list[SmtpSender] = []

    class ClosedAfterTheTest(SmtpSender):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(smtp_sender, "SmtpSender", ClosedAfterTheTest)
    yield opened
    for sender in opened:
        await sender.close()


@pytest.fixture
def mailer_harness(
    harness: Callable[..., Harness], smtp: SmtpServer, senders: list[SmtpSender]
) -> Callable[..., Harness]:
    """harness(mailer) pointed at the local SMTP server, without STARTTLS."""

    def build(**settings: Any) -> Harness:
        return harness(
            mailer,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_starttls=False,
            smtp_timeout_s=5.0,
            **settings,
        )

    return build


def invite(h: Harness, n: int, customer: str = "C-1") -> tuple[str, bytes]:
    """Decide contact event *n* (decision + invitation rows); its id and the invitation message."""
    row = decided_invitation(h, n, customer=customer)
    message = records.SurveyInvitation(
        invitation_id=row.invitation_id,
        event_id=row.event_id,
        customer_id=row.customer_id,
        locale=row.locale,
        created_at=row.created_at,
    )
    return row.invitation_id, message.to_bytes()


def invitation(h: Harness, invitation_id: str) -> InvitationRow:
    with transaction(h.rt.engine) as session:
        row = session.get(InvitationRow, invitation_id)
    assert row is not None
    return row


def status_of(h: Harness, invitation_id: str) -> str:
    with h.rt.engine.connect() as connection:
        return str(
            connection.execute(
                text("SELECT delivery_status FROM survey_invitations WHERE invitation_id = :i"),
                {"i": invitation_id},
            ).scalar_one()
        )


async def mail_then_a_second_customer(h: Harness, *values: bytes) -> None:
    """Put *values* (C-1's) into the mailer, then a fresh invitation for C-2, and wait until
    that one is sent: by then the mailer is done with C-1's."""
    nxt, other = invite(h, 2, customer="C-2")
    async with h.agent("mailer").test_context() as agent:
        for value in values:
            await agent.put(value, key=b"C-1")
        await agent.put(other, key=b"C-2")
        await settled(h, lambda: status_of(h, nxt) == "sent", "the next invitation sent")


def only_token(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert isinstance(body, EmailMessage)
    tokens: set[str] = set(LINK.findall(body.get_content()))
    assert len(tokens) == 1, f"expected one survey link in the text part, found {tokens}"
    return tokens.pop()


async def test_invitation_is_mailed_once_with_a_link_only_its_hash_is_kept(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer
) -> None:
    h = mailer_harness()
    invitation_id, value = invite(h, 1)
    async with h.agent("mailer").test_context() as agent:
        await agent.put(value, key=b"C-1")
        await settled(h, lambda: status_of(h, invitation_id) == "sent", "the mail marked sent")
    assert len(smtp.received()) == 1
    mail = smtp.received()[0]
    assert mail.rcpt_tos == ["c-1@example.nl"]
    assert mail.message["To"] == "c-1@example.nl"
    assert mail.message["X-Cxloop-Invitation"] == invitation_id
    assert parsedate_to_datetime(mail.message["Date"]) == NOW
    token = only_token(mail.message)
    row = invitation(h, invitation_id)
    assert row.delivery_status == "sent"
    assert row.token_hash == hash_token(token)
    assert row.token_hash != token
    assert row.expires_at == NOW + timedelta(days=30)
    assert row.sent_at == NOW
    assert row.delivery_attempts == 1
    assert row.delivery_error is None
    assert h.sent_to("dead-letters") == []


async def test_the_same_invitation_twice_is_mailed_once(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer
) -> None:
    h = mailer_harness()
    first, value = invite(h, 1)
    # Redelivered; C-2's invitation is processed after the redelivery.
    await mail_then_a_second_customer(h, value, value)
    # Mails of one batch go out over several connections: no order between customers.
    received = sorted(smtp.received(), key=lambda m: m.rcpt_tos)
    assert [m.rcpt_tos for m in received] == [["c-1@example.nl"], ["c-2@example.nl"]]
    row = invitation(h, first)
    assert (row.delivery_status, row.delivery_attempts) == ("sent", 1)
    assert row.token_hash == hash_token(only_token(received[0].message))


def interrupt_mid_send(h: Harness, invitation_id: str) -> None:
    """Leave the invitation as a crash between claim and outcome would: in 'sending'."""
    with transaction(h.rt.engine) as session:
        row = session.get(InvitationRow, invitation_id)
        assert row is not None
        row.delivery_status = "sending"
        row.delivery_attempts = 1
        row.token_hash = hash_token("token-of-the-interrupted-send")
        row.expires_at = NOW + timedelta(days=30)


async def test_an_interrupted_send_is_not_mailed_again(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer
) -> None:
    h = mailer_harness()
    interrupted, value = invite(h, 1)
    interrupt_mid_send(h, interrupted)
    await mail_then_a_second_customer(h, value)
    assert [m.rcpt_tos for m in smtp.received()] == [["c-2@example.nl"]]
    assert smtp.attempts_for("c-1@example.nl") == 0
    row = invitation(h, interrupted)
    assert row.delivery_status != "sent"
    assert row.delivery_attempts == 1
    assert row.token_hash == hash_token("token-of-the-interrupted-send")


async def test_an_interrupted_send_is_recorded_as_unknown(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer
) -> None:
    h = mailer_harness()
    interrupted, value = invite(h, 1)
    interrupt_mid_send(h, interrupted)
    await mail_then_a_second_customer(h, value)
    row = invitation(h, interrupted)
    assert row.delivery_status == "unknown"
    assert row.delivery_error is not None
    assert "interrupted" in row.delivery_error


async def test_a_refused_recipient_fails_for_good_without_retry(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer
) -> None:
    smtp.rcpt_replies["c-1@example.nl"] = ["550 5.1.1 <c-1@example.nl>: mailbox unavailable"] * 3
    h = mailer_harness(smtp_backoff_max_s=0.05)
    refused, value = invite(h, 1)
    await mail_then_a_second_customer(h, value)
    assert smtp.attempts_for("c-1@example.nl") == 1
    assert [m.rcpt_tos for m in smtp.received()] == [["c-2@example.nl"]]
    row = invitation(h, refused)
    assert row.delivery_status == "failed"
    assert row.delivery_attempts == 1
    assert row.delivery_error is not None
    assert "550" in row.delivery_error
    assert "c-1" not in row.delivery_error
    assert "example.nl" not in row.delivery_error
    assert row.sent_at is None
    assert h.sent_to("dead-letters") == []


async def test_a_temporary_refusal_is_retried_until_the_mail_is_accepted(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer
) -> None:
    smtp.rcpt_replies["c-1@example.nl"] = ["421 4.7.0 try again later"] * 2
    h = mailer_harness(smtp_backoff_max_s=0.05)
    invitation_id, value = invite(h, 1)
    async with h.agent("mailer").test_context() as agent:
        await agent.put(value, key=b"C-1")
        # The mailer waits 1 s before its first retry, whatever smtp_backoff_max_s says.
        await settled(
            h, lambda: status_of(h, invitation_id) == "sent", "the mail sent", limit_s=10.0
        )
    assert smtp.attempts_for("c-1@example.nl") == 3
    assert len(smtp.received()) == 1
    mail = smtp.received()[0]
    assert mail.rcpt_tos == ["c-1@example.nl"]
    row = invitation(h, invitation_id)
    assert row.delivery_attempts == 3
    assert row.delivery_error is None
    # The stored hash is that of the link that reached the customer, not of a refused try.
    assert row.token_hash == hash_token(only_token(mail.message))


async def test_retry_waits_never_exceed_the_configured_longest_wait(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer
) -> None:
    smtp.rcpt_replies["c-1@example.nl"] = ["421 4.7.0 try again later"] * 2
    h = mailer_harness(smtp_backoff_max_s=0.05)
    invitation_id, value = invite(h, 1)
    with capture_logs() as logs:
        async with h.agent("mailer").test_context() as agent:
            await agent.put(value, key=b"C-1")
            await settled(
                h, lambda: status_of(h, invitation_id) == "sent", "the mail sent", limit_s=10.0
            )
    waits = [entry["retry_in"] for entry in logs if entry["event"] == "mail_deferred"]
    assert len(waits) == 2
    assert all(wait <= 0.05 for wait in waits), waits


async def test_an_invalid_invitation_is_dead_lettered_and_not_mailed(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer
) -> None:
    h = mailer_harness()
    bad = b'{"invitation_id": "x", "customer_id": "C-1"}'
    await mail_then_a_second_customer(h, bad)
    letters = h.sent_to("dead-letters")
    assert len(letters) == 1
    assert letters[0]["reason"].startswith("invalid_field:")
    assert letters[0]["source_topic"] == "survey-invitations"
    assert base64.b64decode(letters[0]["original_b64"]) == bad
    assert base64.b64decode(letters[0]["key_b64"]) == b"C-1"
    assert [m.rcpt_tos for m in smtp.received()] == [["c-2@example.nl"]]


async def test_an_invitation_missing_from_the_database_is_dead_lettered(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer
) -> None:
    h = mailer_harness()
    unknown = records.SurveyInvitation(
        invitation_id="no-such-invitation",
        event_id="e-404",
        customer_id="C-1",
        locale="en",
        created_at=NOW,
    ).to_bytes()
    async with h.agent("mailer").test_context() as agent:
        await agent.put(unknown, key=b"C-1")
        await settled(h, lambda: bool(h.sent_to("dead-letters")), "the dead letter")
    letters = h.sent_to("dead-letters")
    assert [letter["reason"] for letter in letters] == ["not_found: invitation not in the database"]
    assert base64.b64decode(letters[0]["original_b64"]) == unknown
    assert smtp.rcpt_attempts() == []
    assert smtp.received() == []


# --- consent and the unsubscribe link ---------------------------------------------------


def opt_out(h: Harness, customer: str, channel: str = "email") -> None:
    record_consents(
        h.rt.engine,
        [
            Consent(
                consent_id=f"opt-out-{customer}",
                customer_id=customer,
                channel=channel,
                status="opted_out",
                changed_at=NOW - timedelta(minutes=5),
                source="preference_centre",
            )
        ],
        NOW,
    )


@pytest.mark.parametrize("channel", ["email", "all"])
async def test_an_opted_out_customer_is_cancelled_and_not_mailed(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer, channel: str
) -> None:
    h = mailer_harness()
    out, value = invite(h, 1)
    opt_out(h, "C-1", channel)  # after the decision, before the send
    await mail_then_a_second_customer(h, value)
    assert smtp.attempts_for("c-1@example.nl") == 0
    assert [m.rcpt_tos for m in smtp.received()] == [["c-2@example.nl"]]
    row = invitation(h, out)
    assert (row.delivery_status, row.delivery_error) == ("cancelled", "opted out")
    assert row.delivery_attempts == 0
    assert row.token_hash is None
    assert row.sent_at is None
    assert h.sent_to("dead-letters") == []


async def test_a_phone_opt_out_does_not_stop_the_mail(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer
) -> None:
    h = mailer_harness()
    invitation_id, value = invite(h, 1)
    opt_out(h, "C-1", "phone")
    async with h.agent("mailer").test_context() as agent:
        await agent.put(value, key=b"C-1")
        await settled(h, lambda: status_of(h, invitation_id) == "sent", "the mail sent")
    assert [m.rcpt_tos for m in smtp.received()] == [["c-1@example.nl"]]


async def test_every_mail_has_a_one_click_unsubscribe_link_with_the_survey_token(
    mailer_harness: Callable[..., Harness], smtp: SmtpServer
) -> None:
    h = mailer_harness()
    invitation_id, value = invite(h, 1)
    async with h.agent("mailer").test_context() as agent:
        await agent.put(value, key=b"C-1")
        await settled(h, lambda: status_of(h, invitation_id) == "sent", "the mail sent")
    message = smtp.received()[0].message
    token = only_token(message)
    unsubscribe = f"https://survey.example.test/u/{token}"
    assert message["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert unsubscribe in plain.get_content()
    assert f'href="{unsubscribe}"' in html.get_content()
