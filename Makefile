# auction-trader — the one entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DB_DIR ?= data
MLFLOW_PORT ?= 5000
DEMO_DAYS ?= 3
DEMO_SEED ?= 7
PYTEST_ARGS ?=
# Python trees that lint/fmt cover (only those that exist in this checkout)
PY_DIRS := $(wildcard at_core tests benches tune live)
WEB := at_core/dashboard/web
DASHBOARD_PORT ?= 8050
# Debian's Chromium for the browser tests (Playwright drives it; never a browser download)
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install build web browser dashboard demo test test-rust test-py bench lint fmt lock clean mlflow-ui simulate live-demo soak

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-lock.txt pyproject.toml
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-lock.txt
	touch $@

install: $(VENV)/.installed ## create .venv and install the locked Python dependencies

$(WEB)/dist/.built: $(WEB)/package.json $(WEB)/package-lock.json $(WEB)/build.mjs $(wildcard $(WEB)/src/*)
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error && node build.mjs
	touch $@

web: $(WEB)/dist/.built ## build the dashboard front end (npm ci from the lock file; no CDN)

$(CHROMIUM):
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

browser: $(CHROMIUM) ## install Debian's Chromium for the browser tests (if missing)

build: install web ## compile the Rust core and install the package (editable) into .venv
	$(VENV)/bin/maturin develop --release --quiet
	$(PY) -c "import at_core._core as c; print('at_core._core', c.core_version())"

demo: build ## the main job on generated data (no servers, no internet); DB_DIR=data
	$(VENV)/bin/auction-trader demo --db-dir $(DB_DIR) --days $(DEMO_DAYS) --seed $(DEMO_SEED)

test-rust: ## Rust unit/golden/property tests of the domain crates
	cargo test --release --workspace --exclude at-py

test-py: build browser ## Python tests (unit, golden, property, integration, e2e)
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test: build test-rust test-py ## every test (Rust and Python)

bench: build ## benchmarks -> bench-results.jsonl (one JSON object per line)
	$(PY) benches/run.py --out bench-results.jsonl

lint: install ## ruff, mypy, clippy (warnings as errors), rustfmt
	$(VENV)/bin/ruff check $(PY_DIRS)
	$(VENV)/bin/ruff format --check $(PY_DIRS)
	$(VENV)/bin/mypy at_core
	cargo clippy --workspace --all-targets --release -- -D warnings
	cargo fmt --all -- --check

fmt: install ## apply ruff and rustfmt formatting
	$(VENV)/bin/ruff format $(PY_DIRS)
	$(VENV)/bin/ruff check --fix $(PY_DIRS)
	cargo fmt --all

SIM_ARGS ?= --seed $(DEMO_SEED) --from 2024-01-01 --to 2024-01-01 --speed 1
simulate: build ## the loopback Bybit v5 exchange on 127.0.0.1 (SIM_ARGS="--seed 7 --from 2024-01-01 --to 2024-01-01 --speed 1")
	$(VENV)/bin/auction-trader simulate --db-dir $(DB_DIR) $(SIM_ARGS)

live-demo: build ## the live graph in paper mode on the loopback simulator, trading; Ctrl-C stops
	$(VENV)/bin/auction-trader live demo --db-dir $(DB_DIR)

soak: build ## kill -9 the whole live graph 50 times while it trades, then check nothing was lost (KILLS=50 MODE=paper|live)
	$(VENV)/bin/auction-trader live soak --db-dir $(DB_DIR) --kills $(or $(KILLS),50) --mode $(or $(MODE),paper)

dashboard: build ## the web dashboard over DB_DIR on http://127.0.0.1:$(DASHBOARD_PORT)
	$(VENV)/bin/auction-trader dashboard --db-dir $(DB_DIR) --port $(DASHBOARD_PORT)

mlflow-ui: install ## MLflow UI over the sweeps in DB_DIR on http://127.0.0.1:$(MLFLOW_PORT) (MLFLOW_PORT=5000)
	@echo "sweeps: open the URL that grid run / make demo printed (it opens on the runs; MLflow's bare home page opens on its GenAI overview: choose 'Model training')"
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port $(MLFLOW_PORT) --backend-store-uri sqlite:///$(abspath $(DB_DIR))/mlflow.db

lock: ## refresh requirements-lock.txt from the current .venv
	$(PIP) freeze --exclude-editable | grep -v '^auction-trader' > requirements-lock.txt

clean: ## remove build products (keeps data/)
	rm -rf target $(VENV) at_core/_core*.so .pytest_cache .mypy_cache .ruff_cache $(WEB)/node_modules $(WEB)/dist
