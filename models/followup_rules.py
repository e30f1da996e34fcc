"""Follow-up rules as a TOML file: which answers open a task, its priority, which team gets
it and who in the team, the SLA per team calendar, the escalation ladder, root causes and
outgoing webhooks.

``models/rule_sets/followup.toml`` is the default and documents every key. Errors name the
file and line, like the survey rules (models.rules).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.calendar import BusinessCalendar, WeeklyWindow
from models.errors import CxloopError

# One locator for both rule files, so an error points at the same kind of line in each.
from models.rules import _line_of as line_of


class FollowupRulesError(CxloopError, ValueError):
    """A follow-up rules file is not valid; the message names the file and line."""


class _LocatedError(CxloopError, ValueError):
    """A problem found across tables (a route to a missing team), with the key it is at:
    pydantic reports whole-file checks without a location, so the line would be lost."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PRIORITY_LEVELS = {"high": 0, "normal": 1, "low": 2}
PRIORITY_NAMES = {v: k for k, v in PRIORITY_LEVELS.items()}
PriorityName = Literal["high", "normal", "low"]
Assignment = Literal["round_robin", "least_loaded", "none"]

DEFAULT_ROOT_CAUSES = (
    "billing",
    "delivery_installation",
    "appointment_missed",
    "capacity",
    "product_quality",
    "staff_attitude",
    "communication",
    "price",
    "other",
)

_SLA_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(business\s+days?|business\s+hours?|bd|bh)\s*$")


def parse_business_amount(text: str) -> tuple[float, str]:
    """'2 business days' → (2.0, 'days'); '16 business hours' → (16.0, 'hours')."""
    match = _SLA_AMOUNT.match(text.lower())
    if not match:
        raise ValueError(f"{text!r}: expected e.g. '2 business days' or '16 business hours'")
    amount = float(match.group(1))
    if amount <= 0:
        raise ValueError(f"{text!r}: must be more than zero")
    unit = "days" if match.group(2).startswith(("business d", "bd")) else "hours"
    return amount, unit


