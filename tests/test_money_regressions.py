"""Regression tests for the reproductions of issue 7 ("Money you can trust"), with its numbers.

Each test is the issue's reproduction driven through the code path it names (the engine with
simulated venues for the footprint items, the detector and the executor for sizing, the
portfolio and settlement for inverse accounting). Expected values are worked out by hand in
exact fractions in the docstrings.
"""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

import msgspec
import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.accounting import Portfolio, settle_arb
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.core.orders import ArbStatus, ArbTrade, Fill, Order, OrderStatus
from cryptoarb.detect.cross_venue import CrossVenueDetector, Limits
from cryptoarb.detect.groups import Group
from cryptoarb.engine import Engine
from cryptoarb.execution.arb import ArbExecutor, ExecConfig
from cryptoarb.execution.paper import PaperVenue
from cryptoarb.venues.catalog import Catalog
from cryptoarb.venues.simulated import simulated_handler_factory
from tests import exactref as ref
from tests.helpers import book

MS = 1_000_000


def xq(venue: str, fee: float = 0.0, lot: float = 0.001, tick: float = 0.1, fee_side: str = "quote") -> Instrument:
    """Spot X/Q on ``venue``; fees in quote (the issue's numbers) unless ``fee_side`` says otherwise."""
    return Instrument(venue, "X/Q", "X", "Q", Kind.SPOT, tick, lot, 0.0, 1.0, Fees(fee, fee), "XQ", fee_side)


# -- item 1: the detector's own footprint (engine path, simulated venues) -----------------------
def engine(venues: list[str], balances: dict[str, dict[str, str]]) -> Engine:
    """Zero fees, 1 ms latency to every venue, no storage."""
    insts = [xq(v) for v in venues]
    settings = load_settings(storage={"enabled": False},
                             paper={"default_latency_ms": 1.0, "balances": balances})
    return Engine(settings, venues, catalog=Catalog(insts), handler_factory=simulated_handler_factory,
                  instruments=insts)


def send(e: Engine, venue: str, kind: str, seq: int, t_ms: int, bids: list[list[float]],
         asks: list[list[float]]) -> None:
    raw = msgspec.json.encode({"type": kind, "symbol": "X/Q", "seq": seq, "ts": t_ms * MS, "bids": bids,
                               "asks": asks})
    e.on_message(e.handler(venue), raw, t_ms * MS)


def finish(e: Engine) -> list[ArbTrade]:
    e.tick(10_000 * MS)
    e.finish()
    assert all(t.status is not ArbStatus.PENDING for t in e.executor.trades)
    return e.executor.trades


def test_item1a_no_second_trade_into_a_level_our_fill_consumed() -> None:
    """a asks 100.0x10, b bids 101.0x10: trade 1 buys and sells 10 (complete). a republishes
    its ask while b has not published since our fill: b's 10 at 101 are gone (ours), so there
    is nothing to sell into and no second trade; nothing may be left unhedged."""
    e = engine(["a", "b"], {"a": {"Q": "5000"}, "b": {"X": "50"}})
    send(e, "a", "snapshot", 1, 1, [[99.0, 10]], [[100.0, 10]])
    send(e, "b", "snapshot", 1, 2, [[101.0, 10]], [[102.0, 10]])  # trade 1, orders arrive at 3 ms
    send(e, "a", "l2update", 2, 5, [], [[100.0, 10]])  # fills delivered first, then a republishes
    trades = finish(e)
    assert trades[0].status is ArbStatus.COMPLETE and trades[0].matched_qty_base == 10
    assert [t.unhedged_qty_base for t in trades] == [0] * len(trades)
    assert len(trades) == 1


def test_item1b_opportunities_of_one_message_share_the_balance() -> None:
    """a holds 600 Q and asks 100x100; b and c each bid 101x10 and hold 10 X. One update of a
    finds both sales, but 600 Q buy 6 X once: the second opportunity must be sized on what is
    left (nothing), not on the same 600 Q (whose buy is then rejected while its sell fills)."""
    e = engine(["a", "b", "c"], {"a": {"Q": "600"}, "b": {"X": "10"}, "c": {"X": "10"}})
    send(e, "b", "snapshot", 1, 1, [[101.0, 10]], [[102.0, 10]])
    send(e, "c", "snapshot", 1, 1, [[101.0, 10]], [[102.0, 10]])
    send(e, "a", "snapshot", 1, 2, [[99.0, 10]], [[100.0, 100]])
    trades = finish(e)
    assert all(t.buy_order.status is not OrderStatus.REJECTED for t in trades), [t.buy_order.reason for t in trades]
    assert [t.unhedged_qty_base for t in trades] == [0] * len(trades)
    assert sum((t.matched_qty_base for t in trades), D(0)) == 6


