"""cxloop benchmarks: `python -m tests.benchmarks [--quick]` (not part of the pytest run)."""
