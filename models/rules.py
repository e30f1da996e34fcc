"""Survey programmes as a versioned rules file: who is asked what, when and how.

A rules file (TOML) lists programmes. Each programme has a survey template, a channel
(email or phone), a send window, sampling, a cooldown, an expiry, reminders, the contact
kinds that cancel it, and ordered rules that say which contact events start it and after
what delay. The first matching rule of a programme applies; several programmes may each
take the same event. A global contact-frequency cap applies across programmes; a
programme may be stricter, and looser only with ``override_global_cap = true``.

Errors name the line: tomllib reports syntax errors with a line, and validation errors
are mapped back to the line of the offending key.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.calendar import Duration, WeeklyWindow, parse_duration
from models.contact_events import Channel, ContactEvent, ContactKind
from models.errors import CxloopError

SurveyChannel = Literal["email", "phone"]
EpisodeScope = Literal["event", "case", "customer"]


class RulesError(CxloopError, ValueError):
    """A rules file is not valid; the message names the file and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowSpec(_Strict):
    """Send window in the customer's time zone, e.g. days = "mon-fri", from = "09:00"."""

    days: str | list[str] = "mon-fri"
    from_: str = Field(default="09:00", alias="from")
    to: str = "18:00"

    @cached_property
    def window(self) -> WeeklyWindow:
        return WeeklyWindow.parse(self.days, self.from_, self.to)

    @model_validator(mode="after")
    def _parses(self) -> WindowSpec:
        try:
            WeeklyWindow.parse(self.days, self.from_, self.to)
        except ValueError as exc:
            raise ValueError(f"send window: {exc}") from None
        return self


def _duration(value: object) -> Duration:
    if isinstance(value, Duration):
        return value
    if not isinstance(value, str):
        raise ValueError('a duration is text such as "30d", "24h" or "1mo"')
    return parse_duration(value)


def _window_value(value: object) -> object:
    """A window table, or the word "always": one clear error instead of pydantic's two."""
    if value is None or isinstance(value, WindowSpec) or value == "always":
        return value
    if isinstance(value, str):
        raise ValueError('a send window is a table (days, from, to) or "always"')
    if isinstance(value, dict):
        try:
            return WindowSpec.model_validate(value)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            raise ValueError(str(first["msg"]).removeprefix("Value error, ")) from None
    raise ValueError('a send window is a table (days, from, to) or "always"')


