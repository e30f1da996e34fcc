"""SQLite timestamps as ISO 8601 with an explicit UTC offset (no-op on PostgreSQL).

Until now SQLite stored every timestamp column as naive text, `2026-12-04 17:05:00.123456`
(UTC, but nothing said so); from this revision on cxloop writes
`2026-12-04T17:05:00.123456+00:00` (models.store.tables.UTCDateTime), the same instant a
BI tool reads from PostgreSQL's timestamptz. This rewrites the stored values of every
timestamp column in place, one UPDATE per table for the values in the old format; any other
text SQLite may hold (e.g. `2026-12-04 17:05:00+00:00` from a hand-written insert) is parsed
with datetime.fromisoformat, taken as UTC when it has no offset and written in the new
format; a value that does not parse stops the migration. SQLite compares these columns as
text, so every value must have one format for range filters, ORDER BY and due timers to stay
right. The downgrade writes the old format back. The schema itself does not change.

Revision ID: 0003_utc_iso_timestamps
Revises: 0002_bi_sink
Create Date: 2026-12-04 17:20:00.000000
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision: str = "0003_utc_iso_timestamps"
down_revision: str | None = "0002_bi_sink"
branch_labels: str | None = None
depends_on: str | None = None

# Every timestamp column at 0002_bi_sink (frozen: later columns are written in the new
# format from the start).
TIMESTAMP_COLUMNS: dict[str, tuple[str, ...]] = {
    "contact_events": ("occurred_at", "received_at"),
    "customer_contact_state": ("last_surveyed_at",),
    "customer_programme_state": ("last_surveyed_at",),
    "survey_decisions": ("due_at", "decided_at", "resolved_at"),
    "survey_timers": ("first_due_at", "due_at"),
    "survey_invitations": (
        "next_reminder_at",
        "created_at",
        "expires_at",
        "sent_at",
        "answered_at",
    ),
    "survey_reminders": ("created_at", "sent_at"),
    "survey_responses": ("submitted_at", "published_at", "scored_at"),
    "followup_tasks": (
        "opened_at",
        "first_contact_due_at",
        "due_at",
        "sla_due_at",
        "next_escalation_at",
        "contacted_at",
        "informed_at",
        "closed_at",
    ),
    "followup_task_events": ("occurred_at", "created_at", "published_at", "lease_until"),
    "followup_actions": ("recorded_at",),
    "structural_fixes": ("created_at",),
    "staff_users": ("last_assigned_at", "created_at"),
    "staff_sessions": ("created_at", "expires_at"),
    "staff_notifications": ("next_attempt_at", "created_at", "sent_at"),
    "webhook_deliveries": ("next_attempt_at", "created_at", "delivered_at"),
    "dead_letters": ("received_at",),
    "customer_consent": ("changed_at", "recorded_at"),
    "agg_scores": ("updated_at",),
    "agg_invitations": ("updated_at",),
}

# GLOB patterns of the two formats (a GLOB matches the whole value) and the SQL that turns
# one into the other: the date (1–10) and the time with microseconds (12–26) stay.
_DIGITS = {n: "[0-9]" * n for n in (2, 4, 6)}
_DAY = f"{_DIGITS[4]}-{_DIGITS[2]}-{_DIGITS[2]}"
_TIME = f"{_DIGITS[2]}:{_DIGITS[2]}:{_DIGITS[2]}.{_DIGITS[6]}"
OLD_GLOB = f"{_DAY} {_TIME}"  # 2026-12-04 17:05:00.123456
NEW_GLOB = f"{_DAY}T{_TIME}+00:00"  # 2026-12-04T17:05:00.123456+00:00
_TO_NEW = "substr({c}, 1, 10) || 'T' || substr({c}, 12, 15) || '+00:00'"
_TO_OLD = "substr({c}, 1, 10) || ' ' || substr({c}, 12, 15)"


def _new_text(at: datetime) -> str:
    return at.isoformat(sep="T", timespec="microseconds")


def _old_text(at: datetime) -> str:
    return at.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rewrite(OLD_GLOB, _TO_NEW, NEW_GLOB, _new_text)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rewrite(NEW_GLOB, _TO_OLD, OLD_GLOB, _old_text)


def _rewrite(source: str, convert: str, target: str, render: Callable[[datetime], str]) -> None:
    """Every timestamp in *source* format becomes *convert* of itself (one UPDATE per
    table); then whatever is in neither format is parsed and rendered in *target* format."""
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    for table, columns in TIMESTAMP_COLUMNS.items():
        if table not in present:
            continue
        sets = ", ".join(
            f"{c} = CASE WHEN {c} GLOB '{source}' THEN {convert.format(c=c)} ELSE {c} END"
            for c in columns
        )
        matches = " OR ".join(f"{c} GLOB '{source}'" for c in columns)
        bind.execute(sa.text(f"UPDATE {table} SET {sets} WHERE {matches}"))  # noqa: S608 - names above
        for column in columns:
            _rewrite_others(bind, table, column, target, render)


def _rewrite_others(
    bind: sa.Connection,
    table: str,
    column: str,
    target: str,
    render: Callable[[datetime], str],
) -> None:
    others = bind.execute(
        sa.text(
            f"SELECT rowid, {column} FROM {table} "  # noqa: S608 - names from the list above
            f"WHERE {column} IS NOT NULL AND NOT ({column} GLOB '{target}')"
        )
    ).all()
    updates = []
    for rowid, value in others:
        try:
            at = datetime.fromisoformat(str(value))
        except ValueError:
            # CommandError: `cxloop db` reports it in one line; the transaction rolls back.
            raise CommandError(
                f"{table}.{column} (rowid {rowid}) holds {str(value)[:40]!r}, which is not a "
                "timestamp: fix or clear it, then run the migration again"
            ) from None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        updates.append({"rowid": rowid, "value": render(at)})
    if updates:
        bind.execute(
            sa.text(f"UPDATE {table} SET {column} = :value WHERE rowid = :rowid"),  # noqa: S608
            updates,
        )
