"""Consent in SQL: the latest opt-out/opt-in per customer and channel, read at send time.

record_consents is idempotent and order-independent: a change is written only if it wins
over the stored one (models.consent.precedence), so replays and late arrivals are no-ops.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Insert, and_, or_, select
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.elements import KeyedColumnElement
from sqlmodel import Session, col

from models.consent import (
    OPTED_IN,
    OPTED_OUT,
    SURVEY_CHANNELS,
    Consent,
    covering_channels,
    latest_per_key,
)
from models.consent import is_opted_out as _is_opted_out
from models.store.engine import dialect_insert, transaction
from models.store.survey_tokens import invitation_by_token
from models.store.tables import CustomerConsent

_CHUNK = 500  # ids per IN (...) list
_CHANGE_COLUMNS = ("status", "changed_at", "source", "consent_id", "recorded_at")
Columns = ReadOnlyColumnCollection[str, KeyedColumnElement[Any]]


@dataclass(frozen=True)
class ConsentsRecorded:
    """What a batch did: changes now current (new or replayed) and changes superseded."""

    current: int
    superseded: int


def record_consents(engine: Engine, changes: Sequence[Consent], now: datetime) -> ConsentsRecorded:
    """Write a batch of changes in one transaction, last writer wins by changed_at."""
    winners = latest_per_key(changes)
    if not winners:
        return ConsentsRecorded(0, 0)
    rows = [
        {
            "customer_id": c.customer_id,
            "channel": c.channel,
            "status": c.status,
            "changed_at": c.changed_at,
            "source": c.source,
            "consent_id": c.consent_id,
            "recorded_at": now,
        }
        for c in winners.values()
    ]
    with transaction(engine) as session:
        session.connection().execute(_upsert_if_newer(session), rows)
        stored = _stored(session, {customer for customer, _ in winners})
    current = sum(
        1
        for c in changes
        if (s := stored.get((c.customer_id, c.channel))) is not None
        and s.consent_id == c.consent_id
    )
    return ConsentsRecorded(current=current, superseded=len(changes) - current)


def _upsert_if_newer(session: Session) -> Insert:
    insert = dialect_insert(session, CustomerConsent)  # Core: one executemany
    return insert.on_conflict_do_update(
        index_elements=["customer_id", "channel"],
        set_=_taken_over(insert.excluded),
        where=_newer(insert.excluded, insert.table.c),
    )


def _taken_over(new: Columns) -> dict[str, Any]:
    return {name: new[name] for name in _CHANGE_COLUMNS}


def _newer(new: Columns, old: Columns) -> ColumnElement[bool]:
    # models.consent.precedence, in SQL: later changed_at; on a tie opt-out over opt-in,
    # then the larger consent_id. The same change again is not newer: a replay is a no-op.
    return or_(
        new.changed_at > old.changed_at,
        and_(
            new.changed_at == old.changed_at,
            or_(
                and_(new.status == OPTED_OUT, old.status == OPTED_IN),
                and_(new.status == old.status, new.consent_id > old.consent_id),
            ),
        ),
    )


def _stored(
    session: Session, customer_ids: Iterable[str], channels: Sequence[str] | None = None
) -> dict[tuple[str, str], Consent]:
    ids = sorted(set(customer_ids))
    found: dict[tuple[str, str], Consent] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(CustomerConsent).where(
            col(CustomerConsent.customer_id).in_(ids[start : start + _CHUNK])
        )
        if channels is not None:
            query = query.where(col(CustomerConsent.channel).in_(channels))
        for row in session.execute(query).scalars():
            found[(row.customer_id, row.channel)] = Consent(
                consent_id=row.consent_id,
                customer_id=row.customer_id,
                channel=row.channel,
                status=row.status,
                changed_at=row.changed_at,
                source=row.source,
            )
    return found


def opted_out(session: Session, customer_ids: Iterable[str], channel: str) -> set[str]:
    """The customers among *customer_ids* who may not be surveyed on *channel* ('email' or
    'phone'): the latest change covering it (that channel's or 'all') is an opt-out.
    Runs inside the caller's transaction."""
    return opted_out_by_channel(session, customer_ids, (channel,))[channel]


def opted_out_by_channel(
    session: Session, customer_ids: Iterable[str], channels: Sequence[str] = SURVEY_CHANNELS
) -> dict[str, set[str]]:
    """opted_out for each of *channels*, from one read of the customers' consent rows."""
    covering = sorted({c for channel in channels for c in covering_channels(channel)})
    by_customer: dict[str, list[Consent]] = defaultdict(list)
    for consent in _stored(session, customer_ids, covering).values():
        by_customer[consent.customer_id].append(consent)
    return {
        channel: {c for c, found in by_customer.items() if _is_opted_out(found, channel)}
        for channel in channels
    }


def opted_out_now(engine: Engine, customer_ids: Iterable[str], channel: str) -> set[str]:
    """opted_out in a transaction of its own."""
    with transaction(engine) as session:
        return opted_out(session, customer_ids, channel)


@dataclass(frozen=True)
class TokenHolder:
    """Whom a survey link was sent to, for its unsubscribe page."""

    invitation_id: str
    customer_id: str
    locale: str


def customer_for_token_in(session: Session, token_hash: str) -> TokenHolder | None:
    """The customer behind a survey token, answered or expired alike (unsubscribing must
    keep working after the survey is over); None for an unknown token."""
    row = invitation_by_token(session, token_hash)
    if row is None:
        return None
    return TokenHolder(
        invitation_id=row.invitation_id, customer_id=row.customer_id, locale=row.locale
    )


def customer_for_token(engine: Engine, token_hash: str) -> TokenHolder | None:
    """customer_for_token_in in a transaction of its own."""
    with transaction(engine) as session:
        return customer_for_token_in(session, token_hash)
