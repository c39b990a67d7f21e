"""The ccxt.pro fallback adapter: books copied from watch_order_book results, invalid while
ccxt errors, opportunities reach execution. The exchange is a stand-in with ccxt.pro's
``watch_order_book``/``close`` interface (no network here); ccxt's own book code is exercised
by the benchmark tests."""

from __future__ import annotations

import asyncio
from typing import Any

from cryptoarb.config import load_settings
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.engine import Engine
from cryptoarb.venues.ccxt_fallback import CcxtProFeed
from cryptoarb.venues.registry import path_of


class StandIn:
    """Yields scripted order books; raises where the script says so; then waits."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.closed = False

    async def watch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        if not self.script:
            await asyncio.sleep(3600)
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        await asyncio.sleep(0)
        return item

    async def close(self) -> None:
        self.closed = True


def spot(venue: str) -> Instrument:
    return Instrument(venue, "BTC/USDT", "BTC", "USDT", Kind.SPOT, 0.01, 1e-5, 0.0, 1.0, Fees(0.0, 0.0), "BTCUSDT")


def test_fallback_path_is_reported_for_exchanges_without_a_native_handler() -> None:
    assert path_of("binance") == "native"
    assert path_of("bitvavo") == "ccxt"  # a ccxt.pro exchange we have no handler for


def test_books_from_ccxt_feed_the_detector_and_errors_invalidate() -> None:
    settings = load_settings(storage={"enabled": False}).model_copy(
        update={"paper": load_settings().paper.model_copy(update={"balances": {
            "aaa": {"USDT": 10_000}, "bbb": {"BTC": 1}}})})
    a, b = spot("aaa"), spot("bbb")
    engine = Engine(settings, ["aaa", "bbb"], instruments=[a, b])
    engine.catalog.add(a)
    engine.catalog.add(b)
    # rebuild the plan now that the catalog knows the instruments
    engine = Engine(settings, ["aaa", "bbb"], catalog=engine.catalog, instruments=[a, b])
    book_a = {"bids": [[99.0, 1.0]], "asks": [[100.0, 1.0]], "timestamp": 1, "nonce": 5}
    book_b = {"bids": [[101.0, 1.0, 3]], "asks": [[102.0, 1.0, 1]], "timestamp": 2, "nonce": 9}
    fa = CcxtProFeed(engine, "aaa", [a], exchange=StandIn([book_a]))
    fb = CcxtProFeed(engine, "bbb", [b], exchange=StandIn([RuntimeError("network down"), book_b]))

    async def go() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(fa.run(stop)), asyncio.create_task(fb.run(stop))]
        for _ in range(200):
            if engine.opportunities:
                break
            await asyncio.sleep(0.01)
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(go())
    assert fb.stats.path == "ccxt" and fb.stats.disconnects == 1 and "network down" in fb.stats.last_error
    assert fa.books["BTC/USDT"].valid and fb.books["BTC/USDT"].valid
    assert fb.books["BTC/USDT"].top(1) == ([[101.0, 1.0]], [[102.0, 1.0]])
    assert engine.opportunities >= 1  # buy on aaa at 100, sell on bbb at 101
    engine.finish()
    assert engine.executor.trades and engine.executor.trades[0].buy_order.venue == "aaa"
