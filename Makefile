# Entry points: `make run`, `make test`, `make up` / `make down`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCK := requirements/dev.txt
UV_COMPILE := --quiet --universal --python-version 3.11 --generate-hashes
LOCK_ARGS ?=
ENDPOINTS := .local/endpoints.env
PYTEST_ARGS ?=
NODE_TOOLS := tools/asyncapi
NODE_STAMP := $(NODE_TOOLS)/node_modules/.installed-stamp
WITH_INFRA = mkdir -p .local && $(BIN)/clinic infra up > $(ENDPOINTS) && set -a && . ./$(ENDPOINTS) && set +a &&

.PHONY: setup lock infra-up infra-down infra-status lint test test-unit test-contract test-integration test-e2e schemas asyncapi rules lint-asyncapi run up down secrets bench chaos clean

## The environment is installed from the lock (exact versions, every file checked against its hash),
## then the project itself without resolving anything; a changed lock or pyproject.toml re-installs.
$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(LOCK)
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

## Re-resolve the locks from pyproject.toml (after changing a dependency there). LOCK_ARGS passes options
## through, e.g. LOCK_ARGS=--upgrade (everything) or LOCK_ARGS='--upgrade-package pydantic'.
lock: setup
	$(BIN)/uv pip compile $(UV_COMPILE) $(LOCK_ARGS) --extra dev pyproject.toml requirements/build.in -o $(LOCK)
	$(BIN)/uv pip compile $(UV_COMPILE) pyproject.toml requirements/build.in -c $(LOCK) -o requirements/runtime.txt

infra-up: setup
	@mkdir -p .local && $(BIN)/clinic infra up | tee $(ENDPOINTS)

infra-down: setup
	$(BIN)/clinic infra down

infra-status: setup
	$(BIN)/clinic infra status

## Static checks: ruff over the repository, mypy --strict over shared/ and services/ (pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

## Every tier against the real broker and store, after the official AsyncAPI parser (what CI runs).
test: setup lint-asyncapi
	$(WITH_INFRA) $(BIN)/pytest $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-contract: setup
	$(BIN)/pytest tests/contract $(PYTEST_ARGS)

test-integration: setup
	$(WITH_INFRA) $(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-e2e: setup
	$(WITH_INFRA) $(BIN)/pytest tests/e2e $(PYTEST_ARGS)

## The whole system: foreground with a sample journey (Ctrl-C stops it all), or in the background.
run: setup
	$(BIN)/clinic run

up: setup
	@mkdir -p .local && $(BIN)/clinic up | tee $(ENDPOINTS)

down: setup
	$(BIN)/clinic down

## The secrets `docker compose up` mounts (passwords, MongoDB keyfile, URLs), made once into ./secrets/.
secrets: setup
	$(BIN)/python -m infra.compose_secrets

## Regenerate the JSON Schemas under schemas/ from the contract models.
schemas: setup
	$(BIN)/python -m shared.contracts.schemas

## Regenerate the rules reference (docs/rules.md, docs/rules.json) from the services' configuration.
rules: setup
	$(BIN)/python -m clinic.rules

## Regenerate the system's AsyncAPI document under asyncapi/.
asyncapi: setup
	$(BIN)/python -m clinic.asyncapi

## Validate the AsyncAPI document with the official parser (@asyncapi/parser, pinned in tools/asyncapi/);
## any error or warning fails.
$(NODE_STAMP): $(NODE_TOOLS)/package.json $(NODE_TOOLS)/package-lock.json
	cd $(NODE_TOOLS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

lint-asyncapi: $(NODE_STAMP)
	node $(NODE_TOOLS)/validate.mjs asyncapi/clinic.asyncapi.json

## Whole-system journey benchmark (measured, not asserted): the four services as processes, journeys/s,
## p50/p95/p99, round trips and CPU per event. Options: make bench BENCH_ARGS="--journeys 20 --concurrency 5"
## (or --rate 10: an open loop)
## (python -m bench.journeys --help). The runtime-only benchmark: python -m bench.runtime_bench.
bench: setup
	$(WITH_INFRA) $(BIN)/python -m bench.journeys $(BENCH_ARGS)

## Chaos run (not part of `make test`): journeys while instances are SIGKILLed and the broker and store
## restarted, on a Kafka and FerretDB of its own; exit 1 if any effect is lost, duplicated or stuck.
## Options: make chaos CHAOS_ARGS="--journeys 40 --kill-every 10" (python -m bench.chaos --help).
chaos: setup
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

clean:
	rm -rf .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
