"""The base of the errors the SQL application services raise."""

from __future__ import annotations

from models.errors import CxloopError


class StoreError(CxloopError):
    """A store refuses a request: unknown row, closed case, schema not as expected."""
