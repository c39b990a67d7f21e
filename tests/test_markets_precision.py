"""Issue 8, defect 3: ccxt ``precision`` means a step size, decimal places or significant digits
depending on the exchange's ``precisionMode``. Bitfinex counts price precision in significant
digits (5) and rounds amounts to 8 decimals: read as steps, they gave tick 5.0 / lot 8.0 and
every leg rounded to zero.

The market structures below are trimmed copies of what ccxt 4.5.90 builds (``bitfinex.fetch_markets``,
``binance.fetch_markets``; ccxt is MIT-licensed): only the fields an Instrument reads, no network.
The instruments are then checked against ccxt's own ``amount_to_precision``/``price_to_precision``.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from cryptoarb.live.markets import (
    DECIMAL_PLACES,
    SIGNIFICANT_DIGITS,
    TICK_SIZE,
    MarketError,
    amount_mode,
    from_ccxt_market,
    instrument_of,
)


def _market(**kw: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "type": "spot", "spot": True, "margin": False, "swap": False, "future": False, "option": False,
        "active": True, "contract": False, "linear": None, "inverse": None, "contractSize": None,
        "settle": None, "settleId": None, "expiry": None, "expiryDatetime": None, "strike": None,
        "optionType": None, "taker": 0.002, "maker": 0.001, "created": None, "info": {},
        "limits": {"leverage": {"min": None, "max": None}, "amount": {"min": None, "max": None},
                   "price": {"min": None, "max": None}, "cost": {"min": None, "max": None}},
    }
    m.update(kw)
    return m


#: ccxt 4.5.90 ``bitfinex`` BTC/USD (precision: amount 8 decimals, price 5 significant digits)
BITFINEX_BTCUSD = _market(
    id="tBTCUSD", symbol="BTC/USD", base="BTC", quote="USD", baseId="BTC", quoteId="USD",
    precision={"amount": 8, "price": 5},
    limits={"leverage": {"min": None, "max": None}, "amount": {"min": 0.00004, "max": 2000.0},
            "price": {"min": 1e-8, "max": None}, "cost": {"min": None, "max": None}},
)
#: ccxt 4.5.90 ``binance`` BTC/USDT (TICK_SIZE: the steps themselves)
BINANCE_BTCUSDT = _market(
    id="BTCUSDT", symbol="BTC/USDT", base="BTC", quote="USDT", baseId="BTC", quoteId="USDT",
    precision={"amount": 1e-05, "price": 0.01, "base": 1e-08, "quote": 1e-08},
    limits={"leverage": {"min": None, "max": None}, "amount": {"min": 1e-05, "max": 9000.0},
            "price": {"min": 0.01, "max": 1000000.0}, "cost": {"min": 5.0, "max": 9000000.0}},
)


def _exchange(name: str, market: dict[str, Any]) -> Any:
    import ccxt.async_support as ccxt_async

    ex = getattr(ccxt_async, name)()
    ex.set_markets([market])
    return ex


def test_bitfinex_significant_digits_give_real_steps_not_5_and_8() -> None:
    ex = _exchange("bitfinex", BITFINEX_BTCUSD)
    assert ex.precisionMode == SIGNIFICANT_DIGITS
    assert amount_mode(ex, "BTC/USD") == DECIMAL_PLACES  # ccxt's bitfinex rounds amounts to decimals
    inst = instrument_of(ex, "bitfinex", "BTC/USD")
    assert inst.lot_size == 1e-8 and inst.tick_size == 1e-8
    assert inst.round_qty(0.1234567891) == pytest.approx(0.12345678)
    rng = random.Random(8)
    for _ in range(200):
        qty = inst.round_qty(rng.uniform(0.00004, 50))
        assert qty > 0
        assert float(ex.amount_to_precision("BTC/USD", qty)) == qty  # already on ccxt's grid
        price = float(ex.price_to_precision("BTC/USD", rng.uniform(0.001, 120_000)))  # a price Bitfinex quotes
        assert abs(round(price / inst.tick_size) * inst.tick_size - price) <= price * 1e-12


def test_tick_size_mode_reads_the_steps_and_agrees_with_ccxt() -> None:
    ex = _exchange("binance", BINANCE_BTCUSDT)
    assert ex.precisionMode == TICK_SIZE
    inst = instrument_of(ex, "binance", "BTC/USDT")
    assert (inst.tick_size, inst.lot_size, inst.min_notional) == (0.01, 1e-05, 5.0)
    rng = random.Random(3)
    for _ in range(200):
        qty = inst.round_qty(rng.uniform(0.00001, 10))
        assert float(ex.amount_to_precision("BTC/USDT", qty)) == qty


def test_decimal_places_mode() -> None:
    m = dict(BINANCE_BTCUSDT, precision={"amount": 5, "price": 2})
    inst = from_ccxt_market("x", m, DECIMAL_PLACES)
    assert (inst.tick_size, inst.lot_size) == (0.01, 1e-05)
    with pytest.raises(MarketError, match="decimal places"):
        from_ccxt_market("x", dict(m, precision={"amount": 0.5, "price": 2}), DECIMAL_PLACES)


def test_significant_digit_amounts_are_refused_with_the_reason() -> None:
    with pytest.raises(MarketError, match="significant digits have no fixed lot size"):
        from_ccxt_market("x", BITFINEX_BTCUSD, SIGNIFICANT_DIGITS, SIGNIFICANT_DIGITS)
    with pytest.raises(MarketError, match="unknown ccxt precision mode"):
        from_ccxt_market("x", BITFINEX_BTCUSD, 7)
