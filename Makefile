# Two commands on a fresh machine: `make demo` (install + a real fusion on the local model)
# and `make test` (install dev tools + lint, type checks and the whole test suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_PROMPT ?= Why is the sky blue? Answer in two sentences.

.PHONY: install dev demo test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

dev: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"

demo: install
	$(BIN)/apex fuse --workflow local "$(DEMO_PROMPT)"

lint:
	$(BIN)/ruff check apex tests benchmarks examples
	$(BIN)/ruff format --check apex tests benchmarks examples
	$(BIN)/mypy

test: dev lint
	$(BIN)/pytest
