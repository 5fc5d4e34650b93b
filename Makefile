# One virtualenv, made on first use: every target installs what it needs, and no more.
#   make demo / make install   the runtime only (what `ingest` and `ingest demo` need)
#   make test / make lint      plus the test, spark and bench extras (the suite runs the
#                              Spark tests and the official SDK's peers too)
#   make bench                 plus the bench and spark extras
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.test-installed
BENCH  := $(VENV)/.bench-installed

.PHONY: install test lint format bench bench-quick demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,spark,bench]'
	touch $@

$(BENCH): $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench,spark]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m ingest demo

test: $(DEV)
	$(BIN)/pytest -q

lint: $(DEV)
	$(BIN)/ruff check ingest tests benchmarks
	$(BIN)/ruff format --check ingest tests benchmarks
	$(BIN)/mypy

format: $(DEV)
	$(BIN)/ruff format ingest tests benchmarks
	$(BIN)/ruff check --fix ingest tests benchmarks

# every benchmark (the suite with the 5M-row file, COCO, iterables, grouping, Spark),
# then benchmarks/README.md rendered from their results files
bench: $(BENCH)
	$(BIN)/python -m benchmarks.regenerate

bench-quick: $(BENCH)
	$(BIN)/python -m benchmarks.regenerate --quick --out benchmarks/results-quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
