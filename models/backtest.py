"""Forecast what a rules file would do: replay contact events through the engine in memory.

The replay uses the same pure functions as the live path (models.programmes: plan_event,
check_due, next_repeat) in the same order as models.store.decisions and
models.store.survey_timers: events in time order, due timers fired oldest first at their
due time, a survey updating the customer's last survey time and the programme's. Customer
state lives in dicts. Nothing is sent and nothing is written to a topic or a database.

What a backtest cannot know is modelled simply and said in the forecast's notes: there are
no answers, so no detractor follow-up tasks; a complaint stays open for a fixed number of
days (or until a complaint_closed contact); opt-outs come only from consent lines in the
input.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from models.consent import SURVEY_CHANNELS, Consent, is_opted_out
from models.contact_events import ContactEvent, ContactEventInvalidError, ContactKind
from models.contact_events import parse_contact_event as _parse_contact_event
from models.eligibility import CustomerView, Reason
from models.programmes import PendingTimers, Timer, check_due, next_repeat, plan_event
from models.rules import Rules

NO_PROGRAMME = "-"  # the programme column of decisions no programme made
DEFAULT_HORIZON = timedelta(days=60)
DEFAULT_COMPLAINT_DAYS = 14.0
COUNT_BUCKETS = ("0", "1", "2", "3+")


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """An input line that is neither a contact event nor a consent change (no values)."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """How one decision ended in the replay (or stood at its end, for pending ones)."""

    decision_id: str
    customer_id: str
    programme: str | None
    rule: str | None
    reason: Reason
    at: datetime


@dataclass
class BacktestInput:
    """Parsed input lines: contact events, consent changes and what could not be read."""

    events: list[tuple[int, ContactEvent]] = field(default_factory=list)
    consents: list[tuple[int, Consent]] = field(default_factory=list)
    invalid: list[InvalidLine] = field(default_factory=list)
    lines: int = 0


@dataclass
class Forecast:
    """What the rules would have done with the events."""

    rules_version: str
    start: datetime | None
    until: datetime
    complaint_days: float
    lines: int = 0
    contacts: int = 0
    consent_changes: int = 0
    duplicate_events: int = 0
    after_until: int = 0
    deferred: int = 0
    invalid: list[InvalidLine] = field(default_factory=list)
    customers_seen: int = 0
    customers_surveyed: int = 0
    surveys_per_customer: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(COUNT_BUCKETS, 0)
    )
    surveys_per_week: dict[str, dict[str, int]] = field(default_factory=dict)
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Per-decision detail for tests and tools; never in the printed or JSON output.
    resolutions: list[Resolution] = field(default_factory=list, repr=False)

    @property
    def reach(self) -> float:
        """Share of the customers seen who were surveyed at least once."""
        return self.customers_surveyed / self.customers_seen if self.customers_seen else 0.0

    @property
    def surveys(self) -> dict[str, int]:
        """Surveys per programme over the whole replay."""
        return {p: sum(weeks.values()) for p, weeks in self.surveys_per_week.items()}

    def to_json(self) -> dict[str, Any]:
        """The forecast as JSON-ready data (aggregates only: no customer ids or addresses)."""
        return {
            "rules_version": self.rules_version,
            "from": self.start.isoformat() if self.start else None,
            "until": self.until.isoformat(),
            "complaint_days": self.complaint_days,
            "input": {
                "lines": self.lines,
                "contacts": self.contacts,
                "consent_changes": self.consent_changes,
                "duplicate_events": self.duplicate_events,
                "after_until": self.after_until,
                "invalid": len(self.invalid),
            },
            "invalid_lines": [{"line": i.line, "reason": i.reason} for i in self.invalid],
            "customers": {
                "seen": self.customers_seen,
                "surveyed": self.customers_surveyed,
                "reach": round(self.reach, 4),
                "surveys_per_customer": dict(self.surveys_per_customer),
            },
            "surveys": self.surveys,
            "surveys_per_week": self.surveys_per_week,
            "reasons": self.reasons,
            "deferred_to_send_window": self.deferred,
            "notes": self.notes,
        }


class _ConsentLine(BaseModel):
    """A consent change in the input (the customer-consent topic's record, without Faust)."""

    model_config = ConfigDict(extra="ignore")

    consent_id: str = Field(min_length=1, max_length=200)
    customer_id: str = Field(min_length=1, max_length=200)
    channel: Literal["email", "phone", "all"]
    status: Literal["opted_out", "opted_in"]
    changed_at: AwareDatetime
    source: str = "input"


def read_input(lines: Iterable[bytes]) -> BacktestInput:
    """Parse JSON lines: contact events, and consent changes (objects with a consent_id and
    no event_id). Bad lines are recorded by number and reason, never by value."""
    parsed = BacktestInput()
    number = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if b'"consent_id"' in line and b'"event_id"' not in line:
            try:
                parsed.consents.append((number, _parse_consent(line)))
            except ContactEventInvalidError as exc:
                parsed.invalid.append(InvalidLine(number, str(exc)))
            continue
        try:
            parsed.events.append((number, _parse_contact_event(line)))
        except ContactEventInvalidError as exc:
            parsed.invalid.append(InvalidLine(number, str(exc)))
    parsed.lines = number
    return parsed


def _parse_consent(raw: bytes) -> Consent:
    try:
        data = _ConsentLine.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise ContactEventInvalidError("not_json", f"{exc.msg} at position {exc.pos}") from None
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'consent'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise ContactEventInvalidError("invalid_field", f"consent change: {where}") from None
    return Consent(
        consent_id=data.consent_id,
        customer_id=data.customer_id,
        channel=data.channel,
        status=data.status,
        changed_at=data.changed_at,
        source=data.source,
    )


def backtest(
    rules: Rules,
    events: Sequence[ContactEvent] | BacktestInput,
    *,
    until: datetime | None = None,
    complaint_days: float = DEFAULT_COMPLAINT_DAYS,
) -> Forecast:
    """Replay *events* (any order) through *rules* and forecast what would be surveyed.

    The simulation runs until *until*, by default 60 days after the last event, so the
    last contacts' timers can fire. Events after *until* are not replayed.
    """
    data = events if isinstance(events, BacktestInput) else _as_input(events)
    # Stable sort: events at one instant keep their input order, as on a partition.
    stream: list[tuple[datetime, int, ContactEvent | Consent]] = [
        (e.occurred_at, n, e) for n, e in data.events
    ]
    stream.extend((c.changed_at, n, c) for n, c in data.consents)
    stream.sort(key=lambda item: (item[0], item[1]))
    last_event = max((e.occurred_at for _, e in data.events), default=None)
    if until is None:
        until = (last_event or datetime(1970, 1, 1, tzinfo=UTC)) + DEFAULT_HORIZON
    sim = _Simulation(rules, timedelta(days=complaint_days))
    forecast = Forecast(
        rules_version=rules.label,
        start=stream[0][0] if stream else None,
        until=until,
        complaint_days=complaint_days,
        lines=data.lines,
        invalid=list(data.invalid),
    )
    for at, _, item in stream:
        if at > until:
            forecast.after_until += 1
            continue
        sim.fire_until(at)
        if isinstance(item, Consent):
            sim.consents[item.customer_id].append(item)
            forecast.consent_changes += 1
        elif not sim.contact(item):
            forecast.duplicate_events += 1
    sim.fire_until(until)
    sim.close_pending()
    _summarise(sim, forecast, rules)
    return forecast


def _as_input(events: Sequence[ContactEvent]) -> BacktestInput:
    return BacktestInput(events=list(enumerate(events, start=1)), lines=len(events))


class _Simulation:
    """Customer state and pending timers in memory; the live path's order of effects."""

    def __init__(self, rules: Rules, complaint_open: timedelta) -> None:
        self.rules = rules
        self.complaint_open = complaint_open
        self.pending = PendingTimers()
        # The heap may hold stale entries (a timer closed or deferred since it was pushed):
        # an entry counts only while its generation is the timer's current one.
        self.heap: list[tuple[datetime, str, int]] = []
        self.generation: dict[str, tuple[int, Timer, Reason]] = {}
        self.next_generation = 0
        self.seen_events: set[str] = set()
        self.customers: set[str] = set()
        self.last: dict[str, datetime] = {}
        self.programme_last: defaultdict[str, dict[str, datetime]] = defaultdict(dict)
        self.complaints_until: defaultdict[str, list[datetime]] = defaultdict(list)
        self.consents: defaultdict[str, list[Consent]] = defaultdict(list)
        self.resolutions: list[Resolution] = []
        self.surveys: list[Resolution] = []
        self.deferred = 0

    def contact(self, event: ContactEvent) -> bool:
        """Plan one contact event; False when its event id was replayed before."""
        if event.event_id in self.seen_events:
            self._record(
                "", event.customer.id, None, None, Reason.DUPLICATE_EVENT, event.occurred_at
            )
            return False
        self.seen_events.add(event.event_id)
        customer = event.customer.id
        self.customers.add(customer)
        now = event.occurred_at
        if event.kind is ContactKind.COMPLAINT:
            self.complaints_until[customer].append(now + self.complaint_open)
        elif event.kind is ContactKind.COMPLAINT_CLOSED:
            # The live closure agent emits complaint_closed when it closes the complaint task.
            self.complaints_until.pop(customer, None)
        plan = plan_event(self.rules, event, self.pending.of(customer))
        for timer, reason in plan.closed:
            self._drop(timer)
            self._record(timer.decision_id, customer, timer.programme, timer.rule, reason, now)
        for decision in plan.decisions:
            if decision.timer is not None:
                self._schedule(decision.timer, Reason.SCHEDULED)
            else:
                self._record(
                    decision.decision_id,
                    customer,
                    decision.programme,
                    decision.rule,
                    decision.reason,
                    now,
                )
        # decide_contacts fires the timers that are due already (delay 0) in the same batch.
        self.fire_until(now)
        return True

    def fire_until(self, until: datetime) -> None:
        """Fire every timer due by *until*, oldest first, each at its own due time."""
        heap = self.heap
        while heap and heap[0][0] <= until:
            due_at, decision_id, generation = heapq.heappop(heap)
            current = self.generation.get(decision_id)
            if current is None or current[0] != generation:
                continue
            self._fire(current[1], due_at)

    def _fire(self, timer: Timer, now: datetime) -> None:
        c = timer.customer_id
        outcome = check_due(self.rules, timer, self._view(c, now), now)
        if outcome.defer_to is not None:
            self.deferred += 1
            self._schedule(replace(timer, due_at=outcome.defer_to), outcome.reason)
            return
        self._drop(timer)
        if outcome.reason is Reason.SURVEYED:
            self.last[c] = now
            self.programme_last[c][timer.programme] = now
        self._record(timer.decision_id, c, timer.programme, timer.rule, outcome.reason, now)
        if outcome.reason is not Reason.PROGRAMME_REMOVED:
            following = next_repeat(self.rules, timer)
            if following is not None:
                self._schedule(following, Reason.SCHEDULED)

    def _view(self, customer: str, now: datetime) -> CustomerView:
        complaints = self.complaints_until.get(customer)
        open_complaints = 0
        if complaints:
            complaints[:] = [t for t in complaints if t > now]
            open_complaints = len(complaints)
        changes = self.consents.get(customer)
        opted_out = (
            frozenset(ch for ch in SURVEY_CHANNELS if is_opted_out(changes, ch))
            if changes
            else frozenset()
        )
        return CustomerView(
            last_surveyed_at=self.last.get(customer),
            programme_last_surveyed=self.programme_last.get(customer, {}),
            open_complaints=open_complaints,
            open_followups=0,  # no answers in a backtest, so no detractor follow-ups
            opted_out=opted_out,
        )

    def _schedule(self, timer: Timer, reason: Reason) -> None:
        self.next_generation += 1
        self.generation[timer.decision_id] = (self.next_generation, timer, reason)
        self.pending.add(timer)
        heapq.heappush(self.heap, (timer.due_at, timer.decision_id, self.next_generation))

    def _drop(self, timer: Timer) -> None:
        self.generation.pop(timer.decision_id, None)
        self.pending.remove(timer)

    def _record(
        self,
        decision_id: str,
        customer: str,
        programme: str | None,
        rule: str | None,
        reason: Reason,
        at: datetime,
    ) -> None:
        resolution = Resolution(decision_id, customer, programme, rule, reason, at)
        self.resolutions.append(resolution)
        if reason is Reason.SURVEYED:
            self.surveys.append(resolution)

    def close_pending(self) -> None:
        """Record the timers still waiting at the end as pending (scheduled or deferred)."""
        for _, timer, reason in sorted(
            self.generation.values(), key=lambda g: (g[1].due_at, g[1].decision_id)
        ):
            self.resolutions.append(
                Resolution(
                    timer.decision_id,
                    timer.customer_id,
                    timer.programme,
                    timer.rule,
                    reason,
                    timer.due_at,
                )
            )


def _summarise(sim: _Simulation, forecast: Forecast, rules: Rules) -> None:
    zone = rules.timezone
    weeks: defaultdict[str, Counter[str]] = defaultdict(Counter)
    per_customer: Counter[str] = Counter()
    for survey in sim.surveys:
        year, week, _ = survey.at.astimezone(zone).isocalendar()
        weeks[survey.programme or NO_PROGRAMME][f"{year}-W{week:02d}"] += 1
        per_customer[survey.customer_id] += 1
    reasons: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for r in sim.resolutions:
        reasons[r.programme or NO_PROGRAMME][r.reason.value] += 1
    buckets = dict.fromkeys(COUNT_BUCKETS, 0)
    for customer in sim.customers:
        buckets[COUNT_BUCKETS[min(per_customer[customer], 3)]] += 1
    order = [p.name for p in rules.programmes]
    forecast.surveys_per_week = {p: dict(sorted(weeks[p].items())) for p in _ordered(weeks, order)}
    forecast.reasons = {
        p: dict(sorted(reasons[p].items(), key=lambda kv: (-kv[1], kv[0])))
        for p in _ordered(reasons, order)
    }
    forecast.contacts = len(sim.seen_events)
    forecast.customers_seen = len(sim.customers)
    forecast.customers_surveyed = sum(1 for c in sim.customers if per_customer[c])
    forecast.surveys_per_customer = buckets
    forecast.deferred = sim.deferred
    forecast.resolutions = sim.resolutions
    forecast.notes = [
        "a forecast: nothing was sent, and nothing was written to a topic or database",
        "no survey answers in a backtest, so no detractor follow-up tasks (open_followup "
        "never applies)",
        f"a complaint counts as open for {forecast.complaint_days:g} days, or until a "
        "complaint_closed contact",
        "opt-outs come only from consent lines in the input"
        + ("" if forecast.consent_changes else " (there were none)"),
    ]


def _ordered(found: Iterable[str], order: list[str]) -> list[str]:
    """Programmes in the rules file's order, then any others (the no-programme row last)."""
    names = set(found)
    known = [p for p in order if p in names]
    rest = sorted(n for n in names - set(order) if n != NO_PROGRAMME)
    return known + rest + ([NO_PROGRAMME] if NO_PROGRAMME in names else [])
