"""ccxt's own ``binance`` / ``binanceus`` classes, unmodified, trading against the local Binance
venue (tests/exchange) run as a real process on 127.0.0.1 with the real spot BTC/USDT capture.

The book the venue serves is checked against an independent rebuild of the same capture lines
(tests/refbook.py), and every expected fill is computed from that reference, so a venue that
matched at wrong prices or quantities fails here. Errors, faults and restarts are in
test_exchange_binance_faults.py.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt
import pytest

from tests.exchange.market import CaptureMarket
from tests.exchange.process import LocalBinance, ccxt_client
from tests.refbook import RefBook, split_line

pytestmark = pytest.mark.realdata

START = 2000  # capture lines before the held book (past the REST snapshot line)
FILES = ("spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz")
D = Decimal


@pytest.fixture(scope="module")
def captures(shared_data: Path) -> list[Path]:
    return [shared_data / f for f in FILES]


@pytest.fixture(scope="module")
def reference(captures: list[Path]) -> RefBook:
    """The book after the first START lines, rebuilt by the independent reference."""
    ref = RefBook(False)
    for i, line in enumerate(_lines(captures)):
        if i >= START:
            break
        ref.feed(split_line(line)[1])
    assert ref.synced
    return ref


def _lines(paths: list[Path]) -> Iterator[bytes]:
    for p in paths:
        with gzip.open(p, "rb") as f:
            yield from (line for line in f if line.strip())


@pytest.fixture
def venue(binance_venues: Callable[..., LocalBinance]) -> LocalBinance:
    return binance_venues("venue", start_line=START)


def levels(side: list[tuple[str, str]]) -> list[tuple[Decimal, Decimal]]:
    return [(D(p), D(q)) for p, q in side]


def walk(side: list[tuple[Decimal, Decimal]], qty: Decimal) -> list[tuple[Decimal, Decimal]]:
    """The fills a taker of ``qty`` gets from ``side``, best level first."""
    out = []
    for p, q in side:
        take = min(q, qty)
        out.append((p, take))
        qty -= take
        if qty == 0:
            return out
    raise AssertionError("the reference book is too thin for this test")


def trades_of(order: dict[str, Any]) -> list[tuple[Decimal, Decimal]]:
    return [(D(f["price"]), D(f["qty"])) for f in order["info"]["fills"]]


def free(balance: dict[str, Any], asset: str) -> Decimal:
    return next(D(b["free"]) for b in balance["info"]["balances"] if b["asset"] == asset)


def test_load_markets_talks_only_to_the_venue_with_default_options(venue: LocalBinance) -> None:
    async def run() -> None:
        async with ccxt_client(venue) as (ex, guard):
            markets = await ex.load_markets()
            assert list(markets) == ["BTC/USDT"]
            m = markets["BTC/USDT"]
            assert (m["precision"]["price"], m["precision"]["amount"]) == (0.01, 0.00001)
            assert (m["limits"]["cost"]["min"], m["limits"]["amount"]["min"]) == (5.0, 0.00001)
            assert guard.urls and not guard.refused
            assert all(u.startswith(venue.url + "/") for u in guard.urls)
            # the server saw every one of them, all answered 200
            seen = venue.requests()
            assert len(seen) == len(guard.urls)
            assert {r["status"] for r in seen} == {200}
            assert "/api/v3/exchangeInfo" in {r["path"] for r in seen}

    asyncio.run(run())


def test_a_host_other_than_loopback_is_refused_before_any_traffic(venue: LocalBinance) -> None:
    async def run() -> None:
        async with ccxt_client(venue) as (ex, guard):
            ex.urls["api"]["public"] = "https://api.binance.com/api/v3"  # as if one URL were forgotten
            with pytest.raises(ccxt.NetworkError):
                await ex.fetch_time()
            assert guard.refused == ["https://api.binance.com/api/v3/time"]

    asyncio.run(run())


def test_order_book_is_the_capture_at_the_held_line(venue: LocalBinance, reference: RefBook) -> None:
    assert venue.admin("GET", "/admin/book")["line"] == START

    async def run() -> None:
        async with ccxt_client(venue) as (ex, _):
            ob = await ex.fetch_order_book("BTC/USDT", 100)
            raw = ob  # ccxt floats come from the venue's strings; compare them as decimals
            assert [(D(str(p)), D(str(q))) for p, q in raw["bids"]] == levels(reference.bids())[:100]
            assert [(D(str(p)), D(str(q))) for p, q in raw["asks"]] == levels(reference.asks())[:100]
            assert ob["nonce"] == reference.last_u

    asyncio.run(run())


def test_ioc_limit_orders_fill_at_the_book_prices_with_fees_in_the_received_asset(
        venue: LocalBinance, reference: RefBook) -> None:
    asks, bids = levels(reference.asks()), levels(reference.bids())
    buy_qty = (asks[0][1] + asks[1][1] + D("0.001")).quantize(D("0.00001"))
    want_buy = walk(asks, buy_qty)
    assert len(want_buy) == 3
    sell_qty = (bids[0][1] + D("0.00002")).quantize(D("0.00001"))
    want_sell = walk(bids, sell_qty)

    async def run() -> None:
        async with ccxt_client(venue) as (ex, _):
            before = await ex.fetch_balance()
            buy = await ex.create_order("BTC/USDT", "limit", "buy", float(buy_qty), float(want_buy[-1][0]),
                                        {"timeInForce": "IOC", "clientOrderId": "arb-buy-1"})
            assert buy["clientOrderId"] == "arb-buy-1" and buy["status"] == "closed"
            assert trades_of(buy) == want_buy
            cost = sum(p * q for p, q in want_buy)
            assert D(buy["info"]["cummulativeQuoteQty"]) == cost
            assert D(buy["info"]["executedQty"]) == buy_qty
            fee_btc = sum((q * D("0.001")).quantize(D("1E-8")) for _, q in want_buy)
            assert {f["commissionAsset"] for f in buy["info"]["fills"]} == {"BTC"}

            # the levels we took are gone from the venue's book until the capture updates them
            ob = await ex.fetch_order_book("BTC/USDT", 5)
            assert D(str(ob["asks"][0][0])) == want_buy[-1][0]
            assert D(str(ob["asks"][0][1])) == asks[2][1] - want_buy[-1][1]

            # a sell limited above the best bid takes nothing and expires
            high = await ex.create_order("BTC/USDT", "limit", "sell", 0.001, float(bids[0][0] + D("0.01")),
                                         {"timeInForce": "IOC", "clientOrderId": "arb-sell-0"})
            assert high["status"] == "expired" and high["filled"] == 0
            sell = await ex.create_order("BTC/USDT", "limit", "sell", float(sell_qty), float(want_sell[-1][0]),
                                         {"timeInForce": "IOC", "clientOrderId": "arb-sell-1"})
            assert trades_of(sell) == want_sell
            proceeds = sum(p * q for p, q in want_sell)
            fee_usdt = sum((p * q * D("0.001")).quantize(D("1E-8")) for p, q in want_sell)

            after = await ex.fetch_balance()
            assert free(after, "BTC") == free(before, "BTC") + buy_qty - fee_btc - sell_qty
            assert free(after, "USDT") == free(before, "USDT") - cost + proceeds - fee_usdt

            # by client id, and the account's trades, exactly as filled
            again = await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "arb-buy-1"})
            assert again["id"] == buy["id"] and again["status"] == "closed" and again["filled"] == float(buy_qty)
            mine = await ex.fetch_my_trades("BTC/USDT")
            assert [(D(t["info"]["price"]), D(t["info"]["qty"])) for t in mine] == want_buy + want_sell
            assert [t["side"] for t in mine] == ["buy"] * 3 + ["sell"] * len(want_sell)
            assert {t["takerOrMaker"] for t in mine} == {"taker"}

    asyncio.run(run())


def test_market_orders_by_quantity_and_by_quote_amount(venue: LocalBinance, reference: RefBook) -> None:
    asks = levels(reference.asks())
    qty = (asks[0][1] + D("0.0005")).quantize(D("0.00001"))
    want = walk(asks, qty)

    async def run() -> None:
        async with ccxt_client(venue, options={"createOrder": {"quoteOrderQty": False}}) as (ex, _):
            await ex.load_markets()
            o = await ex.create_order("BTC/USDT", "market", "buy", float(qty), None, {"clientOrderId": "mkt-1"})
            assert o["status"] == "closed" and trades_of(o) == want
        async with ccxt_client(venue) as (ex, _):
            spend = D("100")
            o = await ex.create_order("BTC/USDT", "market", "buy", None, None,
                                      {"quoteOrderQty": "100", "clientOrderId": "mkt-2"})
            p = want[-1][0]  # the level the first order stopped in still has liquidity
            assert trades_of(o) == [(p, (spend / p).quantize(D("0.00001"), rounding="ROUND_DOWN"))]

    asyncio.run(run())


def test_gtc_order_rests_is_listed_cancelled_and_unknown_afterwards(venue: LocalBinance,
                                                                    reference: RefBook) -> None:
    bid = levels(reference.bids())[0][0]
    price = bid - D("100")

    async def run() -> None:
        async with ccxt_client(venue) as (ex, _):
            before = await ex.fetch_balance()
            o = await ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(price),
                                      {"timeInForce": "GTC", "clientOrderId": "rest-1"})
            assert o["status"] == "open" and o["filled"] == 0
            locked = next(D(b["locked"]) for b in (await ex.fetch_balance())["info"]["balances"]
                          if b["asset"] == "USDT")
            assert locked == price * D("0.01")
            with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.01, float(price),
                                      {"timeInForce": "GTC", "clientOrderId": "rest-1"})
            opened = await ex.fetch_open_orders("BTC/USDT")
            assert [x["clientOrderId"] for x in opened] == ["rest-1"]
            done = await ex.cancel_order(o["id"], "BTC/USDT")
            assert done["status"] == "canceled"
            assert await ex.fetch_open_orders("BTC/USDT") == []
            assert free(await ex.fetch_balance(), "USDT") == free(before, "USDT")
            with pytest.raises(ccxt.OrderNotFound):
                await ex.cancel_order(o["id"], "BTC/USDT")
            with pytest.raises(ccxt.OrderNotFound):
                await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "never-sent"})

    asyncio.run(run())


def test_resting_order_fills_as_maker_when_the_replayed_book_crosses_it(venue: LocalBinance,
                                                                         captures: list[Path]) -> None:
    # find, in the capture after START, a moment when the best ask is below today's best ask,
    # and a later one when it is back above: the venue must fill on the way, not only where it stops
    m = CaptureMarket(captures, START)
    ask0 = next(m.levels("asks"))[0]
    low, low_line = ask0, START
    for _ in range(200):
        m.advance(25)
        a = next(m.levels("asks"))[0]
        if a < low:
            low, low_line = a, m.line
    assert low < ask0, "the capture's ask never fell below its level at START"
    price = low  # below the best ask now: rests; at low_line the ask reaches it
    m.seek(low_line)
    while next(m.levels("asks"))[0] <= price:
        m.advance(1)
    back_line = m.line  # the ask is above the order's price again

    async def run() -> None:
        async with ccxt_client(venue) as (ex, _):
            o = await ex.create_order("BTC/USDT", "limit", "buy", 0.0002, float(price),
                                      {"timeInForce": "GTC", "clientOrderId": "maker-1"})
            assert o["status"] == "open"
            venue.admin("POST", "/admin/book", {"seek_line": back_line})
            filled = await ex.fetch_order(o["id"], "BTC/USDT")
            assert filled["status"] == "closed" and filled["average"] == float(price)
            (t,) = await ex.fetch_my_trades("BTC/USDT")
            assert t["takerOrMaker"] == "maker" and D(t["info"]["price"]) == price
            assert D(t["info"]["commission"]) == D("0.0002") * D("0.001")  # maker fee, in BTC

    asyncio.run(run())


def test_paced_replay_moves_the_book_forward(binance_venues: Callable[..., LocalBinance]) -> None:
    v = binance_venues("paced", start_line=START, pace=50.0)
    first = v.admin("GET", "/admin/book")["update_id"]
    for _ in range(200):  # bounded: at 50x the capture's diffs (100 ms apart) arrive every 2 ms
        if v.admin("GET", "/admin/book")["update_id"] > first:
            break
    assert v.admin("GET", "/admin/book")["update_id"] > first


def test_binanceus_trades_against_a_second_instance(binance_venues: Callable[..., LocalBinance],
                                                    captures: list[Path], venue: LocalBinance) -> None:
    later = START + 5000
    us = binance_venues("us", start_line=later)
    ref = RefBook(False)
    for i, line in enumerate(_lines(captures)):
        if i >= later:
            break
        ref.feed(split_line(line)[1])
    ask = levels(ref.asks())[0]

    async def run() -> None:
        async with ccxt_client(us, cls=ccxt.binanceus) as (ex, guard):
            await ex.load_markets()
            ob = await ex.fetch_order_book("BTC/USDT", 5)
            assert D(str(ob["asks"][0][0])) == ask[0]
            o = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, float(ask[0]),
                                      {"timeInForce": "IOC", "clientOrderId": "us-1"})
            assert trades_of(o) == [(ask[0], D("0.001"))]
            assert not guard.refused and all(u.startswith(us.url) for u in guard.urls)
        async with ccxt_client(venue) as (ex, _):  # the other venue is another exchange
            assert (await ex.fetch_order_book("BTC/USDT", 5))["nonce"] != ob["nonce"]
            assert await ex.fetch_my_trades("BTC/USDT") == []

    asyncio.run(run())
    assert [o["clientOrderId"] for o in us.orders()] == ["us-1"] and venue.orders() == []
