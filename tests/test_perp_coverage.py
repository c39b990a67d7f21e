"""OKX, Bybit and Bitget perpetuals end to end, from ccxt's own market structures (issue 8,
"More markets": "instruments from ccxt with contract size, linear/inverse").

For each venue, the markets come from ccxt's offline structures (tests/ccxt_markets/*.json:
BTC/USDT spot, the USDT-margined BTC/USDT:USDT and the coin-margined BTC/USD:BTC) through
``from_ccxt_market``; the venue's handler subscribes them and routes a book frame of each (its
current format) to its own book; the book's quantities are read in base units; and a short
position in the coin-margined contract, opened at 60,000 and closed at 50,000 on the paper
venue, realises its PnL in BTC.

The three venues size their coin-margined contracts differently: OKX in 100-USD contracts, Bybit
in 1-USD contracts, Bitget in BTC (base-sized). The same economic position (600 USD of notional,
0.01 BTC at 60,000) is 6, 600 and 0.01 of each, and by hand realises 600 x (1/50,000 - 1/60,000)
= 0.01 x (60,000 - 50,000) / 50,000 = 0.002 BTC on all three.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import ccxt
import pytest

from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.core.orders import Order
from cryptoarb.execution.paper import PaperVenue
from cryptoarb.live.markets import from_ccxt_market
from cryptoarb.venues.base import Handler
from cryptoarb.venues.bitget import BitgetHandler
from cryptoarb.venues.bybit import BybitHandler
from cryptoarb.venues.catalog import Catalog
from cryptoarb.venues.okx import OkxHandler
from tests.helpers import book

MARKETS = Path(__file__).parent / "ccxt_markets"
SYMBOLS = ("BTC/USDT", "BTC/USDT:USDT", "BTC/USD:BTC")


def crc(bids: list[list[str]], asks: list[list[str]]) -> int:
    """OKX's and Bitget's documented checksum (bid1:ask1:... "price:size", signed CRC32)."""
    parts = [x for i in range(25) for side in (bids, asks) if i < len(side) for x in side[i][:2]]
    c = zlib.crc32(":".join(parts).encode())
    return c - 2**32 if c >= 2**31 else c


def okx_frame(inst: Instrument, bid: list[str], ask: list[str]) -> bytes:
    return json.dumps({"arg": {"channel": "books", "instId": inst.exchange_symbol}, "action": "snapshot",
                       "data": [{"asks": [[*ask, "0", "1"]], "bids": [[*bid, "0", "1"]], "ts": "1700000000000",
                                 "checksum": crc([bid], [ask]), "prevSeqId": -1, "seqId": 7}]}).encode()


def bybit_frame(inst: Instrument, bid: list[str], ask: list[str]) -> bytes:
    return json.dumps({"topic": f"orderbook.50.{inst.exchange_symbol}", "type": "snapshot", "ts": 1700000000000,
                       "data": {"s": inst.exchange_symbol, "b": [bid], "a": [ask], "u": 7, "seq": 70},
                       "cts": 1700000000000}).encode()


def bitget_frame(inst: Instrument, bid: list[str], ask: list[str]) -> bytes:
    return json.dumps({"action": "snapshot", "arg": {"instType": BitgetHandler.inst_type(inst), "channel": "books",
                                                     "instId": inst.exchange_symbol},
                       "data": [{"asks": [ask], "bids": [bid], "checksum": crc([bid], [ask]), "seq": 7,
                                 "ts": "1700000000000"}]}).encode()


# venue -> (handler, frame, (kind, contract size, lot, tick, base-sized) per symbol,
#           top bid size per symbol (native units), its base quantity, contracts for 0.01 BTC at 60,000)
CASES: dict[str, tuple[Any, ...]] = {
    "okx": (OkxHandler, okx_frame,
            [(Kind.SPOT, 1.0, 1e-8, 0.1, False), (Kind.LINEAR, 0.01, 0.1, 0.1, False),
             (Kind.INVERSE, 100.0, 1.0, 0.1, False)],
            ["0.05", "5", "6"], [0.05, 0.05, 0.01], "6"),
    "bybit": (BybitHandler, bybit_frame,
              [(Kind.SPOT, 1.0, 1e-6, 0.1, False), (Kind.LINEAR, 1.0, 0.001, 0.1, False),
               (Kind.INVERSE, 1.0, 1.0, 0.1, False)],
              ["0.05", "0.05", "600"], [0.05, 0.05, 0.01], "600"),
    "bitget": (BitgetHandler, bitget_frame,
               [(Kind.SPOT, 1.0, 1e-6, 0.01, False), (Kind.LINEAR, 1.0, 0.001, 0.1, False),
                (Kind.INVERSE, 1.0, 0.001, 0.1, True)],
               ["0.05", "0.05", "0.01"], [0.05, 0.05, 0.01], "0.01"),
}


def instruments(venue: str) -> list[Instrument]:
    markets = json.loads((MARKETS / f"{venue}.json").read_text())
    mode = int(getattr(ccxt, venue)().precisionMode)
    return [from_ccxt_market(venue, markets[s], mode) for s in SYMBOLS]


def handlers(venue: str, cls: Any, cat: Catalog) -> list[Handler]:
    """One handler per connection, as the live feed makes them (Bybit: one per category)."""
    h: Handler = cls(venue, cat, lambda b, t: None, discover=False)
    if venue != "bybit":
        return [h, h, h]
    out = [h if n == 0 else h.for_connection() for n in range(3)]
    for x, inst in zip(out, cat.all(), strict=True):
        x.serve([inst])
    return out


@pytest.mark.parametrize("venue", sorted(CASES))
def test_perpetuals_from_ccxt_markets_end_to_end(venue: str) -> None:
    cls, frame, shapes, sizes, base, short_qty = CASES[venue]
    insts = instruments(venue)
    got = [(i.kind, i.contract_size, i.lot_size, i.tick_size, bool(i.base_sized)) for i in insts]
    assert got == shapes
    assert [i.symbol for i in insts] == list(SYMBOLS) and insts[2].settle == "BTC"
    cat = Catalog(insts)
    hs = handlers(venue, cls, cat)
    for h, inst in zip(hs, insts, strict=True):
        assert inst.exchange_symbol in "".join(h.subscribe_messages([inst]))
    if venue == "bybit":
        assert [h.url_for(i) for h, i in zip(hs, insts, strict=True)] == [
            f"wss://stream.bybit.com/v5/public/{c}" for c in ("spot", "linear", "inverse")]
    for n, (h, inst) in enumerate(zip(hs, insts, strict=True)):  # the same bid price, a different size on each
        h.on_message(frame(inst, ["60000.0", sizes[n]], [f"6000{n + 1}.0", sizes[n]]), 1_000 + n)
    syncs = hs[0].syncs
    assert sorted(syncs) == sorted(SYMBOLS)
    for n, inst in enumerate(insts):
        b = syncs[inst.symbol].book
        assert b.valid and b.instrument is inst
        p, q = next(b.bids())
        assert (p, q) == (60000.0, float(sizes[n]))
        assert inst.base_qty(q, p) == pytest.approx(base[n], rel=1e-12)  # in BTC, by hand
        assert inst.native_qty(base[n], p) == pytest.approx(q, rel=1e-12)

    # short 0.01 BTC worth of the coin-margined contract at 60,000 (the handler's book), close at 50,000
    inv = dataclasses.replace(insts[2], fees=Fees(0.0, 0.0))
    pf = Portfolio("USD", frozenset({"USD", "USDT"}))
    paper = PaperVenue(venue, pf)
    sell = Order("s", venue, inv.symbol, "sell", D(short_qty), D(60000), D(60000), 0)
    opened = syncs[inv.symbol].book
    opened.instrument = inv
    paper.execute(sell, opened, 2_000)
    buy = Order("b", venue, inv.symbol, "buy", D(short_qty), D(50000), D(50000), 0)
    paper.execute(buy, book(inv, [(49999.0, 1e6)], [(50000.0, 1e6)]), 3_000)
    assert sell.filled_qty == buy.filled_qty == D(short_qty)
    assert pf.derivatives[inv.key].qty == 0
    assert pf.balance(venue, "BTC") == D("0.002")
