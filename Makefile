# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DURATION ?= 60

.PHONY: demo test lint bench clean dex-artifacts lock dashboard web-test browser

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

demo: $(BIN)/.installed dashboard
	$(BIN)/arb demo --duration $(DURATION)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# real Uniswap V2/V3 bytecode and ABIs for the DEX tests (npm packages, pinned by the lockfile)
tests/dex/node_modules/.package-lock.json: tests/dex/package.json tests/dex/package-lock.json
	cd tests/dex && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

dex-artifacts: tests/dex/node_modules/.package-lock.json

# the dashboard (web/: React + TypeScript, pinned by its lockfile) built into the Python package,
# which serves it with no Node at run time; rebuilt only when its sources change. Node >= 20.19.
WEB_SRC := $(shell find web/src -type f ! -name '*.test.ts' ! -name '*.test.tsx' 2>/dev/null) \
           web/index.html web/vite.config.ts web/tsconfig.json
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# VITE_SENTRY_DSN (public, it ends up in the browser) is part of the build: another value rebuilds
WEB_ENV := web/.build-env
$(shell printf '%s\n' '$(VITE_SENTRY_DSN)' | cmp -s - $(WEB_ENV) 2>/dev/null || printf '%s\n' '$(VITE_SENTRY_DSN)' > $(WEB_ENV))

src/cryptoarb/api/static/index.html: web/node_modules/.package-lock.json $(WEB_SRC) $(WEB_ENV)
	cd web && npm run --silent build -- --logLevel warn

dashboard: src/cryptoarb/api/static/index.html

# the dashboard's component tests (Vitest); its browser test (tests/test_dashboard_e2e.py) runs in
# pytest against a real `arb demo` in Debian's chromium (`apt-get install chromium`)
web-test: web/node_modules/.package-lock.json
	cd web && npx vitest run --reporter=dot

# the browser of the dashboard's end-to-end test: Debian's chromium (never a browser download);
# installed here when missing and we may (root with apt-get), else the test says what to install
browser:
	@command -v chromium >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the dashboard's browser test"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	  else echo "chromium is missing: apt-get install chromium (tests/test_dashboard_e2e.py needs it)"; fi; }

test: lint dex-artifacts dashboard web-test browser
	$(BIN)/pytest -q

bench: $(BIN)/.installed
	$(BIN)/arb bench binance:../shared/data/binance-2024-08-08/spot_btcusdt_20240808.gz \
	                 binance:../shared/data/binance-2024-08-08/spot_btcusdt_20240809.gz

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache tests/dex/node_modules web/node_modules web/artifacts \
	       src/cryptoarb/api/static
