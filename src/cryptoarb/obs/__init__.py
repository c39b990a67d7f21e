"""Observability: the Prometheus metrics every role exposes on ``/metrics`` (``metrics``), where
logs go (``logs``), errors to Sentry with secrets scrubbed (``errors``), and the container's
health probe (``health``)."""
