# The two commands of the README, and the checks behind them.
# Each target creates the virtualenv (.venv) from pyproject.toml on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# PostgreSQL tests use this server when it answers (they skip otherwise,
# and fail under TICKETD_REQUIRE_SERVICES=1 as in CI).
export TICKETD_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test install lint services clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## run: set up, create or upgrade the database, start the daemon (config.toml)
run: $(STAMP)
	$(BIN)/ticketd init
	exec $(BIN)/ticketd serve

## test: set up (packages, and Dovecot for the IMAP tests), lint, type-check, run every test
test: $(STAMP) services lint
	$(BIN)/pytest

services:
	sh tests/services.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
