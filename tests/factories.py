"""Test data for every suite: contact events, consent changes, surveys and answers, follow-up
tasks and staff users.

One builder per kind of data. Where tests want other defaults, they pass parameters (or
bind them once with functools.partial); the presets below are the conventions several
modules share. Plain functions, so the fault workloads and the benchmarks use them too.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from sqlalchemy import Engine
from sqlmodel import Session

from models.consent import Consent
from models.contact_events import ContactEvent, parse_contact_event
from models.scoring import csat_satisfied, nps_category
from models.store.aggregates import add_invitations
from models.store.engine import insert_many_if_absent, insert_many_returning_new, transaction
from models.store.surveys import record_scores, store_answer
from models.store.tables import ContactEvent as ContactEventRow
from models.store.tables import FollowupTask, StaffUser, SurveyInvitation
from models.task_lifecycle import NewTask, TaskOrigin, TaskSubject, task_id_for
from streams.records import ConsentChange


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


OMITTED: Final[Any] = _Marker("OMITTED")  # leave the field out (not even null)
CUSTOMER_EMAIL: Final[Any] = _Marker("CUSTOMER_EMAIL")  # <customer id in lower case>@example.nl

# ----------------------------------------------------------------------------- contact events


def contact_event_data(
    event_id: str,
    kind: str = "purchase",
    at: datetime | str | None = None,
    customer: str = "C-1",
    *,
    channel: str = "phone",
    email: str | None = CUSTOMER_EMAIL,
    phone: str | None = OMITTED,
    name: str | None = OMITTED,
    locale: str | None = OMITTED,
    customer_fields: Mapping[str, Any] | None = None,
    partner: str | None = OMITTED,
    product: str | None = OMITTED,
    case_id: str | None = OMITTED,
    **fields: Any,
) -> dict[str, Any]:
    """One contact event as the JSON object a source system publishes.

    *at* is when it happened (a datetime is written in ISO 8601; default now). The
    customer's e-mail address is <customer in lower case>@example.nl unless *email* says
    otherwise (None: null). Fields left OMITTED are not in the object at all; *fields* are
    set last, replacing fields of the same name where they stand."""
    person: dict[str, Any] = {"id": customer}
    address = f"{customer.lower()}@example.nl" if email is CUSTOMER_EMAIL else email
    for key, value in (("email", address), ("phone", phone), ("name", name), ("locale", locale)):
        if value is not OMITTED:
            person[key] = value
    person.update(customer_fields or {})
    moment = datetime.now(UTC) if at is None else at
    data: dict[str, Any] = {
        "event_id": event_id,
        "occurred_at": moment.isoformat() if isinstance(moment, datetime) else moment,
        "kind": kind,
        "channel": channel,
        "customer": person,
    }
    for key, value in (("partner", partner), ("product", product), ("case_id", case_id)):
        if value is not OMITTED:
            data[key] = value
    data.update(fields)
    return data


def contact_event_json(*args: Any, **kwargs: Any) -> bytes:
    """contact_event_data(...) as the bytes on the contact-events topic."""
    return orjson.dumps(contact_event_data(*args, **kwargs))


def read_contact_event(*args: Any, **kwargs: Any) -> ContactEvent:
    """contact_event_data(...) as cxloop reads it from the topic or a file."""
    return parse_contact_event(contact_event_json(*args, **kwargs))


def contact_event(
    event_id: str,
    kind: str = "purchase",
    at: datetime | str | None = None,
    customer: str = "C-1",
    **kwargs: Any,
) -> ContactEvent:
    """contact_event_data(...) as a ContactEvent made in Python: a datetime *at* is kept as
    it is (its time zone too)."""
    data = contact_event_data(event_id, kind, at, customer, **kwargs)
    if isinstance(at, datetime):
        data["occurred_at"] = at
    return ContactEvent.model_validate(data)


def file_contact_event_data(
    event_id: str,
    kind: str,
    at: datetime,
    customer: str = "C-1",
    case_id: str | None = None,
    with_email: bool = True,
) -> dict[str, Any]:
    """A contact event as a line of the files the backtest and `cxloop rules` read: by phone,
    with the customer's phone number and name, and a case id (maybe null)."""
    return contact_event_data(
        event_id,
        kind,
        at,
        customer,
        email=CUSTOMER_EMAIL if with_email else None,
        phone="+31 20 123 4567",
        name="Anna de Vries",
        case_id=case_id,
    )


def file_contact_event(*args: Any, **kwargs: Any) -> ContactEvent:
    """file_contact_event_data(...) as the backtest reads it."""
    return parse_contact_event(orjson.dumps(file_contact_event_data(*args, **kwargs)))


def live_contact_event(n: int | str, customer: str = "C-1001", **overrides: Any) -> dict[str, Any]:
    """Contact event evt-*n* as the integration tests publish it to a running cxloop: a
    support contact by phone happening now (the rules count delays and expiry from it),
    Dutch, partner, product and case; *overrides* replace or add top-level fields."""
    event = contact_event_data(
        f"evt-{n}",
        "support_contact",
        datetime.now(UTC),
        customer,
        name="Anna de Vries",
        locale="nl",
        partner="CBG Connect",
        product="KPN EEN",
        case_id="K-77",
    )
    event.update(overrides)
    return event


# ---------------------------------------------------------------------------- consent changes


