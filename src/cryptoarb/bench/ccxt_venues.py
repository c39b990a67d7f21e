"""ccxt.pro's side of the per-venue benchmark: its own ``handle_message`` on the captured frames, offline.

For each exchange whose capture current ccxt can still parse, :func:`bench_ccxt` drives the real
``ccxt.pro.<exchange>.handle_message(client, message)`` over the received frames of a cryptofeed
capture, in order, with no network (the techniques of :mod:`cryptoarb.bench.ccxt_ref`):

- markets: minimal market dicts for the symbols the capture subscribes to (found in its SENT
  subscription messages) are injected with ``set_markets``; ``load_markets`` never runs;
- the client is a stand-in for ccxt's ws ``Client`` (``url`` = the capture's URL, ``futures``,
  ``subscriptions``, ``resolve``/``reject`` that only record, ``close``/``send`` that do nothing);
- order books and subscriptions are pre-created the way that exchange's ``watch_order_book``
  would leave them, where its handlers expect them (gate, kucoin, okx); the subscribe handshake
  frames of the capture (Bitfinex channel ids, Bitstamp ``subscription_succeeded``) go through
  ``handle_message`` like any other frame;
- REST-snapshot exchanges (bitstamp, kucoin, gate): ``spawn`` is stubbed, so ccxt's
  ``load_order_book`` coroutine waits until the capture's own REST response for that market has
  arrived (``.http.0.0`` file, merged by time); then it runs for real with only the HTTP call
  (``exchange.fetch``) answered from the capture, so ccxt's ``fetch_order_book`` parses it and ccxt
  replays its cached deltas by its own rules. ``watchOrderBook.snapshotDelay`` is set to 0 so
  ccxt asks for its snapshot on the first delta, as the recording client did; snapshot loading is
  not timed (nor is the native ``on_snapshot``).

Timing: ``perf_counter_ns`` around what ccxt's ws client does with an inbound frame: gunzip for a
binary frame (HTX), the JSON parse with the parser ccxt's client picked (orjson when importable),
then ``exchange.handle_message``. Decoding bytes to ``str`` (done by aiohttp) is left out. Every
received frame is timed; frames are filed as DEPTH (a book delta) or SNAPSHOT (a full book in
the stream) by a per-exchange classifier applied after the timing, matching the kinds the native
handlers return.

Errors: exceptions escaping ``handle_message`` plus every ``client.reject`` (ccxt's way of
reporting a checksum or nonce failure) are counted. Where ccxt cannot process the capture at all
(an API version current ccxt no longer speaks), the result is ``{"reason": ...}``: for those the
frames are still fed once, and the reason says what ccxt made of them.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptoarb.bench.venues import KINDS, Capture, PathLike, load_capture, median_of, summarize
from cryptoarb.replay.cryptofeed import HTTP, RECV
from cryptoarb.replay.run import REPLAY_GC_THRESHOLDS
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT

__all__ = ["SPECS", "available", "bench_ccxt", "ccxt_version", "parser_name", "reason_for"]

Classifier = Callable[[Any], int]


def available() -> bool:
    try:
        import ccxt.pro  # noqa: F401
    except Exception:
        return False
    return True


def ccxt_version() -> str | None:
    try:
        import ccxt
    except Exception:
        return None
    return str(getattr(ccxt, "__version__", "unknown"))


def _parser() -> tuple[Callable[[Any], Any], str]:
    try:
        from ccxt.async_support.base.ws.client import json_parser
    except Exception:
        return json.loads, "json"
    return json_parser.loads, str(getattr(json_parser, "__name__", "json"))


def parser_name() -> str:
    return _parser()[1] if available() else "-"


# ------------------------------------------------------------------------------ offline plumbing


def _done_future() -> asyncio.Future[None]:
    """An already-completed future: ``asyncio.ensure_future`` returns it as is, no loop needed."""
    loop = asyncio.new_event_loop()
    try:
        fut: asyncio.Future[None] = loop.create_future()
        fut.set_result(None)
    finally:
        loop.close()
    return fut


class _Client:
    """Stands in for ccxt's ws ``Client``: what the public order-book handlers touch."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.futures: dict[str, Any] = {}
        self.subscriptions: dict[str, Any] = {}
        self.rejections: dict[str, Any] = {}
        self.rejected: list[BaseException] = []
        self.sent: list[Any] = []
        self.error: BaseException | None = None
        self.lastPong: int | None = None
        self.keepAlive = 0

    def resolve(self, result: Any, message_hash: Any = None) -> Any:
        if message_hash in self.futures:
            del self.futures[message_hash]
        return result

    def reject(self, result: Any, message_hash: Any = None) -> Any:
        self.rejected.append(result)
        if message_hash is not None:
            self.rejections[str(message_hash)] = result
        return result

    def close(self, code: int = 1000) -> asyncio.Future[None]:
        return _done_future()

    def send(self, message: Any) -> asyncio.Future[None]:
        self.sent.append(message)
        return _done_future()


