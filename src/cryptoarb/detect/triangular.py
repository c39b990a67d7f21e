"""Triangular (cyclic) arbitrage within one venue: the hot-path detector.

At start the venue's spot markets become a currency graph (:mod:`cryptoarb.core.cycles`) and its
3-leg cycles through the start currency are enumerated once. On every change of a valid book
the two rates of that market are rewritten and only the cycles containing it are checked: three
multiplications each, O(1) on the tops. Only when a cycle's top product clears the threshold is
it sized through the books' depth (:mod:`.cycle_sizing`), through our own footprint, with the
balances net of what trades in flight reserved. Cycles of any length are found on demand by
Bellman-Ford (:meth:`TriangularDetector.scan`), never on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from cryptoarb.core.accounting import fee_asset
from cryptoarb.core.book import OrderBook
from cryptoarb.core.cycles import Cycle, Edge, Graph, Market, negative_cycles, triangles
from cryptoarb.core.footprint import Footprints
from cryptoarb.core.instruments import Instrument, Kind, dec
from cryptoarb.detect.cycle_sizing import CyclePlan, LegBook, best_plan


class CycleError(ValueError):
    """A configuration that cannot give any cycle (the message says why)."""


class CycleOpportunity:
    """A sized cycle: legs to send (exact quantities and limits), expected money in the start
    currency, and the dust later legs cannot use."""

    __slots__ = ("amount_in", "amount_out", "cycle", "dust", "exchange_ns", "id", "legs", "local_ns", "name",
                 "plan", "profit", "profit_bps", "start", "venue")

    def __init__(self, id: int, venue: str, cycle: Cycle, plan: CyclePlan, exchange_ns: int, local_ns: int) -> None:
        self.id = id
        self.venue = venue
        self.cycle = cycle
        self.name = cycle.name
        self.start = cycle.start
        self.plan = plan
        self.legs = plan.legs
        self.amount_in = plan.amount_in
        self.amount_out = plan.amount_out
        self.profit = plan.profit
        self.profit_bps = plan.profit_bps
        self.dust = plan.dust
        self.exchange_ns = exchange_ns
        self.local_ns = local_ns

    def __repr__(self) -> str:
        return f"CycleOpportunity(#{self.id} {self.venue} {self.name} in={self.amount_in} profit={self.profit})"


def market_of(inst: Instrument) -> Market:
    """The graph's view of a spot instrument (fee side by the venue's rule)."""
    return Market(
        inst.key, inst.base, inst.quote, inst.fees.taker,
        buy_fee_in_received=fee_asset(inst, "buy") == inst.base,
        sell_fee_in_received=fee_asset(inst, "sell") == inst.quote,
    )


def build_graph(insts: Iterable[Instrument], venue: str, currencies: Iterable[str] = ()) -> Graph:
    """The spot markets of ``venue`` whose two currencies are both allowed (all when empty)."""
    allowed = frozenset(currencies)
    return Graph(
        market_of(i) for i in insts
        if i.venue == venue and i.kind is Kind.SPOT and (not allowed or (i.base in allowed and i.quote in allowed))
    )


class _Venue:
    """One venue's graph, its triangles through the start currency, and the hot index."""

    __slots__ = ("by_key", "cycles", "graph", "insts", "start", "venue")

    def __init__(self, venue: str, insts: list[Instrument], start: str, currencies: Iterable[str],
                 strict: bool = True) -> None:
        self.venue = venue
        self.start = start
        self.insts = {i.key: i for i in insts if i.venue == venue}
        self.graph = build_graph(insts, venue, currencies)
        if strict:
            check(self.graph, venue, start)
        self.cycles = triangles(self.graph, [start])
        # market key -> [(its edge in the cycle, the other two edges, the cycle)]
        self.by_key: dict[str, list[tuple[Edge, Edge, Edge, Cycle]]] = {}
        for c in self.cycles:
            e = c.edges
            for i in range(3):
                self.by_key.setdefault(e[i].key, []).append((e[i], e[(i + 1) % 3], e[(i + 2) % 3], c))


def check(graph: Graph, venue: str, start: str) -> None:
    """A venue's graph can hold cycles through ``start``; CycleError says why not."""
    if not graph.markets:
        raise CycleError(f"{venue}: no spot market to build cycles from")
    if start not in graph.adj:
        raise CycleError(f"{venue}: start currency {start!r} is not listed (currencies: {', '.join(graph.currencies)})")


