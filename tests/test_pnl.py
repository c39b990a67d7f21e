"""Realised / unrealised PnL, margin-style derivatives and inverse contracts, against exact fractions."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal as D
from fractions import Fraction as F

import pytest

from cryptoarb.core.accounting import Portfolio, fill_fee
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.core.opportunity import BUY, SELL, Opportunity, OrderIntent
from cryptoarb.core.orders import ArbStatus, Fill, Order
from cryptoarb.core.pnl import snapshot
from cryptoarb.execution.arb import ArbExecutor, ExecConfig
from cryptoarb.execution.paper import PaperVenue
from tests.helpers import book, spot

CASH = frozenset({"USDT", "USD"})


def inverse(venue: str = "cm", taker: float = 0.0) -> Instrument:
    return Instrument(venue, "BTC/USD:BTC", "BTC", "USD", Kind.INVERSE, 0.1, 1.0, 0.0, 100.0, Fees(taker, taker),
                      "BTCUSD_PERP")


def linear(venue: str = "um", taker: float = 0.0) -> Instrument:
    return Instrument(venue, "BTC/USDT:USDT", "BTC", "USDT", Kind.LINEAR, 0.1, 0.001, 0.0, 1.0, Fees(taker, taker),
                      "BTCUSDT")


def fill(inst: Instrument, side: str, qty: str, price: str, fee: str = "0") -> Fill:
    ccy = fill_fee(inst, side, D(qty), D(price), D(0))[1]
    return Fill("o", inst.venue, inst.symbol, side, D(price), D(qty), D(fee), ccy, 0)


def value(pf: Portfolio, prices: dict[str, D], mids: dict[str, D]):
    return snapshot(pf, "USDT", CASH, prices.get, mids.get)


# -- inverse contracts (issue item 4) ---------------------------------------------------------------
def test_inverse_round_trip_gains_btc_when_the_price_rises() -> None:
    """Deposit 1 BTC, buy 600 x 100 USD contracts at 50,000, sell them at 60,000: 1.2 BTC (was 0.8)."""
    pf = Portfolio("USDT", CASH)
    pf.deposit("cm", "BTC", D(1))
    inst = inverse()
    venue = PaperVenue("cm", pf)
    for side, px in ((BUY, 50_000.0), (SELL, 60_000.0)):
        b = book(inst, [(px, 1000)], [(px + 10, 1000)]) if side == SELL else book(inst, [(px - 10, 1000)], [(px, 1000)])
        o = Order(f"o{side}", "cm", inst.symbol, side, D(600), D(repr(px)), D(repr(px)), 0)
        venue.execute(o, b, 1)
        assert o.filled_qty == 600
    assert pf.balance("cm", "BTC") == D("1.2")
    assert pf.derivatives[inst.key].qty == 0
    # the 0.2 BTC earned is realised at the price it was earned at, then held as BTC
    assert pf.ledger is not None and pf.ledger.realised == D("0.2") * 60_000


def test_inverse_pnl_converts_each_fill_not_the_average_price() -> None:
    inst = inverse()
    pf = Portfolio("USDT", CASH)
    pf.deposit("cm", "BTC", D(1))
    for side, qty, px in (("sell", "300", "50000"), ("sell", "300", "70000"), ("buy", "600", "60000")):
        pf.apply_fill(inst, fill(inst, side, qty, px))
    # a short loses when the price rises: sum of q cs / p at exit less the same at entry, fill by fill
    exact = F(60_000, 60_000) - (F(30_000, 50_000) + F(30_000, 70_000))
    assert abs(F(pf.balance("cm", "BTC")) - (1 + exact)) < F(1, 10**40)
    average = 600 * 100 * (F(1, 60_000) - F(1, 60_000))  # arithmetic average entry 60,000: zero
    assert exact < 0
    assert exact != average


def test_trade_quantities_of_an_inverse_leg_are_converted_fill_by_fill() -> None:
    s = spot("a", taker=0.0, lot=0.00001)
    inv = inverse("cm")
    a = book(s, [(49_000.0, 5)], [(50_000.0, 1.0)])
    c = book(inv, [(70_000.0, 300.0), (50_000.0, 300.0)], [(80_000.0, 5)])
    pf = Portfolio("USDT", CASH)
    pf.deposit("a", "USDT", D(100_000))
    pf.deposit("cm", "BTC", D(1))
    books = {a.key: a, c.key: c}
    ex = ArbExecutor(pf, {"a": PaperVenue("a", pf), "cm": PaperVenue("cm", pf)}, books.get, ExecConfig(), run_id="t")
    opp = Opportunity(1, "BTC", "basis", OrderIntent("a", s.symbol, BUY, 1.0, 50_000.0, 50_000.0),
                      OrderIntent("cm", inv.symbol, SELL, 600.0, 50_000.0, 60_000.0), 1.0, 50_000.0, 60_000.0,
                      50_000.0, 0.0, 1.0, 0, 0)
    trade = ex.submit(opp, 0)
    assert trade is not None
    ex.drain()
    sold = F(30_000, 70_000) + F(30_000, 50_000)  # 1.0286 BTC, not 600 x 100 / 60,000 = 1.0
    assert abs(F(trade.unhedged_qty_base) - (1 - sold)) < F(1, 10**25)
    assert trade.matched_qty_base == 1
    # a basis trade opens two positions: only fees are realised (none here); the spread is open PnL
    assert trade.realized_pnl == 0


# -- linear contracts are margin-style (issue item 8) ------------------------------------------------
def test_linear_position_moves_the_wallet_only_by_realised_pnl_and_fees() -> None:
    inst = linear(taker=0.0005)
    pf = Portfolio("USDT", CASH)
    pf.deposit("um", "USDT", D(1000))
    pf.apply_fill(inst, fill(inst, "buy", "2", "100", fee="0.1"))
    assert pf.balance("um", "USDT") == D("999.9")  # not 800: the notional stays in the position
    pos = pf.derivatives[inst.key]
    assert pos.qty == 2 and pos.entry_price() == 100
    pf.apply_fill(inst, fill(inst, "sell", "3", "110", fee="0.165"))  # close 2, open 1 short at 110
    assert pf.balance("um", "USDT") == D("999.9") + 2 * 10 - D("0.165")
    assert pos.qty == -1 and pos.entry_price() == 110
    assert pos.unrealised(D(100)) == 10


# -- what is realised, what is open (issue item 3) ---------------------------------------------------
def _two_venues(fee_side: str = "quote"):
    a = book(spot("a", fee_side=fee_side), [(99.0, 5)], [(100.0, 1.0)])
    b = book(spot("b", fee_side=fee_side), [(101.0, 1.0)], [(102.0, 5)])
    pf = Portfolio("USDT", CASH)
    pf.deposit("a", "USDT", D(1000))
    pf.deposit("b", "BTC", D(1))
    books = {a.key: a, b.key: b}
    ex = ArbExecutor(pf, {"a": PaperVenue("a", pf), "b": PaperVenue("b", pf)}, books.get, ExecConfig(), run_id="t")
    opp = Opportunity(1, "BTC/USDT", "spot", OrderIntent("a", "BTC/USDT", BUY, 1.0, 100.0, 100.0),
                      OrderIntent("b", "BTC/USDT", SELL, 1.0, 101.0, 101.0), 1.0, 100.0, 101.0, 100.1, 0.201, 0.799,
                      0, 0)
    return a, b, pf, ex, opp


def test_failed_leg_position_is_marked_not_hidden() -> None:
    _, b, pf, ex, opp = _two_venues()
    trade = ex.submit(opp, 0)
    assert trade is not None
    b.apply([(101.0, 0.0), (90.0, 2.0)], [])  # the bid is gone when our sell arrives
    ex.drain()
    assert trade.status is ArbStatus.FAILED_LEG
    assert trade.realized_pnl == -D("0.1")  # the buy fee
    snap = value(pf, {"BTC": D(95)}, {})
    assert snap.exact == (-D("0.1"), D(95) - D(100), D(95) - D(100) - D("0.1"))
    assert snap.net == {"BTC": 1.0} and snap.unhedged_quote == 95.0
    # equity change at the marks: -100.1 USDT + 1 BTC x 95
    assert snap.exact[2] == -D("100.1") + 95


def test_complete_spot_trade_is_realised() -> None:
    _, _, pf, ex, opp = _two_venues()
    trade = ex.submit(opp, 0)
    assert trade is not None
    ex.drain()
    assert trade.status is ArbStatus.COMPLETE
    assert trade.realized_pnl == 1 - D("0.1") - D("0.101")
    snap = value(pf, {"BTC": D(120)}, {})
    assert snap.exact[1] == 0 and snap.unhedged_quote == 0.0  # nothing open: the mark does not matter


def test_base_fees_leave_a_small_short_that_is_marked() -> None:
    _, _, pf, ex, opp = _two_venues(fee_side="get")
    trade = ex.submit(opp, 0)
    assert trade is not None
    ex.drain()
    assert trade.unhedged_qty_base == -D("0.001")  # the buy fee, paid in BTC
    snap = value(pf, {"BTC": D(110)}, {})
    # cash: -100 + 101 - 0.101; BTC: -0.001 at 110
    assert snap.exact[2] == D(1) - D("0.101") - D("0.11")


def test_basis_spread_is_unrealised_until_both_positions_close() -> None:
    s, p = spot("a", taker=0.0), linear("um")
    pf = Portfolio("USDT", CASH)
    pf.apply_fill(s, fill(s, "buy", "1", "100"))
    pf.apply_fill(p, fill(p, "sell", "1", "101"))
    snap = value(pf, {"BTC": D("100.5")}, {p.key: D("100.5")})
    assert snap.exact == (0, 1, 1)  # the entry spread is open PnL while the basis persists
    assert snap.unhedged_quote == 0.0  # long spot, short perp: hedged
    snap = value(pf, {"BTC": D(100)}, {p.key: D(102)})
    assert snap.exact == (0, -1, -1)  # the basis widened: the spread is not money yet
    pf.apply_fill(s, fill(s, "sell", "1", "100.5"))
    pf.apply_fill(p, fill(p, "buy", "1", "100.5"))
    assert value(pf, {"BTC": D(100)}, {p.key: D(102)}).exact == (1, 0, 1)


# -- the invariant on random fills -------------------------------------------------------------------
def _reference_equity(fills: list[tuple[Instrument, Fill]], prices: dict[str, F], mids: dict[str, F]) -> F:
    flows: dict[str, F] = defaultdict(F)
    pos: dict[str, F] = defaultdict(F)
    insts = {}
    for inst, f in fills:
        q = F(f.qty) if f.side == "buy" else -F(f.qty)
        p, cs = F(f.price), F(repr(inst.contract_size))
        if inst.kind is Kind.SPOT:
            flows[inst.base] += q
            flows[inst.quote] -= q * p
        else:
            flows[inst.settle] -= -q * cs / p if inst.kind is Kind.INVERSE else q * cs * p
            pos[inst.key] += q
            insts[inst.key] = inst
        flows[f.fee_currency] -= F(f.fee)
    total = sum((amt * prices[c] for c, amt in flows.items()), F(0))
    for key, q in pos.items():
        inst, m, cs = insts[key], mids[key], F(repr(insts[key].contract_size))
        total += (-q * cs / m if inst.kind is Kind.INVERSE else q * cs * m) * prices[inst.settle]
    return total


@pytest.mark.parametrize("seed", range(20))
def test_equity_change_is_realised_plus_unrealised_on_random_fills(seed: int) -> None:
    rng = random.Random(seed)
    eth_btc = Instrument("x", "ETH/BTC", "ETH", "BTC", Kind.SPOT, 1e-6, 1e-4, 0.0, 1.0, Fees(0.001), "ETHBTC")
    insts = [spot("a", fee_side="get"), spot("b", fee_side="quote"), spot("c", fee_side="give"), linear("um", 0.0005),
             inverse("cm", 0.0005), eth_btc]
    btc = F(rng.randint(40_000, 80_000))
    prices = {"USDT": F(1), "USD": F(1), "BTC": btc, "ETH": btc * F(rng.randint(400, 600), 10_000)}
    pf = Portfolio("USDT", CASH, lambda a: D(prices[a].numerator) / D(prices[a].denominator))
    done = []
    for _ in range(60):
        inst = rng.choice(insts)
        side = rng.choice(("buy", "sell"))
        ref = prices[inst.base] / prices[inst.quote]
        px = D(round(float(ref) * rng.uniform(0.97, 1.03), 2 if inst.quote != "BTC" else 6))
        qty = D(rng.randint(1, 500)) if inst.kind is Kind.INVERSE else D(rng.randint(1, 3000)) / 1000
        fee, ccy = fill_fee(inst, side, qty, px, D(repr(inst.fees.taker)))
        f = Fill("o", inst.venue, inst.symbol, side, px, qty, fee, ccy, 0)
        pf.apply_fill(inst, f)
        done.append((inst, f))
        if rng.random() < 0.2:  # the market moves; conversions use the prices of the moment
            prices["BTC"] = btc = btc * F(rng.randint(95, 105), 100)
            prices["ETH"] = prices["ETH"] * F(rng.randint(95, 105), 100)
    final = {a: D(p.numerator) / D(p.denominator) for a, p in prices.items()}
    mids = {linear("um").key: final["BTC"] + 3, inverse("cm").key: final["BTC"] - 2}
    snap = snapshot(pf, "USDT", CASH, final.get, mids.get)
    ref = _reference_equity(done, {a: F(p) for a, p in final.items()}, {k: F(v) for k, v in mids.items()})
    realised, unrealised, total = (F(x) for x in snap.exact)
    assert abs(realised + unrealised - ref) < F(1, 10**20)
    assert abs(total - (realised + unrealised)) < F(1, 10**30)
    assert abs(sum((F(f.pnl) for _, f in done), F(0)) - realised) < F(1, 10**30)


def test_a_swap_booked_as_an_exchange_is_trading_not_a_deposit() -> None:
    pf = Portfolio("USDT", CASH, {"BTC": D(100), "ETH": D(2000)}.get)
    pf.deposit("wallet", "USDT", D(1000))
    pf.deposit("wallet", "ETH", D(1))
    realised = pf.apply_exchange("wallet", [("BTC", D(1)), ("USDT", -D(100))], fees=[("ETH", D("0.001"))])
    assert realised == -2  # the gas, at ETH's price
    assert pf.balance("wallet", "ETH") == D("0.999") and pf.deposits["wallet"]["BTC"] == 0
    snap = value(pf, {"BTC": D(110), "ETH": D(2000)}, {})
    assert snap.exact == (-2, 10, 8)  # -100 USDT + 1 BTC x 110 - 0.001 ETH x 2000


# -- marks and the valuation currency ----------------------------------------------------------------
def test_marks_are_mids_of_the_books_that_price_an_asset() -> None:
    from cryptoarb.core.book import INVALID
    from cryptoarb.detect.groups import auto_groups
    from cryptoarb.engine.valuation import Marks, cash_set, valuation_currency

    a, b, inv = spot("a"), spot("b"), inverse("cm")
    eth = Instrument("a", "ETH/BTC", "ETH", "BTC", Kind.SPOT, 1e-6, 1e-4, 0.0, 1.0, Fees(0.001), "ETHBTC")
    eq = [{"USD", "USDT"}]
    insts = [a, b, inv, eth]
    assert valuation_currency(auto_groups(insts, equivalents=eq).groups, insts, eq) == "USDT"
    books = {x.key: x for x in (book(a, [(99.0, 1)], [(101.0, 1)]), book(b, [(101.0, 1)], [(103.0, 1)]),
                                book(inv, [(90.0, 1)], [(91.0, 1)]), book(eth, [(0.049, 1)], [(0.051, 1)]))}
    marks = Marks(books, "USDT", cash_set("USDT", eq))
    assert marks.cash == {"USD", "USDT"}
    assert marks.price("BTC") == 101  # spot mids averaged (100, 102); the perpetual is not used
    assert marks.price("ETH") == D("0.050") * 101  # through BTC
    assert marks.mid(inv.key) == D("90.5") and marks.price("USD") == 1
    books[b.key].set_state(INVALID)  # resyncing: its last valid mid stands
    assert marks.price("BTC") == 101
    del books[a.key], books[b.key]
    marks = Marks(books, "USDT", cash_set("USDT", eq))
    assert marks.price("BTC") == D("90.5")  # no spot book: the perpetual's mid
    assert marks.price("DOGE") is None
