"""Send what a decision or a due timer produced: e-mail surveys to the mailer, phone
surveys to the interviewers' call list."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from datetime import timedelta

from agents.runtime import Runtime
from models.store.call_list import phone_invitations
from models.store.reminders import ReminderInfo
from models.store.survey_state import InvitationInfo
from streams.records import CallListEntry, SurveyInvitation


def send_invitation(
    rt: Runtime, info: InvitationInfo | ReminderInfo, reminder: int = 0
) -> Awaitable[None]:
    """Put an e-mail survey (*reminder* 0) or its n-th reminder on survey-invitations."""
    record = SurveyInvitation(
        invitation_id=info.invitation_id,
        event_id=info.event_id,
        customer_id=info.customer_id,
        locale=info.locale,
        created_at=info.created_at,
        programme=info.programme,
        template=info.template,
        reminder=reminder,
    )
    return rt.send(rt.topics.survey_invitations, info.customer_id, record.to_bytes())


async def dispatch_invitations(rt: Runtime, invitations: Iterable[InvitationInfo]) -> None:
    """Publish each new invitation where it is worked: survey-invitations or call-list.

    Sent again on a replay; the mailer and the call list are idempotent on invitation id.
    """
    wanted = list(invitations)
    sends: list[Awaitable[None]] = []
    phone = [i.invitation_id for i in wanted if i.survey_channel == "phone"]
    rows = await rt.db(phone_invitations, rt.engine, phone) if phone else {}
    for invitation in wanted:
        if invitation.survey_channel == "phone":
            row = rows.get(invitation.invitation_id)
            if row is not None:
                entry = CallListEntry(
                    invitation_id=row.invitation_id,
                    customer_id=row.customer_id,
                    programme=row.programme or "",
                    template=row.template,
                    locale=row.locale,
                    created_at=row.created_at,
                    expires_at=row.expires_at or row.created_at + timedelta(days=7),
                    phone=row.phone,
                    name=row.name,
                )
                sends.append(rt.send(rt.topics.call_list, row.customer_id, entry.to_bytes()))
            continue
        sends.append(send_invitation(rt, invitation))
    await asyncio.gather(*sends)
