"""The benchmarks are a program (python -m tests.benchmarks), not tests: pytest skips them."""

collect_ignore_glob = ["*.py"]
