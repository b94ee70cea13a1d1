# Set-up is part of every target: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PATHS ?= $(HOME)

.PHONY: run scan test lint typecheck unit bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

## run: the campaign server with a demo campaign on SQLite (http://127.0.0.1:8440/)
run: $(BIN)/.installed
	$(BIN)/quet server --demo

## scan: scan PATHS (default: your home folder) with the installed or starter signatures
scan: $(BIN)/.installed
	$(BIN)/quet scan $(PATHS)

## test: lint, type-check and run the whole test suite
test: lint typecheck unit

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(BIN)/.installed
	$(BIN)/mypy

unit: $(BIN)/.installed
	$(BIN)/pytest -n 2 -q

bench: $(BIN)/.installed
	$(BIN)/python bench/scan.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
