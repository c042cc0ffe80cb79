# Every target sets itself up: a fresh machine needs only `make run` or `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python

.PHONY: run test lint fuzz bench setup npm clean

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip

.stamp-py: pyproject.toml | $(BIN)/activate
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $@

.stamp-npm: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# Botan 3 for the SM2 backend, from Debian's source package, cached in .build/botan/ (a failure is reported,
# never fatal: SM2 then runs on OpenSSL). The script itself needs only python3 and apt.
.stamp-botan: provenance/crypto/botan_build.py
	$(PY) provenance/crypto/botan_build.py
	touch $@

# Debian packages of the 存证证明 certificates: a CJK font to print Chinese (fonts-wqy-zenhei), poppler's
# pdftoppm for the tests that render them. Installed when run as root; otherwise named, never fatal.
DEBS := fonts-wqy-zenhei:/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc poppler-utils:/usr/bin/pdftoppm
.stamp-deb:
	@missing=""; for d in $(DEBS); do [ -e "$${d#*:}" ] || missing="$$missing $${d%%:*}"; done; \
	if [ -z "$$missing" ]; then touch $@; \
	elif [ "$$(id -u)" = 0 ] && apt-get install -y -qq $$missing >/dev/null; then touch $@; \
	else echo "warning: install with apt-get:$$missing (certificates need them)" >&2; fi

setup: .stamp-py .stamp-npm .stamp-botan .stamp-deb

run: setup
	$(BIN)/provenance devnet up

test: setup
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Slither through the pinned solc (devnet/bin/solc serves the imports); settings in slither.config.json.
lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy provenance chain_node devnet adapters gateway witness
	$(BIN)/slither contracts/ --config-file slither.config.json

# The deep Foundry profile (tests/contracts/foundry/foundry.toml [profile.deep]) with a fresh seed each run; `make test` runs
# the CI-sized default profile through tests/contracts/test_contract_foundry.py.
fuzz: setup
	seed=0x$$(od -An -N8 -tx8 /dev/urandom | tr -d ' '); echo "fuzz seed $$seed"; \
	FOUNDRY_PROFILE=deep node_modules/.bin/forge test --root tests/contracts/foundry \
		--use $(CURDIR)/devnet/bin/solc --offline --fuzz-seed $$seed

bench: setup
	$(PYTHON) bench/crypto.py
	$(PYTHON) bench/chain.py
	$(PYTHON) bench/gateway.py
	$(PYTHON) bench/verify.py
	$(PYTHON) bench/anchor_gas.py
	$(PYTHON) bench/witness.py

clean:
	rm -rf $(VENV) node_modules .stamp-py .stamp-npm .stamp-deb tests/contracts/foundry/.forge
