"""The cross-venue detector on hand-made books with answers worked out by hand."""

from __future__ import annotations

import pytest

from cryptoarb.core.book import INVALID
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.detect.cross_venue import CrossVenueDetector, Limits
from cryptoarb.detect.groups import Group, GroupError, auto_groups, explicit_groups
from tests.helpers import book, spot

RICH = {("a", "USDT"): 1e9, ("a", "BTC"): 1e9, ("b", "USDT"): 1e9, ("b", "BTC"): 1e9}


def detector(books, limits=Limits(min_profit_bps=0.0), available=None):
    g = Group("BTC/USDT", "spot", tuple(b.key for b in books))
    d = CrossVenueDetector([g], limits, dict(RICH) if available is None else available)
    for b in books:
        d.add_book(b)
    return d


def test_single_level_profit_net_of_both_fees():
    a = book(spot("a"), [(99.0, 5)], [(100.0, 1.0)])
    b = book(spot("b"), [(101.0, 1.0)], [(102.0, 5)])
    opps = detector([a, b]).on_book(a, 2_000)
    assert opps is not None and len(opps) == 1
    o = opps[0]
    assert (o.buy_key, o.sell_key) == ("a BTC/USDT", "b BTC/USDT")
    assert o.qty_base == pytest.approx(1.0)
    # buy 1 @100 + 0.1 fee = 100.1 ; sell 1 @101 - 0.101 fee = 100.899
    assert o.cost_quote == pytest.approx(100.1)
    assert o.fees_quote == pytest.approx(0.201)
    assert o.profit_quote == pytest.approx(0.799)
    assert o.profit_bps == pytest.approx(0.799 / 100.1 * 1e4)
    assert o.buy.side == "buy" and o.buy.qty == pytest.approx(1.0) and o.buy.limit_price == 100.0
    assert o.sell.side == "sell" and o.sell.limit_price == 101.0


def test_depth_walk_stops_where_marginal_unit_stops_paying():
    a = book(spot("a", taker=0.0), [(90.0, 5)], [(100.0, 1.0), (100.5, 2.0), (102.0, 5.0)])
    b = book(spot("b", taker=0.0), [(101.5, 1.5), (101.0, 1.0), (99.0, 5.0)], [(110.0, 1)])
    (o,) = detector([a, b]).on_book(b, 2_000)
    # 1 @100 vs 101.5, 0.5 @100.5 vs 101.5, 1 @100.5 vs 101; then 100.5 vs 99 stops
    assert o.qty_base == pytest.approx(2.5)
    assert o.buy_vwap == pytest.approx((100 + 1.5 * 100.5) / 2.5)
    assert o.sell_vwap == pytest.approx((1.5 * 101.5 + 101) / 2.5)
    assert o.profit_quote == pytest.approx(253.25 - 250.75)
    assert o.buy.limit_price == 100.5 and o.sell.limit_price == 101.0


def test_both_directions_are_evaluated():
    a = book(spot("a", taker=0.0), [(103.0, 1.0)], [(104.0, 1.0)])
    b = book(spot("b", taker=0.0), [(101.0, 1.0)], [(102.0, 1.0)])
    (o,) = detector([a, b]).on_book(a, 2_000)
    assert (o.buy_key, o.sell_key) == ("b BTC/USDT", "a BTC/USDT")
    assert o.profit_quote == pytest.approx(1.0)


def test_fees_that_eat_the_spread_mean_no_opportunity():
    a = book(spot("a", taker=0.001), [(99.0, 5)], [(100.0, 1.0)])
    b = book(spot("b", taker=0.001), [(100.15, 1.0)], [(102.0, 5)])  # 15 bps gross < 20 bps fees
    assert detector([a, b]).on_book(a, 2_000) is None


def test_threshold_in_bps_applies_to_the_net_edge():
    a = book(spot("a", taker=0.0), [(99.0, 5)], [(100.0, 1.0)])
    b = book(spot("b", taker=0.0), [(100.05, 1.0)], [(102.0, 5)])  # 5 bps net
    assert detector([a, b], Limits(min_profit_bps=6.0)).on_book(a, 2_000) is None
    assert detector([a, b], Limits(min_profit_bps=4.0)).on_book(a, 2_000) is not None


def test_max_notional_caps_size_and_lot_rounding_rounds_down():
    a = book(spot("a", taker=0.0, lot=0.01), [(99.0, 5)], [(100.0, 10.0)])
    b = book(spot("b", taker=0.0, lot=0.01), [(101.0, 10.0)], [(102.0, 5)])
    (o,) = detector([a, b], Limits(min_profit_bps=0.0, max_notional_quote=255.0)).on_book(a, 2_000)
    assert o.qty_base == pytest.approx(2.55)
    assert o.cost_quote <= 255.0 + 1e-9


def test_balances_cap_size_and_no_balance_no_opportunity():
    a = book(spot("a", taker=0.0), [(99.0, 5)], [(100.0, 10.0)])
    b = book(spot("b", taker=0.0), [(101.0, 10.0)], [(102.0, 5)])
    avail = {("a", "USDT"): 1e9, ("b", "BTC"): 0.3}
    (o,) = detector([a, b], available=avail).on_book(a, 2_000)
    assert o.qty_base == pytest.approx(0.3)
    avail2 = {("a", "USDT"): 150.0, ("b", "BTC"): 10.0}
    (o,) = detector([a, b], available=avail2).on_book(a, 2_000)
    assert o.qty_base == pytest.approx(1.5)
    assert detector([a, b], available={("a", "USDT"): 1e9}).on_book(a, 2_000) is None


