"""The one harness the integration tests, the fault tests and the benchmarks start real
things with, by concept:

- ports.py: free TCP ports (also for tests/postgres_cluster.sh)
- waiting.py: wait on a condition with a deadline
- processes.py: cxloop subprocesses (`worker`, `up`) and the embedded broker: start, wait
  until /ready, stop or kill -9, logs, py-spy
- smtp.py: an in-process SMTP server that records and can refuse, fail or go down; an
  out-of-process sink
- postgres.py: fresh databases, throwaway clusters (tests/postgres_cluster.sh), the
  benchmarks' server
- topics.py: read topics from the start; produce and inspect them from synchronous tests
- loop.py: a running `cxloop up` and what the integration tests do with it
"""
