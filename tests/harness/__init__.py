"""The one harness the integration tests, the fault tests and the benchmarks start real
things with, by concept:

- ports.py: free TCP ports (also for tests/postgres_cluster.sh)
- waiting.py: wait on a condition with a deadline
- postgres.py: fresh databases, throwaway clusters (tests/postgres_cluster.sh), the
  benchmarks' server
"""
