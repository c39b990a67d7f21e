"""Bitget coin-margined perpetuals (COIN-FUTURES, ``BTC/USD:BTC``) end to end.

Bitget sizes them in the base coin: a book level of "0.2" is 0.2 BTC, an order of 0.5 is 0.5 BTC,
the position and its PnL are in BTC; ccxt still describes them as ``inverse`` with
``contractSize`` 1 (tests/ccxt_markets/bitget.json, ccxt's own structure), and its own
``bitget.parse_position`` reads the size as the base amount. Bitget's documented PnL: "Coin-M
Futures PnL = direction x (exit price - entry price) x position size / market price of margin
coin" (Bitget support, "PnL calculation for USDT-M Futures and Coin-M Futures"), i.e. the linear
PnL in USD paid in BTC at the exit price.

Here a Bitget USDT perpetual and the coin-margined perpetual are one basis group; the handler
builds both books from v2 ``books`` frames, the detector finds the basis, the paper venue fills
both legs, and the accounting is checked by hand, then the position is closed by hand.
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal as D
from decimal import localcontext
from pathlib import Path

import ccxt
import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.accounting import Position
from cryptoarb.core.orders import ArbStatus, Order
from cryptoarb.core.pnl import PREC
from cryptoarb.engine import Engine
from cryptoarb.execution.paper import PaperVenue
from cryptoarb.live.markets import from_ccxt_market
from cryptoarb.venues.catalog import Catalog
from tests.helpers import book

MARKETS = json.loads((Path(__file__).parent / "ccxt_markets" / "bitget.json").read_text())
MODE = int(ccxt.bitget().precisionMode)
PERP = from_ccxt_market("bitget", MARKETS["BTC/USDT:USDT"], MODE)
COIN = from_ccxt_market("bitget", MARKETS["BTC/USD:BTC"], MODE)


def frame(inst_type: str, inst_id: str, bids: list[list[str]], asks: list[list[str]], seq: int) -> bytes:
    parts = [x for i in range(25) for side in (bids, asks) if i < len(side) for x in side[i]]
    c = zlib.crc32(":".join(parts).encode())
    return json.dumps({"action": "snapshot", "arg": {"instType": inst_type, "channel": "books", "instId": inst_id},
                       "data": [{"asks": asks, "bids": bids, "checksum": c - 2**32 if c >= 2**31 else c,
                                 "seq": seq, "ts": str(1_700_000_000_000 + seq)}]}).encode()


def test_the_ccxt_market_is_a_base_sized_inverse_instrument() -> None:
    assert (COIN.kind.value, COIN.settle, COIN.contract_size, COIN.lot_size, COIN.tick_size) == (
        "inverse", "BTC", 1.0, 0.001, 0.1)
    assert COIN.base_sized and not COIN.quote_contracts
    # 0.2 on the book is 0.2 BTC at any price (a quote-valued contract would be 0.2 USD / 60,300)
    assert COIN.base_qty(0.2, 60_300.0) == 0.2 and COIN.native_qty(0.2, 60_300.0) == 0.2
    assert COIN.base_step() == D("0.001") == PERP.base_step()


def test_position_pnl_is_bitgets_formula() -> None:
    """Short 0.2 @ 60,300 + 0.3 @ 60,250 (entry 60,270), close 0.1 at 59,000, mark the rest at 59,000."""
    with localcontext() as ctx:
        ctx.prec = PREC
        pos = Position(COIN)
        assert pos.apply(D("-0.2"), D(60300)) == 0 and pos.apply(D("-0.3"), D(60250)) == 0
        assert (pos.qty, pos.cost, pos.entry_price()) == (D("-0.5"), D(-30135), D(60270))
        realised = pos.apply(D("0.1"), D(59000))
        # direction x (exit - entry) x size / exit = -1 x (59,000 - 60,270) x 0.1 / 59,000
        assert realised == D(127) / D(59000)
        assert pos.unrealised(D(59000)) == D(-1) * (59000 - 60270) * D("0.4") / D(59000)
        assert pos.entry_price() == D(60270)


@pytest.fixture()
def engine() -> Engine:
    settings = load_settings(
        storage={"enabled": False},
        detector={"quote_equivalents": [["USD", "USDT"]], "max_notional_quote": 100_000,
                  "groups": [{"name": "BTC basis", "label": "basis",
                              "members": [PERP.key, COIN.key]}]},
        paper={"default_latency_ms": 20, "balances": {"bitget": {"USDT": "100000", "BTC": "1"}}},
    )
    return Engine(settings, ["bitget"], catalog=Catalog([PERP, COIN]), instruments=[PERP, COIN])


def test_basis_against_the_usdt_perpetual_is_sized_filled_and_booked_in_btc(engine: Engine) -> None:
    h = engine.handler("bitget")
    ms = 1_000_000
    engine.on_message(h, frame("USDT-FUTURES", "BTCUSDT", [["59990.0", "1"]], [["60000.0", "0.5"]], 1), 1 * ms)
    engine.on_message(h, frame("COIN-FUTURES", "BTCUSD", [["60300.0", "0.2"], ["60250.0", "0.3"]],
                               [["60320.0", "1"]], 1), 2 * ms)
    coin_book = engine.books[COIN.key]
    assert next(coin_book.bids()) == (60300.0, 0.2)  # BTC, as Bitget sends it
    assert engine.opportunities == 1
    engine.tick(100 * ms)  # both legs arrive (20 ms) and fill on the unchanged books
    [trade] = engine.executor.trades
    b, s = trade.buy_order, trade.sell_order
    # buy 0.5 BTC of the USDT perpetual at 60,000; sell 0.5 BTC of the coin-margined one down to 60,250
    assert (b.symbol, b.qty, b.limit_price) == (PERP.symbol, D("0.5"), D(60000))
    assert (s.symbol, s.qty, s.limit_price) == (COIN.symbol, D("0.5"), D("60250.0"))
    assert [(f.price, f.qty, f.fee, f.fee_currency) for f in s.fills] == [
        (D("60300.0"), D("0.2"), D("0.00012"), "BTC"), (D("60250.0"), D("0.3"), D("0.00018"), "BTC")]
    assert [(f.price, f.qty, f.fee, f.fee_currency) for f in b.fills] == [(D("60000.0"), D("0.5"), D("18"), "USDT")]
    assert trade.status is ArbStatus.COMPLETE
    assert trade.matched_qty_base == D("0.5") and trade.unhedged_qty_base == 0  # hedged in BTC, exactly
    # expected: 0.5 x (60,270 - 60,000) - 18 USDT - 30,135 x 0.0006 USD of fees
    assert float(trade.expected_pnl) == pytest.approx(135 - 18 - 18.081, abs=1e-6)
    pf = engine.portfolio
    coin_pos = pf.derivatives[COIN.key]
    assert (coin_pos.qty, coin_pos.cost, coin_pos.entry_price()) == (D("-0.5"), D(-30135), D(60270))
    assert pf.positions["bitget"][PERP.symbol] == D("0.5")
    assert (pf.balance("bitget", "USDT"), pf.balance("bitget", "BTC")) == (D(99982), D("0.9997"))
    snap = engine.pnl_snapshot()
    # +0.5 BTC long (linear), -0.5 BTC short (coin-margined): only the BTC paid in fees is exposure
    assert snap.net.get("BTC") == pytest.approx(-0.0003, abs=1e-12)

    # the market moves to 61,000; both legs are closed there by hand (books of that moment)
    paper = PaperVenue("bitget", pf)
    close_perp = Order("c1", "bitget", PERP.symbol, "sell", D("0.5"), D(61000), D(61000), 0)
    close_coin = Order("c2", "bitget", COIN.symbol, "buy", D("0.5"), D(61000), D(61000), 0)
    paper.execute(close_perp, book(PERP, [(61000.0, 1.0)], [(61000.5, 1.0)]), 300 * ms)
    paper.execute(close_coin, book(COIN, [(60999.0, 1.0)], [(61000.0, 1.0)]), 300 * ms)
    assert close_perp.filled_qty == close_coin.filled_qty == D("0.5")
    assert pf.derivatives[PERP.key].qty == pf.derivatives[COIN.key].qty == 0
    # perpetual: +0.5 x (61,000 - 60,000) = +500 USDT, fee 0.5 x 61,000 x 0.0006 = 18.3 USDT
    assert pf.balance("bitget", "USDT") == D(99982) + 500 - D("18.3")
    # coin-margined: -1 x (61,000 - 60,270) x 0.5 / 61,000 = -365 / 61,000 BTC, fee 0.5 x 0.0006 BTC
    btc = pf.balance("bitget", "BTC") - (D("0.9997") - D("0.0003"))
    assert abs(btc - D(-365) / D(61000)) < D("1e-30")
    # in USD at the exit price: +500 - 365 = +135, the basis 0.5 x 270 the trade locked in
    assert abs(500 + btc * 61000 - 135) < D("1e-25")
