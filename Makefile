# ordertag: one entry point. `make demo` runs the whole system locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
STACK := deploy/local/stack.sh

.PHONY: help install stack-up stack-down stack-status demo observe test test-slow test-unit test-integration lint format bench chaos

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

install:  ## install Python deps (uv, from uv.lock) and the local stack's servers
	@command -v uv >/dev/null || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen
	$(STACK) install

stack-up: install  ## start Kafka, the MongoDB-wire server and Redis
	$(STACK) start

stack-down:  ## stop the local stack
	$(STACK) stop

stack-status:  ## show what runs
	$(STACK) status

demo: install  ## run the stack and the three services, push sample orders, Ctrl-C stops all
	deploy/local/demo.sh

observe:  ## Prometheus scraping the demo's services with the alert rules (run beside `make demo`)
	deploy/observability/observe.sh

lint:  ## ruff (lint + format check) and mypy
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy shared services bench

test: install lint  ## every test but the slow suites, against the local stack (started and stopped around the run)
	deploy/local/with-stack.sh $(UV) run pytest -m "not slow" --durations=25

test-slow: install  ## the slow suites alone (a 3-broker Kafka cluster killed mid-stream, ...)
	deploy/local/with-stack.sh $(UV) run pytest -m slow

test-unit: install  ## unit tests only (no servers)
	$(UV) run pytest -m "not integration"

test-integration: install  ## integration tests only
	deploy/local/with-stack.sh $(UV) run pytest -m integration

format:  ## apply ruff's formatting and safe fixes
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

bench: install  ## every benchmark on the local stack; writes docs/benchmarks.{md,json,png}
	deploy/local/with-stack.sh $(UV) run python -m bench

chaos: install  ## the full chaos run on the local stack: kills, restarts, accounting; writes docs/reliability.{md,json} (options: CHAOS_ARGS="--rate 15 --drain-within 900")
	deploy/local/with-stack.sh $(UV) run python -m tests.chaos $(CHAOS_ARGS)
