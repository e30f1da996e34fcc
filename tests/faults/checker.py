"""The checker: compare what went into the loop with what came out of it.

It reads the SQL tables, the mail the SMTP server received and the answers the API
acknowledged, and counts, per category, what was lost, duplicated or wrong. Everything it
knows about the input comes from the test (what was produced, where it landed, which
answers got a 201), never from the system under test.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from models.scoring import nps_category
from streams.settings import Settings
from tests.faults.rig import Answer, FaultRig
from tests.faults.workload import Poison, Traffic
from tests.harness.topics import Produced

CATEGORIES = (
    "decisions",
    "survey cap",
    "invitations",
    "mails",
    "answers",
    "scores",
    "tasks",
    "dead letters",
)
_EXAMPLES = 5


@dataclass
class Tally:
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, what: str, example: str, n: int = 1) -> None:
        setattr(self, what, getattr(self, what) + n)
        if len(self.examples) < _EXAMPLES:
            self.examples.append(f"{what}: {example}")

    @property
    def clean(self) -> bool:
        return self.lost == self.duplicated == self.wrong == 0


@dataclass
class Report:
    """Counts per category, plus what is legitimately ambiguous (for the record)."""

    scenario: str
    tallies: dict[str, Tally] = field(default_factory=lambda: {c: Tally() for c in CATEGORIES})
    info: dict[str, int] = field(default_factory=dict)
    outstanding: list[str] = field(default_factory=list)

    @property
    def all_zero(self) -> bool:
        return all(t.clean for t in self.tallies.values()) and not self.outstanding

    def table(self) -> str:
        lines = [
            f"fault check: {self.scenario}",
            f"{'category':<14}{'lost':>6}{'dup':>6}{'wrong':>7}",
        ]
        lines += [
            f"{name:<14}{t.lost:>6}{t.duplicated:>6}{t.wrong:>7}"
            for name, t in self.tallies.items()
        ]
        lines.append("input/output: " + ", ".join(f"{k}={v}" for k, v in self.info.items()))
        if self.outstanding:
            lines.append("still outstanding at the deadline: " + "; ".join(self.outstanding))
        for name, t in self.tallies.items():
            lines += [f"  {name}: {example}" for example in t.examples]
        return "\n".join(lines)


@dataclass
class Expected:
    """What went in."""

    events: Sequence[Produced]  # good contact events as produced (duplicates allowed)
    answers: Sequence[Answer] = ()
    poison: Sequence[Poison] = ()
    refused_addresses: frozenset[str] = frozenset()
    # A kill -9 while an SMTP conversation is under way leaves that invitation 'unknown' by
    # design (at most once): at most one per SMTP connection per kill. None: no crash, so
    # 'unknown' is always wrong.
    unknown_allowance: int | None = None


def unknown_allowance(kills: int) -> int:
    """Invitations a crash may leave 'unknown' and unsent: one per SMTP connection."""
    field_info = Settings.model_fields.get("smtp_connections")
    connections = int(field_info.default) if field_info is not None else 1
    return kills * connections


@dataclass(frozen=True)
class _Event:
    event_id: str
    customer_id: str
    kind: str
    email: str


def _events(produced: Iterable[Produced]) -> dict[str, _Event]:
    found = {}
    for p in produced:
        assert p.value is not None
        data = orjson.loads(p.value)
        found[data["event_id"]] = _Event(
            data["event_id"], data["customer"]["id"], data["kind"], data["customer"]["email"]
        )
    return found


@dataclass
class _State:
    decisions: list[Any]
    invitations: list[Any]
    responses: list[Any]
    tasks: list[Any]
    letters: list[Any]
    mails: list[Any]


def _read_state(rig: FaultRig) -> _State:
    return _State(
        decisions=rig.rows(
            "SELECT event_id, customer_id, outcome, reason, invitation_id FROM survey_decisions"
        ),
        invitations=rig.rows(
            "SELECT invitation_id, event_id, customer_id, email, delivery_status"
            " FROM survey_invitations"
        ),
        responses=rig.rows(
            "SELECT response_id, invitation_id, nps, nps_category, scored_at IS NOT NULL,"
            " published_at IS NOT NULL FROM survey_responses"
        ),
        tasks=rig.rows("SELECT task_id, origin, source_id, customer_id FROM followup_tasks"),
        letters=rig.rows(
            'SELECT source_topic, partition, "offset", reason, original FROM dead_letters'
        ),
        mails=rig.smtp.received(),
    )


def check(rig: FaultRig, expected: Expected, scenario: str) -> Report:
    """Count lost / duplicated / wrong effects per category."""
    report = Report(scenario)
    state = _read_state(rig)
    events = _events(expected.events)
    report.info.update(
        events_in=len(expected.events),
        distinct_events=len(events),
        poison_in=len(expected.poison),
        answers_201=sum(a.status == 201 for a in expected.answers),
        decisions=len(state.decisions),
        invitations=len(state.invitations),
        mails=len(state.mails),
        responses=len(state.responses),
        tasks=len(state.tasks),
        dead_letters=len(state.letters),
    )
    t = report.tallies
    _check_decisions(t["decisions"], state, events)
    _check_cap(t["survey cap"], state, events)
    _check_invitations(t["invitations"], state)
    report.info.update(_check_mails(t["mails"], state, expected))
    report.info.update(_check_answers(t["answers"], state, expected))
    _check_scores(t["scores"], state)
    _check_tasks(t["tasks"], state, events)
    _check_dead_letters(t["dead letters"], state, expected)
    return report


def _check_decisions(tally: Tally, state: _State, events: dict[str, _Event]) -> None:
    """Exactly one decision per contact event, none for anything else."""
    decided = Counter(row[0] for row in state.decisions)
    for event_id in events:
        if decided[event_id] == 0:
            tally.add("lost", f"no decision for {event_id}")
        elif decided[event_id] > 1:
            tally.add("duplicated", f"{decided[event_id]} decisions for {event_id}")
    for event_id in decided.keys() - events.keys():
        tally.add("wrong", f"decision for an event never sent: {event_id}")


def _check_cap(tally: Tally, state: _State, events: dict[str, _Event]) -> None:
    """Each customer surveyed exactly once: all have an address and a first event that is
    not a complaint, and 180 days never pass during a test."""
    surveyed = Counter(row[1] for row in state.decisions if row[2] == "surveyed")
    for customer in {e.customer_id for e in events.values()}:
        if surveyed[customer] == 0:
            tally.add("lost", f"customer {customer} never surveyed")
        elif surveyed[customer] > 1:
            tally.add("duplicated", f"customer {customer} surveyed {surveyed[customer]}x")


def _check_invitations(tally: Tally, state: _State) -> None:
    """One invitation row per surveyed decision, none without one."""
    invitations = {row[0]: row for row in state.invitations}
    wanted = {row[4]: row[0] for row in state.decisions if row[2] == "surveyed"}
    for invitation_id, event_id in wanted.items():
        if invitation_id not in invitations:
            tally.add("lost", f"surveyed {event_id} has no invitation row")
    for invitation_id, row in invitations.items():
        if invitation_id not in wanted:
            tally.add("wrong", f"invitation {invitation_id} without a surveyed decision")
        elif row[1] != wanted[invitation_id]:
            tally.add("wrong", f"invitation {invitation_id} names another event")


def _check_mails(tally: Tally, state: _State, expected: Expected) -> dict[str, int]:
    """At most one mail per invitation, exactly one per 'sent', none for a refused address,
    and no more 'unknown' and unsent invitations than the crashes can explain."""
    mails_per = Counter(m.invitation_id for m in state.mails)
    statuses: Counter[str] = Counter()
    unknown_unsent: list[str] = []
    for invitation_id, _event, _customer, address, status in state.invitations:
        n = mails_per[invitation_id]
        statuses[status] += 1
        if n > 1:
            tally.add("duplicated", f"{n} mails for invitation {invitation_id} ({status})")
        if address.lower() in expected.refused_addresses:
            if status != "failed":
                tally.add("wrong", f"refused address, status {status!r} not 'failed'")
            if n:
                tally.add("wrong", f"mail accepted for a refused address ({invitation_id})")
        elif status == "sent" and n == 0:
            tally.add("lost", f"invitation {invitation_id} 'sent' but no mail received")
        elif status in ("pending", "sending"):
            tally.add("lost", f"invitation {invitation_id} still {status!r}")
        elif status == "failed":
            tally.add("wrong", f"invitation {invitation_id} 'failed' for a good address")
        elif status == "unknown" and expected.unknown_allowance is None:
            tally.add("wrong", f"invitation {invitation_id} 'unknown' without a crash")
        elif status == "unknown" and n == 0:
            unknown_unsent.append(invitation_id)
    allowance = expected.unknown_allowance or 0
    if len(unknown_unsent) > allowance:
        tally.add(
            "lost",
            f"{len(unknown_unsent)} invitations 'unknown' and never mailed, but the crashes "
            f"interrupted at most {allowance} SMTP conversations (e.g. {unknown_unsent[0]})",
            n=len(unknown_unsent) - allowance,
        )
    known = {row[0] for row in state.invitations}
    for invitation_id in mails_per.keys() - known:
        tally.add("wrong", f"{mails_per[invitation_id]} mail(s) for unknown {invitation_id}")
    info = {f"delivery_{k}": v for k, v in sorted(statuses.items())}
    info["unknown_never_mailed"] = len(unknown_unsent)
    return info


def _check_answers(tally: Tally, state: _State, expected: Expected) -> dict[str, int]:
    """Every 201 has its row; a lost reply followed by 409 must have one too."""
    responses_per = Counter(row[1] for row in state.responses)
    by_id = {row[0]: row for row in state.responses}
    reply_lost_recorded = 0
    for answer in expected.answers:
        if answer.status == 201:
            row = by_id.get(answer.response_id or "")
            if row is None:
                tally.add("lost", f"201 answer {answer.response_id} has no row")
            elif row[2] != answer.nps:
                tally.add("wrong", f"answer {answer.response_id} stored nps {row[2]}")
        elif answer.status == 409 and answer.reply_lost:
            reply_lost_recorded += 1
            if responses_per[answer.invitation_id] == 0:
                tally.add("lost", f"409 after a lost reply but no row ({answer.errors})")
        else:
            tally.add(
                "wrong",
                f"answer for {answer.invitation_id}: HTTP {answer.status}, errors {answer.errors}",
            )
    for invitation_id, n in responses_per.items():
        if n > 1:
            tally.add("duplicated", f"{n} responses for invitation {invitation_id}")
    return {"answers_reply_lost_then_409": reply_lost_recorded}


def _check_scores(tally: Tally, state: _State) -> None:
    """Every stored answer published, scored, and scored right."""
    for response_id, _inv, nps, category, scored, published in state.responses:
        if not published:
            tally.add("lost", f"response {response_id} never published")
        if not scored or category is None:
            tally.add("lost", f"response {response_id} not scored")
        elif nps is not None and category != nps_category(nps):
            tally.add("wrong", f"response {response_id}: nps {nps} scored {category}")


def _check_tasks(tally: Tally, state: _State, events: dict[str, _Event]) -> None:
    """One task per detractor answer (source_id = response_id) and per complaint (source_id
    = event_id), none for anything else."""
    sources = {row[0]: "detractor" for row in state.responses if row[2] is not None and row[2] <= 6}
    sources.update({e.event_id: "complaint" for e in events.values() if e.kind == "complaint"})
    tasks_per = Counter(row[2] for row in state.tasks)
    origins = {row[2]: row[1] for row in state.tasks}
    for source, origin in sources.items():
        if tasks_per[source] == 0:
            tally.add("lost", f"no task for {origin} {source}")
        elif tasks_per[source] > 1:
            tally.add("duplicated", f"{tasks_per[source]} tasks for {origin} {source}")
        elif origins[source] != origin:
            tally.add("wrong", f"task for {source} has origin {origins[source]}")
    for source in tasks_per.keys() - sources.keys():
        tally.add("wrong", f"task from {source} that needs none ({origins[source]})")


def _check_dead_letters(tally: Tally, state: _State, expected: Expected) -> None:
    """Exactly one dead letter per poison message, with its reason and original bytes, and
    none for good input."""
    letters: dict[tuple[str, int, int], list[tuple[str, bytes]]] = defaultdict(list)
    for topic, partition, offset, reason, original in state.letters:
        letters[topic, partition, offset].append((reason, bytes(original)))
    places = set()
    for poison in expected.poison:
        p = poison.produced
        place = (p.topic, p.partition, p.offset)
        places.add(place)
        found = letters.get(place, [])
        if not found:
            tally.add("lost", f"{poison.kind.name} at {place} not dead-lettered")
            continue
        if len(found) > 1:
            tally.add("duplicated", f"{len(found)} letters for {place}")
        reason, original = found[0]
        if original != (p.value or b""):
            tally.add("wrong", f"{poison.kind.name}: original bytes differ")
        if not all(w.lower() in reason.lower() for w in poison.kind.reason_has):
            tally.add("wrong", f"{poison.kind.name}: reason {reason!r}")
    for place in letters.keys() - places:
        tally.add("wrong", f"dead letter for good input at {place}: {letters[place][0][0]!r}")


def outstanding(rig: FaultRig, expected: Expected) -> list[str]:
    """What the loop has not done yet (empty when everything expected has happened)."""
    events = _events(expected.events)
    todo = []
    decided = rig.scalar("SELECT count(*) FROM survey_decisions")
    if decided < len(events):
        todo.append(f"{len(events) - decided} events undecided")
    in_flight = rig.scalar(
        "SELECT count(*) FROM survey_invitations WHERE delivery_status IN ('pending', 'sending')"
    )
    if in_flight:
        todo.append(f"{in_flight} invitations pending or sending")
    sent = rig.scalar("SELECT count(*) FROM survey_invitations WHERE delivery_status = 'sent'")
    mails = len({m.invitation_id for m in rig.smtp.received()})
    if mails < sent:
        todo.append(f"{sent - mails} sent invitations without mail")
    unscored = rig.scalar(
        "SELECT count(*) FROM survey_responses WHERE scored_at IS NULL OR published_at IS NULL"
    )
    if unscored:
        todo.append(f"{unscored} responses unpublished or unscored")
    untasked = rig.scalar(
        "SELECT count(*) FROM survey_responses r WHERE r.nps <= 6 AND NOT EXISTS"
        " (SELECT 1 FROM followup_tasks t WHERE t.source_id = r.response_id)"
    )
    if untasked:
        todo.append(f"{untasked} detractor responses without a task")
    letters = rig.scalar("SELECT count(*) FROM dead_letters")
    if letters < len(expected.poison):
        todo.append(f"{len(expected.poison) - letters} dead letters missing")
    return todo


def settle(rig: FaultRig, expected: Expected, timeout: float, committed: bool = True) -> list[str]:
    """Wait (up to *timeout* s) until nothing is outstanding and, if *committed*, the worker
    group has committed past every message; returns what is still outstanding."""
    deadline = time.monotonic() + timeout
    todo = ["not checked"]
    while time.monotonic() < deadline:
        todo = outstanding(rig, expected)
        if not todo and (not committed or rig.caught_up()):
            return []
        time.sleep(0.2)
    if not todo:
        todo = ["the worker group did not commit past every message"]
    return todo


def finish(
    rig: FaultRig,
    traffic: Traffic,
    scenario: str,
    settle_s: float,
    poison: Sequence[Poison] = (),
    refused: frozenset[str] = frozenset(),
    kills: int | None = None,
    interrupted_conversations: int = 0,
) -> Report:
    """Let the traffic end, answer the last mails, wait until the loop is done, and check.

    Prints the report (pytest shows it with -s or -rA, and on failure) and keeps it in
    the rig's directory next to the worker logs."""
    traffic.wait_fed(settle_s)
    expected = Expected(
        events=traffic.produced,
        poison=[*traffic.poison, *poison],
        refused_addresses=refused,
        unknown_allowance=(
            None
            if kills is None and not interrupted_conversations
            else unknown_allowance(kills or 0) + interrupted_conversations
        ),
    )
    settle(rig, expected, settle_s, committed=False)  # all mailed before the last answers
    traffic.stop()
    if traffic.answer_mail:
        traffic.answer_new_mail()
    expected.answers = traffic.answers
    todo = settle(rig, expected, settle_s)
    report = check(rig, expected, scenario)
    report.outstanding = todo and [*todo, *rig.diagnose()]
    print(report.table())  # noqa: T201 - the counts are this test's output
    (rig.tmp_path / "report.txt").write_text(report.table() + "\n")  # kept with the logs
    return report
