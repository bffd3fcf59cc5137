# One target per habit. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# Bytecode is written even where the environment says not to (PYTHONDONTWRITEBYTECODE): the
# suite and the wheel check start about a hundred `clinicmail` processes, and each compiled this
# project's modules again, about a third of its start-up.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-fast test-explore lint fmt bench clean content-doc seed-shingles wheel-check

# uv installs what pip would (the same resolution), in about a quarter of the time: a fresh
# clone's first `make test` spends seconds here instead of most of a minute. Bytecode is
# written as modules are first imported, not for every file of every package up front.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv>=0.5,<1'

UV_INSTALL := $(BIN)/uv pip install --quiet --python $(BIN)/python

# Installs are stamped on pyproject.toml so a second `make` does not reinstall.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(UV_INSTALL) -e '.[postgres]'
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(UV_INSTALL) -e '.[test]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/clinicmail init
	$(BIN)/clinicmail serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Three workers on a 2-core machine: much of a test is waiting on a subprocess, a browser, the
# database or the clock (the signup-timing probe sleeps for most of its time), and with two
# workers a tenth to a sixth of the CPU stayed idle (88-94 core-seconds of a .ci/run). A third
# worker fills most of it (27-30 left) for some more CPU (each worker makes its own database
# templates and collects the tests): .ci/run took 305 and 292 s with three against 324 and
# 295 s with two, the four runs alternating on one machine. PYTEST_WORKERS=0 runs in one
# process (pdb, print debugging).
PYTEST_WORKERS ?= 3

# worksteal: a worker that runs out of tests takes some of another's, so one long test near
# the end does not leave a core idle.
PYTEST_DIST := $(if $(filter 0,$(PYTEST_WORKERS)),,--dist worksteal)

# The lint runs beside the suite, not before it (scripts/beside, at the lowest priority): it is
# one process, and it takes the CPU the workers leave while their tests wait, so the two together
# take about as long as the suite alone. The lint's report is printed when the suite has
# finished; either failing fails the target. The forty slowest steps are listed at the end:
# where the next minute of the suite is.
test: $(VENV)/.installed-test
	bash scripts/beside '$(MAKE) --no-print-directory lint' \
	  $(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_DIST) --durations=40

# The inner loop: SQLite only, no browser, no slow end-to-end checks, no lint.
test-fast: $(VENV)/.installed-test
	CLINICMAIL_TEST_POSTGRES_URL= CLINICMAIL_TEST_REQUIRE_POSTGRES= CLINICMAIL_TEST_REQUIRE_BROWSER= \
	  $(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_DIST) -m "not slow and not postgres and not browser"

# The property tests with new random examples (the gate repeats the same ones each run): a bug
# hunt, not a gate. Pin what it finds with @example.
test-explore: $(VENV)/.installed-test
	CLINICMAIL_TEST_HYPOTHESIS=explore $(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_DIST) \
	  -m "not slow and not browser" $$(grep -l "from hypothesis" tests/test_*.py)

# Install as software: build the wheel, install it into a fresh venv, run init, an import and a
# tick from the installed package in a temporary folder (.ci/run runs it beside `make test`).
wheel-check: $(VENV)/.installed-test
	$(BIN)/python scripts/check_wheel.py

# With CLINICMAIL_BENCH_POSTGRES_URL set, also the scale-out run: 1, 2 and 3 schedulers and two web
# processes on one PostgreSQL (its own section of docs/benchmarks.md).
bench: $(VENV)/.installed-test
	$(BIN)/python bench/delivery.py --rows $${BENCH_ROWS:-100000} --idle $${BENCH_IDLE:-10000,1000000} --write docs/benchmarks.md
	@if [ -n "$$CLINICMAIL_BENCH_POSTGRES_URL" ]; then \
	  $(BIN)/python bench/scaleout.py --subscribers $${BENCH_SCALEOUT:-200000} --write docs/benchmarks.md; \
	else echo "scale-out run skipped: set CLINICMAIL_BENCH_POSTGRES_URL"; fi

# The content library's docs/content.md journeys, and the source articles' shingle hashes
# (SEEDS: the folder of source articles, never committed).
content-doc: $(VENV)/.installed-test
	$(BIN)/python scripts/content_doc.py

seed-shingles: $(VENV)/.installed-test
	@test -n "$(SEEDS)" || { echo "make seed-shingles SEEDS=path/to/articles"; exit 1; }
	$(BIN)/python scripts/seed_shingles.py "$(SEEDS)"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
