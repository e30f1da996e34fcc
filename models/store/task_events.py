"""A task's history and its outboxes: record_event appends an event to the task's
history (bumping its version) and, in the same transaction, queues it for the
followup-tasks stream and for every webhook that wants it; the relay claims the
unpublished events in order per task and marks them published.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, func, or_, select, update
from sqlmodel import Session, col

from models.followup_rules import FollowupRules
from models.store.engine import OUTBOX_LEASE, insert_many_if_absent, transaction
from models.store.tables import FollowupTask, FollowupTaskHistory, WebhookDelivery
from models.task_lifecycle import TaskStatus

SYSTEM_ACTOR = "cxloop"  # the actor of the events cxloop records itself
_EVENT_NAMESPACE = uuid.UUID("0b6f7a51-3c2d-4f1e-9a8b-7c6d5e4f3a21")


def event_id_for(task_id: str, seq: int) -> str:
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{task_id}:{seq}"))


def task_event_payload(task: FollowupTask, event: FollowupTaskHistory) -> dict[str, Any]:
    """The JSON of a task event, as on followup-tasks and in webhook bodies (no contact
    details or comments: those stay behind the authenticated API)."""

    def iso(at: datetime | None) -> str | None:
        return at.isoformat() if at else None

    return {
        "event_type": event.event_type,
        "event_id": event.event_id,
        "seq": event.seq,
        "task_id": task.task_id,
        "customer_id": task.customer_id,
        "origin": task.origin,
        "priority": task.priority,
        "status": event.to_status,
        "from_status": event.from_status,
        "team": task.team,
        "assignee": task.assignee,
        "actor": event.actor,
        "reason": event.reason if event.event_type in _REASON_IS_PUBLIC else None,
        "details": event.details,
        "action_type": event.details.get("action_type"),
        "due_at": iso(task.due_at),
        "first_contact_due_at": iso(task.first_contact_due_at),
        "sla_due_at": iso(task.sla_due_at),
        "occurred_at": iso(event.occurred_at),
        "schema_version": 2,
    }


# Events whose reason is system text (routing, SLA); staff notes stay off the stream.
_REASON_IS_PUBLIC = frozenset(
    {
        "task_opened",
        "task_assigned",
        "task_reminder",
        "task_escalated",
        "task_unreachable",
        "task_action_refused",
    }
)


def record_event(
    session: Session,
    rules: FollowupRules,
    task: FollowupTask,
    event_type: str,
    from_status: TaskStatus | None,
    actor: str,
    now: datetime,
    *,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> FollowupTaskHistory:
    """Append an event to the task's history (bumping its version), and queue it for the
    stream (published_at stays empty until the relay puts it on followup-tasks) and for
    every webhook that wants it."""
    task.version += 1
    event = FollowupTaskHistory(
        event_id=event_id_for(task.task_id, task.version),
        task_id=task.task_id,
        seq=task.version,
        event_type=event_type,
        from_status=from_status.value if from_status else None,
        to_status=task.status,
        actor=actor,
        reason=reason,
        details=details or {},
        action_id=(details or {}).get("action_id"),
        occurred_at=at or now,
        created_at=now,
    )
    event.payload = task_event_payload(task, event)
    session.add(task)
    session.add(event)
    hooks = [
        h
        for h in rules.webhooks
        if (h.events is None or event_type in h.events)
        and (h.teams is None or task.team in h.teams)
    ]
    if hooks:
        body = orjson.dumps(event.payload).decode()
        insert_many_if_absent(
            session,
            WebhookDelivery,
            [
                {
                    "delivery_id": "msg_" + short_hash(f"{h.name}:{event.event_id}"),
                    "webhook": h.name,
                    "event_id": event.event_id,
                    "payload": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for h in hooks
            ],
        )
    return event


def short_hash(text: str) -> str:
    """A stable 32-hex-digit id for an outbox row (webhook delivery, staff e-mail)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def claim_unpublished_events(
    engine: Engine, now: datetime, limit: int = 500
) -> list[FollowupTaskHistory]:
    """Task events not yet on followup-tasks, leased for a minute to this
    relay (SKIP LOCKED on PostgreSQL) so relays on other workers take others. Each task's
    events come in seq order, and only from its oldest unpublished one: an event whose
    predecessor is still waiting (or leased by another relay) waits for the next round, so
    one task's events never overtake each other, whatever the workers' clocks say. A relay
    that dies mid-way leaves them to be published again after the lease: consumers drop a
    repeated event_id."""
    with transaction(engine) as session:
        candidates = list(
            session.execute(
                select(FollowupTaskHistory)
                .where(col(FollowupTaskHistory.published_at).is_(None))
                .where(
                    or_(
                        col(FollowupTaskHistory.lease_until).is_(None),
                        col(FollowupTaskHistory.lease_until) < now,
                    )
                )
                .order_by(col(FollowupTaskHistory.created_at), col(FollowupTaskHistory.seq))
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if not candidates:
            return []
        task_ids = {e.task_id for e in candidates}
        first_waiting = dict(
            session.execute(
                select(col(FollowupTaskHistory.task_id), func.min(col(FollowupTaskHistory.seq)))
                .where(col(FollowupTaskHistory.task_id).in_(task_ids))
                .where(col(FollowupTaskHistory.published_at).is_(None))
                .group_by(col(FollowupTaskHistory.task_id))
            ).all()
        )
        by_task: dict[str, dict[int, FollowupTaskHistory]] = {}
        for event in candidates:
            by_task.setdefault(event.task_id, {})[event.seq] = event
        events: list[FollowupTaskHistory] = []
        for task_id, mine in by_task.items():  # tasks in order of their oldest candidate
            seq = first_waiting[task_id]
            while seq in mine:
                events.append(mine[seq])
                seq += 1
        for event in events:
            event.lease_until = now + OUTBOX_LEASE
            session.add(event)
        return events


def mark_events_published(engine: Engine, event_ids: Sequence[str], now: datetime) -> None:
    if not event_ids:
        return
    with transaction(engine) as session:
        session.execute(
            update(FollowupTaskHistory)
            .where(col(FollowupTaskHistory.event_id).in_(list(event_ids)))
            .values(published_at=now)
        )


def task_history(engine: Engine, task_id: str) -> list[FollowupTaskHistory]:
    with transaction(engine) as session:
        return list(
            session.execute(
                select(FollowupTaskHistory)
                .where(col(FollowupTaskHistory.task_id) == task_id)
                .order_by(col(FollowupTaskHistory.seq))
            ).scalars()
        )
