"""Why was (or wasn't) this customer surveyed: one customer's history from the SQL tables.

Reads contacts, survey decisions (with programme, rule, rules version and reason), pending
timers, invitations, answers and follow-up tasks, and puts them in time order with a
one-line explanation per reason code. Never reads e-mail addresses, phone numbers, names
or answer comments.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.eligibility import Reason
from models.store.tables import (
    ContactEvent,
    FollowupTask,
    SurveyDecision,
    SurveyInvitation,
    SurveyResponse,
    SurveyTimer,
)

# Sort rank of entries at the same instant: a contact comes before what it caused.
_RANK = {"contact": 0, "decision": 1, "timer": 2, "survey": 3, "answer": 4, "task": 5}

_EXPLANATIONS: dict[str, str] = {
    Reason.SURVEYED: "every check passed: the survey was created",
    Reason.SCHEDULED: "waiting: the survey is due at {due}",
    Reason.OUTSIDE_WINDOW_DEFERRED: "due outside the programme's send window: deferred to {due}",
    Reason.SAMPLED_OUT: "not drawn by the programme's sampling rate",
    Reason.RECENTLY_SURVEYED: "surveyed within the contact-frequency cap or the programme's "
    "cooldown (last survey at {last})",
    Reason.OPEN_FOLLOWUP: "a follow-up task for this customer was still open",
    Reason.OPEN_COMPLAINT: "a complaint of this customer was still open",
    Reason.OPTED_OUT: "the customer opted out of surveys on the programme's channel",
    Reason.NO_CONTACT_ADDRESS: "no usable e-mail address or phone number for the "
    "programme's channel",
    Reason.DUPLICATE_EVENT: "the same event id arrived before: nothing changed",
    Reason.ALREADY_SCHEDULED: "the programme already waits to survey this customer",
    Reason.SUPERSEDED: "a later contact on the same case restarted the wait: the survey "
    "goes after the last contact",
    Reason.CANCELLED: "a contact that cancels this programme (e.g. a complaint or "
    "cancellation) came before the survey was due",
    Reason.EXPIRED: "could not be sent within the programme's expiry",
    Reason.NO_PROGRAMME: "no programme's rule matches this kind of contact",
    Reason.PROGRAMME_REMOVED: "the rules in force no longer have this programme",
}


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of a customer's history."""

    at: datetime
    what: str  # contact, decision, timer, survey, answer, task
    detail: str
    programme: str | None = None
    rule: str | None = None
    rules_version: str | None = None
    outcome: str | None = None
    reason: str | None = None


def explain_reason(
    reason: str,
    *,
    due: datetime | None = None,
    last_survey: datetime | None = None,
    programme: str | None = None,
) -> str:
    """A one-line human explanation of a decision's reason code."""
    if reason == Reason.OPEN_COMPLAINT and programme is None:
        return "the contact is a complaint: no survey, a complaint task is opened instead"
    template = _EXPLANATIONS.get(reason)
    if template is None:
        return f"reason {reason!r} (not known to this version of cxloop)"
    return template.format(
        due=_when(due) if due else "an unknown time",
        last=_when(last_survey) if last_survey else "an unknown time",
    )


