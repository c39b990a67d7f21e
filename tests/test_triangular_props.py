"""Triangular detection and sizing against the brute-force exact reference (tests/cycleref.py),
and Bellman-Ford against an enumeration of every simple cycle, on random small market graphs."""

from __future__ import annotations

import math
from decimal import Decimal as D
from itertools import permutations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptoarb.core.cycles import Graph, Market, negative_cycles
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.detect.triangular import TriangularDetector
from tests import cycleref as ref
from tests.helpers import book

CCYS = ("USDT", "BTC", "ETH", "XRP")
VALUE = {"USDT": D(1), "BTC": D(40), "ETH": D(2), "XRP": D("0.5")}  # rough worth, in USDT


@st.composite
def venue(draw):  # type: ignore[no-untyped-def]
    """Markets on one venue (a random subset of the pairs, random orientation) with 1-3 levels
    a side, prices near a consistent cross but noisy enough for cycles to pay."""
    kraken = draw(st.booleans())  # Kraken takes every fee in quote; Binance from what is received
    fee = draw(st.sampled_from([0.0, 0.0005, 0.001, 0.0075]))
    pairs = [(a, b) for i, a in enumerate(CCYS) for b in CCYS[i + 1:]]
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=3, max_size=6, unique=True))
    markets = []
    for a, b in chosen:
        base, quote = (a, b) if draw(st.booleans()) else (b, a)
        fair = VALUE[base] / VALUE[quote] * D(draw(st.integers(920, 1080))) / 1000
        tick = D(10) ** (math.floor(math.log10(fair)) - 3)
        lot = draw(st.sampled_from([D("0.01"), D("0.1"), D(1)])) if VALUE[base] < 10 else D("0.001")
        mid = (fair / tick).to_integral_value()
        spread = draw(st.integers(1, 20))
        bids, asks = [], []
        for i in range(draw(st.integers(1, 3))):
            bids.append((float((mid - spread - 5 * i) * tick), float(lot * draw(st.integers(1, 40)))))
        for i in range(draw(st.integers(0 if draw(st.booleans()) else 1, 3))):
            asks.append((float((mid + spread + 5 * i) * tick), float(lot * draw(st.integers(1, 40)))))
        min_notional = draw(st.sampled_from([0.0, 0.0, float(lot * 3 * fair)]))
        markets.append((base, quote, float(tick), float(lot), min_notional, bids, asks))
    balance = D(draw(st.integers(1, 400)))
    return ("kraken" if kraken else "binance"), fee, markets, balance


def build(v):  # type: ignore[no-untyped-def]
    name, fee, markets, balance = v
    books, refs = [], {}
    for base, quote, tick, lot, mn, bids, asks in markets:
        inst = Instrument(name, f"{base}/{quote}", base, quote, Kind.SPOT, tick, lot, mn, 1.0, Fees(fee, fee),
                          base + quote)
        books.append(book(inst, bids, asks))
        refs[inst.key] = ref.RefMarket(
            inst.key, base, quote, tuple((D(repr(p)), D(repr(q))) for p, q in bids),
            tuple((D(repr(p)), D(repr(q))) for p, q in asks), D(repr(lot)), D(repr(tick)), D(repr(fee)),
            name == "kraken", D(repr(mn)))
    return books, refs, balance


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(venue())
def test_same_cycles_profits_and_sizes_as_the_brute_force_reference(v) -> None:  # type: ignore[no-untyped-def]
    books, refs, balance = build(v)
    venue_ = books[0].instrument.venue
    if "USDT" not in {c for b in books for c in (b.instrument.base, b.instrument.quote)}:
        return
    insts = [b.instrument for b in books]
    d = TriangularDetector(insts, [venue_], "USDT", min_profit_bps=0.0, max_in=1_000.0,
                           available={(venue_, "USDT"): balance})
    for b in books:
        d.add_book(b)
    expected = {c: ref.best(refs, c, balance, D(1000), D(0), 130) for c in ref.cycles(list(refs.values()), "USDT")}
    mine = {tuple((e.key, e.buy) for e in c.edges): c for c in d.venues[venue_].cycles}
    assert set(mine) == set(expected)  # the same cycles, both directions, orientation included
    for key, cyc in mine.items():
        got = d.plan(venue_, cyc, 2_000)
        want = expected[key]
        if want is None:
            assert got is None, (cyc, got[0].profit if got else None)
            continue
        assert got is not None, (cyc, want)
        plan = got[0]
        _n, paid, profit, qtys = want
        assert (plan.amount_in, plan.profit) == (paid, profit), cyc
        assert [f.qty for f in plan.legs] == qtys, cyc
    # the hot path's O(1) check on the tops lets every profitable cycle through to sizing, and a
    # book change fires the best cycle through the changed market (sized as above)
    for key, want in expected.items():
        if want is not None:
            assert mine[key].rate() > d.thr, mine[key]
    for b in books:
        d2 = TriangularDetector(insts, [venue_], "USDT", min_profit_bps=0.0, max_in=1_000.0,
                                available={(venue_, "USDT"): balance})
        for b2 in books:
            d2.add_book(b2)
        through = [k for k, w in expected.items() if w is not None and any(m == b.key for m, _ in k)]
        fired = d2.on_book(b, 2_000) or []
        assert bool(fired) == bool(through)
        if fired:
            assert tuple((e.key, e.buy) for e in fired[0].cycle.edges) in through


@st.composite
def rates(draw):  # type: ignore[no-untyped-def]
    ccys = CCYS[: draw(st.integers(3, 4))]
    ms, tops = [], {}
    for i, a in enumerate(ccys):
        for b in ccys[i + 1:]:
            if draw(st.booleans()):
                key = f"v {a}/{b}"
                ms.append(Market(key, a, b, draw(st.sampled_from([0.0, 0.001]))))
                fair = float(VALUE[a] / VALUE[b])
                bid = fair * draw(st.floats(0.95, 1.04))
                tops[key] = (bid, bid * draw(st.floats(1.0, 1.02)))
    return ms, tops


def _simple_cycles(g: Graph) -> list[list]:  # type: ignore[type-arg]
    out = []
    nodes = g.currencies
    for k in range(2, len(nodes) + 1):
        for path in permutations(nodes, k):
            if path[0] != min(path):
                continue
            choices = [[e for e in g.adj[path[i]] if e.dst == path[(i + 1) % k]] for i in range(k)]
            stack: list[list] = [[]]  # type: ignore[type-arg]
            for c in choices:
                stack = [[*s, e] for s in stack for e in c if e.key not in {x.key for x in s}]
            out += stack
    return out


@settings(max_examples=150, deadline=None)
@given(rates())
def test_bellman_ford_finds_a_profitable_cycle_iff_one_exists(r) -> None:  # type: ignore[no-untyped-def]
    ms, tops = r
    g = Graph(ms)
    for key, (bid, ask) in tops.items():
        g.set_top(key, bid, ask)
    brute = [c for c in _simple_cycles(g) if math.prod(e.rate for e in c) > 1.0 + 1e-12]
    found = negative_cycles(g, max_legs=len(g.currencies))
    assert bool(found) == bool(brute)
    for c in found:
        assert c.rate() > 1.0
        assert c.edges[-1].dst == c.start and all(a.dst == b.src for a, b in zip(c.edges, c.edges[1:], strict=False))
        assert len(set(c.keys)) == len(c.keys)
