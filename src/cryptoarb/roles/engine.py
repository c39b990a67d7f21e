"""The engine role: feeds + books + detection + risk + paper execution for one shard, every
event published on the bus instead of written to a database.

The bus sink is called where the storage writer is (after the hot path), so the engine decides
exactly as ``arb replay`` / ``arb run`` do. Metrics are published from the role's own loop about
once a second: the per-message cost is two dict increments outside the measured section.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cryptoarb.bus.base import Transport
from cryptoarb.bus.events import BusSink
from cryptoarb.config import Settings
from cryptoarb.core.instruments import Instrument
from cryptoarb.engine.engine import Engine
from cryptoarb.obs.metrics import Metrics
from cryptoarb.venues.base import Handler

_BREAKER = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}


class EngineRole:
    def __init__(self, settings: Settings, venues: list[str], transport: Transport, run_id: str,
                 metrics: Metrics | None = None, instruments: list[Instrument] | None = None,
                 catalog: Any = None) -> None:
        self.settings = settings
        self.transport = transport
        self.metrics = metrics or Metrics("engine")
        self.published: dict[str, list[int]] = {}
        self.sink = BusSink(transport, run_id, on_publish=self._count)
        self.engine = Engine(settings, venues, catalog=catalog, sink=self.sink, run_id=run_id,
                             instruments=instruments)
        self.msgs: dict[str, int] = {}
        self.nbytes: dict[str, int] = {}
        m = self.metrics
        self.engine.latency.on_fold.append(lambda v: m.observe_ns("arb_message_latency_seconds", v))
        self.engine.decision.on_fold.append(lambda v: m.observe_ns("arb_decision_latency_seconds", v))
        self._next_refresh = 0.0
        self._top_every_ns = int(settings.bus.book_top_interval_s * 1e9)
        self._top_due_ns = 0
        orig = self.engine.on_message
        msgs, nbytes = self.msgs, self.nbytes

        def on_message(handler: Handler, raw: bytes, local_ns: int) -> int:
            v = handler.venue
            msgs[v] = msgs.get(v, 0) + 1
            nbytes[v] = nbytes.get(v, 0) + len(raw)
            return orig(handler, raw, local_ns)

        self.engine.on_message = on_message  # type: ignore[method-assign]

    def _count(self, stream: str, n: int) -> None:
        c = self.published.get(stream)
        if c is None:
            c = self.published[stream] = [0, 0]
        c[0] += 1
        c[1] += n

    def start(self, mode: str, detail: dict[str, Any]) -> None:
        import json

        self.sink.start_run(mode, {**detail, "settings": json.loads(self.settings.model_dump_json())})

    def stop(self, mode: str) -> None:
        self.sink.end_run(mode)
        self.refresh(force=True)

    def tick(self) -> None:
        """Between messages (replay progress, live refresher): book tops and metrics, rate-limited."""
        clock = self.engine.clock_ns
        if clock >= self._top_due_ns:
            self._top_due_ns = clock + self._top_every_ns
            for key, book in list(self.engine.books.items()):
                bids, asks = book.top(1)
                b = bids[0] if bids else [0.0, 0.0]
                a = asks[0] if asks else [0.0, 0.0]
                self.sink.book_top(key, float(b[0]), float(b[1]), float(a[0]), float(a[1]), book.local_ns,
                                   bool(book.valid))
        self.refresh()

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_refresh:
            return
        self._next_refresh = now + 1.0
        m, e = self.metrics, self.engine
        m.set_many("arb_messages", (((v,), float(n)) for v, n in self.msgs.items()))
        m.set_many("arb_bytes", (((v,), float(n)) for v, n in self.nbytes.items()))
        for h in list(e.handlers.values()):
            m.set("arb_bad_messages", float(h.bad_messages), h.venue)
            for sync in list(h.syncs.values()):
                k = sync.book.key
                m.set("arb_book_resyncs", float(sync.resyncs), k)
                m.set("arb_book_gaps", float(sync.gaps), k)
                m.set("arb_book_valid", 1.0 if sync.book.valid else 0.0, k)
                if sync.book.local_ns:
                    m.set("arb_book_age_seconds", max(0.0, (e.clock_ns - sync.book.local_ns) / 1e9), k)
        e.latency.fold()  # new samples reach the histograms through on_fold (registered at start)
        e.decision.fold()
        st = e.executor.stats
        m.set("arb_opportunities", float(e.opportunities))
        m.set("arb_orders", float(self.published.get("orders", [0])[0]))
        m.set("arb_fills", float(self.published.get("fills", [0])[0]))
        for status, n in st.by_status.items():
            m.set("arb_trades", float(n), str(status))
        snap = e.pnl_snapshot()
        m.set("arb_realised_pnl", snap.realised, e.currency)
        m.set("arb_unrealised_pnl", snap.unrealised, e.currency)
        m.set("arb_exposure_quote", snap.unhedged_quote, e.currency)
        risk = e.risk.summary()
        for name, state in risk.get("breakers", {}).items():
            m.set("arb_breaker_state", float(_BREAKER.get(str(state), 2)), name)
        m.set("arb_killed", 1.0 if risk.get("killed") else 0.0)
        for stream, (n, b) in self.published.items():
            m.set("arb_bus_published", float(n), stream)
            m.set("arb_bus_published_bytes", float(b), stream)
        m.set("arb_bus_backlog", float(self.transport.backlog()))


def split_symbols(catalog: Any, venues: list[str], symbols: list[str]) -> dict[str, list[str]]:
    """Which of a shard's symbols each venue follows live. A shard compares venues of different
    kinds (spot with a perpetual: ``BTC/USDT`` and ``BTC/USDT:USDT``), so a symbol the catalog
    knows on some of the shard's venues goes to those only; a symbol none of them knows goes to
    every venue (ccxt resolves it, or says it does not exist)."""
    known = {v: set(catalog.symbols(v)) for v in venues}
    anywhere = set().union(*known.values()) if known else set()
    return {v: [s for s in symbols if s in known[v] or s not in anywhere] for v in venues}


def progress_hook(role: EngineRole) -> Callable[[int], None]:
    """A replay progress callback that ticks the role."""
    return lambda _n: role.tick()
