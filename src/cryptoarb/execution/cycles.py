"""Executes cycles: every leg an IOC limit order at the venue (paper, or live through the same
``execute`` interface), sequential (each leg sent when the previous one is done, sized by what it
really delivered) or concurrent (all at once, each spending the balance already there).

A cycle whose later leg cannot be sent or gets nothing is *broken*: it holds that leg's source
currency instead of the start one. With a leg-risk policy (``execution/cycle_repair.py``) the
position is repaired by retrying the leg or unwinding to the start currency; what no step could
close is the cycle's residual, recorded with it (and marked to the books in the account's
unrealised PnL like any open inventory). Expected and realised PnL sit side by side; the realised
one is what the cycle's fills -- repair orders included -- closed in the run's ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from cryptoarb.core.accounting import Portfolio, spot_need
from cryptoarb.core.book import OrderBook
from cryptoarb.core.footprint import Footprints, visible
from cryptoarb.core.instruments import Instrument, dec
from cryptoarb.core.orders import ZERO, Fill, Order, OrderStatus
from cryptoarb.detect.triangular import CycleOpportunity, hold_id
from cryptoarb.execution.arrivals import Arrivals
from cryptoarb.execution.paper import PaperVenue

if TYPE_CHECKING:
    from cryptoarb.core.cycle_repair import CycleIncident
    from cryptoarb.execution.cycle_repair import CycleRepair

COMPLETE, PARTIAL, BROKEN, FAILED, PENDING = "complete", "partial", "broken", "failed", "pending"
UNWOUND = "unwound"  # broken, then traded back to the start currency by the leg-risk policy
LEG, RETRY, UNWIND = "leg", "retry", "unwind"


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
    orders: list[Order] = field(default_factory=list)  # legs, then retries and unwinds, in send order
    status: str = PENDING
    realized_pnl: Decimal = ZERO
    fees_quote: Decimal = ZERO
    residual: dict[str, Decimal] = field(default_factory=dict)  # currency -> amount left by the cycle
    closed_ns: int = 0
    reason: str = ""
    incident: CycleIncident | None = None  # the leg-risk repair of a broken cycle, if any


class CycleRun:
    """A cycle in flight: the trade, its plan, each leg's latest order, where it stopped."""

    __slots__ = ("at", "last", "opp", "trade")

    def __init__(self, trade: CycleTrade, opp: CycleOpportunity) -> None:
        self.trade = trade
        self.opp = opp
        self.last: list[Order | None] = [None] * len(opp.legs)
        self.at: int | None = None  # the leg the cycle stopped at; None: it went round


