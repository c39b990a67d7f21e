"""Every metric of every role, defined here, and the ``/metrics`` + ``/health`` server.

Nothing here runs on the hot path. A role keeps plain counters (ints in dicts, the engine's own
counters and latency arrays) and calls ``Metrics.refresh``-style updates about once a second
from its own thread; a scrape only reads the last published values. Latency histograms are
filled from the engine's sample arrays in bulk (numpy), not one ``observe`` per message.

Names follow Prometheus conventions: ``arb_`` prefix, ``_total`` counters, base units
(seconds, bytes). ``METRICS`` is the list docs/distributed.md documents and the Grafana
dashboard plots.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"

#: name -> (type, help, label names). Counter names omit ``_total`` (the client adds it).
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # engine: feeds and books
    "arb_messages": (COUNTER, "Raw messages received, per venue", ("role", "venue")),
    "arb_bytes": (COUNTER, "Raw bytes received, per venue", ("role", "venue")),
    "arb_bad_messages": (COUNTER, "Messages a venue handler refused (counted, skipped)", ("role", "venue")),
    "arb_book_age_seconds": (GAUGE, "Event time since the book last changed", ("role", "book")),
    "arb_book_valid": (GAUGE, "1 when the book is valid", ("role", "book")),
    "arb_book_resyncs": (COUNTER, "Book resyncs", ("role", "book")),
    "arb_book_gaps": (COUNTER, "Sequence gaps detected", ("role", "book")),
    "arb_decision_latency_seconds": (HISTOGRAM, "Consistent book to decision (detector, intents)", ("role",)),
    "arb_message_latency_seconds": (HISTOGRAM, "Raw bytes in to decision, per depth message", ("role",)),
    # engine: trading
    "arb_opportunities": (COUNTER, "Opportunities found", ("role",)),
    "arb_orders": (COUNTER, "Orders sent", ("role",)),
    "arb_fills": (COUNTER, "Fills received", ("role",)),
    "arb_trades": (COUNTER, "Arbitrage trades settled, per status", ("role", "status")),
    "arb_realised_pnl": (GAUGE, "Realised PnL of the run, in its valuation currency", ("role", "currency")),
    "arb_unrealised_pnl": (GAUGE, "Unrealised PnL marked at the books' mids", ("role", "currency")),
    "arb_exposure_quote": (GAUGE, "Unhedged exposure now, in the valuation currency", ("role", "currency")),
    "arb_breaker_state": (GAUGE, "Circuit breaker state: 0 closed, 1 half-open, 2 open", ("role", "breaker")),
    "arb_killed": (GAUGE, "1 while the kill switch is on", ("role",)),
    # bus
    "arb_bus_published": (COUNTER, "Events published, per stream", ("role", "stream")),
    "arb_bus_published_bytes": (COUNTER, "Encoded bytes published, per stream", ("role", "stream")),
    "arb_bus_backlog": (GAUGE, "Published events not yet confirmed by every required group", ("role",)),
    "arb_bus_received": (COUNTER, "Events handled by this consumer", ("role", "group")),
    "arb_bus_duplicates": (COUNTER, "Deliveries dropped as already seen", ("role", "group")),
    "arb_bus_bad": (COUNTER, "Malformed messages dead-lettered", ("role", "group")),
    "arb_bus_claimed": (COUNTER, "Entries claimed from dead consumers (XAUTOCLAIM)", ("role", "group")),
    "arb_bus_lag": (GAUGE, "Entries not yet delivered to the group", ("role", "group")),
    "arb_bus_pending": (GAUGE, "Entries delivered to the group, not yet acknowledged", ("role", "group")),
    # recorder
    "arb_outbox_depth": (GAUGE, "Events in the outbox, not yet in the database", ("role",)),
    "arb_outbox_written": (COUNTER, "Events written to the database", ("role",)),
    "arb_outbox_dead": (COUNTER, "Events the database refused for good", ("role",)),
    "arb_db_up": (GAUGE, "1 while the database accepts writes", ("role",)),
}

#: latency buckets, seconds: 1 µs .. 100 ms
BUCKETS = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 1e-1)


class _Hist:
    __slots__ = ("counts", "n", "sum")

    def __init__(self) -> None:
        self.counts = np.zeros(len(BUCKETS) + 1, dtype=np.int64)
        self.sum = 0.0
        self.n = 0


class Metrics(Collector):
    """One role's values, published by its own thread, read by scrapes."""

    def __init__(self, role: str) -> None:
        self.role = role
        self._values: dict[str, dict[tuple[str, ...], float]] = {n: {} for n in METRICS}
        self._hist: dict[str, _Hist] = {n: _Hist() for n, (t, _, _) in METRICS.items() if t == HISTOGRAM}
        self._lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def set(self, name: str, value: float, *labels: str) -> None:
        """Set a gauge, or a counter to its running total (the role owns the count)."""
        if name not in METRICS:
            raise KeyError(f"unknown metric {name!r}")
        self._values[name][labels] = value

    def set_many(self, name: str, values: Iterable[tuple[tuple[str, ...], float]]) -> None:
        d = self._values[name]
        for labels, v in values:
            d[labels] = v

    def observe_ns(self, name: str, samples_ns: Any) -> None:
        """Add a batch of latency samples (nanoseconds) to a histogram."""
        a = np.asarray(samples_ns, dtype=np.float64)
        if not a.size:
            return
        a *= 1e-9
        idx = np.searchsorted(np.asarray(BUCKETS), a, side="left")
        counts = np.bincount(idx, minlength=len(BUCKETS) + 1)
        with self._lock:
            h = self._hist[name]
            h.counts += counts
            h.sum += float(a.sum())
            h.n += int(a.size)

    def value(self, name: str, *labels: str) -> float:
        return self._values[name].get(labels, 0.0)

    def collect(self) -> Iterator[Metric]:
        for name, (kind, doc, labels) in METRICS.items():
            if kind == HISTOGRAM:
                with self._lock:
                    h = self._hist[name]
                    cum = np.cumsum(h.counts)
                    buckets = [(f"{b:g}", float(c)) for b, c in zip(BUCKETS, cum[:-1], strict=True)]
                    buckets.append(("+Inf", float(cum[-1])))
                    hist = HistogramMetricFamily(name, doc, labels=labels)
                    hist.add_metric([self.role], buckets, h.sum)
                yield hist
                continue
            fam: Metric = (CounterMetricFamily if kind == COUNTER else GaugeMetricFamily)(name, doc, labels=labels)
            for lv, v in list(self._values[name].items()):
                fam.add_metric([self.role, *lv], v)  # type: ignore[attr-defined]
            yield fam

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """``GET /metrics`` (Prometheus text) and ``GET /health`` (JSON) on a background thread."""

    def __init__(self, metrics: Metrics, host: str, port: int, health: Any = None) -> None:
        self.metrics = metrics
        self.health = health or (lambda: {"ok": True})
        outer = self

        class _H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    body, ctype, code = outer.metrics.exposition(), "text/plain; version=0.0.4", 200
                elif self.path.split("?")[0] == "/health":
                    h = outer.health()
                    body, ctype, code = json.dumps(h).encode(), "application/json", 200 if h.get("ok") else 503
                else:
                    body, ctype, code = b"not found\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), _H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
