"""The currency graph of one venue's spot markets: its 3-leg cycles and, on demand, any
profitable cycle (Bellman-Ford on -log rates net of fees).

Each market ``BASE/QUOTE`` is two directed edges: QUOTE -> BASE (a buy: the asks) and
BASE -> QUOTE (a sell: the bids). The orientation is the market's, never the cycle's: a cycle
USDT -> BTC -> ETH -> USDT over BTC/USDT, ETH/BTC and ETH/USDT *buys* ETH/BTC with BTC, while
the reverse cycle *sells* it. Rates are what one unit of the source currency becomes at the top
of the book, net of the taker fee the way the venue charges it: a fee taken from the received
asset multiplies by ``1 - fee``; a fee taken from the paid asset (on top of it) divides by
``1 + fee`` (``fee_in_received`` comes from ``core.accounting.fee_asset``).

The graph is built once at start; the hot path only rewrites the two rates of the market that
changed (:meth:`Edge.set_top`) and multiplies the rates of the cycles containing it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Market:
    """What the graph needs of a market: its key, orientation and fee rule."""

    key: str  # "<venue> <symbol>"
    base: str
    quote: str
    fee: float  # taker rate
    buy_fee_in_received: bool = True  # a buy pays its fee in base (the asset received)
    sell_fee_in_received: bool = True  # a sell pays its fee in quote (the asset received)


class Edge:
    """One direction of one market: ``src`` currency in, ``dst`` currency out."""

    __slots__ = ("buy", "dst", "index", "key", "market", "mult", "rate", "src")

    def __init__(self, market: Market, buy: bool, index: int) -> None:
        self.market = market
        self.key = market.key
        self.buy = buy  # src is the quote: walk the asks
        self.src = market.quote if buy else market.base
        self.dst = market.base if buy else market.quote
        received = market.buy_fee_in_received if buy else market.sell_fee_in_received
        self.mult = 1.0 - market.fee if received else 1.0 / (1.0 + market.fee)
        self.rate = 0.0  # dst units per src unit at the top, net of fee; 0.0: no price
        self.index = index

    def rate_at(self, bid: float, ask: float) -> float:
        """The rate at these top prices (0.0 when the side this edge takes is empty)."""
        if self.buy:
            return self.mult / ask if ask > 0.0 else 0.0
        return bid * self.mult if bid > 0.0 else 0.0

    def __repr__(self) -> str:
        return f"Edge({self.src}->{self.dst} {'buy' if self.buy else 'sell'} {self.key})"


class Cycle:
    """A closed path of edges starting and ending in ``start``."""

    __slots__ = ("edges", "keys", "name", "start")

    def __init__(self, edges: Sequence[Edge]) -> None:
        self.edges = tuple(edges)
        self.start = self.edges[0].src
        self.keys = tuple(e.key for e in self.edges)
        self.name = " > ".join([*(e.src for e in self.edges), self.start])

    def rate(self) -> float:
        """Product of the edges' current rates: > 1 means the cycle pays at the top."""
        r = 1.0
        for e in self.edges:
            r *= e.rate
        return r

    def __repr__(self) -> str:
        return f"Cycle({self.name})"


class Graph:
    """Edges by market and adjacency by currency, over the markets given."""

    def __init__(self, markets: Iterable[Market]) -> None:
        self.markets: dict[str, Market] = {}
        self.edges: list[Edge] = []
        self.by_key: dict[str, tuple[Edge, Edge]] = {}  # key -> (buy edge, sell edge)
        self.adj: dict[str, list[Edge]] = {}
        for m in markets:
            if m.key in self.markets or m.base == m.quote:
                continue
            self.markets[m.key] = m
            buy = Edge(m, True, len(self.edges))
            sell = Edge(m, False, len(self.edges) + 1)
            self.edges += (buy, sell)
            self.by_key[m.key] = (buy, sell)
            for e in (buy, sell):
                self.adj.setdefault(e.src, []).append(e)

    @property
    def currencies(self) -> list[str]:
        return sorted(self.adj)

    def set_top(self, key: str, bid: float, ask: float) -> None:
        """Rewrite the two rates of market ``key`` from its top of book."""
        buy, sell = self.by_key[key]
        buy.rate = buy.mult / ask if ask > 0.0 else 0.0
        sell.rate = bid * sell.mult if bid > 0.0 else 0.0


def triangles(graph: Graph, starts: Iterable[str] | None = None) -> list[Cycle]:
    """Every 3-leg cycle over three distinct markets, each direction once.

    With ``starts``, the cycles through those currencies, rotated to begin there (a cycle
    through two start currencies appears once per start); otherwise each cycle once, rotated to
    begin at its smallest currency."""
    adj = graph.adj
    out: list[Cycle] = []
    if starts is None:
        origins = sorted(adj)
        canonical = True
    else:
        origins = [s for s in dict.fromkeys(starts) if s in adj]
        canonical = False
    for s in origins:
        for e1 in adj[s]:
            b = e1.dst
            if canonical and b < s:
                continue
            for e2 in adj.get(b, ()):
                c = e2.dst
                if c == s or e2.key == e1.key or (canonical and c < s):
                    continue
                for e3 in adj.get(c, ()):
                    if e3.dst == s and e3.key != e2.key and e3.key != e1.key:
                        out.append(Cycle((e1, e2, e3)))
    return out


