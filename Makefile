# The two commands: `make demo` and `make test`. Both install what they need into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo demo-distributed test lint bench clean

install: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

demo: install
	$(BIN)/python scripts/demo.py

# The production topology as separate processes: Postgres and Redis on 127.0.0.1 (README "make demo-distributed").
demo-distributed: install
	$(BIN)/python scripts/demo_distributed.py

test: lint
	$(BIN)/python -m pytest -q

# ruff (lint and format) and mypy, configured in pyproject.toml; zero findings on plugins/ and dags/.
lint: install
	$(BIN)/ruff check plugins dags
	$(BIN)/ruff format --check plugins dags
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/bench_landing.py --update-doc
	$(BIN)/python benchmarks/bench_triggers.py --update-doc

clean:
	rm -rf .demo .demo-distributed lake
