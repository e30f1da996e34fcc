"""python -m tests.benchmarks: see tests/benchmarks/README.md."""

from tests.benchmarks.runner import main

raise SystemExit(main())
