"""What goes in: contact events, poison messages, and traffic that feeds and answers them."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.topics import (
    CONTACT_EVENTS,
    DEAD_LETTERS,
    FOLLOWUP_ACTIONS,
    SCORED_RESPONSES,
    SURVEY_INVITATIONS,
    SURVEY_RESPONSES,
)
from tests.factories import contact_event_data
from tests.faults.rig import Answer, Background, FaultRig
from tests.harness.smtp import Received
from tests.harness.topics import Produced

ANSWER_THREADS = 4  # customers answering at the same time
_KINDS = ("purchase", "support_contact", "contract_change", "inquiry", "after_sales")
_CHANNELS = ("phone", "email", "chat", "shop", "web")


def address_of(customer_id: str) -> str:
    return f"{customer_id.lower()}@example.nl"


def contact_events(
    count: int, customers: int, seed: int, prefix: str = "f", complaint_share: float = 0.05
) -> list[dict[str, Any]]:
    """*count* good contact events over *customers* customers, in production order.

    Every customer has an address and a non-complaint first event, so each one must end up
    surveyed exactly once (the 180-day cap forbids a second); later events are sometimes
    complaints, which open a task directly."""
    rng = random.Random(seed)
    ids = [f"{prefix.upper()}-{n:05d}" for n in range(customers)]
    owners = ids + [rng.choice(ids) for _ in range(max(count - customers, 0))]
    rng.shuffle(owners)
    seen: set[str] = set()
    events = []
    occurred_at = datetime.now(UTC).isoformat()  # the rules' expiry counts from it
    for n, customer in enumerate(owners[:count]):
        first = customer not in seen
        seen.add(customer)
        kind = rng.choice(_KINDS)
        if not first and rng.random() < complaint_share:
            kind = "complaint"
        events.append(
            contact_event_data(
                f"{prefix}-evt-{n:06d}",
                kind,
                occurred_at,
                customer,
                channel=rng.choice(_CHANNELS),  # drawn before the locale, as always
                email=address_of(customer),
                name="Anna de Vries",
                locale=rng.choice(("nl", "en", "de")),
                partner="CBG Connect",
                product="KPN EEN",
                case_id=f"K-{n}",
            )
        )
    return events


def nps_for(invitation_id: str | None) -> int:
    """A fixed score per invitation (about 64 % detractors, so many tasks)."""
    digest = hashlib.sha256((invitation_id or "").encode()).digest()
    return digest[0] % 11


# --- poison ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoisonKind:
    """A kind of bad input and what its dead letter's reason must mention."""

    name: str
    topic: str
    make: Callable[[int], bytes | None]  # None: a null value (a tombstone)
    reason_has: tuple[str, ...]


@dataclass(frozen=True)
class Poison:
    kind: PoisonKind
    produced: Produced


def _event_without(field_name: str, n: int) -> bytes:
    event = contact_events(1, 1, seed=n, prefix=f"poison{n}")[0]
    event.pop(field_name)
    return orjson.dumps(event)


def _event_with(n: int, **fields: Any) -> bytes:
    event = contact_events(1, 1, seed=n, prefix=f"poison{n}")[0]
    event.update(fields)
    return orjson.dumps(event)


CONTACT_POISON: tuple[PoisonKind, ...] = (
    PoisonKind("not JSON", CONTACT_EVENTS, lambda n: b"{not json %d" % n, ("not_json: ",)),
    PoisonKind(
        "invalid UTF-8",
        CONTACT_EVENTS,
        lambda n: b'{"event_id": "\xff\xfe%d"}' % n,
        ("UTF-8",),
    ),
    PoisonKind(
        "missing field",
        CONTACT_EVENTS,
        lambda n: _event_without("event_id", n),
        ("event_id", "required"),
    ),
    PoisonKind(
        "wrongly typed field",
        CONTACT_EVENTS,
        lambda n: _event_with(n, customer=["not", "an", "object"]),
        ("customer",),
    ),
    PoisonKind(
        "timestamp without time zone",
        CONTACT_EVENTS,
        lambda n: _event_with(n, occurred_at="2026-11-20T10:15:00"),
        ("occurred_at", "timezone"),
    ),
    PoisonKind(
        "unknown kind",
        CONTACT_EVENTS,
        lambda n: _event_with(n, kind="telepathy"),
        ("kind",),
    ),
    PoisonKind("JSON but not an object", CONTACT_EVENTS, lambda n: b"[%d]" % n, ("object",)),
    PoisonKind("empty value", CONTACT_EVENTS, lambda n: b"", ("JSON",)),
    PoisonKind("null value (tombstone)", CONTACT_EVENTS, lambda n: None, ("null_value",)),
)