def test_item1c_one_displayed_level_is_sized_once() -> None:
    """a asks 100x10 (then 110x100, unprofitable) with ample Q; b and c bid 101x10 with 10 X
    each. One update of a: the 10 at 100 can be bought once; a second opportunity sized on the
    same level gets nothing on arrival while its sell fills (-10 X unhedged)."""
    e = engine(["a", "b", "c"], {"a": {"Q": "5000"}, "b": {"X": "10"}, "c": {"X": "10"}})
    send(e, "b", "snapshot", 1, 1, [[101.0, 10]], [[102.0, 10]])
    send(e, "c", "snapshot", 1, 1, [[101.0, 10]], [[102.0, 10]])
    send(e, "a", "snapshot", 1, 2, [[99.0, 10]], [[100.0, 10], [110.0, 100]])
    trades = finish(e)
    assert [t.unhedged_qty_base for t in trades] == [0] * len(trades)
    assert sum((t.matched_qty_base for t in trades), D(0)) == 10


# -- item 2: sizing must follow the venue's balance check -----------------------------------------
def item2_detector(fee_side: str = "quote") -> tuple[CrossVenueDetector, list]:
    a = book(xq("a", fee=0.001, fee_side=fee_side), [(99.0, 5.0)], [(100.0, 5.0), (100.5, 5.0)])
    b = book(xq("b", fee=0.001, fee_side=fee_side), [(101.5, 20.0)], [(103.0, 5.0)])
    d = CrossVenueDetector([Group("X/Q", "spot", (a.key, b.key))], Limits(min_profit_bps=0.0),
                           {("a", "Q"): 700.0, ("b", "X"): 100.0})
    d.add_book(a)
    d.add_book(b)
    return d, [a, b]


def test_item2_reference_numbers() -> None:
    """The exact reference reproduces the issue's expected answer: 6.958 X for +8.055 Q.

    6.958 x 100.5 x 1.001 = 699.978279 <= 700 < 700.078... = 6.959 x 100.5 x 1.001;
    profit = 6.958 x 101.5 x 0.999 - (500 + 1.958 x 100.5) x 1.001 = 8.054984."""
    m = lambda levels: tuple((D(p), D(q)) for p, q in levels)  # noqa: E731
    ma = ref.Market(m([("100.0", "5"), ("100.5", "5")]), D("0.001"), D("0.1"), D("0.001"))
    mb = ref.Market(m([("101.5", "20")]), D("0.001"), D("0.1"), D("0.001"))
    best = ref.Reference(ma, mb).solve(ref.Limits(quote_balance=D(700), base_balance=D(100))).best
    assert best is not None
    assert best.base == D("6.958") and best.profit == D("8.054984")
    assert ref.buy_reserve(D("6.958"), D("100.5"), D("0.001")) == D("699.978279")
    assert ref.buy_reserve(D("6.959"), D("100.5"), D("0.001")) > 700


def test_item2_buy_leg_is_sized_by_the_venues_balance_rule() -> None:
    """fee 0.1 %, lot 0.001, 700 Q; asks 100.0x5, 100.5x5; the other venue bids 101.5x20 and
    holds 100 X. Expected 6.958 X for +8.054984 Q (today: 6.983, whose buy needs 702.49)."""
    d, (a, _b) = item2_detector()
    (o,) = d.on_book(a, 2_000)
    assert D(repr(o.buy.qty)) == D("6.958") and D(repr(o.sell.qty)) == D("6.958")
    assert o.profit_quote == pytest.approx(8.054984, rel=1e-9)


def test_item2_fee_in_the_received_coin_locks_qty_x_limit_only() -> None:
    """Where the buy's fee is taken from the X received (Binance's default, fee side "get"), the
    venue locks 6.965 x 100.5 = 699.9825 <= 700 < 700.083 = 6.966 x 100.5: the detector sizes 6.965."""
    d, (a, _b) = item2_detector("get")
    (o,) = d.on_book(a, 2_000)
    assert D(repr(o.buy.qty)) == D("6.965") and D(repr(o.sell.qty)) == D("6.965")


