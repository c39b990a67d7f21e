"""Turns opportunities into two-legged trades and follows them to a realised PnL.

Both legs are sent at once (the fastest way to lock a spread); each arrives at its venue after
that venue's latency and is filled there by the execution venue. When both legs are terminal
the trade is settled: realised PnL next to the expected one, a failed or partial leg recorded
as unhedged exposure. One trade per (buy, sell) pair is in flight at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from cryptoarb.core.accounting import Portfolio, settle_arb
from cryptoarb.core.book import OrderBook
from cryptoarb.core.footprint import Footprints
from cryptoarb.core.instruments import dec
from cryptoarb.core.opportunity import Opportunity, OrderIntent
from cryptoarb.core.orders import ZERO, ArbStatus, ArbTrade, Fill, Order, OrderStatus
from cryptoarb.detect.cross_venue import reservations
from cryptoarb.execution.arrivals import Arrivals
from cryptoarb.execution.paper import PaperVenue


@dataclass
class ExecConfig:
    latency_ns: dict[str, int] = field(default_factory=dict)  # per venue; default below
    default_latency_ns: int = 5_000_000
    cooldown_ns: int = 0  # after a trade on a pair settles, wait before the next
    max_open_trades: int = 4


@dataclass
class ExecStats:
    submitted: int = 0
    skipped_in_flight: int = 0
    skipped_limit: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    expected_pnl: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)


class ArbExecutor:
    """Schedules, fills and settles arbitrage trades on a virtual (event-time) clock."""

    def __init__(
        self,
        portfolio: Portfolio,
        venues: dict[str, PaperVenue],  # or execution.live.LiveVenue: same execute()
        books: Callable[[str], OrderBook | None],
        config: ExecConfig | None = None,
        run_id: str = "run",
        footprints: Footprints | None = None,
    ) -> None:
        self.portfolio = portfolio
        self.venues = venues
        self.books = books
        self.config = config or ExecConfig()
        self.run_id = run_id
        # our own footprint on the books: the detector holds the levels an opportunity takes;
        # the hold ends when the order arrives (the paper venue then records what it took)
        self.footprints = footprints if footprints is not None else Footprints()
        self.stats = ExecStats()
        self.trades: list[ArbTrade] = []
        self.arrivals = Arrivals()
        self._queue = self.arrivals.heap  # the engine's hot path peeks at its head
        self._open: dict[tuple[str, str], ArbTrade] = {}
        self._cooldown_until: dict[tuple[str, str], int] = {}
        self._by_order: dict[str, ArbTrade] = {}
        # balances committed to trades in flight, so that the detector does not size the next
        # opportunity with money the previous one is already spending (the venue's own rule)
        self.reserved: dict[tuple[str, str], Decimal] = {}
        self._holds: dict[int, list[tuple[tuple[str, str], Decimal]]] = {}
        # listeners (storage, metrics, risk); called off the hot path
        self.on_order: list[Callable[[Order], None]] = []
        self.on_fill: list[Callable[[Fill], None]] = []
        self.on_trade: list[Callable[[ArbTrade], None]] = []
        # single orders outside a trade (leg-risk repairs: execution/legrisk.py), same venues
        self.singles: list[Order] = []
        self._single_done: dict[str, Callable[[Order], None]] = {}

    def submit(self, opp: Opportunity, now_ns: int) -> ArbTrade | None:
        pair = (opp.buy_key, opp.sell_key)
        if pair in self._open:
            self.stats.skipped_in_flight += 1
            return None
        if len(self._open) >= self.config.max_open_trades or now_ns < self._cooldown_until.get(pair, 0):
            self.stats.skipped_limit += 1
            return None
        arb_id = opp.id
        buy = self._order(opp.buy, arb_id, "b", now_ns)
        sell = self._order(opp.sell, arb_id, "s", now_ns)
        trade = ArbTrade(
            id=arb_id,
            opportunity_id=opp.id,
            group=opp.group,
            buy_order=buy,
            sell_order=sell,
            expected_pnl=dec(opp.profit_quote),
            expected_qty_base=dec(opp.qty_base),
            created_ns=now_ns,
        )
        self._open[pair] = trade
        self._hold(arb_id, opp)
        self._by_order[buy.id] = self._by_order[sell.id] = trade
        self.trades.append(trade)
        self.stats.submitted += 1
        for order in (buy, sell):
            latency = self.config.latency_ns.get(order.venue, self.config.default_latency_ns)
            self.arrivals.push(order, now_ns + latency)
            self._emit(self.on_order, order)
        self._emit(self.on_trade, trade)
        return trade

    def send(self, order: Order, now_ns: int, done: Callable[[Order], None]) -> None:
        """Send one order outside any trade (a leg-risk repair) through the same venues and
        latency; ``done(order)`` is called once it is terminal, after the fill listeners."""
        latency = self.config.latency_ns.get(order.venue, self.config.default_latency_ns)
        self.arrivals.push(order, now_ns + latency)
        self.singles.append(order)
        self._single_done[order.id] = done
        self._emit(self.on_order, order)

    def _hold(self, arb_id: int, opp: Opportunity) -> None:
        bb, sb = self.books(opp.buy_key), self.books(opp.sell_key)
        if bb is None or sb is None:
            return
        holds = reservations(opp, bb.instrument, sb.instrument)
        for key, amount in holds:
            self.reserved[key] = self.reserved.get(key, ZERO) + amount
        self._holds[arb_id] = holds

    def _release(self, arb_id: int) -> None:
        for key, amount in self._holds.pop(arb_id, []):
            left = self.reserved.get(key, ZERO) - amount
            if left <= 0:
                self.reserved.pop(key, None)
            else:
                self.reserved[key] = left

    def _order(self, intent: OrderIntent, arb_id: int, leg: str, now_ns: int) -> Order:
        return Order(
            id=f"{self.run_id}-{arb_id}{leg}",
            venue=intent.venue,
            symbol=intent.symbol,
            side=intent.side,
            qty=dec(intent.qty),
            limit_price=dec(intent.limit_price),
            expected_price=dec(intent.expected_price),
            created_ns=now_ns,
            arb_id=arb_id,
        )

    def advance(self, now_ns: int) -> None:
        """Deliver every order whose arrival time has come, against the books as they stand."""
        for order, arrival in self.arrivals.due(now_ns):
            self._deliver(order, arrival)

    def drain(self) -> None:
        """Deliver everything still in flight (end of a replay) at its own arrival time."""
        for order, arrival in self.arrivals.all():
            self._deliver(order, arrival)

    def _deliver(self, order: Order, now_ns: int) -> None:
        key = f"{order.venue} {order.symbol}"
        if order.id not in self._single_done:  # a trade's leg: the detector's hold ends on arrival
            self.footprints[key].release(f"{order.arb_id}{'b' if order.side == 'buy' else 's'}")
        book = self.books(key)
        venue = self.venues.get(order.venue)
        if book is None or venue is None:
            order.transition(OrderStatus.REJECTED, now_ns, f"no venue/book for {key}")
            fills: list[Fill] = []
        else:
            fills = venue.execute(order, book, now_ns)
        self.order_update(order, fills, now_ns)

    def order_update(self, order: Order, fills: list[Fill], now_ns: int) -> None:
        """An order's new fills and state. The paper venue answers within ``_deliver``; a live
        venue (``execution/live.py``) calls this when its answer comes. A trade settles when both
        its legs are final."""
        for f in fills:
            self._emit(self.on_fill, f)
        self._emit(self.on_order, order)
        if not order.status.terminal:
            return
        done = self._single_done.pop(order.id, None)
        if done is not None:  # a single order (leg risk), not a trade's leg
            done(order)
            return
        trade = self._by_order.pop(order.id, None)
        if trade is not None and trade.buy_order.status.terminal and trade.sell_order.status.terminal:
            self._settle(trade, now_ns)

    def _settle(self, trade: ArbTrade, now_ns: int) -> None:
        b = trade.buy_order
        s = trade.sell_order
        buy_book = self.books(f"{b.venue} {b.symbol}")
        sell_book = self.books(f"{s.venue} {s.symbol}")
        assert buy_book is not None and sell_book is not None
        settle_arb(trade, buy_book.instrument, sell_book.instrument, now_ns)
        self._release(trade.id)
        pair = (buy_book.key, sell_book.key)
        self._open.pop(pair, None)
        if self.config.cooldown_ns:
            self._cooldown_until[pair] = now_ns + self.config.cooldown_ns
        st = self.stats
        st.by_status[trade.status.value] = st.by_status.get(trade.status.value, 0) + 1
        st.expected_pnl += trade.expected_pnl
        st.realized_pnl += trade.realized_pnl
        self._emit(self.on_trade, trade)

    def settled(self) -> list[ArbTrade]:
        return [t for t in self.trades if t.status is not ArbStatus.PENDING]

    @staticmethod
    def _emit(listeners: list[Callable], item: object) -> None:  # type: ignore[type-arg]
        for fn in listeners:
            fn(item)
