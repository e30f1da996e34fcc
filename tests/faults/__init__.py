"""Fault injection: the real loop under kill -9, SMTP and database outages, poison and replays.

Each test starts its own standalone tansu broker, an in-process SMTP server it can switch
(accept / 421 / 550 per address / down), a database and `cxloop worker` subprocesses
(rig.py, put together from tests/harness); pushes contact events and survey answers through
them while it injects a fault; then compares what went in with what came out (checker.py):
per category how much was lost, duplicated or wrong, printed and asserted to be zero.

Short version (part of the normal run, a few minutes on 2 cores)::

    .venv/bin/pytest tests/faults -rA

Long version (bigger loads, 10 kills, 60 s outages)::

    CXLOOP_FAULTS_LONG=1 .venv/bin/pytest tests/faults -rA

or `make faults`, which also starts a throwaway PostgreSQL. `-rA` (or `-s`) shows the
checker's counts for passing tests too. The PostgreSQL variants need
CXLOOP_TEST_POSTGRES_URL (`make test` sets it) and fail without it; the database-outage
test starts a private cluster of its own with tests/postgres_cluster.sh.

| scenario | test |
|---|---|
| a. kill -9 mid-stream, restart | test_worker_crashes.py (…_mid_stream_and_restarted) |
| b. one of two workers killed | test_worker_crashes.py (…_move_to_the_survivor) |
| c. SMTP down, 421, 550 | test_smtp_outages.py |
| d. poison messages | test_poison.py |
| e. duplicates and replays | test_replays.py |
| f. parallel answers to one token | test_concurrent_answers.py |
| g. PostgreSQL down | test_database_outage.py |
"""
