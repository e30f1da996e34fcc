"""Failed staff sign-ins per user name, counted in memory (per process)."""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime, timedelta


class SignInThrottle:
    """Failed sign-ins per user name, in this process: after *limit* failures within
    *window* the name is refused until the oldest of them is older than the window.
    Remembers at most *names* user names (the least recently failed are forgotten)."""

    def __init__(
        self, limit: int = 10, window: timedelta = timedelta(minutes=15), names: int = 10_000
    ) -> None:
        self.limit = limit
        self.window = window
        self.names = names
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def blocked(self, username: str, now: datetime) -> bool:
        failures = self._recent(username.strip().lower(), now)
        return failures is not None and len(failures) >= self.limit

    def failed(self, username: str, now: datetime) -> None:
        key = username.strip().lower()
        failures = self._recent(key, now)
        if failures is None:
            failures = self._failures[key] = deque(maxlen=self.limit)
        failures.append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > self.names:
            self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._failures.pop(username.strip().lower(), None)

    def _recent(self, key: str, now: datetime) -> deque[datetime] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures
