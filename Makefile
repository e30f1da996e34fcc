# cxloop developer commands.
#   make setup   .venv with cxloop and its test tools (editable install)
#   make up      run cxloop on the embedded defaults (broker, SMTP, SQLite) in ./cxloop-data
#   make test    lint, type-check, import contracts and the whole test suite against a
#                throwaway PostgreSQL
#                (PYTEST_ARGS="-k scoring -x" narrows the pytest run)
#   make bench   the benchmarks on the embedded broker (BENCH_ARGS="--quick --only trigger")
#   make faults  the long fault-injection run (kill -9, outages, poison, replays; ~12 min)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
# Written after a successful install; reinstall when pyproject.toml changes.
SETUP_STAMP := $(VENV)/.cxloop-setup
PYTEST_ARGS ?=
BENCH_ARGS ?=
LINT_PATHS := streams agents models tests
TYPED_PATHS := streams agents models
# Debian packages the tests need: browser tests (Chromium), the throwaway PostgreSQL and
# Debian's kcat (the librdkafka 2.0.2 client integrators may have; tests/integration).
SYSTEM_PACKAGES := chromium chromium-driver postgresql-15 kcat
PG_INITDB := /usr/lib/postgresql/15/bin/initdb

.PHONY: setup up test system-deps bench faults

setup: $(SETUP_STAMP)

$(VENV_PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "make setup: $(PYTHON) is older than 3.11; run make PYTHON=python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(SETUP_STAMP): $(VENV_PY) pyproject.toml
	@$(VENV_PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "make setup: $(VENV) has a Python older than 3.11; remove it and rerun" >&2; exit 1; }
	$(VENV_PY) -m pip install --quiet -e '.[test]'
	@touch $@

up: setup
	$(VENV)/bin/cxloop up --data-dir ./cxloop-data --emit examples/contact-event.jsonl --now

# Throughput, latency, sizes and scale-out against targets; see tests/benchmarks/README.md.
# PostgreSQL: CXLOOP_BENCH_POSTGRES_URL, else CXLOOP_TEST_POSTGRES_URL, else a throwaway cluster.
bench: setup
	$(VENV_PY) -m tests.benchmarks $(BENCH_ARGS)

# The long fault-injection run: bigger loads, 60 s SMTP and database outages, 10 kills
# (tests/faults; the short version runs in `make test`). PostgreSQL as in `make test`.
faults: setup system-deps
	@pgdir=$$(mktemp -d /tmp/cxloop-pg.XXXXXX); \
	trap 'bash tests/postgres_cluster.sh stop "$$pgdir"' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	if ! url=$$(bash tests/postgres_cluster.sh start "$$pgdir" | tail -n 1) || [ -z "$$url" ]; then \
		echo "make faults: FAILED: the throwaway PostgreSQL did not start (see above)." >&2; \
		exit 1; \
	fi; \
	CXLOOP_TEST_POSTGRES_URL="$$url" CXLOOP_FAULTS_LONG=1 \
		$(VENV)/bin/pytest tests/faults -rA $(PYTEST_ARGS)

system-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && [ -x $(PG_INITDB) ] \
		&& [ -x /usr/bin/kcat ]; then \
		exit 0; \
	elif [ "$$(id -u)" -ne 0 ]; then \
		echo "make test: not root, so not installing $(SYSTEM_PACKAGES);" \
			"install them yourself (sudo apt-get install -y $(SYSTEM_PACKAGES))" \
			"or the tests that need them will fail" >&2; \
	else \
		echo "make test: installing $(SYSTEM_PACKAGES)" >&2; \
		apt-get update -q; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(SYSTEM_PACKAGES); \
	fi

# Every check runs even when an earlier one failed, so one run shows all problems; the
# exit status is non-zero if any failed. pytest runs last so its summary closes the output.
# The trap stops and removes the throwaway cluster however the recipe ends. Its directory is
# in /tmp, not under the clone, because the postgres user must be able to reach it.
test: setup system-deps
	@pgdir=$$(mktemp -d /tmp/cxloop-pg.XXXXXX); \
	trap 'bash tests/postgres_cluster.sh stop "$$pgdir"' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	if ! url=$$(bash tests/postgres_cluster.sh start "$$pgdir" | tail -n 1) || [ -z "$$url" ]; then \
		echo "make test: FAILED: the throwaway PostgreSQL did not start (see above)." \
			"The PostgreSQL tests cannot run without it." >&2; \
		exit 1; \
	fi; \
	export CXLOOP_TEST_POSTGRES_URL="$$url"; \
	export CXLOOP_REQUIRE_POSTGRES="$${CXLOOP_REQUIRE_POSTGRES:-1}"; \
	failed=(); \
	run() { echo "+ $$*" >&2; "$$@" || failed+=("$$*"); }; \
	run $(VENV)/bin/ruff check $(LINT_PATHS); \
	run $(VENV)/bin/ruff format --check $(LINT_PATHS); \
	run $(VENV)/bin/mypy $(TYPED_PATHS); \
	run $(VENV)/bin/lint-imports --no-cache --no-logo; \
	run $(VENV)/bin/pytest $(PYTEST_ARGS); \
	if [ $${#failed[@]} -gt 0 ]; then \
		printf 'make test: FAILED: %s\n' "$${failed[@]}" >&2; \
		exit 1; \
	fi
