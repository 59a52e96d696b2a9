# memdash: a newcomer runs `make run` or `make test`; each sets up what it needs
# first and is safe to run again (stamp files make the second run fast).
#
#   make run  [ARGS="--pid 1234"]   venv + JS asset, then the dashboard
#   make test [PYTEST_ARGS="-k x"]  + chromium, redis-server, node check, lint, pytest

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
PIP         := $(VENV)/bin/pip --disable-pip-version-check
ARGS        ?=
PYTEST_ARGS ?=
CHROMIUM    := $(or $(MEMDASH_CHROMIUM),/usr/bin/chromium)

VENV_STAMP  := $(VENV)/.memdash-installed
BENCH_STAMP := $(VENV)/.memdash-bench-installed
NODE_STAMP  := node_modules/.memdash-installed
SOCKETIO    := dashboard/_assets/socket.io.min.js
LINT_PATHS   = $(wildcard dashboard tests benchmarks)

.PHONY: help setup lab-deps test-deps check-node run test lint format bench wheel lock clean

help:
	@echo "make run     set up (venv, JS asset) and open the dashboard; ARGS=\"...\" go to memdash"
	@echo "make test    set up (also chromium, redis-server), lint, and run the whole test suite"
	@echo "make setup   only the set-up that 'make run' needs"
	@echo "make lint    ruff check + ruff format --check     make format   ruff format + fixes"
	@echo "make bench   run benchmarks/bench_*.py            make wheel    build dist/*.whl"
	@echo "make lock    regenerate package-lock.json         make clean    remove all set-up"

# --- set-up -----------------------------------------------------------------

setup: $(VENV_STAMP) $(SOCKETIO)

$(VENV_STAMP): pyproject.toml
	bash scripts/make-venv.sh "$(PYTHON)" $(VENV)
	$(PIP) install -q -e '.[test]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	bash scripts/check-node.sh --npm
	node scripts/npm-lock.js --check
	npm ci --no-audit --no-fund
	touch $@

$(SOCKETIO): $(NODE_STAMP)
	mkdir -p $(@D)
	cp node_modules/socket.io-client/dist/socket.io.min.js $@

# System packages the tests drive; 'make run' does not need them. Does nothing
# (and no network) when they are already there.
test-deps:
	@bash scripts/apt-ensure.sh $(CHROMIUM)=chromium redis-server=redis-server /usr/sbin/ip=iproute2

check-node:
	@bash scripts/check-node.sh

# --- the two commands -------------------------------------------------------

run: setup lab-deps
	$(VENV)/bin/memdash $(ARGS)

# The leak lab's shared-cache scenario starts a private redis-server. Without it (no root,
# no sudo) the dashboard still runs and the page says why that scenario is unavailable.
lab-deps:
	-@bash scripts/apt-ensure.sh redis-server=redis-server || \
	  echo "memdash: redis-server could not be installed; the shared-cache scenario is off"

test: setup test-deps check-node lint
	$(PY) -m pytest $(PYTEST_ARGS)

# --- the rest ----------------------------------------------------------------

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

format: $(VENV_STAMP)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

$(BENCH_STAMP): $(VENV_STAMP)
	$(PIP) install -q -e '.[test,bench]'
	touch $@

bench: setup $(BENCH_STAMP) check-node
	@shopt -s nullglob; files=(benchmarks/bench_*.py); \
	if (( $${#files[@]} == 0 )); then echo "no benchmarks/bench_*.py yet"; exit 0; fi; \
	for f in "$${files[@]}"; do echo ">> $$f"; $(PY) "$$f"; done

wheel: setup
	rm -f dist/memdash-*.whl
	$(PIP) wheel -q --no-deps -w dist .
	$(PY) scripts/check-wheel.py dist/memdash-*.whl

# Regenerate package-lock.json after editing package.json, without registry URLs.
lock:
	bash scripts/check-node.sh --npm
	npm install --package-lock-only --no-audit --no-fund
	node scripts/npm-lock.js

clean:
	rm -rf $(VENV) node_modules dashboard/_assets dist build *.egg-info .pytest_cache .ruff_cache
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
