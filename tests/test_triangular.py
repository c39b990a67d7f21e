"""Triangular arbitrage on hand-made books, answers worked out by hand (issue 14)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cryptoarb.core.cycles import Graph, Market, negative_cycles, triangles
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.detect.triangular import CycleError, TriangularDetector, build_graph, no_cycle_reason
from tests.helpers import book


def inst(symbol: str, venue: str = "binance", tick: float = 0.01, lot: float = 0.0001, fee: float = 0.001,
         min_notional: float = 0.0, fee_side: str = "") -> Instrument:
    base, quote = symbol.split("/")
    return Instrument(venue, symbol, base, quote, Kind.SPOT, tick, lot, min_notional, 1.0, Fees(fee, fee),
                      base + quote, fee_side)


def detector(books, start="USDT", balance=D(1000), **kw):
    insts = [b.instrument for b in books]
    venue = insts[0].venue
    av = {(venue, start): balance}
    d = TriangularDetector(insts, [venue], start, available=av, min_profit_bps=kw.pop("bps", 0.0), **kw)
    for b in books:
        d.add_book(b)
    return d


def fire(d, books):
    out = []
    for b in books:
        out += d.on_book(b, 2_000) or []
    return out


# -- the graph -----------------------------------------------------------------------------
def test_three_markets_give_two_cycles_one_per_direction():
    g = Graph([Market("v BTC/USDT", "BTC", "USDT", 0.001), Market("v ETH/BTC", "ETH", "BTC", 0.001),
               Market("v ETH/USDT", "ETH", "USDT", 0.001)])
    cs = triangles(g, ["USDT"])
    names = sorted(c.name for c in cs)
    assert names == ["USDT > BTC > ETH > USDT", "USDT > ETH > BTC > USDT"]
    by = {c.name: c for c in cs}
    # orientation: USDT->BTC buys BTC/USDT, BTC->ETH buys ETH/BTC, ETH->USDT sells ETH/USDT
    assert [e.buy for e in by["USDT > BTC > ETH > USDT"].edges] == [True, True, False]
    assert [e.buy for e in by["USDT > ETH > BTC > USDT"].edges] == [True, False, False]
    # without starts: each cycle once, from its smallest currency
    assert sorted(c.name for c in triangles(g)) == ["BTC > ETH > USDT > BTC", "BTC > USDT > ETH > BTC"]


def test_markets_that_form_no_cycle_give_none_and_a_missing_start_is_named():
    a, b = inst("BTC/USDT"), inst("ETH/USDT")
    d = TriangularDetector([a, b], ["binance"], "USDT")
    assert d.cycle_count == 0 and d.on_book(book(a, [(1.0, 1)], [(2.0, 1)]), 1) is None
    with pytest.raises(CycleError, match="start currency 'EUR' is not listed"):
        TriangularDetector([a, b], ["binance"], "EUR")
    # a venue listing nothing yet (a capture's markets are discovered as it is read) grows
    d = TriangularDetector([a, b], ["kraken"], "USDT")
    assert no_cycle_reason(d.venues["kraken"].graph, "kraken", "USDT") == "kraken: no spot market to build cycles from"
    assert no_cycle_reason(build_graph([a, b], "binance"), "binance", "USDT") == (
        "binance: its markets (BTC/USDT, ETH/USDT) form no 3-leg cycle through USDT")
    for sym, bid, ask in (("BTC/USDT", 50_000.0, 50_001.0), ("ETH/USDT", 2_400.0, 2_401.0),
                          ("ETH/BTC", 0.0481, 0.04811)):
        d.add_book(book(inst(sym, venue="kraken"), [(bid, 1.0)], [(ask, 1.0)]))
    assert d.cycle_count == 2 and d.watches("kraken ETH/BTC")


# -- known answers ---------------------------------------------------------------------------
def trap_books():
    """USDT/EUR is quoted with the START currency as base (Bitstamp lists it so): the cycle
    USDT -> EUR -> BTC -> USDT must SELL USDT/EUR at its bid, not buy it."""
    ue = book(inst("USDT/EUR", tick=0.0001, lot=0.01), [(0.9, 10_000.0)], [(0.91, 10_000.0)])
    be = book(inst("BTC/EUR", lot=0.0001), [(39_000.0, 1.0)], [(40_000.0, 1.0)])
    bu = book(inst("BTC/USDT", lot=0.00001), [(46_000.0, 1.0)], [(46_100.0, 1.0)])
    return [ue, be, bu]


def test_orientation_trap_single_levels_by_hand():
    books = trap_books()
    d = detector(books, max_in=1000.0)
    opps = fire(d, books)
    assert opps, "the cycle pays 0.9 x 46000 / 40000 x 0.999^3 = 1.0319"
    o = opps[0]
    assert o.name == "USDT > EUR > BTC > USDT"
    assert [e.buy for e in o.cycle.edges] == [False, True, False]  # sell USDT/EUR, buy BTC/EUR, sell BTC/USDT
    # By hand: EUR is rounded to BTC lots of 0.0001 (4 EUR each), BTC to lots of 0.00001. The best
    # start is the smallest USDT amount whose EUR buys 0.0224 BTC (1000 USDT buys 0.02247 -> 0.0224):
    #   0.0224 BTC cost 896 EUR; EUR received = q x 0.9 x 0.999 >= 896 -> q >= 896 / 0.8991 = 996.5521.. -> 996.56 USDT
    #   received BTC = 0.0224 x 0.999 = 0.0223776 -> sell 0.02237 -> 1029.02 x 0.999 = 1028.99098 USDT
    leg1, leg2, leg3 = o.legs
    assert leg1.qty == D("996.56") and leg1.pay == D("996.56")
    assert leg1.receive == D("996.56") * D("0.9") * D("0.999")
    assert leg2.qty == D("0.0224") and leg2.pay == D("896.0000")
    assert leg3.qty == D("0.02237")
    assert o.amount_out == D("0.02237") * 46000 * D("0.999")
    assert o.profit == o.amount_out - D("996.56")
    assert o.dust == [leg1.receive - D("896"), D("0.0223776") - D("0.02237")]
    assert leg1.limit == D("0.9") and leg2.limit == D("40000") and leg3.limit == D("46000")


def test_the_reverse_direction_does_not_pay_and_fees_can_eat_the_edge():
    books = trap_books()
    d = detector(books)
    assert all(o.name == "USDT > EUR > BTC > USDT" for o in fire(d, books))
    # 3 x 1.1% fees eat the 3.5% edge: 1.035 x 0.989^3 = 1.0012 > 1; at 1.2%: 0.9981
    books = trap_books()
    for b in books:
        object.__setattr__(b.instrument, "fees", Fees(0.012, 0.012))
    assert fire(detector(books), books) == []


def test_fee_taken_in_quote_on_a_buy_is_paid_on_top():
    """Kraken takes fees in quote: buying BTC/EUR with 896 EUR of budget buys less than 0.0224."""
    ue = book(inst("USDT/EUR", venue="kraken", tick=0.0001, lot=0.01, fee=0.001), [(0.9, 10_000.0)], [(0.91, 1e4)])
    be = book(inst("BTC/EUR", venue="kraken", lot=0.0001, fee=0.001), [(39_000.0, 1.0)], [(40_000.0, 1.0)])
    bu = book(inst("BTC/USDT", venue="kraken", lot=0.00001, fee=0.001), [(46_000.0, 1.0)], [(46_100.0, 1.0)])
    books = [ue, be, bu]
    (o, *_) = fire(detector(books, max_in=1000.0), books)
    l1, l2, l3 = o.legs
    # sell USDT/EUR, fee in quote (EUR, received): 0.9 x q x 0.999; buy BTC/EUR, fee in EUR on top:
    # 0.0224 BTC needs 896 x 1.001 = 896.896 EUR -> q >= 896.896 / 0.8991 = 997.5486.. -> 997.55
    assert l2.qty == D("0.0224") and l2.pay == D("896") * D("1.001") and l2.receive == D("0.0224")
    assert l1.qty == D("997.55")
    assert l3.qty == D("0.0224") and o.amount_out == D("0.0224") * 46000 * D("0.999")


def test_depth_is_walked_and_min_notional_and_balance_bound_the_size():
    ue = book(inst("USDT/EUR", tick=0.0001, lot=0.01), [(0.9, 100.0), (0.8, 10_000.0)], [(0.91, 1e4)])
    be = book(inst("BTC/EUR", lot=0.0001), [(39_000.0, 1.0)], [(40_000.0, 1.0)])
    bu = book(inst("BTC/USDT", lot=0.00001), [(46_000.0, 1.0)], [(46_100.0, 1.0)])
    books = [ue, be, bu]
    (o,) = fire(detector(books, max_in=1000.0), books)
    # past 100 USDT the next USDT/EUR level pays 0.8 x 46000/40000 x 0.999^3 < 1: stop at the
    # first level; 100 USDT -> 89.91 EUR -> 0.0022 BTC (88 EUR, 97.88.. USDT start) -> 0.00219 BTC
    assert o.legs[0].qty == D("97.88") and o.legs[1].qty == D("0.0022") and o.legs[2].qty == D("0.00219")
    # no balance, no cycle
    assert fire(detector(trap_books(), balance=D(0)), trap_books()) == []
    # a min notional of 100 EUR on BTC/EUR: the 88 EUR leg is refused, 0.0025 BTC (100 EUR) still
    # pays on average (12.63 USDT sold at 0.8): 112.63 USDT in
    be2 = book(inst("BTC/EUR", lot=0.0001, min_notional=100.0), [(39_000.0, 1.0)], [(40_000.0, 1.0)])
    (o,) = fire(detector([ue, be2, bu], max_in=1000.0), [ue, be2, bu])
    assert o.legs[1].qty == D("0.0025") and o.legs[0].qty == D("112.63") and o.profit > 0
    # ... and at 1000 EUR it would need more than max_in: nothing
    be3 = book(inst("BTC/EUR", lot=0.0001, min_notional=1000.0), [(39_000.0, 1.0)], [(40_000.0, 1.0)])
    assert fire(detector([ue, be3, bu], max_in=1000.0), [ue, be3, bu]) == []


def test_zero_liquidity_leg_never_fires_nor_crashes():
    ue, be, bu = trap_books()
    empty = book(be.instrument, [(39_000.0, 1.0)], [])
    d = detector([ue, empty, bu])
    assert fire(d, [ue, empty, bu]) == []


def test_footprint_holds_what_a_cycle_takes_until_released():
    books = trap_books()
    d = detector(books, balance=D(10**6), max_in=1000.0)
    first = fire(d, books[:1])
    assert len(first) == 1
    # the same book again: the balance and liquidity already taken are not offered twice
    d.available[("binance", "USDT")] = D(10**6)
    again = d.on_book(books[0], 2_000) or []
    assert all(o.legs[0].qty <= D("996.56") for o in again)
    d.release(first[0])


def test_bellman_ford_finds_a_four_leg_cycle_the_triangles_miss():
    ms = [Market("v A/USDT", "A", "USDT", 0.0), Market("v B/A", "B", "A", 0.0), Market("v C/B", "C", "B", 0.0),
          Market("v C/USDT", "C", "USDT", 0.0)]
    g = Graph(ms)
    assert triangles(g, ["USDT"]) == []
    g.set_top("v A/USDT", 0.99, 1.0)
    g.set_top("v B/A", 0.99, 1.0)
    g.set_top("v C/B", 0.99, 1.0)
    g.set_top("v C/USDT", 1.02, 1.03)
    (c,) = negative_cycles(g, max_legs=4)
    assert c.name == "A > B > C > USDT > A" and c.rate() == pytest.approx(1.02)
    assert negative_cycles(g, max_legs=3) == []


def test_settings_name_what_is_wrong() -> None:
    from cryptoarb.config import ConfigError, load_settings
    from cryptoarb.demo.run import build_demo

    with pytest.raises(ConfigError, match="tri: binance: start currency 'XYZ' is not listed"):
        build_demo(load_settings(storage={"enabled": False}, tri={"venues": ["binance"], "start": "XYZ"}))
    with pytest.raises(ConfigError, match=r"tri.venues: none of \['gemini'\] is a venue of this run"):
        build_demo(load_settings(storage={"enabled": False}, tri={"venues": ["gemini"]}))
    with pytest.raises(ConfigError, match="mode"):
        load_settings(tri={"mode": "parallel"})