def customer_timeline(engine: Engine, customer_id: str) -> list[TimelineEntry]:
    """Everything cxloop recorded about *customer_id*, oldest first."""
    with Session(engine) as session:
        contacts = session.execute(
            select(ContactEvent).where(col(ContactEvent.customer_id) == customer_id)
        ).scalars()
        decisions = list(
            session.execute(
                select(SurveyDecision).where(col(SurveyDecision.customer_id) == customer_id)
            ).scalars()
        )
        timers = session.execute(
            select(
                col(SurveyTimer.decision_id),
                col(SurveyTimer.programme),
                col(SurveyTimer.rule),
                col(SurveyTimer.due_at),
            ).where(col(SurveyTimer.customer_id) == customer_id)
        ).all()
        # Column by column: the invitation row also holds the address and the name.
        invitations = session.execute(
            select(
                col(SurveyInvitation.invitation_id),
                col(SurveyInvitation.decision_id),
                col(SurveyInvitation.programme),
                col(SurveyInvitation.rule),
                col(SurveyInvitation.template),
                col(SurveyInvitation.survey_channel),
                col(SurveyInvitation.created_at),
                col(SurveyInvitation.delivery_status),
                col(SurveyInvitation.sent_at),
                col(SurveyInvitation.reminders_sent),
                col(SurveyInvitation.answered_at),
            ).where(col(SurveyInvitation.customer_id) == customer_id)
        ).all()
        responses = session.execute(
            select(
                col(SurveyResponse.invitation_id),
                col(SurveyResponse.submitted_at),
                col(SurveyResponse.nps),
                col(SurveyResponse.csat),
                col(SurveyResponse.ces),
            ).where(col(SurveyResponse.customer_id) == customer_id)
        ).all()
        tasks = session.execute(
            select(FollowupTask).where(col(FollowupTask.customer_id) == customer_id)
        ).scalars()

        entries = [_contact_entry(c) for c in contacts]
        survey_times = sorted(i.created_at for i in invitations)
        versions = {d.decision_id: d.rules_version for d in decisions}
        entries.extend(_decision_entry(d, survey_times) for d in decisions)
        entries.extend(
            TimelineEntry(
                at=due_at,
                what="timer",
                detail=f"pending survey timer, due {_when(due_at)}",
                programme=programme,
                rule=rule,
                rules_version=versions.get(decision_id),
                outcome="pending",
            )
            for decision_id, programme, rule, due_at in timers
        )
        programme_of = {}
        for i in invitations:
            programme_of[i.invitation_id] = (i.programme, i.rule)
            entries.append(
                TimelineEntry(
                    at=i.created_at,
                    what="survey",
                    detail=(
                        f"{i.template} survey by {i.survey_channel}: delivery {i.delivery_status}"
                        f", sent {_when(i.sent_at) if i.sent_at else '-'}"
                        f", reminders sent {i.reminders_sent}"
                        f", answered {_when(i.answered_at) if i.answered_at else '-'}"
                    ),
                    programme=i.programme,
                    rule=i.rule,
                    rules_version=versions.get(i.decision_id or ""),
                )
            )
        for invitation_id, submitted_at, nps, csat, ces in responses:
            scores = [
                f"{name} {value}"
                for name, value in (("NPS", nps), ("CSAT", csat), ("CES", ces))
                if value is not None
            ]
            programme, rule = programme_of.get(invitation_id, (None, None))
            entries.append(
                TimelineEntry(
                    at=submitted_at,
                    what="answer",
                    detail="answered: " + (", ".join(scores) or "no scores"),
                    programme=programme,
                    rule=rule,
                )
            )
        entries.extend(_task_entry(t) for t in tasks)
    entries.sort(key=lambda e: (e.at, _RANK.get(e.what, 9)))
    return entries


def _contact_entry(c: ContactEvent) -> TimelineEntry:
    parts = [f"{c.kind} contact by {c.channel}", f"event {c.event_id}"]
    parts += [f"{name} {value}" for name, value in _optional(c) if value]
    return TimelineEntry(at=c.occurred_at, what="contact", detail=", ".join(parts))


def _optional(c: ContactEvent) -> list[tuple[str, str | None]]:
    return [("case", c.case_id), ("partner", c.partner), ("product", c.product)]


def _decision_entry(d: SurveyDecision, survey_times: list[datetime]) -> TimelineEntry:
    last = None
    if d.reason == Reason.RECENTLY_SURVEYED:
        # The latest survey before this decision was resolved (the one that blocked it).
        at = d.resolved_at or d.decided_at
        i = bisect.bisect_right(survey_times, at)
        last = survey_times[i - 1] if i else None
    why = explain_reason(d.reason, due=d.due_at, last_survey=last, programme=d.programme)
    when = [f"decided {_when(d.decided_at)}"]
    if d.due_at is not None:
        when.append(f"due {_when(d.due_at)}")
    if d.resolved_at is not None:
        when.append(f"resolved {_when(d.resolved_at)}")
    if d.repeat:
        when.append(f"repeat {d.repeat}")
    return TimelineEntry(
        at=d.decided_at,
        what="decision",
        detail=f"{why} ({'; '.join(when)})",
        programme=d.programme,
        rule=d.rule,
        rules_version=d.rules_version,
        outcome=d.outcome,
        reason=d.reason,
    )


def _task_entry(t: FollowupTask) -> TimelineEntry:
    closed = f", closed {_when(t.closed_at)}" if t.closed_at else ""
    return TimelineEntry(
        at=t.opened_at,
        what="task",
        detail=(
            f"{t.origin} follow-up task {t.status}, priority {t.priority}, "
            f"due {_when(t.due_at)}{closed}"
        ),
    )


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
