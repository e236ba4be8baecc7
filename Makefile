# The two commands a fresh machine needs:  make run  (console on the embedded default)  and  make test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
UP_ARGS ?=

.PHONY: run test install install-dev lint types contracts pytest demo clean bench

# Installs are quiet unless they fail: the log is printed only then.
QUIET  = > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }

$(BIN)/python:
	@echo 'Creating $(VENV) ...'
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --upgrade pip $(QUIET)

# Reinstall only when pyproject.toml changed.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo 'Installing aiconsole (log: $(VENV)/install.log) ...'
	@$(BIN)/pip install --quiet -e . $(QUIET)
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	@echo 'Installing aiconsole with the dev tools (log: $(VENV)/install.log) ...'
	@$(BIN)/pip install --quiet -e '.[dev]' $(QUIET)
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make run: install, migrate, seed the demo organization if the database is empty, start the console.
run: install
	$(BIN)/aiconsole up --port $(PORT) $(UP_ARGS)

## make test: install with dev tools, then lint (ruff), types (mypy), import contracts (import-linter) and the whole pytest suite.
test: install-dev lint types contracts pytest

lint: install-dev
	$(BIN)/ruff check aiconsole pages app.py tests benchmarks migrations

types: install-dev
	$(BIN)/mypy

contracts: install-dev
	$(BIN)/lint-imports --no-cache

pytest: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

demo: install
	$(BIN)/aiconsole demo

bench: install-dev
	$(BIN)/python benchmarks/bench_live_status.py

clean:
	rm -rf $(VENV) .aiconsole .pytest_cache .mypy_cache .ruff_cache
