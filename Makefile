# Two commands on a fresh machine with Python 3.11 and make: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test install lint typecheck pytest bench clean-db constraints demo generate-large bench-archives \
	bench-cases bench-dashboards

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

## Load the demo data set (Zhejiang: 3,000 enterprises, a season of inspections, 16 users whose
## passwords are printed once); `make run` does this by itself on an empty database
demo: install
	$(BIN)/python -m app.cli demo

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

## The large data set (1,000,000 enterprises, ~5,100,000 inspections; var/large, database regulator_large)
generate-large: install
	$(BIN)/python bench/generate_large.py

## Archive benchmarks on the large data set (run `make generate-large` first)
bench-archives: install
	$(BIN)/python bench/bench_archives.py

## Case lifecycle at 16 clients and the webhook outbox's delivery rate (own embedded database, var/bench-cases)
bench-cases: install
	$(BIN)/python bench/bench_cases.py

## Campaign dashboards on the large data set (national and provincial; run `make generate-large` first)
bench-dashboards: install
	$(BIN)/python bench/bench_dashboards.py

## Regenerate the pinned versions from the current virtualenv
constraints:
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean-db:
	rm -rf var/pgdata var/pgdata-test
