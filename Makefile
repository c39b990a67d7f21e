# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DURATION ?= 60

.PHONY: demo test lint bench clean dex-artifacts lock

# the tested dependency set is pinned in requirements.lock (refresh it with `make lock`)
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# re-resolve the newest releases pyproject.toml allows in a scratch venv and pin them
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip
	.lock-venv/bin/pip install -q '.[dev]'
	{ echo '# the tested dependency set: make demo / make test install exactly this; refresh with make lock'; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^cryptoarb'; } > requirements.lock
	rm -rf .lock-venv build

demo: $(BIN)/.installed
	$(BIN)/arb demo --duration $(DURATION)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# real Uniswap V2/V3 bytecode and ABIs for the DEX tests (npm packages, pinned by the lockfile)
tests/dex/node_modules/.package-lock.json: tests/dex/package.json tests/dex/package-lock.json
	cd tests/dex && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

dex-artifacts: tests/dex/node_modules/.package-lock.json

test: lint dex-artifacts
	$(BIN)/pytest -q

bench: $(BIN)/.installed
	$(BIN)/arb bench binance:../shared/data/binance-2024-08-08/spot_btcusdt_20240808.gz \
	                 binance:../shared/data/binance-2024-08-08/spot_btcusdt_20240809.gz

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache tests/dex/node_modules
