# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DURATION ?= 60

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/arb demo --duration $(DURATION)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: $(BIN)/.installed
	$(BIN)/arb bench binance:../shared/data/binance-2024-08-08/spot_btcusdt_20240808.gz \
	                 binance:../shared/data/binance-2024-08-08/spot_btcusdt_20240809.gz

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
