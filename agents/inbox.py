"""inbox: (being built)."""

from __future__ import annotations

import faust

from agents.runtime import Runtime


def register(app: faust.App, rt: Runtime) -> None:
    """Nothing yet."""
