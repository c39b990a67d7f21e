"""Wires handlers, books, the detector and execution together.

The hot path is ``on_message``: raw bytes -> handler -> book -> detector -> order intents.
It holds no I/O: opportunities are collected during the call and handed to execution and
storage right after, outside the measured section. Time is event time (the message's local
receive timestamp), so replay and live runs take the same decisions on the same inputs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from time import perf_counter_ns
from typing import Any, Protocol

from cryptoarb.config import ConfigError, Settings
from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.book import OrderBook
from cryptoarb.core.events import BookStateChange
from cryptoarb.core.instruments import Instrument
from cryptoarb.core.opportunity import Opportunity
from cryptoarb.detect.cross_venue import CrossVenueDetector, Limits
from cryptoarb.detect.groups import GroupError, GroupPlan, auto_groups, explicit_groups
from cryptoarb.engine.latency import LatencyRecorder
from cryptoarb.execution.arb import ArbExecutor, ExecConfig
from cryptoarb.execution.paper import PaperVenue
from cryptoarb.venues.base import DEPTH, Handler
from cryptoarb.venues.catalog import Catalog


class Sink(Protocol):
    """What the engine tells storage (see cryptoarb.storage.writer)."""

    def opportunity(self, opp: Opportunity) -> None: ...
    def order(self, order: Any) -> None: ...
    def fill(self, fill: Any) -> None: ...
    def arb_trade(self, trade: Any) -> None: ...
    def balances(self, ts_ns: int, rows: list[tuple[str, str, Decimal]]) -> None: ...
    def feature(self, row: dict[str, Any]) -> None: ...


HandlerFactory = Callable[["Engine", str], Handler]


def build_catalog(settings: Settings) -> Catalog:
    catalog = Catalog()
    for spec in settings.instruments:
        catalog.add(spec.build())
    return catalog


class Engine:
    """One engine instance per run (replay, demo or live)."""

    def __init__(
        self,
        settings: Settings,
        venues: list[str],
        catalog: Catalog | None = None,
        sink: Sink | None = None,
        run_id: str | None = None,
        handler_factory: HandlerFactory | None = None,
        instruments: list[Instrument] | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog or build_catalog(settings)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.sink = sink
        self.venues = list(dict.fromkeys(venues))
        insts = instruments if instruments is not None else [
            i for i in self.catalog.all() if i.venue in self.venues
        ]
        self.books: dict[str, OrderBook] = {}
        self.plan = self._plan_groups(insts)
        d = settings.detector
        self.limits = Limits(
            min_profit_bps=d.min_profit_bps,
            min_profit_quote=d.min_profit_quote,
            max_notional_quote=d.max_notional_quote,
            max_quote_age_ns=int(d.max_quote_age_ms * 1e6),
        )
        self.portfolio = Portfolio()
        for venue, ccys in settings.paper.balances.items():
            for ccy, amount in ccys.items():
                self.portfolio.deposit(venue, ccy, Decimal(amount))
        p = settings.paper
        self.executor = ArbExecutor(
            self.portfolio,
            {v: PaperVenue(v, self.portfolio, p.fail_rate, p.seed) for v in self.venues},
            self.books.get,
            ExecConfig(
                latency_ns={k: int(v * 1e6) for k, v in p.latency_ms.items()},
                default_latency_ns=int(p.default_latency_ms * 1e6),
                cooldown_ns=int(p.cooldown_ms * 1e6),
                max_open_trades=p.max_open_trades,
            ),
            run_id=self.run_id,
        )
        self.available: dict[tuple[str, str], float] = {}
        self._refresh_available()
        self.detector = CrossVenueDetector(self.plan.groups, self.limits, self.available)
        self.executor.on_trade.append(self._on_trade)
        if sink is not None:
            self.executor.on_order.append(sink.order)
            self.executor.on_fill.append(sink.fill)
            self.executor.on_trade.append(sink.arb_trade)
        self._exec_queue = self.executor._queue
        self.handlers: dict[str, Handler] = {}
        self._factory = handler_factory or default_handler_factory
        self._fresh: list[Opportunity] = []
        self.latency = LatencyRecorder()  # per depth message, raw bytes -> decision
        self.decision = LatencyRecorder()  # consistent book -> decision (intents included)
        self.messages = 0
        self.opportunities = 0
        self.state_changes: list[BookStateChange] = []
        self.on_opportunity: list[Callable[[Opportunity], None]] = []
        self.clock_ns = 0
        #: handlers name markets missing from the catalog provisionally (third-party captures)
        self.discover = False

    # -- set-up ------------------------------------------------------------------------
    def _plan_groups(self, insts: list[Instrument]) -> GroupPlan:
        d = self.settings.detector
        eq = [set(x) for x in d.quote_equivalents]
        try:
            if d.groups:
                by_key = {i.key: i for i in self.catalog.all()}
                return explicit_groups([g.model_dump() for g in d.groups], by_key, eq)
            return auto_groups(insts, basis=d.basis, equivalents=eq)
        except GroupError as e:
            raise ConfigError(str(e)) from None

    def handler(self, venue: str) -> Handler:
        h = self.handlers.get(venue)
        if h is None:
            h = self.handlers[venue] = self._factory(self, venue)
        return h

    def register_book(self, book: OrderBook, _ns: int = 0) -> None:
        self.books[book.key] = book
        self.detector.add_book(book)

    def _refresh_available(self) -> None:
        """Balances as floats for sizing, less what trades in flight have committed."""
        av = self.available
        av.clear()
        reserved = self.executor.reserved
        for venue, ccys in self.portfolio.balances.items():
            for ccy, amount in ccys.items():
                av[(venue, ccy)] = float(amount) - reserved.get((venue, ccy), 0.0)

    # -- hot path ----------------------------------------------------------------------
    def on_book(self, book: OrderBook, local_ns: int) -> None:
        """Called by handlers for every change of a valid book."""
        t0 = perf_counter_ns()
        found = self.detector.on_book(book, local_ns)
        if found is not None:
            self._fresh.extend(found)
        self.decision.append(perf_counter_ns() - t0)

    def on_message(self, handler: Handler, raw: bytes, local_ns: int) -> int:
        """Feed one raw message; returns its kind. Raises MessageError for a bad one."""
        self.messages += 1
        self.clock_ns = local_ns
        q = self._exec_queue
        if q and q[0][0] <= local_ns:
            self.executor.advance(local_ns)
        t0 = perf_counter_ns()
        kind = handler.on_message(raw, local_ns)
        if kind == DEPTH:
            self.latency.append(perf_counter_ns() - t0)
        if self._fresh:
            self._dispatch(local_ns)
        return kind

    def tick(self, now_ns: int) -> None:
        """Advance event time without a message (live runs): deliver paper orders now due."""
        self.clock_ns = max(self.clock_ns, now_ns)
        q = self._exec_queue
        if q and q[0][0] <= now_ns:
            self.executor.advance(now_ns)

    def flush(self, now_ns: int) -> None:
        """Hand opportunities found outside ``on_message`` (ccxt fallback) to execution."""
        if self._fresh:
            self._dispatch(now_ns)

    def _dispatch(self, now_ns: int) -> None:
        fresh = self._fresh
        self._fresh = []
        sink = self.sink
        submitted = False
        for opp in fresh:
            self.opportunities += 1
            submitted = self.executor.submit(opp, now_ns) is not None or submitted
            for fn in self.on_opportunity:
                fn(opp)
            if sink is not None:
                sink.opportunity(opp)
                sink.feature(features(opp, self.books))
        if submitted:
            self._refresh_available()

    def on_state(self, change: BookStateChange) -> None:
        self.state_changes.append(change)
        if len(self.state_changes) > 10_000:
            del self.state_changes[:5_000]

    def _on_trade(self, trade: Any) -> None:
        if trade.closed_ns:
            self._refresh_available()
            if self.sink is not None:
                self.sink.balances(trade.closed_ns, self.portfolio.snapshot())

    # -- end of run --------------------------------------------------------------------
    def finish(self) -> None:
        """Deliver orders still in flight, so every trade has a realised PnL."""
        self.executor.drain()

    def summary(self) -> dict[str, Any]:
        """The summary contract of ``arb replay --summary-json``."""
        books: dict[str, Any] = {}
        for h in self.handlers.values():
            for sync in h.syncs.values():
                bids, asks = sync.book.top(5)
                books[sync.book.key] = {"bids": bids, "asks": asks, **sync.counters()}
        ex = self.executor
        return {
            "messages": self.messages,
            "books": books,
            "opportunities": self.opportunities,
            "trades": len(ex.settled()),
            "pnl_quote": float(ex.stats.realized_pnl),
            # null, not 0.0, when no depth message was measured
            "latency_us": self.latency.summary_us() if len(self.latency) else dict.fromkeys(("p50", "p99", "p999")),
        }


def features(opp: Opportunity, books: dict[str, OrderBook]) -> dict[str, Any]:
    """The training row stored for each opportunity (model inputs; the label comes later)."""
    b = books[opp.buy_key]
    s = books[opp.sell_key]
    mid = (b.mid() + s.mid()) / 2 or 1.0
    return {
        "ts_ns": opp.local_ns,
        "group": opp.group,
        "buy_key": opp.buy_key,
        "sell_key": opp.sell_key,
        "spread_bps": (s.bid - b.ask) / mid * 1e4,
        "net_bps": opp.profit_bps,
        "buy_depth_quote": b.ask * b.ask_qty,
        "sell_depth_quote": s.bid * s.bid_qty,
        "features": {
            "buy_spread_bps": (b.ask - b.bid) / mid * 1e4,
            "sell_spread_bps": (s.ask - s.bid) / mid * 1e4,
            "qty_base": opp.qty_base,
            "buy_age_ms": (opp.local_ns - b.local_ns) / 1e6,
            "sell_age_ms": (opp.local_ns - s.local_ns) / 1e6,
        },
    }


def default_handler_factory(engine: Engine, venue: str) -> Handler:
    """The native streaming handler of ``venue`` wired to the engine's callbacks."""
    from cryptoarb.venues.registry import handler_class, native_venues

    cls = handler_class(venue)
    if cls is None:
        raise ConfigError(f"no native streaming handler for venue {venue!r} (native: {', '.join(native_venues())})")
    h = cls(venue, engine.catalog, engine.on_book, on_state=engine.on_state, discover=engine.discover)
    h.on_new_book = engine.register_book
    return h