class CycleExecutor:
    """Schedules, fills and settles cycles on the engine's event-time clock."""

    def __init__(
        self,
        portfolio: Portfolio,
        venues: dict[str, PaperVenue],  # or execution.live.LiveVenue: same execute()
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
        self.arrivals = Arrivals()
        self.queue = self.arrivals.heap  # the engine's hot path peeks at its head
        self.runs: dict[int, CycleRun] = {}
        self._by_order: dict[str, tuple[CycleRun, int, str]] = {}
        self.reserved: dict[tuple[str, str], Decimal] = {}
        self._holds: dict[str, tuple[tuple[str, str], Decimal]] = {}  # order id -> its balance lock
        self.skipped = 0
        self.stopped = ""  # why no new order may leave any more (the run is stopping), or ""
        self._dropped: set[str] = set()  # orders dropped before leaving when the run stopped
        #: the leg-risk policy for broken cycles (None: a broken cycle keeps its residual)
        self.repair: CycleRepair | None = None
        self.on_order: list[Callable[[Order], None]] = []
        self.on_fill: list[Callable[[Fill], None]] = []
        self.on_trade: list[Callable[[CycleTrade], None]] = []

    def stop(self, now_ns: int, why: str = "the run stopped") -> None:
        """No order leaves any more (a live run closing: its journal and venues are going away).
        Orders still waiting to leave are dropped (never sent, never journaled); a cycle whose
        next leg or repair cannot leave settles as it stands, its residual kept and reported."""
        self.stopped = why
        waiting = [o for o, _ in self.arrivals.all()]
        self._dropped.update(o.id for o in waiting)
        for order in waiting:
            self._release(order.id)
            order.transition(OrderStatus.REJECTED, now_ns, f"not sent: {why}")
            self.order_update(order, [], now_ns)

    def submit(self, opp: CycleOpportunity, now_ns: int) -> CycleTrade | None:
        if self.stopped:
            self.skipped += 1
            return None
        if len(self.runs) >= self.max_open or any(r.opp.cycle is opp.cycle for r in self.runs.values()):
            self.skipped += 1
            return None
        t = CycleTrade(opp.id, opp.venue, opp.name, opp.start, opp.amount_in, opp.profit, now_ns)
        self.trades.append(t)
        run = self.runs[t.id] = CycleRun(t, opp)
        for i in range(len(opp.legs) if self.concurrent else 1):
            self.send_leg(run, i, opp.legs[i].qty, now_ns)
        self._emit(self.on_trade, t)
        return t

    def owns(self, order_id: str) -> bool:
        """Whether ``order_id`` is an order of a cycle still in flight (a live venue's answer is
        routed here rather than to the arbitrage executor)."""
        return order_id in self._by_order

    def go_live(self, venues: dict[str, Any]) -> None:
        """Send the legs of cycles on these venues through them (``execution.live.LiveVenue``:
        the journal before each send, exact step multiples, fills when the venue answers),
        at once: the wire is the latency."""
        lat = self.latency_ns
        live = set(venues)
        self.venues = {**self.venues, **venues}
        self.latency_ns = lambda v: 0 if v in live else lat(v)

    def send_leg(self, run: CycleRun, i: int, qty: Decimal, now_ns: int, limit: Decimal | None = None,
                 kind: str = LEG) -> Order:
        """Send leg ``i`` (a retry: at ``limit``, id suffixed ``r<n>``)."""
        t, opp = run.trade, run.opp
        e, f = opp.cycle.edges[i], opp.legs[i]
        book = self.books(e.key)
        assert book is not None
        inst = book.instrument
        lim = f.limit if limit is None else limit
        oid = f"{self.run_id}-c{t.id}l{i}" + (f"r{len(t.orders)}" if kind == RETRY else "")
        order = Order(
            id=oid, venue=inst.venue, symbol=inst.symbol, side="buy" if e.buy else "sell",
            qty=qty, limit_price=lim, expected_price=f.vwap, created_ns=now_ns,
        )
        if (i and not self.concurrent) or kind == RETRY:
            self._rehold(book, hold_id(t.id, i), e.buy, qty, lim)
        # what the venue locks for this order is not there for anything else until it arrives
        if limit is None:
            need = f.need if qty == f.qty else f.need * qty / f.qty  # spot_need is linear in qty
        else:
            need = spot_need(inst, order.side, qty, lim, dec(inst.fees.taker))[1]
        self._push(run, order, i, kind, (inst.venue, e.src), need, now_ns)
        return order

    def send_unwind(self, run: CycleRun, inst: Instrument, side: str, qty: Decimal, limit: Decimal,
                    now_ns: int) -> Order:
        """An order trading the held currency back to the start one (leg-risk unwind)."""
        t = run.trade
        order = Order(
            id=f"{self.run_id}-c{t.id}u{len(t.orders)}", venue=inst.venue, symbol=inst.symbol, side=side,
            qty=qty, limit_price=limit, expected_price=limit, created_ns=now_ns,
        )
        ccy, need = spot_need(inst, side, qty, limit, dec(inst.fees.taker))
        self._push(run, order, -1, UNWIND, (inst.venue, ccy), need, now_ns)
        return order

    def _push(self, run: CycleRun, order: Order, i: int, kind: str, key: tuple[str, str], need: Decimal,
              now_ns: int) -> None:
        self.reserved[key] = self.reserved.get(key, ZERO) + need
        self._holds[order.id] = (key, need)
        run.trade.orders.append(order)
        self._by_order[order.id] = (run, i, kind)
        self.arrivals.push(order, now_ns + self.latency_ns(order.venue))
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
        for order, arrival in self.arrivals.due(now_ns):
            self._deliver(order, arrival)

    def drain(self) -> None:
        """End of a replay: deliver every order still on its way; a broken cycle whose repair is
        still waiting settles as it stands (``every step`` could not run: the run ended)."""
        last = 0
        for order, arrival in self.arrivals.all():
            self._deliver(order, arrival)
            last = arrival
        if self.repair is not None:
            self.repair.end(last)

    def _deliver(self, order: Order, now_ns: int) -> None:
        run, i, kind = self._by_order[order.id]
        key = f"{order.venue} {order.symbol}"
        if kind != UNWIND:
            self.footprints[key].release(hold_id(run.trade.id, i))
        book = self.books(key)
        venue = self.venues.get(order.venue)
        if book is None or venue is None:
            order.transition(OrderStatus.REJECTED, now_ns, f"no venue/book for {key}")
            fills: list[Fill] = []
        else:
            fills = venue.execute(order, book, now_ns)
        self.order_update(order, fills, now_ns)

    def order_update(self, order: Order, fills: list[Fill], now_ns: int) -> None:
        """An order's new fills and state: the paper venue answers within ``_deliver``, a live
        venue (``execution/live.py``) calls this when its answer comes."""
        for fl in fills:
            self._emit(self.on_fill, fl)
        self._emit(self.on_order, order)
        if not order.status.terminal or order.id not in self._by_order:
            return
        run, i, kind = self._by_order.pop(order.id)
        self._release(order.id)
        t, opp = run.trade, run.opp
        if kind == UNWIND:
            assert self.repair is not None
            self.repair.unwound(run, order, now_ns)
            return
        run.last[i] = order
        last = len(opp.legs) - 1
        if kind == RETRY and self.repair is not None:
            self.repair.retried(run, order, now_ns)
        if self.stopped and order.id in self._dropped:
            t.reason = f"leg {i + 1} not sent: {self.stopped}"
        if not self.concurrent:
            got = _received(order, self._inst(order), opp.cycle.edges[i].buy)
            if i < last:
                nxt = self._next_qty(opp, i + 1, got)
                if nxt > 0 and not self.stopped:
                    self.send_leg(run, i + 1, nxt, now_ns)
                    return
                run.at = i if not got else i + 1
                if order.id not in self._dropped:
                    t.reason = (f"leg {i + 2} not sent: {self.stopped}" if nxt > 0 else
                                f"leg {i + 2} not sent: leg {i + 1} delivered {got} {opp.cycle.edges[i].dst}")
                for j in range(i + 1, len(opp.legs)):  # legs never sent give their liquidity back
                    self.footprints[opp.cycle.edges[j].key].release(hold_id(t.id, j))
            else:
                run.at = None if order.status is OrderStatus.FILLED else last
        if any(oid in self._by_order for oid in (o.id for o in t.orders)):  # a leg still on its way
            return
        if self.concurrent:
            run.at = next((j for j, o in enumerate(run.last) if o is None or o.status is not OrderStatus.FILLED),
                          None)
        self.conclude(run, now_ns)

    def conclude(self, run: CycleRun, now_ns: int) -> None:
        """The cycle went round or stopped: settle it, unless the leg-risk policy takes over."""
        if self.repair is not None and run.at:
            if self.stopped:
                self.repair.abandon(run, now_ns)
            elif self.repair.engage(run, now_ns):
                return
        self.settle(run, now_ns)

    def _inst(self, order: Order) -> Instrument | None:
        book = self.books(f"{order.venue} {order.symbol}")
        return book.instrument if book is not None else None

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

    def flows(self, t: CycleTrade) -> dict[str, Decimal]:
        """What the cycle's fills moved in each currency (fees included), exactly."""
        flows: dict[str, Decimal] = {}
        for o in t.orders:
            inst = self._inst(o)
            assert inst is not None
            for f in o.fills:
                sign = 1 if f.side == "buy" else -1
                flows[inst.base] = flows.get(inst.base, ZERO) + sign * f.qty
                flows[inst.quote] = flows.get(inst.quote, ZERO) - sign * f.qty * f.price
                flows[f.fee_currency] = flows.get(f.fee_currency, ZERO) - f.fee
        return flows

    def settle(self, run: CycleRun, now_ns: int) -> None:
        t, opp = run.trade, run.opp
        self.runs.pop(t.id, None)
        for j in range(len(opp.legs)):
            self.footprints[opp.cycle.edges[j].key].release(hold_id(t.id, j))
        fills = [f for o in t.orders for f in o.fills]
        t.realized_pnl = sum((f.pnl for f in fills), ZERO)
        t.fees_quote = sum((f.fee_quote for f in fills), ZERO)
        t.residual = {c: a for c, a in sorted(self.flows(t).items()) if a and c != t.start}
        first = run.last[0]
        inc = t.incident
        if first is None or not first.filled_qty:
            t.status = FAILED
        elif inc is not None and inc.unwound:
            t.status = UNWOUND
        elif not all(o is not None and o.filled_qty for o in run.last):
            t.status = BROKEN
        elif all(o is not None and o.status is OrderStatus.FILLED for o in run.last):
            t.status = COMPLETE
        else:
            t.status = PARTIAL
        if inc is not None and inc.reason:
            t.reason = f"{t.reason}; {inc.reason}" if t.reason else inc.reason
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
