"""Small builders shared by the hand-made tests."""

from __future__ import annotations

from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.instruments import Fees, Instrument, Kind


def spot(venue: str, taker: float = 0.001, lot: float = 0.001, min_notional: float = 0.0,
         symbol: str = "BTC/USDT", fee_side: str = "") -> Instrument:
    base, quote = symbol.split("/")
    return Instrument(venue, symbol, base, quote, Kind.SPOT, 0.01, lot, min_notional, 1.0,
                      Fees(taker, taker), base + quote, fee_side)


def book(inst: Instrument, bids: list[tuple[float, float]], asks: list[tuple[float, float]],
         local_ns: int = 1_000) -> OrderBook:
    b = OrderBook(inst)
    b.load_snapshot(bids, asks)
    b.set_state(VALID)
    b.local_ns = local_ns
    return b
