"""Wait on a condition with a deadline: the one polling loop of the tests and the harness."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class WaitTimeoutError(AssertionError):
    """The condition did not hold before the deadline (a failed check, not a crash)."""


def wait_until(
    check: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll *check* until it returns something truthy and return that; raise WaitTimeoutError
    naming *what* after *timeout* s."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise WaitTimeoutError(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")
