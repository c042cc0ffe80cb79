# Every target sets itself up: a fresh machine needs only `make run` or `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python

.PHONY: run test lint bench setup npm clean

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip

.stamp-py: pyproject.toml | $(BIN)/activate
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $@

.stamp-npm: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

setup: .stamp-py .stamp-npm

run: setup
	$(BIN)/provenance devnet up

test: setup
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: .stamp-py
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy provenance chain_node devnet adapters gateway witness

bench: setup
	$(PYTHON) bench/crypto.py
	$(PYTHON) bench/chain.py
	$(PYTHON) bench/gateway.py
	$(PYTHON) bench/verify.py
	$(PYTHON) bench/witness.py

clean:
	rm -rf $(VENV) node_modules .stamp-py .stamp-npm
