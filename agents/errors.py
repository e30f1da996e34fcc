"""The base of the errors raised by agents, timers, mail and views."""

from __future__ import annotations

from models.errors import CxloopError


class AgentError(CxloopError):
    """An effect could not be carried out: the database, the broker or the relay refused."""