def _drive(awaitable: Awaitable[Any]) -> Any:
    """Run a ccxt coroutine whose I/O is all stubbed, without an event loop."""
    it = awaitable.__await__()
    try:
        it.send(None)
    except StopIteration as stop:
        return stop.value
    close = getattr(it, "close", None)
    if close is not None:
        close()
    raise RuntimeError("ccxt coroutine suspended: it attempted real I/O, which the offline replay cannot serve")


# ------------------------------------------------------------------------------ markets


def _market(
    market_id: str,
    base: str,
    quote: str,
    kind: str = "spot",
    settle: str | None = None,
    expiry: str | None = None,
    contract_size: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A minimal ccxt market structure; ``kind`` is ``spot``, ``swap`` or ``future``."""
    spot = kind == "spot"
    symbol = f"{base}/{quote}"
    if not spot:
        settle = settle or quote
        symbol += f":{settle}" + (f"-{expiry}" if expiry else "")
    linear = None if spot else settle == quote
    return {
        "id": market_id,
        "lowercaseId": market_id.lower(),
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": settle,
        "baseId": base,
        "quoteId": quote,
        "settleId": settle,
        "type": kind,
        "spot": spot,
        "margin": False,
        "swap": kind == "swap",
        "future": kind == "future",
        "option": False,
        "index": False,
        "active": True,
        "contract": not spot,
        "linear": linear,
        "inverse": None if spot else not linear,
        "contractSize": None if spot else (contract_size or 1.0),
        "expiry": None,
        "expiryDatetime": None,
        "strike": None,
        "optionType": None,
        "precision": {"amount": None, "price": None},
        "limits": {"amount": {"min": None, "max": None}, "price": {"min": None, "max": None}},
        "info": {"symbol": market_id},
        **extra,
    }


_QUOTES = (
    "USDT", "USDC", "BUSD", "DAI", "USD", "EUR", "GBP", "CHF", "JPY",
    "SGD", "AUD", "CAD", "TRY", "BTC", "XBT", "ETH", "LTC", "BNB", "HT", "TRX", "XRP", "EOS",
)


def _split(native: str, quotes: Sequence[str] = _QUOTES) -> tuple[str, str]:
    """``BTCGBP`` / ``ltceth`` -> (base, quote) by the longest known quote suffix."""
    n = native.upper()
    for q in sorted(quotes, key=len, reverse=True):
        if n.endswith(q) and len(n) > len(q):
            return n[: -len(q)], q
    raise ValueError(f"cannot split {native!r} into base and quote")


def _sent_json(cap: Capture) -> list[Any]:
    out = []
    for rec in cap.sent():
        try:
            out.append(json.loads(rec.payload))
        except ValueError:
            continue
    return out


def _unique(markets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for m in markets:
        seen.setdefault(m["symbol"], m)
    return list(seen.values())


# ------------------------------------------------------------------------------ per exchange


@dataclass
class Spec:
    """How to drive one exchange's ccxt.pro code on its capture."""

    ccxt_id: str
    markets: Callable[[Capture], list[dict[str, Any]]]
    classifier: Callable[[], Classifier]  # a fresh (possibly stateful) classifier per run
    prepare: Callable[[Any, _Client, list[dict[str, Any]]], None] | None = None
    rest: bool = False  # books start from the capture's REST snapshots (spawned load_order_book)
    #: adapts a captured REST body to what current ccxt's fetch_order_book requires (body, local_ns)
    rest_fixup: Callable[[Any, int], Any] | None = None
    #: the capture's format is one current ccxt no longer speaks: the reason, confirmed by a run
    legacy: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _dict(msg: Any) -> dict[str, Any]:
    return msg if isinstance(msg, dict) else {}


# -- okx (v5 "books": action snapshot/update) ---------------------------------------------------


def _okx_market(inst_id: str) -> dict[str, Any]:
    parts = inst_id.split("-")
    base, quote = parts[0], parts[1]
    if len(parts) == 2:
        return _market(inst_id, base, quote)
    settle = quote if quote in ("USDT", "USDC") else base
    if parts[2] == "SWAP":
        return _market(inst_id, base, quote, "swap", settle)
    return _market(inst_id, base, quote, "future", settle, expiry=parts[2])


def _okx_markets(cap: Capture) -> list[dict[str, Any]]:
    ids = [
        a["instId"] for m in _sent_json(cap) for a in _dict(m).get("args", [])
        if isinstance(a, dict) and a.get("channel") == "books"
    ]
    return _unique([_okx_market(i) for i in ids])


def _okx_prepare(ex: Any, client: _Client, markets: list[dict[str, Any]]) -> None:
    for m in markets:  # watch_order_book subscribes "books:<symbol>" with limit 400
        client.subscriptions["books:" + m["symbol"]] = {"limit": 400}


def _okx_classifier() -> Classifier:
    def classify(msg: Any) -> int:
        d = _dict(msg)
        if _dict(d.get("arg")).get("channel") == "books":
            action = d.get("action")
            return SNAPSHOT if action == "snapshot" else DEPTH if action == "update" else OTHER
        return OTHER

    return classify


# -- bitfinex (ws v2 arrays; channel ids from the "subscribed" events) --------------------------


def _bitfinex_markets(cap: Capture) -> list[dict[str, Any]]:
    out = []
    for m in _sent_json(cap):
        d = _dict(m)
        if d.get("event") == "subscribe" and d.get("channel") == "book":
            sym = str(d.get("symbol", ""))
            pair = sym[1:] if sym.startswith("t") else sym
            if ":" in pair:
                base, quote = pair.split(":", 1)
            else:
                base, quote = pair[:-3], pair[-3:]
            out.append(_market(sym, base, quote))
    return _unique(out)


def _bitfinex_classifier() -> Classifier:
    books: set[Any] = set()

    def classify(msg: Any) -> int:
        if isinstance(msg, dict):
            if msg.get("event") == "subscribed" and msg.get("channel") == "book":
                books.add(msg.get("chanId"))
            return OTHER
        if isinstance(msg, list) and len(msg) > 1 and msg[0] in books and isinstance(msg[1], list):
            return SNAPSHOT if msg[1] and isinstance(msg[1][0], list) else DEPTH
        return OTHER

    return classify


# -- gemini (v2 marketdata "l2_updates"; the first one per symbol is the full book) -------------


def _gemini_markets(cap: Capture) -> list[dict[str, Any]]:
    out = []
    for m in _sent_json(cap):
        for sub in _dict(m).get("subscriptions", []):
            if isinstance(sub, dict) and sub.get("name") == "l2":
                for s in sub.get("symbols", []):
                    base, quote = _split(s)
                    out.append(_market(s.lower(), base, quote))
    return _unique(out)


def _gemini_classifier() -> Classifier:
    def classify(msg: Any) -> int:
        d = _dict(msg)
        if d.get("type") != "l2_updates":
            return OTHER
        return SNAPSHOT if "auction_events" in d and "trades" in d else DEPTH

    return classify


# -- coinbase exchange (legacy Pro "level2": snapshot + l2update) --------------------------------


def _coinbase_markets(cap: Capture) -> list[dict[str, Any]]:
    out = []
    for m in _sent_json(cap):
        d = _dict(m)
        if d.get("type") == "subscribe" and "level2" in d.get("channels", []):
            for pid in d.get("product_ids", []):
                base, quote = pid.split("-", 1)
                out.append(_market(pid, base, quote))
    return _unique(out)


def _coinbase_prepare(ex: Any, client: _Client, markets: list[dict[str, Any]]) -> None:
    for m in markets:
        client.subscriptions["level2:" + m["id"]] = {"limit": None}


def _coinbase_classifier() -> Classifier:
    def classify(msg: Any) -> int:
        t = _dict(msg).get("type")
        return SNAPSHOT if t == "snapshot" else DEPTH if t == "l2update" else OTHER

    return classify


# -- bitstamp (diff_order_book + REST order_book) ------------------------------------------------


def _bitstamp_markets(cap: Capture) -> list[dict[str, Any]]:
    out = []
    for m in _sent_json(cap):
        ch = str(_dict(_dict(m).get("data")).get("channel", ""))
        if ch.startswith("diff_order_book_"):
            mid = ch.rsplit("_", 1)[-1]
            base, quote = _split(mid)
            out.append(_market(mid, base, quote))
    return _unique(out)


def _bitstamp_classifier() -> Classifier:
    def classify(msg: Any) -> int:
        d = _dict(msg)
        ok = d.get("event") == "data" and str(d.get("channel", "")).startswith("diff_order_book_")
        return DEPTH if ok else OTHER

    return classify


# -- kucoin (level2 deltas + REST level2) --------------------------------------------------------


def _kucoin_markets(cap: Capture) -> list[dict[str, Any]]:
    out = []
    for m in _sent_json(cap):
        topic = str(_dict(m).get("topic", ""))
        if topic.startswith("/market/level2:"):
            for mid in topic.split(":", 1)[1].split(","):
                base, quote = mid.split("-", 1)
                out.append(_market(mid, base, quote))
    return _unique(out)


def _kucoin_prepare(ex: Any, client: _Client, markets: list[dict[str, Any]]) -> None:
    for m in markets:  # watch_order_book's subscription, keyed by topic (limit None: full depth)
        client.subscriptions["/market/level2:" + m["id"]] = {"symbol": m["symbol"], "limit": None}


def _kucoin_classifier() -> Classifier:
    def classify(msg: Any) -> int:
        return DEPTH if _dict(msg).get("subject") == "trade.l2update" else OTHER

    return classify


# -- gate (v4 spot.order_book_update + REST order_book with_id) ----------------------------------


def _gate_markets(cap: Capture) -> list[dict[str, Any]]:
    out = []
    for m in _sent_json(cap):
        d = _dict(m)
        if d.get("channel") == "spot.order_book_update" and d.get("event") == "subscribe":
            mid = str(d.get("payload", [""])[0])
            base, quote = mid.split("_", 1)
            out.append(_market(mid, base, quote))
    return _unique(out)


def _gate_prepare(ex: Any, client: _Client, markets: list[dict[str, Any]]) -> None:
    # what handle_order_book_subscription does on the subscribe ack (whose id this capture lacks)
    for m in markets:
        book = ex.order_book({}, 100)
        book["nonce"] = None
        book.cache = []
        ex.orderbooks[m["symbol"]] = book
        client.subscriptions["orderbook:" + m["symbol"]] = {"symbol": m["symbol"], "limit": 100}


def _gate_rest_fixup(body: Any, local_ns: int) -> Any:
    # Gate added "current" (ms) to /spot/order_book after 2021; ccxt raises without it
    if isinstance(body, dict) and "current" not in body:
        body = {**body, "current": local_ns // 1_000_000}
    return body


def _gate_classifier() -> Classifier:
    def classify(msg: Any) -> int:
        d = _dict(msg)
        ok = d.get("channel") == "spot.order_book_update" and d.get("event") == "update"
        return DEPTH if ok else OTHER

    return classify


# -- bitget (spot v1 "books": snapshot/update with CRC32 checksum) -------------------------------


def _bitget_markets(cap: Capture) -> list[dict[str, Any]]:
    out = []
    for m in _sent_json(cap):
        for a in _dict(m).get("args", []):
            if isinstance(a, dict) and a.get("channel") == "books":
                base, quote = _split(a["instId"])
                out.append(_market(a["instId"], base, quote))
    return _unique(out)


def _bitget_classifier() -> Classifier:
    def classify(msg: Any) -> int:
        d = _dict(msg)
        if _dict(d.get("arg")).get("channel") != "books" or "data" not in d:
            return OTHER
        return SNAPSHOT if d.get("action") == "snapshot" else DEPTH

    return classify


# -- htx (legacy depth.step0 full books, gzip) ---------------------------------------------------


def _htx_markets(cap: Capture) -> list[dict[str, Any]]:
    out = []
    for m in _sent_json(cap):
        sub = str(_dict(m).get("sub", ""))
        if sub.startswith("market.") and ".depth." in sub:
            mid = sub.split(".")[1]
            base, quote = _split(mid, (*_QUOTES, "HUSD"))
            out.append(_market(mid, base, quote))
    return _unique(out)


def _htx_classifier() -> Classifier:
    def classify(msg: Any) -> int:
        d = _dict(msg)
        return SNAPSHOT if ".depth." in str(d.get("ch", "")) and "tick" in d else OTHER

    return classify


# -- kraken (WS v1 arrays) -----------------------------------------------------------------------


def _kraken_markets(cap: Capture) -> list[dict[str, Any]]:
    out = []
    for m in _sent_json(cap):
        d = _dict(m)
        if d.get("event") == "subscribe" and _dict(d.get("subscription")).get("name") == "book":
            for pair in d.get("pair", []):
                base, quote = (x.replace("XBT", "BTC") for x in pair.split("/", 1))
                out.append(_market(pair.replace("/", ""), base, quote, wsName=pair, altname=pair.replace("/", "")))
    return _unique(out)


def _kraken_classifier() -> Classifier:
    def classify(msg: Any) -> int:
        if isinstance(msg, list) and len(msg) >= 4 and str(msg[-2]).startswith("book"):
            body = msg[1]
            return SNAPSHOT if isinstance(body, dict) and ("as" in body or "bs" in body) else DEPTH
        return OTHER

    return classify


# -- bybit (legacy v2 orderBookL2_25) ------------------------------------------------------------


def _bybit_markets(cap: Capture) -> list[dict[str, Any]]:
    out = []
    for m in _sent_json(cap):
        for a in _dict(m).get("args", []):
            if isinstance(a, str) and a.startswith("orderBook"):
                mid = a.split(".", 1)[1]
                base, quote = _split(mid)
                out.append(_market(mid, base, quote, "swap", base if quote == "USD" else quote))
    return _unique(out)


def _bybit_classifier() -> Classifier:
    def classify(msg: Any) -> int:
        d = _dict(msg)
        if not str(d.get("topic", "")).startswith("orderBook"):
            return OTHER
        return SNAPSHOT if d.get("type") == "snapshot" else DEPTH

    return classify


# -- binance / binanceusdm (combined streams + REST depth) ---------------------------------------


def _binance_markets(cap: Capture) -> list[dict[str, Any]]:
    from cryptoarb.bench.ccxt_ref import binance_market

    streams = parse_qs(urlparse(cap.ws_url).query).get("streams", [""])[0].split("/")
    out = []
    for st in streams:
        native, _, rest = st.partition("@")
        if rest.startswith("depth"):
            base, quote = _split(native)
            symbol = f"{base}/{quote}" + (f":{quote}" if cap.venue == "binanceusdm" else "")
            out.append(binance_market(cap.venue, symbol))
    return _unique(out)


def _binance_prepare(ex: Any, client: _Client, markets: list[dict[str, Any]]) -> None:
    # what ccxt does on the subscription confirmation of watch_order_book_for_symbols: create the
    # books (nonce None, caching deltas) and spawn fetch_order_book_snapshot for each
    sub = {
        "symbols": [m["symbol"] for m in markets], "limit": 1000, "params": {},
        "type": "spot" if ex.id == "binance" else "linear",
    }
    for m in markets:
        client.subscriptions["orderbook::" + m["symbol"]] = sub
    ex.handle_order_book_subscription(client, None, sub)


def _binance_classifier() -> Classifier:
    def classify(msg: Any) -> int:
        return DEPTH if "@depth" in str(_dict(msg).get("stream", "")) else OTHER

    return classify


#: ccxt exchange id (the capture's venue) -> how to drive it
SPECS: dict[str, Spec] = {
    "binance": Spec("binance", _binance_markets, _binance_classifier, _binance_prepare, rest=True),
    "binanceusdm": Spec("binanceusdm", _binance_markets, _binance_classifier, _binance_prepare, rest=True),
    "okx": Spec("okx", _okx_markets, _okx_classifier, _okx_prepare,
                note="2022 capture has no seqId, so ccxt skips its nonce check; ccxt does not verify the "
                     "OKX checksum"),
    "bitfinex": Spec("bitfinex", _bitfinex_markets, _bitfinex_classifier,
                     note="channel ids come from the capture's own 'subscribed' events"),
    "gemini": Spec("gemini", _gemini_markets, _gemini_classifier),
    "coinbaseexchange": Spec("coinbaseexchange", _coinbase_markets, _coinbase_classifier, _coinbase_prepare),
    "bitstamp": Spec("bitstamp", _bitstamp_markets, _bitstamp_classifier, rest=True,
                     options={"snapshotDelay": 0}),
    "kucoin": Spec("kucoin", _kucoin_markets, _kucoin_classifier, _kucoin_prepare, rest=True,
                   options={"snapshotDelay": 0},
                   note="ccxt's unauthenticated fetch_order_book asks level2_100; it gets the captured full "
                        "level2 body"),
    "gate": Spec("gate", _gate_markets, _gate_classifier, _gate_prepare, rest=True,
                 rest_fixup=_gate_rest_fixup, options={"snapshotDelay": 0},
                 note="ccxt now uses spot.obu on api.gateio.ws but still handles spot.order_book_update "
                      "(its gateeu / futures path); the 2021 REST bodies lack 'current', which current ccxt "
                      "requires: it is added (the capture's receive time) before ccxt parses them. ccxt's "
                      "get_cache_index refuses a snapshot whose id is exactly the first cached delta's U-1 "
                      "(a valid chain point by Gate's rules): that market fails with 'nonce is behind the "
                      "cache'"),
    "bitget": Spec("bitget", _bitget_markets, _bitget_classifier,
                   note="spot v1 stream (instType 'sp'); ccxt's own checksum check is on"),
    "htx": Spec(
        "htx", _htx_markets, _htx_classifier,
        legacy="ccxt.pro htx books come from market.<id>.mbp.<n> increments plus a 'req' snapshot over the "
               "socket; depth.step0 frames (full books without 'event'/seqNum) only go into the book's cache "
               "and are never applied",
    ),
    "kraken": Spec(
        "kraken", _kraken_markets, _kraken_classifier,
        legacy="ccxt.pro kraken speaks Spot WS v2 (ws.kraken.com/v2, {'channel': 'book', ...} objects); "
               "this capture is WS v1 ([channelID, {'a': ...}, 'book-1000', pair] arrays), which its "
               "handle_message ignores",
    ),
    "bybit": Spec(
        "bybit", _bybit_markets, _bybit_classifier,
        legacy="ccxt.pro bybit speaks the v5 API (orderbook.<depth>.<symbol> with b/a/u/seq); this capture is "
               "the legacy v2 'realtime' orderBookL2_25 (level ids, delete/update/insert)",
    ),
}

#: venues whose capture is not compared, and why (not a ccxt limitation to confirm by a run)
NOT_COMPARED: dict[str, str] = {}


def reason_for(venue: str) -> str | None:
    """Why ccxt is not compared on ``venue`` without running anything, or None."""
    if not available():
        return "ccxt is not installed (dev dependency)"
    if venue in NOT_COMPARED:
        return NOT_COMPARED[venue]
    if venue not in SPECS:
        return f"no offline ccxt.pro driver for {venue!r}"
    return None


# ------------------------------------------------------------------------------ the run


def _rest_market_id(url: str) -> str:
    parts = urlparse(url)
    query = parse_qs(parts.query)
    for key in ("symbol", "currency_pair", "instId", "pair", "product_id", "market"):
        if key in query:
            return query[key][0]
    return parts.path.rstrip("/").rsplit("/", 1)[-1]


def _gunzip() -> Callable[[bytes], str]:
    from ccxt.async_support.base.ws.functions import gunzip

    return gunzip  # type: ignore[no-any-return]


def _is_json(text: Any) -> bool:  # ccxt.async_support.base.ws.functions.is_json_encoded_object
    return isinstance(text, str) and len(text) >= 2 and (text[0] == "{" or text[0] == "[")


class _Run:
    """One offline replay of a capture through one ccxt.pro exchange instance."""

    def __init__(self, spec: Spec, cap: Capture, markets: list[dict[str, Any]]) -> None:
        import ccxt.pro as ccxtpro

        self.spec = spec
        ex = getattr(ccxtpro, spec.ccxt_id)({"enableRateLimit": False})
        if spec.options:
            ex.options["watchOrderBook"] = {**(ex.options.get("watchOrderBook") or {}), **spec.options}
        ex.set_markets(markets)
        self.ex = ex
        self.markets = markets
        self.client = _Client(cap.ws_url)
        self.spawned: list[tuple[Any, tuple[Any, ...]]] = []
        self.spawned_names: dict[str, int] = {}
        self.bodies: dict[str, Any] = {}
        self.loads_run = 0
        self.load_errors: list[str] = []
        ex.spawn = self._spawn
        ex.delay = lambda _timeout, method, *args: self._spawn(method, *args)
        if spec.prepare is not None:
            spec.prepare(ex, self.client, markets)

    def _spawn(self, method: Any, *args: Any) -> None:
        name = getattr(method, "__name__", str(method))
        self.spawned_names[name] = self.spawned_names.get(name, 0) + 1
        self.spawned.append((method, args))

    def rest(self, url: str, raw: bytes, local_ns: int) -> None:
        """A captured REST response: keep it for the market's pending (or next) load_order_book."""
        mid = _rest_market_id(url)
        found = self.ex.markets_by_id.get(mid) if self.ex.markets_by_id else None
        if not found:
            return
        body = json.loads(raw)
        if self.spec.rest_fixup is not None:
            body = self.spec.rest_fixup(body, local_ns)
        self.bodies[found[0]["symbol"]] = body

    @staticmethod
    def _loader_symbol(method: Any, args: tuple[Any, ...]) -> str | None:
        """The symbol a spawned REST-snapshot loader is for; None for any other spawned call."""
        name = getattr(method, "__name__", "")
        if name == "load_order_book" and len(args) >= 3:  # (client, messageHash, symbol, limit, params)
            return str(args[2])
        if name == "fetch_order_book_snapshot" and len(args) >= 3:  # binance: (client, message, subscription)
            return str(args[2].get("symbol"))
        return None

    def run_loads(self) -> None:
        """Run every spawned snapshot loader whose market's REST body has arrived."""
        if not self.spawned:
            return
        keep = []
        for method, args in self.spawned:
            symbol = self._loader_symbol(method, args)
            if symbol is None:
                continue
            if symbol not in self.bodies:
                keep.append((method, args))
                continue
            # one captured response answers one request: a retry after a failed sync would need a
            # fresh snapshot, which the capture does not have
            body = self.bodies.pop(symbol)

            async def fake_fetch(url: str, method: str = "GET", headers: Any = None, body_: Any = None,
                                 _body: Any = body) -> Any:
                return _body

            self.ex.fetch = fake_fetch
            try:
                _drive(method(*args))
                self.loads_run += 1
            except Exception as e:
                self.load_errors.append(f"{method.__name__} {symbol}: {type(e).__name__}: {e}")
            finally:
                del self.ex.fetch
        self.spawned = keep

    def books(self) -> tuple[int, int]:
        """(books ccxt holds with levels on both sides and, for REST venues, a snapshot nonce; total)"""
        ok = 0
        for m in self.markets:
            book = self.ex.orderbooks.get(m["symbol"])
            if book is None:
                continue
            if not (len(book["bids"]) and len(book["asks"])):
                continue
            if self.spec.rest and book.get("nonce") is None:
                continue
            ok += 1
        return ok, len(self.markets)


def _ccxt_once(spec: Spec, cap: Capture, frames: list[tuple[str, str, int, bytes]],
               markets: list[dict[str, Any]]) -> dict[str, Any]:
    run = _Run(spec, cap, markets)
    loads, _ = _parser()
    gunzip = _gunzip()
    handle = run.ex.handle_message
    client = run.client
    classify = spec.classifier()
    perf = time.perf_counter_ns
    by_kind: dict[int, list[int]] = {k: [] for k in KINDS}
    other = 0
    escaped: list[BaseException] = []
    rest = spec.rest
    for kind, url, ts, raw in frames:
        if kind == HTTP:
            if rest:
                run.rest(url, raw, ts)
                run.run_loads()
            continue
        binary = raw[:2] == b"\x1f\x8b"
        data: Any = raw if binary else raw.decode()  # aiohttp hands ccxt str for text frames
        t0 = perf()
        try:
            if binary:
                data = gunzip(data)
            msg = loads(data) if _is_json(data) else data
            handle(client, msg)
        except Exception as e:
            t1 = perf()
            escaped.append(e)
            msg = None
        else:
            t1 = perf()
        if rest and run.spawned:
            run.run_loads()
        k = classify(msg) if msg is not None else OTHER
        lat = by_kind.get(k)
        if lat is None:
            other += 1
        else:
            lat.append(t1 - t0)
    problems: list[BaseException] = [*client.rejected, *escaped]
    books_ok, books_total = run.books()
    out: dict[str, Any] = {name: summarize(by_kind[k]) for k, name in KINDS.items()}
    out.update(
        other=other,
        books_ok=books_ok,
        books_total=books_total,
        errors=len(problems) + len(run.load_errors),
        rejected=len(client.rejected),
        exceptions=len(escaped),
        snapshot_loads=run.loads_run,
        checksum_spawns=sum(n for name, n in run.spawned_names.items() if "check" in name.lower()),
    )
    messages = [f"{type(e).__name__}: {e}" for e in problems] + run.load_errors
    out["first_errors"] = _first_distinct(messages, 3)
    return out


def _first_distinct(messages: list[str], n: int) -> list[str]:
    out: list[str] = []
    for m in messages:
        m = re.sub(r"\s+", " ", m)[:200]
        if m not in out:
            out.append(m)
        if len(out) == n:
            break
    return out


def bench_ccxt(path_or_paths: PathLike | Sequence[PathLike] | Capture, runs: int = 5) -> dict[str, Any]:
    """ccxt.pro's ``handle_message`` on one exchange's capture, ``runs`` times; medians.

    Returns the same shape as :func:`cryptoarb.bench.venues.bench_native` (``DEPTH``/``SNAPSHOT``
    summaries, ``books_ok``/``books_total``, ``errors``), or ``{"reason": ...}`` when ccxt cannot
    be compared on this capture.
    """
    cap = path_or_paths if isinstance(path_or_paths, Capture) else load_capture(path_or_paths)
    base: dict[str, Any] = {"capture": cap.name, "venue": cap.venue}
    why = reason_for(cap.venue)
    if why is not None:
        return {**base, "reason": why}
    spec = SPECS[cap.venue]
    frames = [(r.kind, r.url, r.ts_ns, r.payload) for r in cap.records if r.kind in (RECV, HTTP)]
    try:
        markets = spec.markets(cap)
    except Exception as e:
        return {**base, "reason": f"cannot build ccxt markets from the capture's subscriptions: {e}"}
    if not markets:
        return {**base, "reason": "the capture subscribes to no order book ccxt could be given a market for"}
    base.update(ccxt_id=spec.ccxt_id, ccxt_version=ccxt_version(), parser=parser_name(),
                markets=[m["symbol"] for m in markets])
    if spec.note:
        base["note"] = spec.note
    try:
        first = _ccxt_once(spec, cap, frames, markets)
    except Exception as e:
        return {**base, "reason": f"ccxt.pro {spec.ccxt_id} could not be driven offline: {type(e).__name__}: {e}"}
    book_frames = first["DEPTH"]["count"] + first["SNAPSHOT"]["count"]
    if spec.legacy or (book_frames and not first["books_ok"]):
        seen = (
            f"fed {book_frames} book frames: ccxt built {first['books_ok']} of {first['books_total']} books"
            f", {first['errors']} errors"
        )
        if first["first_errors"]:
            seen += f" (first: {first['first_errors'][0]})"
        if spec.legacy:
            return {**base, "reason": f"{spec.legacy} [{seen}]"}
        return {**base, "reason": f"ccxt.pro {spec.ccxt_id} cannot process this capture: {seen}"}
    per_run = [first]
    thresholds = gc.get_threshold()
    gc.set_threshold(*REPLAY_GC_THRESHOLDS)  # the GC setting the native side runs with
    try:
        for _ in range(max(1, runs)):
            gc.collect()
            per_run.append(_ccxt_once(spec, cap, frames, markets))
    finally:
        gc.set_threshold(*thresholds)
    per_run = per_run[1:]  # the first run (outside the GC setting) was the feasibility check
    result = {**base, "runs": len(per_run), **median_of(per_run)}
    return result


def _main_paths(paths: list[str]) -> None:  # debugging aid: python -m cryptoarb.bench.ccxt_venues FILE...
    print(json.dumps(bench_ccxt([Path(p) for p in paths] if len(paths) > 1 else paths[0], runs=1), indent=2))


if __name__ == "__main__":
    import sys

    _main_paths(sys.argv[1:])