class Defaults(_Strict):
    timezone: str = "Europe/Amsterdam"
    cap: str = "180d"  # the global contact-frequency cap, across programmes
    window: WindowSpec | Literal["always"] = WindowSpec()
    expiry: str = "30d"
    reminders: int = Field(default=1, ge=0, le=3)
    reminder_after: str = "3d"
    sampling: float = Field(default=1.0, ge=0.0, le=1.0)

    @field_validator("cap", "expiry", "reminder_after")
    @classmethod
    def _is_duration(cls, value: str) -> str:
        _duration(value)
        return value

    _window = field_validator("window", mode="before")(classmethod(lambda cls, v: _window_value(v)))

    @field_validator("timezone")
    @classmethod
    def _is_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class RuleSpec(_Strict):
    """Which contact events start the programme, and after what delay."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$")
    on: list[ContactKind] = Field(min_length=1)
    channels: list[Channel] | None = None  # the contact's channel
    partners: list[str] | None = None
    products: list[str] | None = None
    delay: str = "0"
    per: EpisodeScope = "event"
    repeat: str | None = None  # e.g. "1y": ask again this long after each due time

    @field_validator("delay")
    @classmethod
    def _is_duration(cls, value: str) -> str:
        _duration(value)
        return value

    @field_validator("repeat")
    @classmethod
    def _is_period(cls, value: str | None) -> str | None:
        # A zero period would schedule the next survey at the same instant, forever.
        if value is not None and _duration(value).is_zero:
            raise ValueError("a repeat must be longer than zero")
        return value

    def matches(self, event: ContactEvent) -> bool:
        return (
            event.kind in self.on
            and (self.channels is None or event.channel in self.channels)
            and (self.partners is None or event.partner in self.partners)
            and (self.products is None or event.product in self.products)
        )

    @property
    def delay_duration(self) -> Duration:
        return _duration(self.delay)

    @property
    def repeat_duration(self) -> Duration | None:
        return None if self.repeat is None else _duration(self.repeat)


class ProgrammeSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$")
    description: str = ""
    template: str
    channel: SurveyChannel = "email"
    window: WindowSpec | Literal["always"] | None = None
    sampling: float | None = Field(default=None, ge=0.0, le=1.0)
    cooldown: str = "0"  # between two surveys of this programme to one customer
    cap: str | None = None  # this programme's contact-frequency cap (default: the global)
    override_global_cap: bool = False
    expiry: str | None = None
    reminders: int | None = Field(default=None, ge=0, le=3)
    reminder_after: str | None = None
    cancel_on: list[ContactKind] = []
    rule: list[RuleSpec] = Field(min_length=1)

    @field_validator("cooldown", "cap", "expiry", "reminder_after")
    @classmethod
    def _is_duration(cls, value: str | None) -> str | None:
        if value is not None:
            _duration(value)
        return value

    _window = field_validator("window", mode="before")(classmethod(lambda cls, v: _window_value(v)))


class RulesFile(_Strict):
    version: str = Field(min_length=1, max_length=100)
    description: str = ""
    defaults: Defaults = Defaults()
    programme: list[ProgrammeSpec] = Field(min_length=1)

    def check_names(self) -> None:
        """Programme names, and rule names within a programme, are unique (raised with the
        location of the second one, so the error names its line)."""
        seen: set[str] = set()
        for i, p in enumerate(self.programme):
            if p.name in seen:
                raise _LocatedError(
                    ["programme", i, "name"], f"programme {p.name!r} is defined twice"
                )
            seen.add(p.name)
            rules: set[str] = set()
            for j, r in enumerate(p.rule):
                if r.name in rules:
                    raise _LocatedError(
                        ["programme", i, "rule", j, "name"],
                        f"programme {p.name!r} has two rules named {r.name!r}",
                    )
                rules.add(r.name)


@dataclass(frozen=True)
class Programme:
    """A programme with its defaults filled in: what the scheduler and trigger use."""

    name: str
    template: str
    channel: SurveyChannel
    window: WeeklyWindow
    sampling: float
    cooldown: Duration
    cap: Duration
    override_global_cap: bool  # its cap may be looser than the global one
    expiry: Duration
    reminders: int
    reminder_after: Duration
    cancel_on: frozenset[ContactKind]
    rules: tuple[RuleSpec, ...]

    def first_rule(self, event: ContactEvent) -> RuleSpec | None:
        return next((r for r in self.rules if r.matches(event)), None)

    def rule_named(self, name: str) -> RuleSpec | None:
        return next((r for r in self.rules if r.name == name), None)


@dataclass(frozen=True)
class Rules:
    """A validated rules file."""

    version: str
    digest: str  # sha256 of the file's bytes, so two files with one version are told apart
    timezone: ZoneInfo
    cap: Duration
    programmes: tuple[Programme, ...]
    source: str

    def programme(self, name: str) -> Programme | None:
        return next((p for p in self.programmes if p.name == name), None)

    @property
    def label(self) -> str:
        """What decisions record as the rules version: the version and a short digest."""
        return f"{self.version}@{self.digest[:12]}"


def _build(spec: RulesFile, text: bytes, source: str) -> Rules:
    spec.check_names()
    defaults = spec.defaults
    cap = _duration(defaults.cap)
    programmes = []
    for p in spec.programme:
        own_cap = _duration(p.cap) if p.cap is not None else cap
        # Compared as the database enforces caps (approx_timedelta), so "stricter" here
        # means stricter there.
        if approx_timedelta(own_cap) < approx_timedelta(cap) and not p.override_global_cap:
            raise _LocatedError(
                ["programme", spec.programme.index(p), "cap"],
                f"programme {p.name!r}: cap {p.cap} is looser than the global cap "
                f"{defaults.cap}; set override_global_cap = true to allow it",
            )
        window = p.window if p.window is not None else defaults.window
        programmes.append(
            Programme(
                name=p.name,
                template=p.template,
                channel=p.channel,
                window=WeeklyWindow.always() if window == "always" else window.window,
                sampling=p.sampling if p.sampling is not None else defaults.sampling,
                cooldown=_duration(p.cooldown),
                cap=own_cap,
                override_global_cap=p.override_global_cap,
                expiry=_duration(p.expiry or defaults.expiry),
                reminders=p.reminders if p.reminders is not None else defaults.reminders,
                reminder_after=_duration(p.reminder_after or defaults.reminder_after),
                cancel_on=frozenset(p.cancel_on),
                rules=tuple(p.rule),
            )
        )
    return Rules(
        version=spec.version,
        digest=hashlib.sha256(text).hexdigest(),
        timezone=ZoneInfo(defaults.timezone),
        cap=cap,
        programmes=tuple(programmes),
        source=source,
    )


class _LocatedError(CxloopError):
    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = list(loc)
        self.message = message


def parse_rules(text: bytes, source: str = "<rules>") -> Rules:
    """Validate a rules file's bytes, or raise RulesError naming the line of each problem."""
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RulesError(f"{source}: not UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        if found:
            message = str(exc)[: found.start()].strip()
            raise RulesError(f"{source}:{found.group(1)}: {message}") from None
        raise RulesError(f"{source}: {exc}") from None
    lines = text.decode("utf-8").splitlines()
    try:
        spec = RulesFile.model_validate(data)
        return _build(spec, text, source)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = [p for p in error["loc"] if not isinstance(p, str) or "[" not in p]
            line = _line_of(lines, loc)
            where = ".".join(str(p) for p in loc) or "file"
            problems.append(f"{source}:{line}: {where}: {error['msg']}")
        raise RulesError("\n".join(problems)) from None
    except _LocatedError as exc:
        raise RulesError(f"{source}:{_line_of(lines, exc.loc)}: {exc.message}") from None


def load_rules(path: Path | None = None) -> Rules:
    """The rules at *path*, or the demo rules shipped with cxloop."""
    if path is None:
        text = files("models").joinpath("rule_sets", "demo.toml").read_bytes()
        return parse_rules(text, "demo.toml")
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise RulesError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_rules(text, str(path))


_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _line_of(lines: list[str], loc: Sequence[str | int]) -> int:
    """The 1-based line a validation location points at (best effort: the closest
    enclosing table or key that exists in the file)."""
    # Walk the file keeping the current table path, with array-of-table indexes.
    counts: dict[str, int] = {}
    best, best_depth = 1, -1
    path: list[str | int] = []
    target = [str(p) for p in loc]
    for number, line in enumerate(lines, start=1):
        header = _HEADER.match(line)
        if header:
            parts = header.group(1).split(".")
            is_array = line.lstrip().startswith("[[")
            path = []
            prefix = ""
            for i, part in enumerate(parts):
                prefix = f"{prefix}.{part}" if prefix else part
                path.append(part)
                last = i == len(parts) - 1
                if last and is_array:
                    key = ".".join(str(p) for p in path)
                    counts[key] = counts.get(key, -1) + 1
                    path.append(counts[key])
                elif not last:
                    key = ".".join(str(p) for p in path)
                    if key in counts:
                        path.append(counts[key])
            # Nested arrays restart their count under a new parent.
            for key in list(counts):
                if key.startswith(".".join(str(p) for p in path) + ".") and is_array:
                    del counts[key]
            candidate = [str(p) for p in path]
        else:
            key_match = _KEY.match(line)
            if not key_match:
                continue
            candidate = [*(str(p) for p in path), key_match.group(1)]
        depth = _common_prefix(candidate, target)
        if depth == len(candidate) and depth > best_depth:
            best, best_depth = number, depth
    return best


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def sampled_in(rate: float, customer_id: str, programme: str, event_id: str) -> bool:
    """A deterministic sampling draw, so a replay or a backtest decides the same way."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(f"{programme}|{customer_id}|{event_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def approx_timedelta(duration: Duration) -> timedelta:
    """A Duration as a timedelta (months as 30 days) for caps compared in SQL."""
    return timedelta(days=duration.months * 30 + duration.days, seconds=duration.seconds)


def rules_summary(rules: Rules) -> list[dict[str, Any]]:
    """One row per programme rule, for `cxloop rules check`."""
    rows = []
    for p in rules.programmes:
        for r in p.rules:
            rows.append(
                {
                    "programme": p.name,
                    "rule": r.name,
                    "on": ",".join(k.value for k in r.on),
                    "delay": r.delay,
                    "per": r.per,
                    "repeat": r.repeat or "",
                    "channel": p.channel,
                    "template": p.template,
                    "sampling": p.sampling,
                    "reminders": p.reminders,
                }
            )
    return rows