@pytest.mark.parametrize("fee_side", ["quote", "get"])
def test_item2_executor_fills_both_legs_of_what_the_detector_sized(fee_side: str) -> None:
    """The same market through the executor and paper venues: both legs fill, nothing unhedged."""
    d, (a, b) = item2_detector(fee_side)
    (o,) = d.on_book(a, 2_000)
    pf = Portfolio()
    pf.deposit("a", "Q", D(700))
    pf.deposit("b", "X", D(100))
    ex = ArbExecutor(pf, {"a": PaperVenue("a", pf), "b": PaperVenue("b", pf)}, {a.key: a, b.key: b}.get,
                     ExecConfig(default_latency_ns=1_000), run_id="t")
    trade = ex.submit(o, 2_000)
    assert trade is not None
    ex.drain()
    assert trade.buy_order.status is OrderStatus.FILLED, trade.buy_order.reason
    assert trade.status is ArbStatus.COMPLETE
    # a fee taken in the X received is X we no longer hold: the only residual, declared as exposure
    fee_in_base = trade.buy_order.fee if trade.buy_order.fee_currency == "X" else D(0)
    assert trade.unhedged_qty_base == -fee_in_base
    assert (fee_in_base > 0) is (fee_side == "get")


# -- item 4: inverse (coin-margined) accounting -------------------------------------------------
def inverse_inst(fee: float = 0.0) -> Instrument:
    return Instrument("c", "BTC/USD:BTC", "BTC", "USD", Kind.INVERSE, 0.1, 1.0, 0.0, 100.0, Fees(fee, fee),
                      "BTCUSD_PERP")


def fill(side: str, price: str, qty: str, oid: str = "o") -> Fill:
    return Fill(oid, "c", "BTC/USD:BTC", side, D(price), D(qty), D(0), "BTC", 0)


def test_item4_inverse_round_trip_balance() -> None:
    """Deposit 1 BTC; buy 600 contracts of 100 USD at 50,000, sell them at 60,000, no fees.
    A long of 60,000 USD: 60,000 x (1/50,000 - 1/60,000) = 1.2 - 1.0 = +0.2 BTC -> 1.2 BTC."""
    inst = inverse_inst()
    pf = Portfolio()
    pf.deposit("c", "BTC", D(1))
    pf.apply_fill(inst, fill("buy", "50000", "600"))
    pf.apply_fill(inst, fill("sell", "60000", "600"))
    assert pf.positions["c"]["BTC/USD:BTC"] == 0
    assert pf.balance("c", "BTC") == D("1.2")


def test_item4_linear_round_trip_balance_is_right() -> None:
    """The linear counterpart is right today: +1 BTC/USDT:USDT at 50,000, out at 60,000 -> +10,000."""
    inst = Instrument("l", "BTC/USDT:USDT", "BTC", "USDT", Kind.LINEAR, 0.1, 0.001, 0.0, 1.0, Fees(0.0, 0.0),
                      "BTCUSDT")
    pf = Portfolio()
    pf.deposit("l", "USDT", D(1000))
    for side, price in (("buy", "50000"), ("sell", "60000")):
        pf.apply_fill(inst, Fill("o", "l", inst.symbol, side, D(price), D(1), D(0), "USDT", 0))
    assert pf.positions["l"]["BTC/USDT:USDT"] == 0
    assert pf.balance("l", "USDT") == D(11_000)


def test_item4_inverse_leg_converts_to_base_per_fill() -> None:
    """Buy 1 BTC spot at 50,000; sell 500 inverse contracts (100 USD) as 250 @ 50,500 and 250 @
    51,500. Base sold = 25,000/50,500 + 25,000/51,500 (per fill, not 50,000 / 51,000), all of
    it matched; realised = 50,000 USD received - 50,000 x base sold paid for it (no fees)."""
    spot = Instrument("a", "BTC/USD", "BTC", "USD", Kind.SPOT, 0.01, 0.00001, 0.0, 1.0, Fees(0.0, 0.0), "BTCUSD",
                      "quote")
    inv = inverse_inst()
    pf = Portfolio("USD", frozenset({"USD"}))  # a trade's realised PnL is what its fills closed in the ledger
    pf.deposit("a", "USD", D(100_000))
    pf.deposit("c", "BTC", D(2))
    buy = Order("b", "a", "BTC/USD", "buy", D(1), D(50000), D(50000), 0)
    buy.transition(OrderStatus.SUBMITTED, 0)
    f = Fill("b", "a", "BTC/USD", "buy", D(50000), D(1), D(0), "USD", 0)
    pf.apply_fill(spot, f)
    buy.add_fill(f)
    sell = Order("s", "c", "BTC/USD:BTC", "sell", D(500), D(50500), D(51000), 0)
    sell.transition(OrderStatus.SUBMITTED, 0)
    for px in ("50500", "51500"):
        f = fill("sell", px, "250", "s")
        pf.apply_fill(inv, f)
        sell.add_fill(f)
    trade = ArbTrade(1, 1, "g", buy, sell, D(0), D(1), 0)
    settle_arb(trade, spot, inv, 1)
    sold = Fraction(25_000, 50_500) + Fraction(25_000, 51_500)
    assert abs(Fraction(trade.matched_qty_base) - sold) < Fraction(1, 10**20)
    assert trade.unhedged_qty_base == D(1) - trade.matched_qty_base