class TasksSpec(_Strict):
    """Which answers and contacts open a task, and how many failed calls make it unreachable."""

    nps_detractor_max: int | None = Field(default=6, ge=0, le=10)
    csat_max: int | None = Field(default=2, ge=1, le=5)
    ces_max: int | None = Field(default=None, ge=1, le=7)
    complaints: bool = True
    high_priority_nps_max: int = Field(default=3, ge=0, le=10)
    high_priority_csat_max: int = Field(default=1, ge=1, le=5)
    unreachable_after: int = Field(default=3, ge=1, le=20)
    root_causes: list[str] = Field(default_factory=lambda: list(DEFAULT_ROOT_CAUSES))

    @field_validator("root_causes")
    @classmethod
    def _causes(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError("must be a non-empty list without repeats")
        for cause in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", cause):
                raise ValueError(f"{cause!r}: use lower-case letters, digits and _ (max 40)")
        return value


class Match(_Strict):
    """What a routing rule or a priority boost matches; every key given must match (any of
    its values), keys not given match anything."""

    partner: list[str] | None = None
    product: list[str] | None = None
    channel: list[str] | None = None
    region: list[str] | None = None
    language: list[str] | None = None
    origin: list[str] | None = None

    def matches(self, attributes: Mapping[str, str | None]) -> bool:
        for key in ("partner", "product", "channel", "region", "language", "origin"):
            wanted = getattr(self, key)
            if wanted is not None and attributes.get(key) not in wanted:
                return False
        return True


class PriorityBoost(_Strict):
    """Raise (or set) the priority of matching tasks, e.g. key-account partners → high."""

    when: Match
    priority: PriorityName


class SlaSpec(_Strict):
    """SLA targets in business time of the task's team calendar, and the escalation ladder
    as fractions of the target: reminder, lead (breach) and manager."""

    first_contact: str = "2 business days"
    closure: str = "5 business days"
    reminder_at: float = Field(default=0.75, gt=0, lt=1)
    lead_at: float = Field(default=1.0, ge=1)
    manager_at: float = Field(default=2.0, gt=1)
    email: bool = True

    @field_validator("first_contact", "closure")
    @classmethod
    def _amount(cls, value: str) -> str:
        parse_business_amount(value)
        return value

    @model_validator(mode="after")
    def _ladder(self) -> SlaSpec:
        if not self.reminder_at < self.lead_at < self.manager_at:
            raise ValueError("reminder_at < lead_at < manager_at is required")
        return self


class TeamSpec(_Strict):
    """A team: its working calendar and how tasks are handed to its members."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    timezone: str = "Europe/Amsterdam"
    days: str | list[str] = "mon-fri"
    from_: str = Field(default="08:30", alias="from")
    to: str = "17:00"
    holidays: list[date] = Field(default_factory=list)
    assignment: Assignment = "round_robin"
    lead_email: str | None = None
    manager_email: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value

    @model_validator(mode="after")
    def _window(self) -> TeamSpec:
        WeeklyWindow.parse(self.days, self.from_, self.to)
        return self

    @cached_property
    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar(
            WeeklyWindow.parse(self.days, self.from_, self.to),
            ZoneInfo(self.timezone),
            frozenset(self.holidays),
        )


class Route(_Strict):
    """The first route whose match fits a task sends it to *team*."""

    team: str
    when: Match = Field(default_factory=Match)


class RoutingSpec(_Strict):
    default_team: str = "service"


class WebhookSpec(_Strict):
    """An endpoint that receives task events, signed Standard-Webhooks style."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    url: str = Field(pattern=r"^https?://")
    secret_env: str = Field(
        description="Environment variable holding the signing secret ('whsec_' + base64)."
    )
    events: list[str] | None = None  # None = every task event
    teams: list[str] | None = None  # None = every team
    allow_private: bool = False  # loopback and private addresses only when this is true
    max_attempts: int = Field(default=10, ge=1, le=50)


class FollowupRulesFile(_Strict):
    version: str = Field(min_length=1, max_length=40)
    description: str = ""
    tasks: TasksSpec = Field(default_factory=TasksSpec)
    priority_boost: list[PriorityBoost] = Field(default_factory=list)
    sla: SlaSpec = Field(default_factory=SlaSpec)
    routing: RoutingSpec = Field(default_factory=RoutingSpec)
    team: list[TeamSpec] = Field(min_length=1)
    route: list[Route] = Field(default_factory=list)
    webhook: list[WebhookSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> FollowupRulesFile:
        names = [t.name for t in self.team]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise _LocatedError(("team", index, "name"), f"team {name!r} is defined twice")
        for index, route in enumerate(self.route):
            if route.team not in names:
                raise _LocatedError(
                    ("route", index, "team"), f"route to unknown team {route.team!r}"
                )
        if self.routing.default_team not in names:
            raise _LocatedError(
                ("routing", "default_team"),
                f"default_team {self.routing.default_team!r} is not a team",
            )
        hooks = [w.name for w in self.webhook]
        for index, hook in enumerate(hooks):
            if hook in hooks[:index]:
                raise _LocatedError(
                    ("webhook", index, "name"), f"webhook {hook!r} is defined twice"
                )
        return self


class FollowupRules:
    """A validated follow-up rules file with the lookups the agents need."""

    def __init__(self, spec: FollowupRulesFile, source: str, digest: str) -> None:
        self.spec = spec
        self.source = source
        self.version = f"{spec.version}@{digest[:12]}"
        self.teams = {t.name: t for t in spec.team}

    @property
    def tasks(self) -> TasksSpec:
        return self.spec.tasks

    @property
    def sla(self) -> SlaSpec:
        return self.spec.sla

    @property
    def webhooks(self) -> Sequence[WebhookSpec]:
        return self.spec.webhook

    def team_for(self, attributes: Mapping[str, str | None]) -> str:
        """The team of the first route that matches, else the default team."""
        for route in self.spec.route:
            if route.when.matches(attributes):
                return route.team
        return self.spec.routing.default_team

    def boosted(self, priority: int, attributes: Mapping[str, str | None]) -> int:
        """*priority* after the boosts that match (the highest of them wins, never lower)."""
        for boost in self.spec.priority_boost:
            if boost.when.matches(attributes):
                priority = min(priority, PRIORITY_LEVELS[boost.priority])
        return priority

    def calendar(self, team: str) -> BusinessCalendar:
        spec = self.teams.get(team) or self.teams[self.spec.routing.default_team]
        return spec.calendar

    def sla_amount(self, which: Literal["first_contact", "closure"], team: str) -> timedelta:
        """An SLA target as business time of *team*'s calendar."""
        amount, unit = parse_business_amount(getattr(self.sla, which))
        if unit == "hours":
            return timedelta(hours=amount)
        return self.calendar(team).working_day * amount


def parse_followup_rules(text: str, source: str = "<followup rules>") -> FollowupRules:
    """Validate follow-up rules TOML; FollowupRulesError names the file and line."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib (3.11) has the position only in its message: "... (at line 4, column 12)".
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        if found:
            message = str(exc)[: found.start()].strip()
            raise FollowupRulesError(f"{source}:{found.group(1)}: {message}") from None
        raise FollowupRulesError(f"{source}: {exc}") from None
    try:
        spec = FollowupRulesFile.model_validate(data)
    except ValidationError as exc:
        lines = text.splitlines()
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            located = error.get("ctx", {}).get("error")
            loc = located.loc if isinstance(located, _LocatedError) else tuple(error["loc"])
            # Drop pydantic's union and validator tags ("function-after[...]") from the path.
            loc = tuple(p for p in loc if not isinstance(p, str) or "[" not in p)
            where = ".".join(str(p) for p in loc) or "file"
            problems.append(f"{source}:{line_of(lines, loc)}: {where}: {error['msg']}")
        raise FollowupRulesError("\n".join(problems)) from None
    digest = hashlib.sha256(text.encode()).hexdigest()
    return FollowupRules(spec, source, digest)


def load_followup_rules(path: Path | None = None) -> FollowupRules:
    """The rules in *path*, or the shipped default (models/rule_sets/followup.toml)."""
    if path is None:
        resource = files("models") / "rule_sets" / "followup.toml"
        return parse_followup_rules(resource.read_text("utf-8"), "followup.toml (default)")
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise FollowupRulesError(f"{path}: {exc.strerror}") from None
    return parse_followup_rules(text, str(path))
