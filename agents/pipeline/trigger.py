"""trigger: decide per contact event and programme whether to survey, when, and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from functools import partial

import faust
import structlog

from agents.consume import consume_batches, decode_or_dead_letter, keyed_by_customer
from agents.pipeline.survey_dispatch import dispatch_invitations
from agents.runtime import Runtime
from models.contact_events import ContactEvent, ContactEventInvalidError, parse_contact_event
from models.store.decisions import decide_contacts

log = structlog.get_logger("cxloop.trigger")


async def handle_contacts(rt: Runtime, events: Sequence[faust.EventT[bytes]]) -> None:
    """Decode (and check the key) → plan, record and fire due surveys and open complaint
    tasks in SQL → send invitations (task events go out through the task outbox)."""
    ahead = timedelta(seconds=rt.settings.max_future_skew_s)
    parse = partial(parse_contact_event, now=rt.clock(), max_ahead=ahead)
    decoded = await decode_or_dead_letter(rt, events, parse, (ContactEventInvalidError,))
    decoded = await keyed_by_customer(rt, decoded, _customer_id)
    contacts = [contact for _, contact in decoded]
    if not contacts:
        return
    results = await rt.db(
        decide_contacts,
        rt.engine,
        contacts,
        rt.clock(),
        rt.rules,
        rt.followup,
    )
    if any(r.task is not None and r.fresh for r in results):
        rt.task_events_waiting.set()  # complaint tasks: their events wait in the outbox
    for contact, result in zip(contacts, results, strict=True):
        customer = contact.customer.id
        log.debug(
            "survey_decided",
            event_id=contact.event_id,
            customer_id=customer,
            reasons=[d.reason for d in result.decisions],
            replay=not result.fresh,
        )
    # Sent again on a replay: the decision stands, and downstream is idempotent on ids.
    await dispatch_invitations(rt, (i for r in results for i in r.invitations))
    reasons = Counter(d.reason for r in results if r.fresh for d in r.decisions)
    log.info(
        "contacts_decided",
        events=len(events),
        replays=sum(not r.fresh for r in results),
        **{f"reason_{reason}": count for reason, count in sorted(reasons.items())},
    )


def _customer_id(contact: ContactEvent) -> str:
    return contact.customer.id


def register(app: faust.App, rt: Runtime) -> None:
    @app.agent(rt.topics.contact_events, name="trigger")
    async def trigger(stream: faust.StreamT[bytes]) -> None:
        await consume_batches(rt, "trigger", stream, handle_contacts)
