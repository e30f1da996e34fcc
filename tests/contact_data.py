"""Contact events as the backtest and `cxloop rules` read them: JSON-ready dicts and models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models.contact_events import ContactEvent


def event_data(
    event_id: str,
    kind: str,
    at: datetime,
    customer: str = "C-1",
    case_id: str | None = None,
    with_email: bool = True,
) -> dict[str, Any]:
    """One contact event as a dict, from *customer* with an e-mail address unless not
    *with_email*."""
    return {
        "event_id": event_id,
        "occurred_at": at.isoformat(),
        "kind": kind,
        "channel": "phone",
        "customer": {
            "id": customer,
            "email": f"{customer.lower()}@example.nl" if with_email else None,
            "phone": "+31 20 123 4567",
            "name": "Anna de Vries",
        },
        "case_id": case_id,
    }


def contact(*args: Any, **kwargs: Any) -> ContactEvent:
    """event_data(...) as a validated ContactEvent."""
    return ContactEvent.model_validate(event_data(*args, **kwargs))
