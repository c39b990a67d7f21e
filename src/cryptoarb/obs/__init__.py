"""Observability: the Prometheus metrics every role exposes on ``/metrics`` (``metrics``)."""
