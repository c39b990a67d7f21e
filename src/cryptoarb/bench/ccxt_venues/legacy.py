"""Drivers for captures in a format current ccxt.pro no longer speaks.

They are still fed once, so the ``n/a`` reason says what ccxt made of the frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptoarb.bench.ccxt_venues.common import _QUOTES, Spec, _dict, _from_sent, _market, _split, _stateless
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT

# -- htx (legacy depth.step0 full books, gzip) ---------------------------------------------------


@_from_sent
def _htx_markets(m: dict[str, Any]) -> Iterator[dict[str, Any]]:
    sub = str(m.get("sub", ""))
    if sub.startswith("market.") and ".depth." in sub:
        mid = sub.split(".")[1]
        base, quote = _split(mid, (*_QUOTES, "HUSD"))
        yield _market(mid, base, quote)


@_stateless
def _htx_classifier(msg: Any) -> int:
    d = _dict(msg)
    return SNAPSHOT if ".depth." in str(d.get("ch", "")) and "tick" in d else OTHER


# -- kraken (WS v1 arrays) -----------------------------------------------------------------------


@_from_sent
def _kraken_markets(d: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if d.get("event") == "subscribe" and _dict(d.get("subscription")).get("name") == "book":
        for pair in d.get("pair", []):
            base, quote = (x.replace("XBT", "BTC") for x in pair.split("/", 1))
            yield _market(pair.replace("/", ""), base, quote, wsName=pair, altname=pair.replace("/", ""))


@_stateless
def _kraken_classifier(msg: Any) -> int:
    if isinstance(msg, list) and len(msg) >= 4 and str(msg[-2]).startswith("book"):
        body = msg[1]
        return SNAPSHOT if isinstance(body, dict) and ("as" in body or "bs" in body) else DEPTH
    return OTHER


# -- bybit (legacy v2 orderBookL2_25) ------------------------------------------------------------


@_from_sent
def _bybit_markets(m: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for a in m.get("args", []):
        if isinstance(a, str) and a.startswith("orderBook"):
            mid = a.split(".", 1)[1]
            base, quote = _split(mid)
            yield _market(mid, base, quote, "swap", base if quote == "USD" else quote)


@_stateless
def _bybit_classifier(msg: Any) -> int:
    d = _dict(msg)
    if not str(d.get("topic", "")).startswith("orderBook"):
        return OTHER
    return SNAPSHOT if d.get("type") == "snapshot" else DEPTH


SPECS: dict[str, Spec] = {
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
