"""Firing due survey timers in SQL.

fire_due_timers is the sweeper: it takes due timers through the due_at index, oldest
first, and fires them. Firing (fire_timers, which models.store.decisions also calls for the
timers a batch of contact events started that are already due) checks eligibility against
the customer's state at that moment, claims the contact-frequency cap with a conditional
UPDATE (so two workers cannot both survey one customer), creates the invitation and
schedules a repeating rule's next timer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, update
from sqlmodel import Session, col

from models.eligibility import CustomerView, Reason
from models.programmes import NewDecision, Timer, cap_of, check_due, next_repeat
from models.rules import Rules
from models.store.aggregates import add_invitations
from models.store.consent import opted_out_by_channel
from models.store.engine import (
    insert_many_if_absent,
    insert_many_returning_new,
    lock_due,
    transaction,
)
from models.store.survey_state import (
    InvitationInfo,
    decision_row,
    invitation_info,
    invitation_row,
    last_surveyed_at,
    open_task_counts,
    programme_last_surveyed_at,
    timer_from_row,
    timer_row,
)
from models.store.tables import (
    CustomerContactState,
    CustomerProgrammeState,
    SurveyDecision,
    SurveyInvitation,
    SurveyTimer,
)
from models.task_lifecycle import TaskOrigin

# Core tables for executemany statements (one round trip for a batch of rows).
_TIMERS = SurveyTimer.__table__  # type: ignore[attr-defined]
_DECISIONS = SurveyDecision.__table__  # type: ignore[attr-defined]
_PROGRAMME_STATE = CustomerProgrammeState.__table__  # type: ignore[attr-defined]

__all__ = [
    "FireResult",
    "fire_due_timers",
    "fire_timers",
    "next_due_at",
    "resolve_timers",
]


@dataclass
class FireResult:
    """What firing timers led to."""

    invitations: list[InvitationInfo] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    deferred_to: dict[str, datetime] = field(default_factory=dict)  # decision id → new due

    @property
    def deferred(self) -> int:
        return len(self.deferred_to)


def fire_due_timers(engine: Engine, rules: Rules, now: datetime, limit: int = 500) -> FireResult:
    """Fire up to *limit* timers due by *now*, oldest first (the sweeper's tick).

    The due_at index makes this cost the number of due timers, not the number pending;
    models.store.engine.lock_due lets workers sweep side by side.
    """
    with transaction(engine) as session:
        rows = lock_due(session, SurveyTimer, SurveyTimer.due_at, now, limit)
        return fire_timers(session, rules, [timer_from_row(r) for r in rows], now)


def next_due_at(engine: Engine) -> datetime | None:
    """When the earliest pending timer is due (the rules CLI tests step a clock by it)."""
    with Session(engine) as session:
        return session.execute(select(func.min(col(SurveyTimer.due_at)))).scalar()


def fire_timers(session: Session, rules: Rules, timers: list[Timer], now: datetime) -> FireResult:
    """Fire *timers* (due by *now*) in the caller's transaction, oldest first."""
    result = FireResult()
    if not timers:
        return result
    timers = sorted(timers, key=lambda t: (t.due_at, t.decision_id))
    customers = {t.customer_id for t in timers}
    last = last_surveyed_at(session, customers)
    programme_last = programme_last_surveyed_at(session, customers)
    open_tasks = open_task_counts(session, customers)
    blocked = opted_out_by_channel(session, customers)

    surveyed: list[Timer] = []
    resolved: dict[str, tuple[Timer, Reason]] = {}
    deferred: list[dict[str, Any]] = []
    for timer in timers:
        c = timer.customer_id
        view = CustomerView(
            last_surveyed_at=last.get(c),
            programme_last_surveyed=programme_last[c],
            open_complaints=open_tasks[c, TaskOrigin.COMPLAINT],
            open_followups=open_tasks[c, TaskOrigin.DETRACTOR] + open_tasks[c, TaskOrigin.UNHAPPY],
            opted_out=frozenset(ch for ch, who in blocked.items() if c in who),
        )
        outcome = check_due(rules, timer, view, now)
        if outcome.defer_to is not None:
            deferred.append(
                {
                    "b_id": timer.decision_id,
                    "b_due": outcome.defer_to,
                    "b_reason": outcome.reason.value,
                }
            )
            result.deferred_to[timer.decision_id] = outcome.defer_to
            continue
        if outcome.reason is Reason.SURVEYED:
            last[c] = now
            programme_last[c][timer.programme] = now
            surveyed.append(timer)
        resolved[timer.decision_id] = (timer, outcome.reason)

    _defer(session, deferred)
    claimed = _claim_caps(session, rules, surveyed, now)
    sent: list[Timer] = []
    for timer in surveyed:
        if timer.decision_id in claimed:
            sent.append(timer)
        else:
            # Another worker surveyed this customer since we read the state.
            resolved[timer.decision_id] = (timer, Reason.RECENTLY_SURVEYED)
    invitation_rows = [invitation_row(rules, t, now) for t in sent]
    result.invitations.extend(invitation_info(row) for row in invitation_rows)
    new_invitations = insert_many_returning_new(
        session, SurveyInvitation, invitation_rows, "invitation_id"
    )
    add_invitations(session, new_invitations, now)
    insert_many_if_absent(
        session,
        CustomerProgrammeState,
        [
            {"customer_id": t.customer_id, "programme": t.programme, "last_surveyed_at": now}
            for t in sent
        ],
    )
    programme_rows = [
        {"b_customer": t.customer_id, "b_programme": t.programme, "b_at": now} for t in sent
    ]
    if programme_rows:
        session.connection().execute(
            update(_PROGRAMME_STATE)
            .where(_PROGRAMME_STATE.c.customer_id == bindparam("b_customer"))
            .where(_PROGRAMME_STATE.c.programme == bindparam("b_programme"))
            .values(last_surveyed_at=bindparam("b_at")),
            programme_rows,
        )
    invitations = {r["decision_id"]: r["invitation_id"] for r in invitation_rows}
    resolve_timers(session, resolved.values(), now, invitations)
    repeats = [
        nxt
        for timer, reason in resolved.values()
        if reason is not Reason.PROGRAMME_REMOVED and (nxt := next_repeat(rules, timer))
    ]
    insert_many_if_absent(
        session, SurveyDecision, [decision_row(_scheduled(t), rules, now) for t in repeats]
    )
    insert_many_if_absent(session, SurveyTimer, [timer_row(t) for t in repeats])
    result.reasons.update(reason.value for _, reason in resolved.values())
    return result


def _defer(session: Session, rows: list[dict[str, Any]]) -> None:
    """Move deferred timers (b_id, b_due, b_reason) and their pending decisions, as a batch."""
    if not rows:
        return
    connection = session.connection()
    connection.execute(
        update(_TIMERS)
        .where(_TIMERS.c.decision_id == bindparam("b_id"))
        .values(due_at=bindparam("b_due")),
        rows,
    )
    connection.execute(
        update(_DECISIONS)
        .where(_DECISIONS.c.decision_id == bindparam("b_id"))
        .values(reason=bindparam("b_reason"), due_at=bindparam("b_due")),
        rows,
    )


def resolve_timers(
    session: Session,
    resolved: Iterable[tuple[Timer, Reason]],
    now: datetime,
    invitations: Mapping[str, str] | None = None,
) -> None:
    """Delete the timers and close their pending decisions with the reasons given (and the
    invitation each surveyed decision created)."""
    invitations = invitations or {}
    rows = list(resolved)
    if not rows:
        return
    ids = [t.decision_id for t, _ in rows]
    session.execute(_TIMERS.delete().where(_TIMERS.c.decision_id.in_(ids)))
    # Only a pending decision changes: one a sweeper resolved first keeps its outcome.
    session.connection().execute(
        update(_DECISIONS)
        .where(_DECISIONS.c.decision_id == bindparam("b_id"))
        .where(_DECISIONS.c.outcome == "pending")
        .values(
            outcome=bindparam("b_outcome"),
            reason=bindparam("b_reason"),
            resolved_at=bindparam("b_at"),
            invitation_id=bindparam("b_invitation"),
        ),
        [
            {
                "b_id": t.decision_id,
                "b_outcome": reason.outcome,
                "b_reason": reason.value,
                "b_at": now,
                "b_invitation": invitations.get(t.decision_id),
            }
            for t, reason in rows
        ],
    )


def _claim_caps(session: Session, rules: Rules, timers: list[Timer], now: datetime) -> set[str]:
    """Set last_surveyed_at = now for each customer not surveyed within the programme's
    cap; the decision ids whose customer was claimed.

    The conditional UPDATE … RETURNING is what keeps two workers from both surveying one
    customer: only the customers it returns may be surveyed.
    """
    if not timers:
        return set()
    insert_many_if_absent(
        session,
        CustomerContactState,
        [
            {"customer_id": c, "last_surveyed_at": None}
            for c in sorted({t.customer_id for t in timers})
        ],
    )
    by_cap: dict[timedelta, list[Timer]] = defaultdict(list)
    for timer in timers:
        programme = rules.programme(timer.programme)
        if programme is not None:
            by_cap[cap_of(programme)].append(timer)
    claimed: set[str] = set()
    for cap, group in by_cap.items():
        customers = {t.customer_id for t in group}
        got = set(
            session.execute(
                update(CustomerContactState)
                .where(col(CustomerContactState.customer_id).in_(customers))
                .where(
                    col(CustomerContactState.last_surveyed_at).is_(None)
                    | (col(CustomerContactState.last_surveyed_at) <= now - cap)
                )
                .values(last_surveyed_at=now)
                .returning(col(CustomerContactState.customer_id))
            ).scalars()
        )
        claimed.update(t.decision_id for t in group if t.customer_id in got)
    return claimed


def _scheduled(timer: Timer) -> NewDecision:
    """The pending decision a (repeat) timer stands for."""
    return NewDecision(
        timer.decision_id,
        timer.event_id,
        timer.customer_id,
        timer.programme,
        timer.rule,
        timer.repeat,
        Reason.SCHEDULED,
        timer,
    )
