"""consent: keep the latest opt-out/opt-in per customer and channel in SQL, where the
mailer checks it at send time."""

from __future__ import annotations

from collections.abc import Sequence

import faust
import structlog

from agents.consume import consume_batches, reason_for, refusal, send_to_dead_letters
from agents.runtime import Runtime
from models.consent import Consent
from models.store.consent import record_consents
from streams.records import ConsentChange, DeadLetterReason, dead_letter_reason

log = structlog.get_logger("cxloop.consent")

_TOMBSTONE = dead_letter_reason(
    DeadLetterReason.NULL_VALUE, "a consent tombstone; send opted_in instead"
)


async def handle_consent_changes(rt: Runtime, events: Sequence[faust.EventT[bytes]]) -> None:
    """Decode → record the batch last-writer-wins in one transaction → one log line."""
    changes: list[Consent] = []
    for event in events:
        if event.value is None:
            # A tombstone would make compaction forget an opt-out; consent is only ever
            # changed by a newer change, so it is refused where an operator sees it.
            await send_to_dead_letters(rt, event, _TOMBSTONE)
            continue
        refused = refusal(event.value, rt.settings.max_message_bytes)
        if refused is not None:
            await send_to_dead_letters(rt, event, refused)
            continue
        try:
            change = ConsentChange.from_bytes(event.value)
        except (ValueError, TypeError) as exc:
            await send_to_dead_letters(rt, event, reason_for(exc))
            continue
        changes.append(
            Consent(
                consent_id=change.consent_id,
                customer_id=change.customer_id,
                channel=change.channel,
                status=change.status,
                changed_at=change.changed_at,
                source=change.source,
            )
        )
    if not changes:
        return
    recorded = await rt.db(record_consents, rt.engine, changes, rt.clock())
    log.info(
        "consents_recorded",
        events=len(events),
        current=recorded.current,
        superseded=recorded.superseded,
    )


def register(app: faust.App, rt: Runtime) -> None:
    @app.agent(rt.topics.customer_consent, name="consent")
    async def consent(stream: faust.StreamT[bytes]) -> None:
        await consume_batches(rt, "consent", stream, handle_consent_changes)
