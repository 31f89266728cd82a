# Alur: `make run` sets everything up and serves the demo; `make test` runs every test.
VENV    ?= .venv
PY      := $(VENV)/bin/python
ALUR    := $(VENV)/bin/alur
STAMP   := $(VENV)/.installed

.PHONY: run setup test lint node-deps system-deps clean

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

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache
