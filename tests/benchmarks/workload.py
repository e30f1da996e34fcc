"""Workloads: contact events with realistic repeats, stored answers, produced to tansu."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import Engine, insert

from models.store.engine import make_engine, transaction
from models.store.schema import create_schema
from models.store.tables import CustomerContactState, FollowupTask, SurveyInvitation, SurveyResponse
from models.task_lifecycle import TaskOrigin, task_id_for
from models.tokens import hash_token
from streams.records import SurveyResponse as SurveyResponseRecord
from streams.topic_admin import ensure_topics
from streams.topics import ALL_TOPICS
from tests.factories import contact_event_data

CUSTOMERS = 100_000
_BENCH_NAMESPACE = uuid.UUID("5c4e1f0a-2b8d-4f53-9a1e-7d6c3b2a1f00")
NOW = datetime.now(UTC)
_KINDS = (
    ("purchase", 30),
    ("support_contact", 25),
    ("contract_change", 15),
    ("inquiry", 12),
    ("after_sales", 8),
    ("first_invoice", 5),
    ("complaint", 5),
)
_CHANNELS = ("phone", "email", "chat", "shop", "web", "social")
_LOCALES = ("nl", "nl", "nl", "en", "en", "bg", "no")
_PARTNERS = ("CBG Connect", "Belcompany", "Phone House", None, None)
_PRODUCTS = ("KPN EEN", "Internet+TV", "Zakelijk Mobiel", None)


def customer_id(i: int) -> str:
    return f"C-{i:07d}"


@dataclass(frozen=True)
class ContactWorkload:
    """Contact events as (key, value) pairs and what they should lead to."""

    messages: list[tuple[bytes, bytes]]
    distinct_events: int
    distinct_customers: int
    repeat_events: int
    duplicate_events: int


def contact_events(n: int, seed: int = 7, customers: int = CUSTOMERS) -> ContactWorkload:
    """*n* contact events over a pool of *customers* ids: 30 % of events come from customers
    seen before (picked with a power law, so a few customers contact often), 1 % are
    re-deliveries of an earlier event (same event_id and bytes). 5 % of customers have no
    e-mail address, 5 % of events are complaints; each value is ~300–400 bytes of JSON."""
    rng = random.Random(seed)
    pool = list(range(customers))
    rng.shuffle(pool)
    next_new = 0
    seen: list[int] = []
    messages: list[tuple[bytes, bytes]] = []
    kinds = [k for k, _ in _KINDS]
    weights = [w for _, w in _KINDS]
    repeats = duplicates = 0
    for i in range(n):
        if messages and rng.random() < 0.01:
            messages.append(messages[int(len(messages) * rng.random())])
            duplicates += 1
            continue
        if seen and (rng.random() < 0.3 or next_new >= customers):
            # Power law over first appearance: early customers are the frequent ones.
            who = seen[min(len(seen) - 1, int(len(seen) * rng.random() ** 3))]
            repeats += 1
        else:
            who = pool[next_new]
            next_new += 1
            seen.append(who)
        cid = customer_id(who)
        has_email = (who % 20) != 0
        # Keyword arguments in the order of the draws: the same seed gives the same events.
        event = contact_event_data(
            f"evt-{seed}-{i:08d}",
            at=(NOW - timedelta(minutes=rng.randint(1, 600))).isoformat(),
            kind=rng.choices(kinds, weights)[0],
            customer=cid,
            channel=rng.choice(_CHANNELS),
            email=f"{cid.lower()}@example.nl" if has_email else None,
            name=f"Klant {who}",
            locale=_LOCALES[who % len(_LOCALES)],
            partner=rng.choice(_PARTNERS),
            product=rng.choice(_PRODUCTS),
            case_id=f"K-{rng.randint(1, 999_999)}",
        )
        messages.append((cid.encode(), orjson.dumps(event)))
    distinct = len({orjson.loads(v)["event_id"] for _, v in messages})
    return ContactWorkload(messages, distinct, len(seen), repeats, duplicates)


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def seed_customer_state(
    engine: Engine, customers: int = CUSTOMERS, seed: int = 11
) -> dict[str, int]:
    """What cxloop would hold for a customer base that has been running a while: 40 % of the
    customers surveyed before (15 % inside the 180-day cap), 1 % with an open task."""
    rng = random.Random(seed)
    state, tasks = [], []
    inside = outside = 0
    for who in range(customers):
        roll = rng.random()
        if roll < 0.15:
            last = NOW - timedelta(days=rng.randint(1, 170))
            inside += 1
        elif roll < 0.40:
            last = NOW - timedelta(days=rng.randint(200, 900))
            outside += 1
        else:
            continue
        state.append({"customer_id": customer_id(who), "last_surveyed_at": last})
    for who in rng.sample(range(customers), customers // 100):
        source = f"seed-{who}"
        tasks.append(
            {
                "task_id": task_id_for(TaskOrigin.DETRACTOR, source),
                "origin": TaskOrigin.DETRACTOR.value,
                "source_id": source,
                "customer_id": customer_id(who),
                "priority": 1,
                "status": "open",
                "opened_at": NOW - timedelta(days=1),
                "due_at": NOW + timedelta(days=1),
            }
        )
    for chunk in _chunks(state, 5000):
        with transaction(engine) as session:
            session.execute(insert(CustomerContactState), list(chunk))
    for chunk in _chunks(tasks, 5000):
        with transaction(engine) as session:
            session.execute(insert(FollowupTask), list(chunk))
    return {"state_rows": len(state), "inside_cap": inside, "open_tasks": len(tasks)}


def prepare_database(url: str, seed_state: bool = True) -> dict[str, int]:
    engine = make_engine(url)
    try:
        create_schema(engine)
        return seed_customer_state(engine) if seed_state else {}
    finally:
        engine.dispose()


# --- answers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAnswer:
    response_id: str
    customer_id: str
    nps: int
    record: bytes  # the SurveyResponse record as the survey page publishes it

    @property
    def task_id(self) -> str:
        return task_id_for(TaskOrigin.DETRACTOR, self.response_id)

    @property
    def detractor(self) -> bool:
        return self.nps <= 6


def store_answers(
    url: str, n: int, seed: int, *, detractors_only: bool, prefix: str = "ans"
) -> list[StoredAnswer]:
    """*n* invitations that were mailed and answered, stored as the survey page stores them
    (invitation with token hash and answered_at, answer row already published), bulk-inserted
    with Core in 5,000-row transactions. Returns the records to put on survey-responses."""
    rng = random.Random(seed)
    invitations, responses, answers = [], [], []
    for i in range(n):
        who = rng.randrange(CUSTOMERS)
        cid = customer_id(who)
        event_id = f"{prefix}-evt-{seed}-{i:08d}"
        invitation_id = str(uuid.uuid5(_BENCH_NAMESPACE, f"invitation:{event_id}"))
        response_id = str(uuid.uuid5(_BENCH_NAMESPACE, f"response:{event_id}"))
        # Realistic NPS mix: ~35 % detractors, ~25 % passives, ~40 % promoters.
        nps = rng.randint(0, 6) if detractors_only or rng.random() < 0.35 else rng.randint(7, 10)
        submitted = NOW - timedelta(seconds=rng.randint(1, 3600))
        invitations.append(
            {
                "invitation_id": invitation_id,
                "event_id": event_id,
                "customer_id": cid,
                "email": f"{cid.lower()}@example.nl",
                "name": f"Klant {who}",
                "locale": _LOCALES[who % len(_LOCALES)],
                "kind": "purchase",
                "channel": "shop",
                "partner": None,
                "product": "KPN EEN",
                "created_at": submitted - timedelta(days=1),
                "token_hash": hash_token(f"token-{event_id}"),
                "expires_at": submitted + timedelta(days=29),
                "delivery_status": "sent",
                "delivery_attempts": 1,
                "sent_at": submitted - timedelta(days=1),
                "answered_at": submitted,
            }
        )
        responses.append(
            {
                "response_id": response_id,
                "invitation_id": invitation_id,
                "customer_id": cid,
                "nps": nps,
                "csat": None,
                "comment": "Te lang in de wacht gestaan." if nps <= 6 else None,
                "submitted_at": submitted,
                "published_at": submitted,  # published: the outbox relay leaves it alone
            }
        )
        record = SurveyResponseRecord(
            response_id=response_id,
            invitation_id=invitation_id,
            customer_id=cid,
            submitted_at=submitted,
            nps=nps,
        ).to_bytes()
        answers.append(StoredAnswer(response_id, cid, nps, record))
    engine = make_engine(url)
    try:
        create_schema(engine)
        for inv_chunk, resp_chunk in zip(
            _chunks(invitations, 5000), _chunks(responses, 5000), strict=True
        ):
            with transaction(engine) as session:
                session.execute(insert(SurveyInvitation), list(inv_chunk))
                session.execute(insert(SurveyResponse), list(resp_chunk))
    finally:
        engine.dispose()
    return answers


# --- Kafka --------------------------------------------------------------------------------


async def create_topics(bootstrap: str, names: Sequence[str] = ALL_TOPICS) -> None:
    await ensure_topics(bootstrap, tuple(names), 8, 1)


async def produce(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> float:
    """Produce (key, value) pairs as fast as the broker takes them; returns the seconds taken."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=65536)
    await producer.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        futures = []
        for key, value in messages:
            futures.append(await producer.send(topic, value=value, key=key))
            if len(futures) >= 10_000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
        return loop.time() - started
    finally:
        await producer.stop()
