"""Issue 8, defect 8: a subscription the venue refused was dropped silently and its book stayed
unsynced for ever. Each venue's error/acknowledgement message is parsed (the frames below are
in each venue's documented format); the refusal invalidates the book with the reason and is
reported by the feed (``stats.failures``, a non-zero exit), or retried when the venue says
the request may succeed later."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.book import INVALID
from cryptoarb.core.events import BookStateChange
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.feed import VenueFeed
from cryptoarb.venues.base import OTHER
from cryptoarb.venues.catalog import Catalog
from cryptoarb.venues.registry import handler_class
from feed_transports import feed_transport  # noqa: F401 -- parametrizes every test of the module
from protovenue import Conn, ProtoVenue, run_feed_until

pytestmark = pytest.mark.usefixtures("feed_transport")

# venue, the market's id, the venue's refusal, the id it names ("" none), retry
CASES: list[tuple[str, str, bytes, str, bool]] = [
    ("bitfinex", "tBTCUSD", b'{"event":"error","msg":"symbol: invalid","code":10300,"channel":"book",'
     b'"symbol":"tBTCUSD","prec":"P0","freq":"F0","len":"100","pair":"BTCUSD"}', "tBTCUSD", False),
    ("okx", "BTC-USDT", b'{"event":"error","code":"60018","msg":"Wrong URL or channel:books,instId:BTC-USDT '
     b'doesn\'t exist. Please use the correct URL, channel and parameters referring to API document.",'
     b'"connId":"a4d3ae55"}', "BTC-USDT", False),
    ("okx", "BTC-USDT", b'{"event":"error","code":"60014","msg":"Requests too frequent.","connId":"a4d3ae55"}',
     "", True),
    ("bybit", "BTCUSDT", b'{"success":false,"ret_msg":"Invalid symbol :[orderbook.50.BTCUSDT]",'
     b'"conn_id":"d266o6hqo29sqmnq4vk0-1vbw","req_id":"","op":"subscribe"}', "BTCUSDT", False),
    ("kraken", "XBT/USDT", b'{"method":"subscribe","success":false,"error":"Currency pair not supported BTC/USDT",'
     b'"symbol":"BTC/USDT","time_in":"2023-09-26T15:49:07.123456Z","time_out":"2023-09-26T15:49:07.123500Z"}',
     "BTC/USDT", False),
    ("krakenfutures", "PI_XBTUSD", b'{"event":"error","message":"Invalid product id"}', "", False),
    ("gate", "BTC_USDT", b'{"time":1611541000,"time_ms":1611541000001,"channel":"spot.order_book_update",'
     b'"event":"subscribe","error":{"code":2,"message":"unknown currency pair BTC_USDT"},"result":null}',
     "BTC_USDT", False),
    ("gate", "BTC_USDT", b'{"time":1611541000,"channel":"spot.order_book_update","event":"subscribe",'
     b'"error":{"code":3,"message":"Server error, BTC_USDT"},"result":null}', "BTC_USDT", True),
    ("kucoin", "BTC-USDT", b'{"id":"1545910660739","type":"error","code":404,'
     b'"data":"topic /market/level2:BTC-USDT is not found"}', "BTC-USDT", False),
    ("htx", "btcusdt", b'{"status":"error","ts":1700000000000,"id":"id1","err-code":"bad-request",'
     b'"err-msg":"invalid topic market.btcusdt.mbp.150"}', "btcusdt", False),
    ("bitget", "BTCUSDT", b'{"event":"error","arg":{"instType":"SPOT","channel":"books","instId":"BTCUSDT"},'
     b'"code":30001,"msg":"instType:SPOT,channel:books,instId:BTCUSDT doesn\'t exist","op":"subscribe"}',
     "BTCUSDT", False),
    ("coinbaseexchange", "BTC-USD", b'{"type":"error","message":"Failed to subscribe",'
     b'"reason":"BTC-USD is not a valid product"}', "BTC-USD", False),
    ("coinbase", "BTC-USD", b'{"type":"error","message":"failure to subscribe: BTC-USD is not a valid product"}',
     "BTC-USD", False),
    ("binance", "BTCUSDT", b'{"error":{"code":2,"msg":"Invalid request: property name must be a string"},"id":1}',
     "", False),
    ("bitstamp", "btcusd", b'{"event":"bts:error","channel":"diff_order_book_btcusd",'
     b'"data":{"code":null,"message":"Bad subscription string."}}', "btcusd", False),
    # Gemini names no symbol (ccxt.pro gemini.handle_error's format); nothing subscribed here
    ("gemini", "btcusd", b'{"result":"error","reason":"NoValidTradingPairs"}', "", False),
]


def _inst(venue: str, native: str) -> Instrument:
    symbol = "BTC/USDT" if "USDT" in native.upper() else "BTC/USD"
    base, quote = symbol.split("/")
    return Instrument(venue, symbol, base, quote, Kind.SPOT, 0.01, 1e-6, 0.0, 1.0, Fees(0.001), native)


@pytest.mark.parametrize(("venue", "native", "frame", "named", "retry"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_venues_refusal_is_parsed_and_reported(venue: str, native: str, frame: bytes, named: str,
                                                    retry: bool) -> None:
    cls = handler_class(venue)
    assert cls is not None
    inst = _inst(venue, native)
    states: list[BookStateChange] = []
    h = cls(venue, Catalog([inst]), lambda b, t: None, on_state=states.append)
    got: list[tuple[Instrument | None, str, str, bool]] = []
    h.on_reject = lambda _h, i, n, why, r: got.append((i, n, why, r))
    sync = h.sync_for(inst)
    raw = gzip.compress(frame) if venue == "htx" else frame
    assert h.on_message(raw, 1) == OTHER
    assert len(got) == 1 and h.rejections == 1 and h.bad_messages == 0
    found, name, why, again = got[0]
    assert again is retry and why and name == named
    if named:
        assert found == inst
    if named and not retry:
        assert sync.book.state == INVALID and states[-1].reason.startswith("subscription rejected: ")
    else:
        assert sync.book.state != INVALID


def test_a_gemini_refusal_applies_to_the_subscribed_symbols_that_have_not_streamed() -> None:
    cls = handler_class("gemini")
    assert cls is not None
    ok, bad = _inst("gemini", "btcusd"), Instrument("gemini", "XXX/USD", "XXX", "USD", Kind.SPOT, 0.01, 1e-6, 0.0,
                                                     1.0, Fees(0.001), "xxxusd")
    h = cls("gemini", Catalog([ok, bad]), lambda b, t: None)
    got: list[tuple[Instrument | None, str]] = []
    h.on_reject = lambda _h, i, n, why, r: got.append((i, why))
    h.subscribe_messages([ok, bad])
    h.on_message(b'{"type":"l2_updates","symbol":"BTCUSD","changes":[["buy","100","1"],["sell","101","1"]],'
                 b'"trades":[]}', 1)
    assert h.on_message(b'{"result":"error","reason":"NoValidTradingPairs"}', 2) == OTHER
    assert got == [(bad, "Gemini: NoValidTradingPairs")] and h.rejections == 1
    assert h.syncs["BTC/USD"].book.valid


def test_bitfinex_already_subscribed_and_unsubscribe_errors_are_not_refusals() -> None:
    cls = handler_class("bitfinex")
    assert cls is not None
    h = cls("bitfinex", Catalog([_inst("bitfinex", "tBTCUSD")]), lambda b, t: None)
    h.on_message(b'{"event":"error","msg":"subscribe: dup","code":10301,"channel":"book","symbol":"tBTCUSD"}', 1)
    h.on_message(b'{"event":"error","msg":"unsubscribe: invalid","code":10400}', 2)
    assert h.rejections == 0


def _bitfinex_session(bad: str) -> Any:
    async def session(conn: Conn) -> None:
        chan = 10
        seq = 0
        while True:
            m = await conn.recv_json()
            if m["event"] == "conf":
                await conn.send({"event": "conf", "status": "OK", "flags": m["flags"]})
            elif m["event"] == "subscribe" and m["symbol"] == bad:
                await conn.send({"event": "error", "msg": "symbol: invalid", "code": 10300, "channel": m["channel"],
                                 "symbol": bad, "pair": bad[1:]})
            elif m["event"] == "subscribe":
                chan += 1
                await conn.send({"event": "subscribed", "channel": m["channel"], "chanId": chan,
                                 "symbol": m["symbol"], "prec": "P0", "freq": "F0", "len": "100", "pair": "X"})
                seq += 1
                body: Any = [[100, 1, 1.5], [101, 1, -2]] if m["channel"] == "book" else []
                await conn.send([chan, body, seq])
    return session


def test_a_refused_market_is_a_failure_of_the_run_and_the_others_stream() -> None:
    good = _inst("bitfinex", "tBTCUSD")
    bad = Instrument("bitfinex", "XXX/USD", "XXX", "USD", Kind.SPOT, 0.01, 1e-6, 0.0, 1.0, Fees(0.001), "tXXXUSD")
    with ProtoVenue(_bitfinex_session("tXXXUSD")) as venue:
        engine = Engine(load_settings(storage={"enabled": False}), ["bitfinex"], instruments=[])
        engine.catalog.add(good)
        engine.catalog.add(bad)
        feed = VenueFeed(engine, "bitfinex", [good, bad], url=venue.ws_url, backoff=Backoff(0.05, 0.2))
        h = engine.handler("bitfinex")

        run_feed_until(feed, lambda: bool(feed.stats.failures) and h.sync_for(good).book.valid, 20)
    assert feed.stats.failures == {"XXX/USD": "Bitfinex error 10300: symbol: invalid"}
    assert h.syncs["BTC/USD"].book.valid and h.syncs["XXX/USD"].book.state == INVALID
    from cryptoarb.cli.live import _report_failures

    assert _report_failures([feed]) is True  # printed; arb run / arb record then exit 1


def test_a_refusal_worth_retrying_is_subscribed_again_then_given_up() -> None:
    inst = _inst("gate", "BTC_USDT")
    engine = Engine(load_settings(storage={"enabled": False}), ["gate"], instruments=[])
    engine.catalog.add(inst)
    feed = VenueFeed(engine, "gate", [inst], url="ws://127.0.0.1:9/", rest=object())  # type: ignore[arg-type]
    feed.retry_delay = 0.001
    h = feed.handler
    h.sync_for(inst)
    frame = next(c[2] for c in CASES if c[0] == "gate" and c[4])

    async def go() -> list[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        feed._queues[id(h)] = queue
        sent: list[str] = []
        for _ in range(feed.subscribe_retries + 1):
            h.on_message(frame, 1)
            await asyncio.sleep(0.05)
            while not queue.empty():
                sent.append(queue.get_nowait())
        return sent

    sent = asyncio.run(go())
    subs = [json.loads(m) for m in sent]
    assert len(subs) == feed.subscribe_retries  # the order book (no trades in a live run), each retry
    assert all(m["event"] == "subscribe" and "BTC_USDT" in json.dumps(m["payload"]) for m in subs)
    assert feed.stats.failures == {"BTC/USDT": "Gate error 3: Server error, BTC_USDT"}
    assert h.syncs["BTC/USDT"].book.state == INVALID