# -- item 5: lot rounding exact, both legs the same base -----------------------------------------
def lotted(lot: float) -> Instrument:
    return Instrument("a", "X/Q", "X", "Q", Kind.SPOT, 0.0001, lot, 0.0, 1.0, Fees(0.0, 0.0), "XQ", "quote")


def test_item5_round_qty_decimal_lot_exact() -> None:
    q = lotted(0.1).round_qty(22900.1)
    assert D(str(q)) == D("22900.1") and D(str(q)) % D("0.1") == 0


def test_item5_round_qty_does_not_lose_a_lot() -> None:
    q = lotted(0.0001).round_qty(3299.816)
    assert D(str(q)) == D("3299.816")


def test_item5_integer_lots_both_legs_one_base_quantity() -> None:
    """Buy lot 20, sell lot 30, zero fees, asks 1.0x1000 vs bids 1.1x1000, max notional 165:
    the largest common multiple of 20 and 30 within 165 Q is 120 (today: buy 140, sell 150)."""
    a = book(Instrument("a", "X/Q", "X", "Q", Kind.SPOT, 0.1, 20.0, 0.0, 1.0, Fees(0.0, 0.0), "XQ", "quote"),
             [(0.9, 1000.0)], [(1.0, 1000.0)])
    b = book(Instrument("b", "X/Q", "X", "Q", Kind.SPOT, 0.1, 30.0, 0.0, 1.0, Fees(0.0, 0.0), "XQ", "quote"),
             [(1.1, 1000.0)], [(1.2, 1000.0)])
    d = CrossVenueDetector([Group("X/Q", "spot", (a.key, b.key))],
                           Limits(min_profit_bps=0.0, max_notional_quote=165.0), {("a", "Q"): 1e9, ("b", "X"): 1e9})
    d.add_book(a)
    d.add_book(b)
    (o,) = d.on_book(a, 2_000)
    assert (o.buy.qty, o.sell.qty) == (120.0, 120.0)
    assert o.profit_quote == pytest.approx(12.0)


# -- item 6: maximise net profit under the whole-size threshold ---------------------------------
def item6(min_notional: float) -> tuple[CrossVenueDetector, object]:
    """Zero fees, lot 0.001, min_profit_bps 50: asks 100x1 then 101.8x10, bids 102x11."""
    inst = Instrument("a", "X/Q", "X", "Q", Kind.SPOT, 0.1, 0.001, min_notional, 1.0, Fees(0.0, 0.0), "XQ", "quote")
    a = book(inst, [(99.0, 1.0)], [(100.0, 1.0), (101.8, 10.0)])
    b = book(xq("b"), [(102.0, 11.0)], [(103.0, 1.0)])
    d = CrossVenueDetector([Group("X/Q", "spot", (a.key, b.key))], Limits(min_profit_bps=50.0),
                           {("a", "Q"): 1e9, ("b", "X"): 1e9})
    d.add_book(a)
    d.add_book(b)
    return d, a


def test_item6_reference_numbers() -> None:
    """Whole-size rule: profit(1 + x) = 2 + 0.2x, cost = 100 + 101.8x, and
    (2 + 0.2x) x 1e4 >= 50 x (100 + 101.8x)  <=>  x <= 15000/3090 = 4.854...; so 5.854 X for
    +2.9708 Q (50.0019 bps), where the marginal cut-off at 50 bps stops at 1 X for +2."""
    ma = ref.Market(((D(100), D(1)), (D("101.8"), D(10))), D("0.001"), D("0.1"), D(0))
    mb = ref.Market(((D(102), D(11)),), D("0.001"), D("0.1"), D(0))
    best = ref.Reference(ma, mb).solve(ref.Limits(min_profit_bps=D(50))).best
    assert best is not None and best.base == D("5.854") and best.profit == D("2.9708")
    assert best.bps >= 50 > ref.Reference(ma, mb).point(D("5.855")).bps  # type: ignore[union-attr]


def test_item6_whole_size_threshold_maximises_profit() -> None:
    d, a = item6(0.0)
    (o,) = d.on_book(a, 2_000)  # type: ignore[arg-type]
    assert D(repr(o.buy.qty)) == D("5.854")
    assert o.profit_quote == pytest.approx(2.9708, rel=1e-9)


def test_item6_early_stop_below_min_notional_is_not_a_miss() -> None:
    d, a = item6(200.0)
    found = d.on_book(a, 2_000)  # type: ignore[arg-type]
    assert found is not None
    assert D(repr(found[0].buy.qty)) == D("5.854")
