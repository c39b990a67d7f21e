"""Fees as venues charge them: a third fee currency (BNB-style, with its discount), the fallback
when it runs out, and the detector's expected PnL equal to the realised one under that rule."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cryptoarb.config import ConfigError, load_settings
from cryptoarb.core.accounting import Portfolio, fee_asset, fill_fee, spot_need, with_fee_currency
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.core.orders import ArbStatus, Order
from cryptoarb.execution.paper import PaperVenue
from tests.accounting import assert_pnl_invariant
from tests.helpers import book
from tests.test_legrisk import MS, S, engine, start


def bnb(venue: str = "a", fee_side: str = "get") -> Instrument:
    plain = Instrument(venue, "X/Q", "X", "Q", Kind.SPOT, 0.1, 0.001, 0.0, 1.0, Fees(0.001, 0.001), "XQ", fee_side)
    return with_fee_currency(plain, "BNB", 0.25)


def test_fee_currency_rule_and_amount() -> None:
    inst = bnb()
    assert inst.fees.taker == 0.00075 and inst.fee_currency == "BNB"
    assert fee_asset(inst, "buy") == fee_asset(inst, "sell") == "BNB"
    # 2 X at 100 = 200 Q x 0.075 % = 0.15 Q = 0.0003 BNB at 500 Q
    assert fill_fee(inst, "buy", D(2), D(100), D("0.00075"), D(500)) == (D("0.0003"), "BNB")
    # nothing prices BNB: the full rate, by the fee-side rule (the asset received)
    fee, ccy = fill_fee(inst, "buy", D(2), D(100), D("0.00075"), None)
    assert (fee, ccy) == (D("0.002"), "X")
    # the venue's balance check spends no fee: it is not taken from what the order pays
    assert spot_need(inst, "buy", D(2), D(100), D("0.00075")) == ("Q", D(200))
    assert spot_need(inst, "sell", D(2), D(100), D("0.00075")) == ("X", D(2))
    with pytest.raises(ValueError, match="fee_discount"):
        Instrument("a", "X/Q", "X", "Q", fee_currency="BNB", fee_discount=1.0)


def test_paper_venue_charges_bnb_while_it_lasts() -> None:
    pf = Portfolio("Q", price=lambda a: D(500) if a == "BNB" else None)
    pf.deposit("a", "Q", D(1_000))
    pf.deposit("a", "BNB", D("0.0004"))
    inst = bnb()
    b = book(inst, [(99.0, 10)], [(100.0, 10)])
    venue = PaperVenue("a", pf)
    o1 = Order("o1", "a", "X/Q", "buy", D(2), D(100), D(100), 0)
    venue.execute(o1, b, 1)
    assert (o1.fee, o1.fee_currency) == (D("0.0003"), "BNB")
    assert pf.balance("a", "BNB") == D("0.0001") and pf.balance("a", "X") == 2  # nothing taken from X
    assert o1.fills[0].fee_quote == D("0.15")  # valued at the same BNB price: the discounted 0.075 %
    o2 = Order("o2", "a", "X/Q", "buy", D(2), D(100), D(100), 2)
    venue.execute(o2, b, 3)  # 0.0001 BNB left, 0.0003 needed: the venue charges the full 0.1 % in X
    assert (o2.fee, o2.fee_currency) == (D("0.002"), "X")
    assert pf.balance("a", "BNB") == D("0.0001") and pf.balance("a", "X") == D("3.998")


def test_detector_and_ledger_agree_with_a_fee_currency() -> None:
    """Both venues pay 0.1 % less 25 % in BNB at a configured 500 Q: the detector sizes and
    prices the trade at 0.075 %, the ledger books exactly that, and the invariant holds with
    BNB valued at the configured price (no book of the run prices it)."""
    fc = {"asset": "BNB", "discount": 0.25, "price": "500"}
    e = engine(["a", "b"], {"a": {"Q": "5000", "BNB": "1"}, "b": {"X": "20", "BNB": "1"}},
               {"fee_currency": {"a": fc, "b": fc}}, fee=0.001, fee_side="get")
    assert e.catalog.get("a", "X/Q").fees.taker == 0.00075
    start(e)
    e.tick(5 * MS)
    t = e.executor.trades[0]
    assert t.status is ArbStatus.COMPLETE and t.unhedged_qty_base == 0  # no fee taken in X
    assert t.buy_order.fee_currency == t.sell_order.fee_currency == "BNB"
    # expected 10 x (101 - 100) - 0.075 % x (1000 + 1010) = 8.4925, realised the same, exactly
    assert t.realized_pnl == D("8.4925") and float(t.expected_pnl) == pytest.approx(8.4925, abs=1e-9)
    assert t.buy_order.fee == D("0.0015") and t.sell_order.fee == D("0.001515")
    e.tick(2 * S)
    e.finish()
    assert_pnl_invariant(e)


def test_fee_currency_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="discount"):
        load_settings(legrisk={"fee_currency": {"binance": {"asset": "BNB", "discount": 1.5}}})
    with pytest.raises(ConfigError, match="asset"):
        load_settings(legrisk={"fee_currency": {"binance": {"discount": 0.25}}})
