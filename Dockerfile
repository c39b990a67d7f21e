# syntax=docker/dockerfile:1
# One image for every role: the role is the command (docs/deploy.md).
#   docker build -t cryptoarb .
#   docker run --rm cryptoarb engine --shard usdm --live      # arb engine ...
#   docker run --rm -p 8000:8000 cryptoarb api --host 0.0.0.0  # arb api ...
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim

# 1. the dashboard (web/, React + Vite) built into src/cryptoarb/api/static, when the sources have it
FROM ${NODE_IMAGE} AS dashboard
WORKDIR /build
COPY . .
# public: it ends up in the browser bundle (docs/deploy.md, Variables)
ARG VITE_SENTRY_DSN=""
RUN mkdir -p src/cryptoarb/api/static \
 && if [ -f web/package.json ]; then \
      cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
      && VITE_SENTRY_DSN="$VITE_SENTRY_DSN" npm run build -- --logLevel warn; \
    fi

# 2. the Python package: its runtime dependencies at the tested versions (requirements.lock as constraints)
FROM ${PYTHON_IMAGE} AS build
# a wheel index for a CPU-only torch, if wanted (pip's PIP_EXTRA_INDEX_URL)
ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL}
RUN python -m venv /opt/venv
WORKDIR /build
COPY pyproject.toml requirements.lock README.md ./
COPY src ./src
COPY --from=dashboard /build/src/cryptoarb/api/static ./src/cryptoarb/api/static
RUN /opt/venv/bin/pip install -c requirements.lock . \
 && cp -r src/cryptoarb/api/static "$(/opt/venv/bin/python -c 'import cryptoarb.api as a, os; print(os.path.dirname(a.__file__))')/"

# 3. the runtime: no compiler, no sources, a non-root user
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 arb \
 && useradd --system --uid 10001 --gid arb --home-dir /data --no-create-home arb \
 && mkdir -p /data && chown arb:arb /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 ARB_LOG_FORMAT=json
WORKDIR /data
USER 10001:10001
# api, engine, recorder, analytics (/health and /metrics; docs/distributed.md)
EXPOSE 8000 9101 9102 9103
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-m", "cryptoarb.obs.health"]
ENTRYPOINT ["arb"]
CMD ["--help"]