def test_min_notional_refuses_dust():
    a = book(spot("a", taker=0.0, min_notional=5.0), [(99.0, 5)], [(100.0, 0.01)])
    b = book(spot("b", taker=0.0, min_notional=5.0), [(101.0, 1.0)], [(102.0, 5)])
    assert detector([a, b]).on_book(a, 2_000) is None


def test_invalid_or_stale_peer_is_never_compared():
    a = book(spot("a", taker=0.0), [(99.0, 5)], [(100.0, 1.0)])
    b = book(spot("b", taker=0.0), [(101.0, 1.0)], [(102.0, 5)], local_ns=1_000)
    d = detector([a, b], Limits(min_profit_bps=0.0, max_quote_age_ns=5_000))
    b.set_state(INVALID)
    assert d.on_book(a, 2_000) is None
    b.set_state(2)
    assert d.on_book(a, 2_000) is not None
    assert d.on_book(a, 1_000 + 5_001) is None  # b is older than max_quote_age


def test_books_outside_the_group_are_not_compared():
    a = book(spot("a", taker=0.0), [(99.0, 5)], [(100.0, 1.0)])
    b = book(spot("b", taker=0.0), [(101.0, 1.0)], [(102.0, 5)])
    d = CrossVenueDetector([Group("g", "spot", (a.key, "c BTC/USDT"))], Limits(min_profit_bps=0.0), dict(RICH))
    d.add_book(a)
    d.add_book(b)
    assert d.on_book(a, 2_000) is None and not d.watches(b.key)


def inverse(venue: str = "c", cs: float = 100.0) -> Instrument:
    return Instrument(venue, "BTC/USD:BTC", "BTC", "USD", Kind.INVERSE, 0.1, 1.0, 0.0, cs,
                      Fees(0.0, 0.0), "BTCUSD_PERP")


def test_inverse_contracts_are_converted_to_base_units():
    a = book(spot("a", taker=0.0), [(59000.0, 5)], [(60000.0, 1.0)])
    c = book(inverse(), [(60600.0, 303.0)], [(61000.0, 100)])  # 303 contracts x 100 USD = 0.5 BTC
    d = CrossVenueDetector([Group("g", "basis", (a.key, c.key))],
                           Limits(min_profit_bps=0.0, max_notional_quote=1e9), {("a", "USDT"): 1e9})
    d.add_book(a)
    d.add_book(c)
    (o,) = d.on_book(c, 2_000)
    assert o.buy_key == a.key and o.sell_key == c.key
    assert o.sell.qty == 303.0  # whole contracts
    assert o.qty_base == pytest.approx(0.5, rel=1e-9)
    assert o.buy.qty == pytest.approx(0.5)  # base units on the spot leg
    # profit: 0.5 BTC x (60600 - 60000) USD
    assert o.profit_quote == pytest.approx(300.0, rel=1e-6)


def test_inverse_leg_rounds_to_whole_contracts_and_spot_leg_follows():
    a = book(spot("a", taker=0.0), [(59000.0, 5)], [(60000.0, 1.0)])
    c = book(inverse(), [(60600.0, 303.0)], [(61000.0, 100)])
    d = CrossVenueDetector([Group("g", "basis", (a.key, c.key))], Limits(min_profit_bps=0.0),
                           {("a", "USDT"): 1e9})  # default max notional 10,000 USDT
    d.add_book(a)
    d.add_book(c)
    (o,) = d.on_book(c, 2_000)
    # 10,000 / 60,000 = 0.1666 BTC -> 0.166 (spot lot) -> 100 contracts (0.16502 BTC) -> spot 0.165
    assert o.sell.qty == 100.0
    assert o.buy.qty == pytest.approx(0.165)
    assert o.cost_quote <= 10_000


def test_groups_refuse_an_inverse_contract_without_a_declared_quote_equivalent():
    insts = [spot("a"), spot("b"), inverse()]
    plan = auto_groups(insts)
    assert [g.label for g in plan.groups] == ["spot"]
    assert "quote USD is not USDT" in plan.refused["c BTC/USD:BTC"]
    plan = auto_groups(insts, equivalents=[{"USD", "USDT"}])
    assert any("c BTC/USD:BTC" in g.members and g.label == "basis" for g in plan.groups)
    assert not plan.refused


def test_explicit_groups_name_what_is_wrong():
    by_key = {i.key: i for i in (spot("a"), spot("b"), inverse(), spot("e", symbol="ETH/USDT"))}
    with pytest.raises(GroupError, match="unknown instrument 'x BTC/USDT'"):
        explicit_groups([{"name": "g", "members": ["a BTC/USDT", "x BTC/USDT"]}], by_key, [])
    with pytest.raises(GroupError, match="base ETH is not BTC"):
        explicit_groups([{"name": "g", "members": ["a BTC/USDT", "e ETH/USDT"]}], by_key, [])
    with pytest.raises(GroupError, match="quote_equivalents"):
        explicit_groups([{"name": "g", "members": ["a BTC/USDT", "c BTC/USD:BTC"]}], by_key, [])
    plan = explicit_groups([{"name": "g", "members": ["a BTC/USDT", "c BTC/USD:BTC"]}], by_key,
                           [{"USD", "USDT"}])
    assert plan.groups[0].label == "basis"
