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
from typing import Any

from cryptoarb.config import ConfigError, Settings
from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.book import OrderBook
from cryptoarb.core.events import BookStateChange
from cryptoarb.core.footprint import Footprints
from cryptoarb.core.instruments import Instrument
from cryptoarb.core.opportunity import Opportunity
from cryptoarb.core.orders import OrderStatus
from cryptoarb.core.pnl import PnlSnapshot
from cryptoarb.core.pnl import snapshot as value_portfolio
from cryptoarb.core.risk import AuditEvent, RiskManager
from cryptoarb.detect.cross_venue import CrossVenueDetector, Limits
from cryptoarb.detect.groups import GroupError, GroupPlan, auto_groups, explicit_groups
from cryptoarb.engine import killswitch
from cryptoarb.engine.assembly import HandlerFactory, apply_fee_currencies, paper_executor, wire_sink
from cryptoarb.engine.assembly import Sink as Sink  # re-exported: callers import them from here
from cryptoarb.engine.assembly import build_catalog as build_catalog
from cryptoarb.engine.assembly import default_handler_factory as default_handler_factory
from cryptoarb.engine.cycles import CycleRuntime
from cryptoarb.engine.features import FeatureLogger
from cryptoarb.engine.latency import LatencyRecorder
from cryptoarb.engine.valuation import Marks, cash_set, valuation_currency
from cryptoarb.execution.inventory import Inventory
from cryptoarb.execution.legrisk import LegRisk
from cryptoarb.venues.base import DEPTH, Handler
from cryptoarb.venues.catalog import Catalog

