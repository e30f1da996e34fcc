"""python -m tests.benchmarks [--quick] [--only NAME,...] [--json PATH]"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import structlog

from tests.benchmarks import (
    bench_answer,
    bench_baseline,
    bench_latency,
    bench_mailer,
    bench_reports,
    bench_scale,
    bench_sink,
    bench_state,
    bench_timers,
    bench_trigger,
)
from tests.benchmarks.common import (
    OTHERS,
    REPO,
    code_fingerprint,
    out,
    passed_through_settings,
)
from tests.benchmarks.report import (
    Figure,
    load_previous,
    print_comparison,
    print_table,
    write_json,
)
from tests.benchmarks.runner_context import Context
from tests.harness.postgres import PostgresProvider

BENCHMARKS: dict[str, ModuleType] = {
    "baseline": bench_baseline,
    "trigger": bench_trigger,
    "answer": bench_answer,
    "sink": bench_sink,
    "mailer": bench_mailer,
    "latency": bench_latency,
    "state": bench_state,
    "timers": bench_timers,
    "scale": bench_scale,
    "reports": bench_reports,
}
# Their ratios divide by the raw passthrough measured in the same run.
NEEDS_BASELINE = frozenset({"trigger", "answer"})
DEFAULT_JSON = REPO / "tests" / "benchmarks" / "results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description="cxloop benchmarks on the embedded tansu broker (127.0.0.1 only).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes, about 4 minutes in all"
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset of: {', '.join(BENCHMARKS)} "
        "(trigger and answer also run baseline, their denominator)",
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})"
    )
    parser.add_argument(
        "--worker-db",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="database of the cxloop workers in trigger/answer/latency/scale (default sqlite)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="record py-spy stacks (raw/collapsed) of the workers into DIR (needs py-spy)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, databases)"
    )
    return parser.parse_args(argv)


def selected(only: str) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}"
        )
    if NEEDS_BASELINE & set(names) and "baseline" not in names:
        out("(running baseline too: trigger and answer are reported as a ratio to it)")
        names.append("baseline")
    return [n for n in BENCHMARKS if n in names]


def others_cpu(details: object) -> float:
    """The most CPU (% of a core) that processes outside the benchmark used in any window."""
    if isinstance(details, dict):
        here = details.get(OTHERS, 0.0)
        nested = [others_cpu(v) for v in details.values()]
        return max([here if isinstance(here, float) else 0.0, *nested])
    return 0.0


def quiet_logging() -> None:
    """cxloop's helpers log with structlog; keep the benchmark output to the figures."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("aiokafka").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = selected(args.only)
    quiet_logging()
    workdir = Path(tempfile.mkdtemp(prefix="cxloop-bench."))
    ctx = Context(
        quick=args.quick,
        workdir=workdir,
        pg=PostgresProvider(),
        worker_db=args.worker_db,
        profile_dir=args.profile.resolve() if args.profile else None,
    )
    started = datetime.now(UTC)
    mode = "quick" if args.quick else "full"
    out(f"cxloop benchmarks ({mode}): {', '.join(names)}; work directory {workdir}")
    previous = load_previous(args.json)
    figures: list[Figure] = []
    errors: list[str] = []
    durations: dict[str, float] = {}
    try:
        for name in names:
            out(f"== {name} ==")
            t0 = time.monotonic()
            try:
                result = BENCHMARKS[name].run(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not stop the rest
                errors.append(name)
                detail = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
                out(f"  ERROR: {detail}")
                out(traceback.format_exc(limit=6))
                result = [
                    Figure(
                        key=f"{name}.error",
                        label=f"{name}: ERROR",
                        value=None,
                        unit="",
                        note=detail,
                        details={"traceback": traceback.format_exc()},
                    )
                ]
            durations[name] = round(time.monotonic() - t0, 1)
            busy = max((others_cpu(f.details) for f in result), default=0.0)
            if busy > 25:
                ctx.notes.append(
                    f"{name}: other processes on this machine used up to {busy:.0f} % of a core "
                    "while it measured; its figures are noisy"
                )
            for figure in result:
                out(figure.line())
            out(f"  ({durations[name]:.0f} s)")
            figures.extend(result)
    finally:
        ctx.pg.close()
    elapsed = (datetime.now(UTC) - started).total_seconds()
    run = {
        "started": started.isoformat(timespec="seconds"),
        "mode": mode,
        "quick": args.quick,
        "command": " ".join(
            [Path(sys.executable).name, "-m", "tests.benchmarks", *(argv or sys.argv[1:])]
        ),
        "benchmarks": names,
        "seconds": round(elapsed, 1),
        "seconds_per_benchmark": durations,
        "worker_db": args.worker_db,
        "postgres": ctx.pg.source,
        "passed_through_settings": passed_through_settings(),
        "code": code_fingerprint(),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "notes": ctx.notes,
    }
    out()
    print_table(
        figures,
        previous,
        f"cxloop benchmarks — {mode}, {elapsed:.0f} s, {started:%Y-%m-%d %H:%M} UTC",
    )
    for note in ctx.notes:
        out(f"note: {note}")
    print_comparison(previous, figures, args.quick)
    write_json(args.json, run, figures)
    out(f"Results written to {args.json}")
    if errors or args.keep:
        out(f"Work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if errors else 0