# The other topics agents consume: bad bytes there must be dead-lettered as well.
INTERNAL_POISON: tuple[PoisonKind, ...] = tuple(
    PoisonKind(f"{name} on {topic}", topic, make, (reason,))
    for topic in (
        SURVEY_INVITATIONS,
        SURVEY_RESPONSES,
        SCORED_RESPONSES,
        FOLLOWUP_ACTIONS,
        DEAD_LETTERS,
    )
    for name, make, reason in (
        ("not JSON", lambda n: b"{not json %d" % n, "not_json: "),
        ("invalid UTF-8", lambda n: b"\xff\xfe%d" % n, "not_utf8: "),
    )
)


def produce_poison(rig: FaultRig, kind: PoisonKind, n: int, key: bytes | None) -> Poison:
    (produced,) = rig.produce([(key, kind.make(n))], topic=kind.topic)
    return Poison(kind, produced)


# --- traffic --------------------------------------------------------------------------------

Message = tuple[bytes | None, bytes | None]


def event_message(event: dict[str, Any]) -> Message:
    """A contact event as it goes on the topic: JSON, keyed by customer id."""
    return event["customer"]["id"].encode(), orjson.dumps(event)


@dataclass
class Traffic:
    """Feeds contact events (and poison) at a steady pace and answers every survey mail as it
    arrives. Both run on background threads, so the test thread is free to inject faults."""

    rig: FaultRig
    answer_mail: bool = True
    produced: list[Produced] = field(default_factory=list)  # good contact events
    poison: list[Poison] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    _answered: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _feeder: Background | None = None
    _answerer: Background | None = None

    @property
    def fed(self) -> int:
        return len(self.produced) + len(self.poison)

    @property
    def feeding(self) -> bool:
        return self._feeder is not None and self._feeder.running

    def start(self) -> Traffic:
        """Start answering mail (feeding starts with feed())."""
        if self.answer_mail:
            self._answerer = Background(self._answer_loop, "answerer").start()
        return self

    def feed(
        self,
        messages: Sequence[Message],
        per_second: float,
        poison_at: dict[int, PoisonKind] | None = None,
        chunk: int = 10,
    ) -> Traffic:
        """Produce *messages* to contact-events in chunks, *per_second* on average; the
        indices in *poison_at* are bad input of that kind."""
        if self._feeder is not None:
            self._feeder.join(120)  # one feed at a time; re-raises what went wrong before
        bad = poison_at or {}

        def run() -> None:
            started = time.monotonic()
            for first in range(0, len(messages), chunk):
                if self._stop.is_set():
                    return
                landed = self.rig.produce(messages[first : first + chunk])
                for n, produced in enumerate(landed, start=first):
                    if n in bad:
                        self.poison.append(Poison(bad[n], produced))
                    else:
                        self.produced.append(produced)
                due = started + (first + chunk) / per_second
                time.sleep(max(0.0, due - time.monotonic()))

        self._feeder = Background(run, "feeder").start()
        return self

    def feed_events(
        self, events: Sequence[dict[str, Any]], per_second: float, chunk: int = 10
    ) -> Traffic:
        return self.feed([event_message(e) for e in events], per_second, chunk=chunk)

    def wait_fed(self, timeout: float) -> None:
        if self._feeder is not None:
            self._feeder.join(timeout)

    def _answer_loop(self) -> None:
        with ThreadPoolExecutor(ANSWER_THREADS, thread_name_prefix="answer") as pool:
            pending: list[Future[None]] = []
            while not self._stop.is_set():
                fresh = self._unanswered()
                pending += [pool.submit(self._answer, mail) for mail in fresh]
                if not fresh:
                    time.sleep(0.05)
        for future in pending:
            future.result()  # re-raise what went wrong on an answer thread

    def _unanswered(self) -> list[Received]:
        """The first mail of each invitation not answered yet (duplicates stay unanswered)."""
        fresh = []
        for mail in self.rig.smtp.received():
            key = mail.invitation_id or mail.token or ""
            if key not in self._answered:
                self._answered.add(key)
                fresh.append(mail)
        return fresh

    def _answer(self, mail: Received) -> None:
        nps = nps_for(mail.invitation_id)
        answer = self.rig.answer(mail, nps, comment=f"fault test answer {nps}")
        with self._lock:
            self.answers.append(answer)

    def answer_new_mail(self) -> int:
        """Answer, now, every mail not answered yet; returns how many."""
        fresh = self._unanswered()
        with ThreadPoolExecutor(ANSWER_THREADS, thread_name_prefix="answer") as pool:
            for future in [pool.submit(self._answer, mail) for mail in fresh]:
                future.result()
        return len(fresh)

    def stop(self, timeout: float = 120) -> None:
        """Stop feeding and answering; re-raise what went wrong on their threads."""
        self._stop.set()
        for thread in (self._feeder, self._answerer):
            if thread is not None:
                thread.join(timeout)
