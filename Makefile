# Alur: `make run` sets everything up and serves the demo; `make test` runs every test.
VENV    ?= .venv
PY      := $(VENV)/bin/python
ALUR    := $(VENV)/bin/alur
STAMP   := $(VENV)/.installed

.PHONY: run setup test lint node-deps system-deps clean bench-load bench-crash bench-floor

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch node_modules/.installed

node-deps: node_modules/.installed

run: setup
	$(ALUR) init
	$(ALUR) demo
	$(ALUR) serve

test: setup node-deps
	$(VENV)/bin/ruff check engine web tests bench
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check engine web tests bench

# Load and crash tests (docs/benchmarks.md): gunicorn + PostgreSQL on 127.0.0.1:5432 (user postgres, trust
# auth), a few minutes each, they end by themselves; not part of `make test`. BENCH_ARGS=... passes options.
$(VENV)/.installed-production: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,production]'
	touch $@

bench-load: $(VENV)/.installed-production
	$(PY) bench/load.py --write-docs $(BENCH_ARGS)

bench-crash: $(VENV)/.installed-production
	$(PY) bench/crash.py --write-docs $(BENCH_ARGS)

bench-floor: $(VENV)/.installed-production
	$(PY) bench/floor.py --write-docs $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache
