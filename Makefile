# Two commands for a fresh clone: `make up` (the whole system on this machine) and
# `make test`. Both create .venv and install what is missing, Debian packages included.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help up test test-all soak longrun replay bench lint fmt deps system-deps browser schema clean deploy-test

up: deps ## the whole system on this machine (broker, every built node, the dashboard; paper mode)
	$(BIN)/edge up

test: deps browser ## the test suite against a real Mosquitto (slow tests left out)
	$(BIN)/python -m pytest -q

# The release check: the suite on every supported Python found here (3.11 to 3.13).
test-all: ## the suite on every Python 3.11 to 3.13 found here
	@for v in 3.11 3.12 3.13; do \
	  py=$$(command -v python$$v || ls $$HOME/.pyenv/versions/$$v*/bin/python$$v 2>/dev/null | head -1); \
	  if [ -n "$$py" ]; then echo "== Python $$v ($$py)"; $(MAKE) --no-print-directory test PY=$$py VENV=.venv-$$v || exit 1; \
	  else echo "== Python $$v not found, skipped"; fi; \
	done

# Long runs kept out of `make test`: every test, the slow ones included, with 2,000
# hypothesis examples per property instead of 60.
soak: deps browser ## every test, the slow ones too, with 2,000 hypothesis examples per property
	HYPOTHESIS_PROFILE=soak $(BIN)/python -m pytest -q -o addopts="" -m 'not deploy'

# Months of uptime in minutes, kept out of `make test`: 1,000,000 messages through real node
# processes and a real broker, every node SIGTERMed and killed -9, the broker restarted
# (bench/longrun.py; `bench/longrun.py --quick` for 100,000).
longrun: deps ## months of uptime in minutes: 1,000,000 messages, nodes and broker restarted (bench/longrun.py)
	$(BIN)/python bench/longrun.py

# The system's own nodes over history, monthly, the trading limits applied, and how its money
# did against SPY, equal weight and exactly its targets (replay/; .run/replay/2010-01_2024-11/).
replay: deps ## the nodes over 2010-01..2024-11 monthly; the report, plots and last-line JSON (edge replay)
	$(BIN)/edge replay --from 2010-01 --to 2024-11 --every month

bench: deps browser ## benchmarks: bench/rpc.py, scoring.py, optimization.py, planner.py, trading.py, dashboard.py, replay.py, rest.py
	$(BIN)/python bench/rpc.py
	$(BIN)/python bench/scoring.py
	$(BIN)/python bench/optimization.py
	$(BIN)/python bench/planner.py
	$(BIN)/python bench/trading.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/rest.py

# The Ansible deployment for real: two Debian trixie boards booted with systemd by
# systemd-nspawn in network namespaces, site.yml run twice, then the deployed system checked
# (tests/test_two_boards.py; needs root; about 20 minutes, the boards' base cached in .run/cache),
# and the slower install checks: the project in a clean venv without the dev tools, releases.
deploy-test: deps ## site.yml onto two systemd-nspawn boards, and the deployed system checked (root)
	@deploy/local/ensure-system-deps.sh --testbed
	$(BIN)/python -m pytest -o addopts="" -m deploy --timeout 1800 -p no:cacheprovider -v \
	  tests/test_runtime_dependencies.py tests/test_deploy.py tests/test_two_boards.py; rc=$$?; \
	  $(BIN)/python -m tests.testbed.report || rc=1; exit $$rc

# ruff's linter and formatter, and mypy on edge/, schemas/, nodes/ and dashboard/ (pyproject's [tool.mypy]).
lint: deps ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: deps ## ruff --fix and ruff format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: deps ## JSON Schemas in build/schemas and the AsyncAPI document build/asyncapi.yaml
	$(BIN)/edge schema --jsonschema build/schemas --asyncapi build/asyncapi.yaml

deps: system-deps $(STAMP) ## .venv with the project, its dev tools and the dashboard; Debian packages

system-deps: ## mosquitto and mosquitto-clients (apt, as root or with sudo; else the line to run)
	@deploy/local/ensure-system-deps.sh

# Debian's chromium, which the dashboard's tests drive with Playwright (no browser download).
browser: ## Debian's chromium for the dashboard's tests
	@deploy/local/ensure-system-deps.sh --browser

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "edge trader needs Python >= 3.11 (set PY=python3.13, say)")'
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,dashboard,replay]'
	touch $(STAMP)

clean: ## remove .run (logs, state, the kept broker port and passwords), build and caches
	rm -rf .run build .pytest_cache .ruff_cache .hypothesis

help: ## this list
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