def no_cycle_reason(graph: Graph, venue: str, start: str) -> str:
    """Why a venue has no 3-leg cycle through ``start`` ("" when it has one)."""
    try:
        check(graph, venue, start)
    except CycleError as e:
        return str(e)
    if triangles(graph, [start]):
        return ""
    return (f"{venue}: its markets ({', '.join(m.split(' ', 1)[1] for m in sorted(graph.markets))}) form no 3-leg "
            f"cycle through {start}")


class TriangularDetector:
    """Evaluates, on each book change, the 3-leg cycles through that market."""

    def __init__(
        self,
        insts: list[Instrument],
        venues: list[str],
        start: str,
        currencies: Iterable[str] = (),
        min_profit_bps: float = 1.0,
        min_profit: float = 0.0,
        max_in: float = 1_000.0,
        max_quote_age_ns: int = 5_000_000_000,
        available: dict[tuple[str, str], Decimal] | None = None,
        footprints: Footprints | None = None,
        concurrent: bool = False,
        next_id: Callable[[], int] | None = None,
    ) -> None:
        cur = list(currencies)
        self.currencies = cur
        # a venue with no market yet (a capture's markets are discovered as it is read) grows as
        # its books arrive (:meth:`add_book`); one that lists markets must list the start currency
        self.venues = {v: _Venue(v, insts, start, cur, strict=any(i.venue == v for i in insts))
                       for v in dict.fromkeys(venues)}
        self.start = start
        self.thr = 1.0 + min_profit_bps / 1e4
        self.min_bps = min_profit_bps
        self.min_profit = dec(min_profit)
        self.max_in = dec(max_in)
        self.max_age = max_quote_age_ns
        self.available: dict[tuple[str, str], Decimal] = available if available is not None else {}
        self.footprints = footprints if footprints is not None else Footprints()
        self.concurrent = concurrent
        self.books: dict[str, OrderBook] = {}
        self._index: dict[str, tuple[_Venue, Edge, Edge, list[tuple[Edge, Edge, Edge, Cycle]]]] = {}
        for v in self.venues.values():
            self._reindex(v)
        self._count = 0
        self._next_id = next_id or self._default_id
        self.evaluations = 0  # cycles checked on the tops
        self.walks = 0  # cycles sized through the books

    def _default_id(self) -> int:
        self._count += 1
        return self._count

    @property
    def cycle_count(self) -> int:
        return sum(len(v.cycles) for v in self.venues.values())

    def watches(self, key: str) -> bool:
        return key in self._index

    def _reindex(self, v: _Venue) -> None:
        for key, (buy, sell) in v.graph.by_key.items():
            self._index[key] = (v, buy, sell, v.by_key.get(key, []))

    def add_book(self, book: OrderBook) -> None:
        """Follow ``book``; its tops count from now (a book registered already valid too). A
        market the venue's graph did not have (discovered in a capture) joins it: the graph
        and its cycles are rebuilt (set-up work, never per update)."""
        inst = book.instrument
        if book.key not in self._index and inst.venue in self.venues and inst.kind is Kind.SPOT:
            old = self.venues[inst.venue]
            v = self.venues[inst.venue] = _Venue(inst.venue, [*old.insts.values(), inst], self.start,
                                                 self.currencies, strict=False)
            for key in old.graph.by_key:
                self._index.pop(key, None)
            self._reindex(v)
            for key in v.graph.by_key:  # the rebuilt edges take the current tops
                b = self.books.get(key)
                if b is not None and key != book.key:
                    v.graph.set_top(key, b.bid if b.valid else 0.0, b.ask if b.valid else 0.0)
        entry = self._index.get(book.key)
        if entry is not None:
            self.books[book.key] = book
            _, buy, sell, _ = entry
            buy.rate = buy.mult / book.ask if book.valid and book.ask > 0.0 else 0.0
            sell.rate = book.bid * sell.mult if book.valid and book.bid > 0.0 else 0.0

    # -- hot path --------------------------------------------------------------------
    def on_book(self, book: OrderBook, now_ns: int) -> list[CycleOpportunity] | None:
        """Rewrite this market's two rates; check the cycles containing it. None: nothing fires."""
        entry = self._index.get(book.key)
        if entry is None:
            return None
        venue, buy, sell, cycles = entry
        ask = book.ask
        bid = book.bid
        buy.rate = buy.mult / ask if ask > 0.0 else 0.0
        sell.rate = bid * sell.mult if bid > 0.0 else 0.0
        thr = self.thr
        found: list[CycleOpportunity] | None = None
        self.evaluations += len(cycles)
        for e, o1, o2, cyc in cycles:
            if e.rate * o1.rate * o2.rate > thr:
                opp = self._size(venue, cyc, now_ns)
                if opp is not None:
                    found = [opp] if found is None else [*found, opp]
        return found

    def _size(self, venue: _Venue, cyc: Cycle, now_ns: int) -> CycleOpportunity | None:
        sized = self.plan(venue.venue, cyc, now_ns)
        if sized is None:
            return None
        plan, legs = sized
        exch = max(leg.book.exchange_ns for leg in legs)
        opp = CycleOpportunity(self._next_id(), venue.venue, cyc, plan, exch, now_ns)
        self._commit(opp, legs)
        return opp

    def plan(self, venue: str, cyc: Cycle, now_ns: int) -> tuple[CyclePlan, list[LegBook]] | None:
        """The best size of ``cyc`` on the books as they are for us now (nothing committed)."""
        books = self.books
        oldest = now_ns - self.max_age
        legs: list[LegBook] = []
        for e in cyc.edges:
            b = books.get(e.key)
            if b is None or not b.valid or b.local_ns < oldest:
                return None
            legs.append(LegBook(b, self.footprints[e.key], e.buy))
        self.walks += 1
        av = self.available
        have: list[Decimal | None] = [av.get((venue, cyc.start), Decimal(0))]
        for e in cyc.edges[1:]:
            have.append(av.get((venue, e.src), Decimal(0)) if self.concurrent else None)
        plan = best_plan(legs, have, self.max_in, self.min_profit, self.min_bps)
        return None if plan is None else (plan, legs)

    def _commit(self, opp: CycleOpportunity, legs: list[LegBook]) -> None:
        """What this cycle takes is not there for the next one (until released)."""
        for i, (leg, f) in enumerate(zip(legs, opp.legs, strict=True)):
            self.footprints[leg.book.key].hold(hold_id(opp.id, i), leg.side, f.takes)
        for key, amount in cycle_reservations(opp, self.concurrent):
            self.available[key] = self.available.get(key, Decimal(0)) - amount

    def release(self, opp: CycleOpportunity) -> None:
        """A cycle that will not be traded gives back the liquidity it held."""
        for i, e in enumerate(opp.cycle.edges):
            self.footprints[e.key].release(hold_id(opp.id, i))

    # -- on demand ---------------------------------------------------------------------
    def scan(self, max_legs: int = 4) -> list[tuple[str, Cycle, float]]:
        """Profitable cycles of any length (up to ``max_legs``) at the current tops, by
        Bellman-Ford, best first: (venue, cycle, top rate product). Not for the hot path."""
        out: list[tuple[str, Cycle, float]] = []
        for v in self.venues.values():
            g = v.graph
            for key, (buy, sell) in g.by_key.items():
                b = self.books.get(key)
                if b is None or not b.valid:
                    buy.rate = sell.rate = 0.0
                else:
                    g.set_top(key, b.bid, b.ask)
            out += [(v.venue, c, c.rate()) for c in negative_cycles(g, max_legs)]
        out.sort(key=lambda x: -x[2])
        return out


def hold_id(cycle_id: int, leg: int) -> str:
    return f"c{cycle_id}.{leg}"


def cycle_reservations(opp: CycleOpportunity, concurrent: bool = False) -> list[tuple[tuple[str, str], Decimal]]:
    """Balances the cycle's orders lock at the venue (``spot_need`` at each limit): the first
    leg's only when sequential (later legs spend what it delivers), every leg's when concurrent."""
    edges = opp.cycle.edges if concurrent else opp.cycle.edges[:1]
    return [((opp.venue, e.src), f.need) for e, f in zip(edges, opp.legs, strict=False)]


__all__ = [
    "CycleError",
    "CycleOpportunity",
    "TriangularDetector",
    "build_graph",
    "check",
    "cycle_reservations",
    "hold_id",
    "market_of",
    "no_cycle_reason",
]
