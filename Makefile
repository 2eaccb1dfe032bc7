# hedgebot: every target installs what it needs into .venv by itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install test lint demo demo-paper bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "==> creating the virtual environment $(VENV) with $(PY)"
	$(PY) -m venv $(VENV)
	@echo "==> upgrading pip"
	$(BIN)/pip install --progress-bar off -q --upgrade pip
	@echo "==> installing hedgebot and its dependencies (numpy, scipy, pandas, ccxt, ...): a minute or two"
	$(BIN)/pip install --progress-bar off -e '.[dev]'
	touch $(STAMP)
	@echo "==> done: run .venv/bin/hedgebot --help, or 'source .venv/bin/activate' and then hedgebot"

install: $(STAMP) ## create .venv and install hedgebot with its dev tools (says each step)
	@echo "hedgebot is installed in $(VENV): $(BIN)/hedgebot --version -> $$($(BIN)/hedgebot --version)"

test: $(STAMP) ## run the whole test suite
	$(BIN)/pytest

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check bot strategies tests bench
	$(BIN)/ruff format --check bot strategies tests bench
	$(BIN)/mypy

demo: $(STAMP) ## hedge BTC and ETH books for a simulated day through ccxt against the sim venue (in demo/)
	$(BIN)/python -m bot.cli.demo

demo-paper: $(STAMP) ## the same simulated day in paper mode (no venue process, in demo/)
	$(BIN)/python -m bot.cli.demo --paper

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	@echo "installing the benchmark baselines (py_vollib_vectorized, QuantLib) into $(VENV)"
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) ## benchmarks: a table with ratios against baselines measured in the same run
	$(BIN)/python -m bench

clean: ## remove the venv, local databases and the demo's world
	rm -rf $(VENV) *.db demo .pytest_cache .mypy_cache .ruff_cache
