"""c. The SMTP relay down, answering 421, refusing one address with 550, and dying right after
taking a message: nothing lost, nothing sent twice, the refused invitation 'failed', and
contact intake keeps flowing meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.faults.checker import finish, unknown_allowance
from tests.faults.conftest import Sizes
from tests.faults.rig import FaultRig
from tests.faults.workload import Traffic, address_of, contact_events

pytestmark = pytest.mark.faults


def _decided(rig: FaultRig, events: Sequence[dict[str, Any]]) -> int:
    prefix = events[0]["event_id"].rsplit("-", 1)[0]
    return int(
        rig.scalar("SELECT count(*) FROM survey_decisions WHERE event_id LIKE :p", p=f"{prefix}-%")
    )


def _statuses(rig: FaultRig, events: Sequence[dict[str, Any]]) -> set[str]:
    prefix = events[0]["event_id"].rsplit("-", 1)[0]
    rows = rig.rows(
        "SELECT DISTINCT delivery_status FROM survey_invitations WHERE event_id LIKE :p",
        p=f"{prefix}-%",
    )
    return {row[0] for row in rows}


def _hold_until(deadline: float) -> None:
    """Keep the fault in place for its stated duration."""
    time.sleep(max(0.0, deadline - time.monotonic()))


def test_smtp_down_tempfailing_and_refusing(
    make_rig: Callable[[str], FaultRig], sqlite_url: str, sizes: Sizes
) -> None:
    rig = make_rig(sqlite_url)
    rig.add_worker().wait_ready()
    n = sizes.smtp_events_per_phase
    traffic = Traffic(rig, answer_mail=False)  # mail is what this test is about

    # 1. The relay goes down while it is taking a burst of mail; more contacts arrive during
    # the outage and are still decided; no invitation is given up on.
    burst = contact_events(n, n, seed=30, prefix="cburst")
    during = contact_events(n, n, seed=31, prefix="cdown")
    traffic.feed_events(burst, per_second=10 * n, chunk=n)
    wait_for(rig.smtp.received, 30, "the first mail of the burst", 0.01)
    rig.smtp.stop()
    up_again = time.monotonic() + sizes.smtp_outage_s
    mailed_before = len(rig.smtp.received())
    traffic.wait_fed(60)
    traffic.feed_events(during, per_second=2 * n / sizes.smtp_outage_s)
    wait_for(
        lambda: _decided(rig, during) == n,
        max(sizes.smtp_outage_s, 30),
        "contact events to be decided while SMTP is down",
    )
    assert not rig.smtp.running
    assert _statuses(rig, during) <= {"pending", "sending"}, "gave up on mail during the outage"
    # Mails cut off mid-conversation may be 'unknown' (at most one per SMTP connection, which
    # the checker enforces); none may be given up on.
    assert "failed" not in _statuses(rig, burst), "gave up on the burst"
    _hold_until(up_again)
    print(f"mailed before the relay went down: {mailed_before} of {n}")  # noqa: T201
    rig.smtp.start()

    # 2. The relay answers 421 to everything for a while.
    tempfail = contact_events(n, n, seed=32, prefix="c421")
    rig.smtp.mode = "tempfail"
    accept_again = time.monotonic() + sizes.smtp_tempfail_s
    traffic.wait_fed(60)
    traffic.feed_events(tempfail, per_second=2 * n / sizes.smtp_tempfail_s)
    wait_for(lambda: rig.smtp.refusals("421") > 0, sizes.smtp_tempfail_s + 30, "a 421 answer")
    wait_for(lambda: _decided(rig, tempfail) == n, 60, "decisions while SMTP answers 421")
    assert _statuses(rig, tempfail) <= {"pending", "sending"}, "gave up on mail after a 421"
    _hold_until(accept_again)
    rig.smtp.mode = "accept"

    # 3. One address is refused for good (550).
    refusing = contact_events(n, n, seed=33, prefix="c550")
    refused = address_of(refusing[n // 2]["customer"]["id"])
    rig.smtp.refused.add(refused)
    traffic.wait_fed(60)
    traffic.feed_events(refusing, per_second=10 * n)

    # 4. The relay takes a message and dies before its 250 reaches the worker (RFC 1047):
    # that mail may stay 'unknown', but it must not be sent a second time.
    traffic.wait_fed(60)
    rig.smtp.drop_replies = 1
    traffic.feed_events(contact_events(20, 20, seed=34, prefix="cdrop"), per_second=200)
    wait_for(lambda: rig.smtp.drop_replies == 0, 60, "the relay to die after taking a mail")

    report = finish(
        rig,
        traffic,
        "c. SMTP down, 421, 550, reply lost",
        sizes.settle_s,
        refused=frozenset({refused}),
        # The relay going down cuts at most one conversation per SMTP connection, as a
        # worker crash does; plus the one reply the relay never sent.
        interrupted_conversations=unknown_allowance(kills=1) + 1,
    )
    status = rig.rows("SELECT delivery_status FROM survey_invitations WHERE email = :e", e=refused)
    assert status == [("failed",)]
    assert rig.smtp.refusals("550") >= 1
    assert report.all_zero, report.table()
