# The two commands: `make demo` and `make test`. Both install what they need into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

demo: install
	$(BIN)/python scripts/demo.py

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
	rm -rf .demo lake
