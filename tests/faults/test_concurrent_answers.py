"""f. Many parallel submissions of one survey token: exactly one is recorded."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import wait_for
from tests.faults.checker import Expected, check, settle
from tests.faults.conftest import Sizes
from tests.faults.rig import Answer, FaultRig
from tests.faults.workload import contact_events

pytestmark = pytest.mark.faults


def test_parallel_submissions_of_one_token_record_one_answer(
    make_rig: Callable[[str], FaultRig], sqlite_url: str, sizes: Sizes
) -> None:
    rig = make_rig(sqlite_url)
    worker = rig.add_worker()
    worker.wait_ready()
    events = contact_events(sizes.parallel_tokens, sizes.parallel_tokens, seed=6, prefix="f")
    produced = rig.produce_events(events)
    wait_for(lambda: len(rig.smtp.received()) >= len(events), 30, "the survey mails")
    n = sizes.parallel_answers
    answers = []
    tallies = []
    for mail in rig.smtp.received():
        barrier = threading.Barrier(n)

        def submit(
            _: int, token: str = mail.token or "", start: threading.Barrier = barrier
        ) -> httpx.Response:
            start.wait(timeout=30)
            return httpx.post(
                f"{worker.web}/api/responses",
                json={"token": token, "nps": 2, "comment": "parallel"},
                timeout=60,
            )

        with ThreadPoolExecutor(max_workers=n) as pool:
            replies = list(pool.map(submit, range(n)))
        statuses = Counter(r.status_code for r in replies)
        tallies.append(statuses)
        rows = rig.rows(
            "SELECT count(*) FROM survey_responses WHERE invitation_id = :i", i=mail.invitation_id
        )
        assert statuses == {201: 1, 409: n - 1}, statuses
        assert rows == [(1,)]
        (won,) = [r for r in replies if r.status_code == 201]
        answers.append(
            Answer(
                mail.invitation_id,
                mail.token or "",
                2,
                "parallel",
                status=201,
                response_id=won.json()["response_id"],
            )
        )

    expected = Expected(events=produced, answers=answers)
    todo = settle(rig, expected, sizes.settle_s)
    report = check(rig, expected, "f. parallel submissions of one token")
    report.outstanding = todo
    print(report.table())  # noqa: T201 - the counts are this test's output
    print("HTTP statuses per token:", [dict(t) for t in tallies])  # noqa: T201
    assert report.all_zero, report.table()
