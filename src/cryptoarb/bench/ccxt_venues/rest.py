"""Drivers for exchanges whose books start from the capture's REST snapshots.

ccxt's spawned snapshot loader (``load_order_book``, binance's ``fetch_order_book_snapshot``) is
answered from the capture's ``.http.0.0`` responses by :class:`cryptoarb.bench.ccxt_venues.run._Run`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptoarb.bench.ccxt_common import binance_market
from cryptoarb.bench.ccxt_venues.common import (
    Markets,
    Spec,
    _Client,
    _dict,
    _from_sent,
    _market,
    _split,
    _stateless,
    _unique,
)
from cryptoarb.bench.venues import Capture
from cryptoarb.venues.base import DEPTH, OTHER

# -- bitstamp (diff_order_book + REST order_book) ------------------------------------------------


@_from_sent
def _bitstamp_markets(m: dict[str, Any]) -> Iterator[dict[str, Any]]:
    ch = str(_dict(m.get("data")).get("channel", ""))
    if ch.startswith("diff_order_book_"):
        mid = ch.rsplit("_", 1)[-1]
        base, quote = _split(mid)
        yield _market(mid, base, quote)


@_stateless
def _bitstamp_classifier(msg: Any) -> int:
    d = _dict(msg)
    ok = d.get("event") == "data" and str(d.get("channel", "")).startswith("diff_order_book_")
    return DEPTH if ok else OTHER


# -- kucoin (level2 deltas + REST level2) --------------------------------------------------------


@_from_sent
def _kucoin_markets(m: dict[str, Any]) -> Iterator[dict[str, Any]]:
    topic = str(m.get("topic", ""))
    if topic.startswith("/market/level2:"):
        for mid in topic.split(":", 1)[1].split(","):
            base, quote = mid.split("-", 1)
            yield _market(mid, base, quote)


def _kucoin_prepare(ex: Any, client: _Client, markets: Markets) -> None:
    for m in markets:  # watch_order_book's subscription, keyed by topic (limit None: full depth)
        client.subscriptions["/market/level2:" + m["id"]] = {"symbol": m["symbol"], "limit": None}


@_stateless
def _kucoin_classifier(msg: Any) -> int:
    return DEPTH if _dict(msg).get("subject") == "trade.l2update" else OTHER


# -- gate (v4 spot.order_book_update + REST order_book with_id) ----------------------------------


@_from_sent
def _gate_markets(d: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if d.get("channel") == "spot.order_book_update" and d.get("event") == "subscribe":
        mid = str(d.get("payload", [""])[0])
        base, quote = mid.split("_", 1)
        yield _market(mid, base, quote)


def _gate_prepare(ex: Any, client: _Client, markets: Markets) -> None:
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


@_stateless
def _gate_classifier(msg: Any) -> int:
    d = _dict(msg)
    ok = d.get("channel") == "spot.order_book_update" and d.get("event") == "update"
    return DEPTH if ok else OTHER


# -- binance / binanceusdm (combined streams + REST depth) ---------------------------------------


def _binance_markets(cap: Capture) -> Markets:
    streams = parse_qs(urlparse(cap.ws_url).query).get("streams", [""])[0].split("/")
    out = []
    for st in streams:
        native, _, rest = st.partition("@")
        if rest.startswith("depth"):
            base, quote = _split(native)
            symbol = f"{base}/{quote}" + (f":{quote}" if cap.venue == "binanceusdm" else "")
            out.append(binance_market(cap.venue, symbol))
    return _unique(out)


def _binance_prepare(ex: Any, client: _Client, markets: Markets) -> None:
    # what ccxt does on the subscription confirmation of watch_order_book_for_symbols: create the
    # books (nonce None, caching deltas) and spawn fetch_order_book_snapshot for each
    sub = {
        "symbols": [m["symbol"] for m in markets], "limit": 1000, "params": {},
        "type": "spot" if ex.id == "binance" else "linear",
    }
    for m in markets:
        client.subscriptions["orderbook::" + m["symbol"]] = sub
    ex.handle_order_book_subscription(client, None, sub)


@_stateless
def _binance_classifier(msg: Any) -> int:
    return DEPTH if "@depth" in str(_dict(msg).get("stream", "")) else OTHER


SPECS: dict[str, Spec] = {
    "binance": Spec("binance", _binance_markets, _binance_classifier, _binance_prepare, rest=True),
    "binanceusdm": Spec("binanceusdm", _binance_markets, _binance_classifier, _binance_prepare, rest=True),
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
}
