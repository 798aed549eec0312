# Two commands on a fresh machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP) ## embedded Redis + SQLite + simulated feeds from the 89 real hospitals; prints the board URL
	$(BIN)/capacity demo $(DEMO_ARGS)

serve: $(STAMP)
	$(BIN)/capacity serve $(SERVE_ARGS)

test: $(STAMP) ## mypy --strict first (no tests run if types fail), then the whole suite against real Redis, SQLite and headless Chromium
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP) ## benchmarks vs the bare stack, measured in the same run (see bench/README.md)
	$(BIN)/python -m bench $(BENCH_ARGS)

SOAK_SECONDS ?= 600
soak: $(STAMP) ## the benchmark load for SOAK_SECONDS (default 10 minutes): memory flat, no error; not part of make test
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) var
