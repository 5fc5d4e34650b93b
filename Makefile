# One virtualenv, made on first use: every target below installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint format bench bench-quick demo clean

# bench brings the clarifai SDK, so that `make test` runs tests/test_peers.py
# (test, spark and bench install in under a minute on a fresh venv)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,spark,bench]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check ingest tests benchmarks
	$(BIN)/ruff format --check ingest tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format ingest tests benchmarks
	$(BIN)/ruff check --fix ingest tests benchmarks

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,spark,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks.spark

bench-quick: $(VENV)/.bench-installed
	$(BIN)/python -m benchmarks --quick --out benchmarks/results-quick

demo: $(STAMP)
	$(BIN)/python -m ingest demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