_NEVER = 1 << 62  # a clock no run reaches: "no balance snapshot pending"


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
        # order ids carry the run id: it must be the id the sink stores the run under
        sink_run = getattr(sink, "run_id", None)
        if run_id and sink_run and run_id != sink_run:
            raise ValueError(f"run_id {run_id!r} differs from the sink's run {sink_run!r}")
        self.run_id = run_id or sink_run or uuid.uuid4().hex[:12]
        self.sink = sink
        self.venues = list(dict.fromkeys(venues))
        fee_ccy = settings.legrisk.fee_currency  # venues charging spot fees in BNB & co (docs/pnl.md)
        instruments = apply_fee_currencies(self.catalog, instruments, fee_ccy)
        insts = instruments if instruments is not None else [
            i for i in self.catalog.all() if i.venue in self.venues
        ]
        self.books: dict[str, OrderBook] = {}
        #: the instruments this run follows (the views list every one, grouped or not)
        self.instruments: list[Instrument] = list(insts)
        self.plan = self._plan_groups(insts)
        d = settings.detector
        self.limits = Limits(
            min_profit_bps=d.min_profit_bps,
            min_profit_quote=d.min_profit_quote,
            max_notional_quote=d.max_notional_quote,
            max_quote_age_ns=int(d.max_quote_age_ms * 1e6),
        )
        self.footprints = Footprints()  # our own orders' footprint on the books (detector + paper venue)
        eq = [set(x) for x in d.quote_equivalents]
        self.currency = valuation_currency(self.plan.groups, insts, eq)
        self.marks = Marks(self.books, self.currency, cash_set(self.currency, eq))
        self.marks.fixed = {fc.asset: fc.price for fc in fee_ccy.values() if fc.price is not None}
        self.portfolio = Portfolio(self.currency, self.marks.cash, self.marks.price)
        self.max_unhedged_quote = 0.0
        for venue, ccys in settings.paper.balances.items():
            for ccy, amount in ccys.items():
                self.portfolio.deposit(venue, ccy, Decimal(amount))
        self.executor = paper_executor(settings.paper, self.portfolio, self.venues, self.books.get, self.run_id,
                                       self.footprints)
        self.available: dict[tuple[str, str], float] = {}
        self.available_exact: dict[tuple[str, str], Decimal] = {}
        self.cycles: CycleRuntime | None = None
        self._refresh_available()
        self.detector = CrossVenueDetector(
            self.plan.groups, self.limits, self.available, footprints=self.footprints,
            available_exact=self.available_exact,
        )
        self.executor.on_trade.append(self._on_trade)
        # consulted on every opportunity before it is sent; learns from every order and trade
        self.risk = RiskManager(settings.risk.build())
        self.risk.on_audit.append(self._audit)
        self.executor.on_order.append(self.risk.on_order)
        self.executor.on_trade.append(self.risk.on_trade)
        self._risk_due_ns = 0  # next kill-file / feed-age poll (event time, once per second)
        #: kill / resume asked for from outside the event loop (a signal handler): handled at the
        #: start of the next message or tick, before it can produce an intent
        self._requests: list[tuple[str, str, str]] = []
        #: called with the ids of the open orders to cancel whenever the kill switch is set
        #: (live execution cancels them at the venue; paper orders are IOC, already gone)
        self.on_kill: list[Callable[[list[str]], None]] = []
        self._feed_seen: dict[str, int] = {}
        # after the risk manager's listener: a failed leg's exposure is closed by policy
        lr = settings.legrisk
        self.legrisk = LegRisk(lr.build(), self.executor, self.books.get, self.plan.groups, self.marks.price,
                               self.risk, self.run_id, self.limits.max_quote_age_ns)
        self.executor.on_trade.append(self.legrisk.on_trade)
        self.legrisk.on_incident.append(self._on_incident)
        self.inventory = Inventory(lr.inventory.build(), self.portfolio)
        self._leg_filled_ns = 0  # the latest leg-risk fill already followed by a balance snapshot
        if sink is not None:
            wire_sink(sink, self.executor, self.legrisk)
        self._exec_queue = self.executor._queue
        # triangular arbitrage within a venue ([tri]); None when no venue of the run takes part
        self._cycle_queue: list[Any] = []
        self._fresh_cycles: list[Any] = []
        if settings.tri.venues:
            self.cycles = CycleRuntime(self)
            self._cycle_queue = self.cycles.queue
            self.cycles.refresh(self.portfolio.balances, self.executor.reserved)
            self.cycles.executor.on_trade.append(self._on_cycle)
            # a sequential cycle's next leg locks its currency when it leaves: sizing must know
            self.cycles.executor.on_order.append(self._on_cycle_order)
            if sink is not None:
                self.cycles.executor.on_order.append(sink.order)
                self.cycles.executor.on_fill.append(sink.fill)
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
        # balance snapshots: the starting one at the first clock, then one per nanosecond in
        # which trades closed, written once the clock has passed it (see record_balances)
        self._bal_start = sink is not None
        self._bal_rows: list[tuple[str, str, Decimal]] | None = None
        self._bal_ts = 0
        self._bal_due = -1 if sink is not None else _NEVER
        # training rows and spread samples (docs/ml.md); the model scorer also feeds on samples
        self.features: FeatureLogger | None = None
        self._feat_due = _NEVER
        if sink is not None and settings.ml.features:
            self._features()
            sample = getattr(sink, "spread_sample", None)
            if sample is not None:
                self._features().on_sample.append(sample)

    def _features(self) -> FeatureLogger:
        """The run's feature logger, created on first use (storage, or a model scorer)."""
        if self.features is None:
            ex = self.executor.config
            fixed = int(self.settings.ml.label_latency_ms * 1e6)

            def latency(buy: str, sell: str) -> int:
                if fixed:
                    return fixed
                d = ex.default_latency_ns
                return max(ex.latency_ns.get(buy, d), ex.latency_ns.get(sell, d))

            sink = self.sink
            self.features = FeatureLogger(
                self.books, self.plan.groups,
                sink.feature if sink is not None and self.settings.ml.features else None,
                int(self.settings.ml.sample_interval_ms * 1e6), latency, self._last_decision,
            )
            self.executor.on_trade.append(self.features.on_trade)
            self._feat_due = 0
        return self.features

    def _last_decision(self) -> int:
        return self.decision.last

    def use_scores(self, scores: dict[str, float], on_sample: Callable[[dict[str, Any]], None],
                   mode: str, min_survival: float) -> None:
        """Let the detector read model scores (``scores``: group -> survival probability, kept
        up to date off the hot path by the scorer fed through ``on_sample``)."""
        self._features().on_sample.append(on_sample)
        self.detector.use_scores(scores, mode, min_survival)

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
        if self.cycles is not None:
            self.cycles.detector.add_book(book)

    def _refresh_available(self) -> None:
        """Balances for sizing (floats) and for the venue checks (exact), less what trades in
        flight have reserved."""
        av = self.available
        exact = self.available_exact
        av.clear()
        exact.clear()
        reserved = self.executor.reserved
        cycles = self.cycles.executor.reserved if self.cycles is not None else {}
        zero = Decimal(0)
        for venue, ccys in self.portfolio.balances.items():
            for ccy, amount in ccys.items():
                left = amount - reserved.get((venue, ccy), zero) - cycles.get((venue, ccy), zero)
                exact[(venue, ccy)] = left
                av[(venue, ccy)] = float(left)
        if self.cycles is not None:
            self.cycles.refresh(self.portfolio.balances, reserved)

    # -- hot path ----------------------------------------------------------------------
    def on_book(self, book: OrderBook, local_ns: int) -> None:
        """Called by handlers for every change of a valid book."""
        t0 = perf_counter_ns()
        found = self.detector.on_book(book, local_ns)
        if found is not None:
            self._fresh.extend(found)
        if self.cycles is not None:
            cyc = self.cycles.detector.on_book(book, local_ns)
            if cyc is not None:
                self._fresh_cycles.extend(cyc)
        self.decision.append(perf_counter_ns() - t0)

    def on_message(self, handler: Handler, raw: bytes, local_ns: int) -> int:
        """Feed one raw message; returns its kind. Raises MessageError for a bad one."""
        self.messages += 1
        self.clock_ns = local_ns
        if local_ns >= self._risk_due_ns:
            self._risk_poll(local_ns)
        q = self._exec_queue
        cq = self._cycle_queue
        if (q and q[0][0] <= local_ns) or self._bal_due < local_ns or (cq and cq[0][0] <= local_ns):
            self._advance(local_ns)
        # labels and samples due by now read the books as they stood before this message, as
        # the paper venue does for orders arriving now
        if local_ns >= self._feat_due:
            self._feature_run(local_ns)
        if self.cycles is not None:
            self.cycles.maybe_scan(local_ns)
        t0 = perf_counter_ns()
        kind = handler.on_message(raw, local_ns)
        if kind == DEPTH:
            self.latency.append(perf_counter_ns() - t0)
        if self._fresh:
            self._dispatch(local_ns)
        if self._fresh_cycles:
            self._dispatch_cycles(local_ns)
        return kind

    def _feature_run(self, now_ns: int) -> None:
        f = self.features
        if f is not None:
            f.run(now_ns)
            self._feat_due = f.due_ns

    def tick(self, now_ns: int) -> None:
        """Advance event time without a message (live runs): deliver paper orders now due."""
        self.clock_ns = max(self.clock_ns, now_ns)
        if now_ns >= self._risk_due_ns:
            self._risk_poll(now_ns)
        q = self._exec_queue
        cq = self._cycle_queue
        if (q and q[0][0] <= now_ns) or self._bal_due < now_ns or (cq and cq[0][0] <= now_ns):
            self._advance(now_ns)
        if now_ns >= self._feat_due:
            self._feature_run(now_ns)

    def _advance(self, now_ns: int) -> None:
        """Deliver paper orders due by ``now_ns``, then write a balance snapshot older than it
        (no trade can close at an earlier time any more)."""
        q = self._exec_queue
        if q and q[0][0] <= now_ns:
            self.executor.advance(now_ns)
        if self.cycles is not None:
            self.cycles.executor.advance(now_ns)
        if self._bal_due < now_ns:
            self._flush_balances(now_ns)

    def record_balances(self, ts_ns: int) -> None:
        """Snapshot the balances as of ``ts_ns`` (a trade just closed then). Trades closing in
        the same nanosecond share one snapshot, the state after the last of them; it is handed
        to the sink when the clock passes ``ts_ns`` or the run finishes."""
        if self.sink is None:
            return
        if self._bal_start or (self._bal_rows is not None and self._bal_ts != ts_ns):
            self._flush_balances(min(ts_ns, self.clock_ns) if self.clock_ns else ts_ns)
        self._bal_rows = self.portfolio.snapshot()
        self._bal_ts = ts_ns
        self._bal_due = ts_ns

    def _flush_balances(self, now_ns: int) -> None:
        """Write the pending snapshot; the starting one (before any trade) is stamped ``now_ns``."""
        self._bal_due = _NEVER
        sink = self.sink
        if sink is None:
            return
        if self._bal_start:
            self._bal_start = False
            sink.balances(now_ns, self.portfolio.snapshot())
        rows, self._bal_rows = self._bal_rows, None
        if rows is not None:
            sink.balances(self._bal_ts, rows)

    def flush(self, now_ns: int) -> None:
        """Hand opportunities found outside ``on_message`` (ccxt fallback) to execution."""
        if self._fresh:
            self._dispatch(now_ns)
        if self._fresh_cycles:
            self._dispatch_cycles(now_ns)

    def _dispatch_cycles(self, now_ns: int) -> None:
        fresh, self._fresh_cycles = self._fresh_cycles, []
        cycles = self.cycles
        assert cycles is not None
        cycles.dispatch(fresh, now_ns, self.risk.killed, self.sink)
        self._refresh_available()

    def _on_cycle_order(self, order: Any) -> None:
        if order.status is OrderStatus.NEW:
            self._refresh_available()

    def _on_cycle(self, trade: Any) -> None:
        if self.sink is not None:
            fn = getattr(self.sink, "cycle", None)
            if fn is not None:
                fn(trade)
        self._on_trade(trade)

    def _dispatch(self, now_ns: int) -> None:
        fresh = self._fresh
        self._fresh = []
        sink = self.sink
        books = self.books
        risk = self.risk
        feats = self.features
        for opp in fresh:
            self.opportunities += 1
            traded = True
            if (
                risk.check(opp, now_ns, books[opp.buy_key].local_ns, books[opp.sell_key].local_ns) is not None
                or self.executor.submit(opp, now_ns) is None
            ):
                traded = False
                self.detector.release(opp)  # not traded: its liquidity is there for the next one
            for fn in self.on_opportunity:
                fn(opp)
            if sink is not None:
                sink.opportunity(opp)
            if feats is not None:
                feats.on_opportunity(opp, traded)
        if feats is not None:
            self._feat_due = min(self._feat_due, feats.due_ns)
        # the detector took each opportunity's balances as it found it; the executor's
        # reservations are now the truth (opportunities not traded gave theirs back)
        self._refresh_available()

    def on_state(self, change: BookStateChange) -> None:
        self.state_changes.append(change)
        if len(self.state_changes) > 10_000:
            del self.state_changes[:5_000]

    def _on_trade(self, trade: Any) -> None:
        if trade.closed_ns:
            self._refresh_available()
            snap = self.pnl_snapshot()  # also samples the unhedged exposure the trade left
            # daily loss and drawdown follow the account (realised + marked), not the trades' sum
            self.risk.on_equity(snap.exact[2], trade.closed_ns)
            self.record_balances(trade.closed_ns)
            if self.sink is not None:
                self.sink.pnl(trade.closed_ns, snap)

    def _on_incident(self, inc: Any) -> None:
        """A leg-risk incident changed: when one of its orders filled, balances, equity and the
        balance snapshot follow (stamped with the fill's time, like a trade's)."""
        filled = max((o.updated_ns for o in inc.orders if o.fills and o.status.terminal), default=0)
        if filled <= self._leg_filled_ns:
            return
        self._leg_filled_ns = filled
        self._refresh_available()
        self.risk.on_equity(self.pnl_snapshot().exact[2], max(self.clock_ns, filled))
        self.record_balances(filled)

    def pnl_snapshot(self) -> PnlSnapshot:
        """Realised, unrealised (marked at the books' mids now), total and exposure, in
        ``self.currency``. Not for the hot path: the live view calls it at its refresh rate."""
        snap = value_portfolio(self.portfolio, self.currency, self.marks.cash, self.marks.price, self.marks.mid,
                               self.max_unhedged_quote)
        self.max_unhedged_quote = snap.max_unhedged_quote
        return snap

    # -- risk ---------------------------------------------------------------------------
    def _risk_poll(self, now_ns: int) -> None:
        """Once per second of event time: the kill file, a resume request, feed ages."""
        self._risk_due_ns = now_ns + 1_000_000_000
        risk = self.risk
        path = risk.config.kill_file
        if path:
            if risk.killed:
                actor = killswitch.take_resume(path)
                if actor is not None:
                    risk.resume(actor, f"resume requested through {path}.resume", now_ns)
            if not risk.killed:
                request = killswitch.read_kill(path)
                if request is not None:
                    self.kill(request[1], request[0], now_ns)
        while self._requests:
            what, actor, reason = self._requests.pop(0)
            if what == "kill":
                self.kill(reason, actor, now_ns)
            else:
                risk.resume(actor, reason, now_ns)
        seen = self._feed_seen
        for book in self.books.values():
            if book.valid:
                venue = book.instrument.venue
                if book.local_ns > seen.get(venue, 0):
                    seen[venue] = book.local_ns
        risk.on_feeds(now_ns, seen)
        if self.legrisk.open:
            self.legrisk.poll(now_ns)
        if self.cycles is not None:
            self.cycles.poll(now_ns)

    def kill(self, reason: str, actor: str = "operator", now_ns: int | None = None) -> list[str]:
        """Stop every new intent now; the ids of the open orders to cancel. Paper orders are
        immediate-or-cancel and already at their venue, so in paper mode nothing is left to
        cancel by the time they are known: the list goes into the audit row."""
        ids = self.risk.kill(reason, actor, self.clock_ns if now_ns is None else now_ns)
        for fn in self.on_kill:
            fn(ids)
        return ids

    def request(self, what: str, actor: str, reason: str) -> None:
        """Ask for a kill (``what="kill"``) or a resume from outside the event loop -- safe in a
        signal handler (an append and an assignment): done at the start of the next message or
        tick, so no intent of that message escapes a kill."""
        if what not in ("kill", "resume"):
            raise ValueError(f"request must be 'kill' or 'resume', not {what!r}")
        self._requests.append((what, actor, reason))
        self._risk_due_ns = 0

    def resume(self, actor: str = "operator", reason: str = "resume by command") -> bool:
        """Lift the kill switch (explicit command only); False when it was not on."""
        return self.risk.resume(actor, reason, self.clock_ns)

    def _audit(self, ev: AuditEvent) -> None:
        if self.sink is not None:
            self.sink.audit(ev.actor, f"risk.{ev.action}", {"run_id": self.run_id, **ev.as_detail()})

    # -- end of run --------------------------------------------------------------------
    def finish(self) -> None:
        """Deliver orders still in flight, so every trade has a realised PnL; write the last
        balance snapshot (and the starting one, if no message ever came) and the final PnL."""
        self.executor.drain()
        if self.features is not None:
            self.features.run(self.clock_ns)
            self.features.finish()
        if self.cycles is not None:
            self.cycles.executor.drain()
        self._flush_balances(self.clock_ns)
        if self.sink is not None:
            self.sink.pnl(self.clock_ns, self.pnl_snapshot())

    def summary(self) -> dict[str, Any]:
        """The summary contract of ``arb replay --summary-json`` (:mod:`.summary`)."""
        from cryptoarb.engine.summary import summarize

        return summarize(self)
