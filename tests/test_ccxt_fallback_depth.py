"""Issue 8, defect 4: the fallback asked ``watch_order_book(symbol, 100)`` everywhere; bybiteu,
bybitid and bittrade refuse that limit and the feed retried for ever without a book or a word.

The exchanges here are ccxt.pro's own classes (so its real limit checks run), with the one
method that would open a WebSocket replaced by a scripted book (no network), and markets set
from a trimmed copy of ccxt's market structure (ccxt is MIT-licensed).
"""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt
import ccxt.pro
import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.engine import Engine
from cryptoarb.venues.ccxt_fallback import DEPTHS, CcxtProFeed, choose_depth, depths_named

MARKET = {
    "id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "baseId": "BTC", "quoteId": "USDT",
    "type": "spot", "spot": True, "margin": False, "swap": False, "future": False, "option": False,
    "contract": False, "active": True, "linear": None, "inverse": None, "settle": None, "settleId": None,
    "contractSize": None, "precision": {"amount": 1e-06, "price": 0.01}, "taker": 0.001, "maker": 0.001,
    "limits": {"amount": {"min": 1e-06, "max": None}, "price": {"min": None, "max": None},
               "cost": {"min": None, "max": None}, "leverage": {"min": None, "max": None}},
    "info": {}, "created": None,
}
SNAP = {"bids": [[100.0 - i * 0.1, 1.0] for i in range(300)], "asks": [[101.0 + i, 1.0] for i in range(300)],
        "timestamp": 1, "nonce": 7}


def _scripted(cls: type) -> Any:
    """ccxt.pro ``cls`` whose subscription returns a scripted book instead of connecting."""

    class Scripted(cls):  # type: ignore[misc, valid-type]
        asked: list[Any]

        async def _book(self, limit: int | None) -> Any:
            self.asked.append(limit)
            await asyncio.sleep(0.001)  # the next update comes later
            return self.order_book(SNAP, limit)

        async def watch_topics(self, url: str, hashes: Any, topics: Any, params: Any = None) -> Any:  # bybit
            return await self._book(int(topics[0].split(".")[1]))

        async def watch(self, url: Any, hash: Any, request: Any = None, sub: Any = None, s: Any = None) -> Any:
            return await self._book(150)  # bittrade subscribes mbp.150

        async def close(self) -> None:
            pass

    ex = Scripted()
    ex.asked = []
    ex.set_markets([MARKET])
    return ex


def _engine(venue: str, inst: Instrument) -> Engine:
    settings = load_settings(storage={"enabled": False})
    eng = Engine(settings, [venue], instruments=[inst])
    eng.catalog.add(inst)
    return eng


def _inst(venue: str) -> Instrument:
    return Instrument(venue, "BTC/USDT", "BTC", "USDT", Kind.SPOT, 0.01, 1e-6, 0.0, 1.0, Fees(0.001, 0.001), "BTCUSDT")


async def _run_until(feed: CcxtProFeed, done: Any) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    for _ in range(300):
        if done() or task.done():
            break
        await asyncio.sleep(0.01)
    stop.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("venue", ["bybiteu", "bybitid", "bittrade"])
def test_ccxt_refuses_100_and_the_feed_asks_a_depth_the_venue_accepts(venue: str) -> None:
    ex = _scripted(getattr(ccxt.pro, venue))
    with pytest.raises(ccxt.BaseError, match="limit"):  # what the old feed asked, for ever
        asyncio.run(ex.watch_order_book("BTC/USDT", 100))
    ex.asked.clear()
    inst = _inst(venue)
    feed = CcxtProFeed(_engine(venue, inst), venue, [inst], exchange=ex)
    asyncio.run(_run_until(feed, lambda: feed.books["BTC/USDT"].valid))
    book = feed.books["BTC/USDT"]
    assert book.valid and not feed.stats.failures
    assert ex.asked and set(ex.asked) == {choose_depth(DEPTHS[venue], 100)}
    assert book.depth() == (ex.asked[0], ex.asked[0])


class Rejecting:
    """An exchange we know nothing about: refuses 100 naming what it accepts, then serves."""

    def __init__(self, first: Exception) -> None:
        self.first: Exception | None = first
        self.asked: list[int | None] = []

    async def watch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        self.asked.append(limit)
        if self.first is not None:
            e, self.first = self.first, None
            raise e
        await asyncio.sleep(0.001)
        return SNAP

    async def close(self) -> None:
        pass


def test_an_unknown_venue_learns_the_depth_from_the_rejection() -> None:
    inst = _inst("zzz")
    ex = Rejecting(ccxt.BadRequest("zzz watchOrderBook() limit must be one of 10, 500"))
    feed = CcxtProFeed(_engine("zzz", inst), "zzz", [inst], exchange=ex)
    asyncio.run(_run_until(feed, lambda: feed.books["BTC/USDT"].valid))
    assert ex.asked[0] == 100 and set(ex.asked[1:]) == {500} and feed.books["BTC/USDT"].valid
    ex = Rejecting(ccxt.BadRequest("zzz: invalid limit"))  # names nothing: the venue's default
    feed = CcxtProFeed(_engine("zzz", inst), "zzz", [inst], exchange=ex)
    asyncio.run(_run_until(feed, lambda: feed.books["BTC/USDT"].valid))
    assert ex.asked[0] == 100 and set(ex.asked[1:]) == {None} and feed.books["BTC/USDT"].valid


def test_a_permanent_error_is_given_up_and_reported_not_retried() -> None:
    inst = _inst("zzz")
    ex = Rejecting(ccxt.BadSymbol("zzz does not have market symbol BTC/USDT"))
    feed = CcxtProFeed(_engine("zzz", inst), "zzz", [inst], exchange=ex)
    asyncio.run(_run_until(feed, lambda: False))
    assert ex.asked == [100]  # one try, then the market is given up
    assert feed.stats.failures == {"BTC/USDT": "BadSymbol: zzz does not have market symbol BTC/USDT"}
    assert not feed.books["BTC/USDT"].valid


def test_network_errors_are_retried() -> None:
    inst = _inst("zzz")
    ex = Rejecting(ccxt.RequestTimeout("timed out"))
    feed = CcxtProFeed(_engine("zzz", inst), "zzz", [inst], exchange=ex)
    asyncio.run(_run_until(feed, lambda: feed.books["BTC/USDT"].valid))
    assert len(ex.asked) >= 2 and set(ex.asked) == {100}
    assert feed.books["BTC/USDT"].valid and not feed.stats.failures and feed.stats.disconnects == 1


def test_depths_named() -> None:
    assert depths_named("bybiteu watchOrderBookForSymbols(): for spot markets limit can be one of: [1,50,200,1000]") \
        == [1, 50, 200, 1000]
    assert depths_named("htx watchOrderBook market accepts limits of 5, 20, 150 or 400 only") == [5, 20, 150, 400]
    assert choose_depth([1, 50, 200, 1000], 100) == 200 and choose_depth([5, 20], 100) == 20