def weight(rate: float) -> float:
    """-log of a rate; +inf when there is no price (the edge cannot be used)."""
    return -math.log(rate) if rate > 0.0 else math.inf


def negative_cycles(graph: Graph, max_legs: int = 6, eps: float = 1e-12) -> list[Cycle]:
    """Profitable cycles of any length up to ``max_legs``, by Bellman-Ford on ``-log(rate)``
    from a virtual source joined to every currency (every cycle is reachable).

    A relaxation that still succeeds after ``|V| - 1`` rounds lies on or leads to a negative
    cycle; walking predecessors from it finds the cycle. To report several independent ones the
    search repeats with the weakest edge of each cycle found excluded, until none is left (at
    most once per edge). A cycle longer than ``max_legs`` is not reported (its weakest edge is
    still excluded, which may hide a shorter cycle through that edge: the 3-leg cycles are
    enumerated exhaustively anyway, see :func:`triangles`).
    Each cycle is reported once, rotated to begin at its smallest currency, and only when its
    product of rates really exceeds ``1 + eps`` (rounding in the logs cannot report a loser).
    """
    edges = [e for e in graph.edges if e.rate > 0.0]
    found: dict[tuple[int, ...], Cycle] = {}
    excluded: set[int] = set()
    for _ in range(len(edges) + 1):
        cyc = _one_negative_cycle(graph, [e for e in edges if e.index not in excluded])
        if cyc is None:
            break
        if len(cyc) <= max_legs and _product(cyc) > 1.0 + eps:
            c = _canonical(cyc)
            found.setdefault(tuple(e.index for e in c), Cycle(c))
        # exclude the edge whose removal least disturbs other cycles: the worst rate of this one
        excluded.add(min(cyc, key=lambda e: e.rate).index)
    return list(found.values())


def _product(edges: Sequence[Edge]) -> float:
    r = 1.0
    for e in edges:
        r *= e.rate
    return r


def _canonical(edges: Sequence[Edge]) -> list[Edge]:
    i = min(range(len(edges)), key=lambda k: edges[k].src)
    return [*edges[i:], *edges[:i]]


def _one_negative_cycle(graph: Graph, edges: list[Edge]) -> list[Edge] | None:
    """One negative cycle among ``edges`` (Bellman-Ford), or None.

    A cycle in the predecessor graph is always a negative cycle, and shows up a few rounds after
    the relaxations reach it: it is looked for every ``CHECK_EVERY`` rounds (O(V)), so a cycle
    is found in about its length in rounds, not the ``|V|`` rounds the textbook version waits."""
    nodes = graph.currencies
    dist = dict.fromkeys(nodes, 0.0)  # the virtual source reaches every node at 0
    pred: dict[str, Edge | None] = dict.fromkeys(nodes)
    w = [(e, e.src, e.dst, weight(e.rate)) for e in edges]
    for r in range(1, len(nodes) + 1):
        changed = False
        for e, src, dst, we in w:
            d = dist[src] + we
            if d < dist[dst] - 1e-15:
                dist[dst] = d
                pred[dst] = e
                changed = True
        if not changed:
            return None
        if r % CHECK_EVERY == 0 or r == len(nodes):
            cyc = _pred_cycle(pred)
            if cyc is not None:
                return cyc
    return None


CHECK_EVERY = 4


def _pred_cycle(pred: dict[str, Edge | None]) -> list[Edge] | None:
    """A cycle of the predecessor graph (each node has at most one predecessor), or None."""
    state: dict[str, int] = {}  # 1: on the current walk, 2: done
    for start in pred:
        if start in state:
            continue
        walk: list[str] = []
        v: str | None = start
        while v is not None and v not in state:
            state[v] = 1
            walk.append(v)
            p = pred[v]
            v = p.src if p is not None else None
        if v is not None and state[v] == 1:  # closed a loop on this walk
            cycle: list[Edge] = []
            u = v
            while True:
                p = pred[u]
                assert p is not None
                cycle.append(p)
                u = p.src
                if u == v:
                    break
            cycle.reverse()
            return cycle
        for x in walk:
            state[x] = 2
    return None


def simple_cycles(graph: Graph, start: str, max_legs: int, limit: int = 10_000) -> list[Cycle]:
    """Every cycle through ``start`` of 2 < legs <= ``max_legs`` visiting no currency twice, by
    depth-first search (for reports, never the hot path; at most ``limit`` cycles)."""
    out: list[Cycle] = []
    path: list[Edge] = []
    seen = {start}

    def dfs(node: str) -> None:
        for e in graph.adj.get(node, ()):
            if len(out) >= limit:
                return
            if e.dst == start:
                if len(path) >= 2 and all(x.key != e.key for x in path):
                    out.append(Cycle([*path, e]))
                continue
            if e.dst in seen or len(path) + 1 >= max_legs:
                continue
            seen.add(e.dst)
            path.append(e)
            dfs(e.dst)
            path.pop()
            seen.discard(e.dst)

    if start in graph.adj:
        dfs(start)
    return out
