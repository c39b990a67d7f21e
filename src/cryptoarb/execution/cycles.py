"""Executes cycles in paper: every leg an IOC limit order at the paper venue, sequential (each
leg sent when the previous one is done, sized by what it really delivered) or concurrent (all
at once, each spending the balance already there).

A cycle whose later leg cannot be sent or gets nothing is *broken*: what it holds in other
currencies than the start is its residual, recorded with the cycle (and marked to the books
in the account's unrealised PnL like any open inventory). Expected and realised PnL sit side
by side; the realised one is what the cycle's fills closed in the run's ledger (fees included).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.book import OrderBook
from cryptoarb.core.footprint import Footprints, visible
from cryptoarb.core.instruments import Instrument, dec
from cryptoarb.core.orders import ZERO, Fill, Order, OrderStatus
from cryptoarb.detect.triangular import CycleOpportunity, hold_id
from cryptoarb.execution.paper import PaperVenue

COMPLETE, PARTIAL, BROKEN, FAILED, PENDING = "complete", "partial", "broken", "failed", "pending"


@dataclass(slots=True)
class CycleTrade:
    """One attempt at a cycle: its orders, expected vs realised PnL, what it left behind."""

    id: int
    venue: str
    name: str
    start: str
    expected_in: Decimal
    expected_pnl: Decimal
    created_ns: int
    orders: list[Order] = field(default_factory=list)
    status: str = PENDING
    realized_pnl: Decimal = ZERO
    fees_quote: Decimal = ZERO
    residual: dict[str, Decimal] = field(default_factory=dict)  # currency -> amount left by the cycle
    closed_ns: int = 0
    reason: str = ""


class CycleExecutor:
    """Schedules, fills and settles cycles on the engine's event-time clock."""

    def __init__(
        self,
        portfolio: Portfolio,
        venues: dict[str, PaperVenue],
        books: Callable[[str], OrderBook | None],
        latency_ns: Callable[[str], int],
        run_id: str = "run",
        footprints: Footprints | None = None,
        concurrent: bool = False,
        max_open: int = 2,
    ) -> None:
        self.portfolio = portfolio
        self.venues = venues
        self.books = books
        self.latency_ns = latency_ns
        self.run_id = run_id
        self.footprints = footprints if footprints is not None else Footprints()
        self.concurrent = concurrent
        self.max_open = max_open
        self.trades: list[CycleTrade] = []
        self.queue: list[tuple[int, int, Order]] = []
        self._seq = 0
        self._open: dict[int, tuple[CycleTrade, CycleOpportunity]] = {}
        self._by_order: dict[str, tuple[CycleTrade, int]] = {}
        self.reserved: dict[tuple[str, str], Decimal] = {}
        self._holds: dict[str, tuple[tuple[str, str], Decimal]] = {}  # order id -> its balance lock
        self.skipped = 0
        self.on_order: list[Callable[[Order], None]] = []
        self.on_fill: list[Callable[[Fill], None]] = []
        self.on_trade: list[Callable[[CycleTrade], None]] = []

    def submit(self, opp: CycleOpportunity, now_ns: int) -> CycleTrade | None:
        if len(self._open) >= self.max_open or any(o.cycle is opp.cycle for _, o in self._open.values()):
            self.skipped += 1
            return None
        t = CycleTrade(opp.id, opp.venue, opp.name, opp.start, opp.amount_in, opp.profit, now_ns)
        self.trades.append(t)
        self._open[t.id] = (t, opp)
        for i in range(len(opp.legs) if self.concurrent else 1):
            self._send(t, opp, i, opp.legs[i].qty, now_ns)
        self._emit(self.on_trade, t)
        return t

    def _send(self, t: CycleTrade, opp: CycleOpportunity, i: int, qty: Decimal, now_ns: int) -> None:
        e, f = opp.cycle.edges[i], opp.legs[i]
        book = self.books(e.key)
        assert book is not None
        inst = book.instrument
        order = Order(
            id=f"{self.run_id}-c{t.id}l{i}", venue=inst.venue, symbol=inst.symbol, side="buy" if e.buy else "sell",
            qty=qty, limit_price=f.limit, expected_price=f.vwap, created_ns=now_ns,
        )
        if i and not self.concurrent:
            self._rehold(book, hold_id(t.id, i), e.buy, qty, f.limit)
        # what the venue locks for this order (spot_need, linear in the quantity) is not there
        # for anything else until it arrives
        key = (inst.venue, e.src)
        need = f.need if qty == f.qty else f.need * qty / f.qty
        self.reserved[key] = self.reserved.get(key, ZERO) + need
        self._holds[order.id] = (key, need)
        t.orders.append(order)
        self._by_order[order.id] = (t, i)
        self._seq += 1
        heapq.heappush(self.queue, (now_ns + self.latency_ns(inst.venue), self._seq, order))
        self._emit(self.on_order, order)

    def _rehold(self, book: OrderBook, hid: str, buy: bool, qty: Decimal, limit: Decimal) -> None:
        """A later leg leaves now, onto the book as it is now (it may have moved since the cycle
        was sized): what it will take is held there, in place of what was held then, so no
        other opportunity is sized on it while it travels."""
        fp = self.footprints[book.key]
        fp.release(hid)
        side = "asks" if buy else "bids"
        stamp = (book.update_id, book.local_ns)
        lim = float(limit)
        left = float(qty)
        takes: list[tuple[float, float]] = []
        for p, q in visible(book.asks() if buy else book.bids(), fp, side, stamp):
            if left <= 0.0 or (p > lim if buy else p < lim):
                break
            x = min(q, left)
            takes.append((p, x))
            left -= x
        fp.hold(hid, side, takes)

    def advance(self, now_ns: int) -> None:
        q = self.queue
        while q and q[0][0] <= now_ns:
            arrival, _, order = heapq.heappop(q)
            self._deliver(order, arrival)

    def drain(self) -> None:
        while self.queue:
            arrival, _, order = heapq.heappop(self.queue)
            self._deliver(order, arrival)

    def _deliver(self, order: Order, now_ns: int) -> None:
        t, i = self._by_order.pop(order.id)
        _, opp = self._open[t.id]
        self._release(order.id)
        key = f"{order.venue} {order.symbol}"
        self.footprints[key].release(hold_id(t.id, i))
        book = self.books(key)
        venue = self.venues.get(order.venue)
        if book is None or venue is None:
            order.transition(OrderStatus.REJECTED, now_ns, f"no venue/book for {key}")
            fills: list[Fill] = []
        else:
            fills = venue.execute(order, book, now_ns)
        for fl in fills:
            self._emit(self.on_fill, fl)
        self._emit(self.on_order, order)
        last = len(opp.legs) - 1
        if not self.concurrent and i < last:
            got = _received(order, book.instrument if book is not None else None, opp.cycle.edges[i].buy)
            nxt = self._next_qty(opp, i + 1, got)
            if nxt > 0:
                self._send(t, opp, i + 1, nxt, now_ns)
                return
            t.reason = f"leg {i + 2} not sent: leg {i + 1} delivered {got} {opp.cycle.edges[i].dst}"
            for j in range(i + 1, len(opp.legs)):  # legs never sent give their liquidity back
                self.footprints[opp.cycle.edges[j].key].release(hold_id(t.id, j))
        if any(o.id in self._by_order for o in t.orders):  # a leg still on its way
            return
        self._settle(t, opp, now_ns)

    def _next_qty(self, opp: CycleOpportunity, i: int, have: Decimal) -> Decimal:
        """The planned quantity of leg ``i``, or less when the previous leg delivered less (a
        lot multiple ``have`` pays for at the leg's limit, the venue's own rule)."""
        e, f = opp.cycle.edges[i], opp.legs[i]
        book = self.books(e.key)
        if book is None or have <= 0:
            return ZERO
        inst = book.instrument
        if f.need <= have:
            return f.qty
        mult = f.need / (f.qty * f.limit if e.buy else f.qty)
        per = f.limit * mult if e.buy else mult
        lot = dec(inst.lot_size)
        return (have / per / lot).to_integral_value(ROUND_FLOOR) * lot  # exact: never above ``have``

    def _settle(self, t: CycleTrade, opp: CycleOpportunity, now_ns: int) -> None:
        self._open.pop(t.id, None)
        for j in range(len(opp.legs)):
            self.footprints[opp.cycle.edges[j].key].release(hold_id(t.id, j))
        fills = [f for o in t.orders for f in o.fills]
        t.realized_pnl = sum((f.pnl for f in fills), ZERO)
        t.fees_quote = sum((f.fee_quote for f in fills), ZERO)
        flows: dict[str, Decimal] = {}
        for o in t.orders:
            book = self.books(f"{o.venue} {o.symbol}")
            assert book is not None
            inst = book.instrument
            for f in o.fills:
                sign = 1 if f.side == "buy" else -1
                flows[inst.base] = flows.get(inst.base, ZERO) + sign * f.qty
                flows[inst.quote] = flows.get(inst.quote, ZERO) - sign * f.qty * f.price
                flows[f.fee_currency] = flows.get(f.fee_currency, ZERO) - f.fee
        t.residual = {c: a for c, a in sorted(flows.items()) if a and c != t.start}
        filled = [o.filled_qty > 0 for o in t.orders]
        if not filled[0]:
            t.status = FAILED
        elif len(t.orders) < len(opp.legs) or not all(filled):
            t.status = BROKEN
        elif all(o.status is OrderStatus.FILLED for o in t.orders):
            t.status = COMPLETE
        else:
            t.status = PARTIAL
        t.closed_ns = now_ns
        self._emit(self.on_trade, t)

    def _release(self, order_id: str) -> None:
        held = self._holds.pop(order_id, None)
        if held is None:
            return
        key, amount = held
        left = self.reserved.get(key, ZERO) - amount
        if left <= 0:
            self.reserved.pop(key, None)
        else:
            self.reserved[key] = left

    def settled(self) -> list[CycleTrade]:
        return [t for t in self.trades if t.closed_ns]

    @staticmethod
    def _emit(listeners: list[Callable], item: object) -> None:  # type: ignore[type-arg]
        for fn in listeners:
            fn(item)


def _received(order: Order, inst: Instrument | None, buy: bool) -> Decimal:
    """What an order delivered in its destination currency, net of a fee taken from it."""
    if inst is None:
        return ZERO
    got = ZERO
    for f in order.fills:
        if buy:
            got += f.qty - (f.fee if f.fee_currency == inst.base else ZERO)
        else:
            got += f.qty * f.price - (f.fee if f.fee_currency == inst.quote else ZERO)
    return got
