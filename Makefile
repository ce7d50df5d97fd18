# Two commands on a fresh machine with Python 3.11 and make: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test install lint typecheck pytest bench clean-db constraints

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the embedded PostgreSQL (or use DATABASE_URL), migrate, load reference data, serve :8000
run: install
	$(BIN)/python -m app.cli serve

## Lint, type-check and run the whole suite against a real PostgreSQL
test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check app tests bench alembic

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q

## Benchmarks (print figures; not part of `make test`)
bench: install
	$(BIN)/python bench/bench_foundation.py

## Regenerate the pinned versions from the current virtualenv
constraints:
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean-db:
	rm -rf var/pgdata var/pgdata-test