def consent_change(
    n: int,
    channel: str = "email",
    status: str = "opted_out",
    at: int = 0,
    customer: str = "C-1",
    *,
    since: datetime,
    source: str,
) -> Consent:
    """Change c-*n*: *customer* *status* on *channel*, *at* minutes after *since*."""
    return Consent(
        consent_id=f"c-{n}",
        customer_id=customer,
        channel=channel,
        status=status,
        changed_at=since + timedelta(minutes=at),
        source=source,
    )


def consent_change_json(*args: Any, **kwargs: Any) -> bytes:
    """consent_change(...) as the ConsentChange record on the customer-consent topic."""
    return ConsentChange(**dataclasses.asdict(consent_change(*args, **kwargs))).to_bytes()


# ------------------------------------------------------------------------ surveys and answers


def add_survey(
    engine: Engine,
    *,
    partner: str,
    at: datetime,
    nps: int | None = None,
    csat: int | None = None,
    answers: dict[str, object] | None = None,
    channel: str = "email",
    kind: str = "support_contact",
    customer: str | None = None,
    case_id: str | None = None,
) -> str | None:
    """One contact at *at*, its survey, and (when a score is given) its scored answer,
    stored as the pipeline stores them, aggregates included; the response id, if any."""
    run = uuid.uuid4().hex[:12]
    customer = customer or f"c-{run}"
    with transaction(engine) as session:
        insert_many_if_absent(
            session,
            ContactEventRow,
            [
                {
                    "event_id": f"ev-{run}",
                    "occurred_at": at,
                    "kind": kind,
                    "channel": channel,
                    "customer_id": customer,
                    "partner": partner,
                    "case_id": case_id,
                    "received_at": at,
                }
            ],
        )
        new = insert_many_returning_new(
            session,
            SurveyInvitation,
            [
                {
                    "invitation_id": f"inv-{run}",
                    "event_id": f"ev-{run}",
                    "customer_id": customer,
                    "locale": "en",
                    "kind": kind,
                    "channel": channel,
                    "partner": partner,
                    "programme": "transactional",
                    "created_at": at,
                }
            ],
            "invitation_id",
        )
        add_invitations(session, new, at)
        if nps is None and csat is None:
            return None
        invitation = session.get(SurveyInvitation, f"inv-{run}")
        assert invitation is not None
        response = store_answer(
            session,
            invitation,
            at,
            nps=nps,
            csat=csat,
            ces=None,
            comment=None,
            answers=answers or {},
        )
    record_scores(
        engine,
        [
            (
                response.response_id,
                nps_category(nps) if nps is not None else None,
                csat_satisfied(csat) if csat is not None else None,
            )
        ],
        at,
    )
    return response.response_id


# ------------------------------------------------------------------------------------- tasks


def detractor_task(n: int | str, at: datetime, nps: int = 3, **subject: Any) -> NewTask:
    """The task a detractor's answer r-*n* (customer C-*n*) opens at *at*: high priority at
    NPS 0-3, normal above; *subject* is what routing looks at (partner, language, ...)."""
    origin = TaskOrigin.DETRACTOR
    return NewTask(
        task_id=task_id_for(origin, f"r-{n}"),
        origin=origin,
        source_id=f"r-{n}",
        priority=0 if nps <= 3 else 1,
        opened_at=at,
        subject=TaskSubject(customer_id=f"C-{n}", **subject),
        nps=nps,
    )


def followup_task(task_id: str = "t-1", customer_id: str = "C-1", **fields: Any) -> FollowupTask:
    """A task row, not stored, with only these fields set."""
    return FollowupTask(task_id=task_id, customer_id=customer_id, **fields)


def add_followup_task(
    engine: Engine,
    *,
    team: str,
    opened: datetime,
    first_contact_within: timedelta = timedelta(hours=16),
    closure_within: timedelta = timedelta(hours=40),
    **values: Any,
) -> None:
    """Store a task of *team* opened at *opened* (random ids, customer "c", normal priority,
    a detractor's unless *values* say otherwise), due as the SLA says; *values* set the rest
    (status, contacted_at, ...)."""
    row = followup_task(
        uuid.uuid4().hex,
        "c",
        origin=str(values.pop("origin", "detractor")),
        source_id=uuid.uuid4().hex,
        priority=1,
        team=team,
        opened_at=opened,
        first_contact_due_at=opened + first_contact_within,
        due_at=opened + closure_within,
        sla_due_at=opened + first_contact_within,
        **values,
    )
    with transaction(engine) as session:
        session.add(row)


# ------------------------------------------------------------------------------- staff users


def staff_user(
    username: str,
    team: str | None,
    role: str = "staff",
    email: str | None = None,
    active: bool = True,
    *,
    display_name: str | None = None,
    created_at: datetime | None = None,
) -> StaffUser:
    """A staff account, not stored: shown as the username in title case unless
    *display_name*; no password, no API token."""
    fields: dict[str, Any] = {}
    if created_at is not None:
        fields["created_at"] = created_at
    return StaffUser(
        username=username,
        display_name=username.title() if display_name is None else display_name,
        email=email,
        role=role,
        team=team,
        active=active,
        **fields,
    )


def add_staff_user(engine: Engine, *args: Any, **kwargs: Any) -> None:
    """Store staff_user(...)."""
    with Session(engine) as session:
        session.add(staff_user(*args, **kwargs))
        session.commit()
