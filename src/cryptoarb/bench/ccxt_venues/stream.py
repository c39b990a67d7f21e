"""Drivers for exchanges whose books come entirely from the stream: in-stream snapshot, then deltas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptoarb.bench.ccxt_venues.common import (
    Classifier,
    Markets,
    Spec,
    _Client,
    _dict,
    _from_sent,
    _market,
    _split,
    _stateless,
)
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT

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


@_from_sent
def _okx_markets(m: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for a in m.get("args", []):
        if isinstance(a, dict) and a.get("channel") == "books":
            yield _okx_market(a["instId"])


def _okx_prepare(ex: Any, client: _Client, markets: Markets) -> None:
    for m in markets:  # watch_order_book subscribes "books:<symbol>" with limit 400
        client.subscriptions["books:" + m["symbol"]] = {"limit": 400}


@_stateless
def _okx_classifier(msg: Any) -> int:
    d = _dict(msg)
    if _dict(d.get("arg")).get("channel") == "books":
        action = d.get("action")
        return SNAPSHOT if action == "snapshot" else DEPTH if action == "update" else OTHER
    return OTHER


# -- bitfinex (ws v2 arrays; channel ids from the "subscribed" events) --------------------------


@_from_sent
def _bitfinex_markets(d: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if d.get("event") == "subscribe" and d.get("channel") == "book":
        sym = str(d.get("symbol", ""))
        pair = sym[1:] if sym.startswith("t") else sym
        if ":" in pair:
            base, quote = pair.split(":", 1)
        else:
            base, quote = pair[:-3], pair[-3:]
        yield _market(sym, base, quote)


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


@_from_sent
def _gemini_markets(m: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for sub in m.get("subscriptions", []):
        if isinstance(sub, dict) and sub.get("name") == "l2":
            for s in sub.get("symbols", []):
                base, quote = _split(s)
                yield _market(s.lower(), base, quote)


@_stateless
def _gemini_classifier(msg: Any) -> int:
    d = _dict(msg)
    if d.get("type") != "l2_updates":
        return OTHER
    return SNAPSHOT if "auction_events" in d and "trades" in d else DEPTH


# -- coinbase exchange (legacy Pro "level2": snapshot + l2update) --------------------------------


@_from_sent
def _coinbase_markets(d: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if d.get("type") == "subscribe" and "level2" in d.get("channels", []):
        for pid in d.get("product_ids", []):
            base, quote = pid.split("-", 1)
            yield _market(pid, base, quote)


def _coinbase_prepare(ex: Any, client: _Client, markets: Markets) -> None:
    for m in markets:
        client.subscriptions["level2:" + m["id"]] = {"limit": None}


@_stateless
def _coinbase_classifier(msg: Any) -> int:
    t = _dict(msg).get("type")
    return SNAPSHOT if t == "snapshot" else DEPTH if t == "l2update" else OTHER


# -- bitget (spot v1 "books": snapshot/update with CRC32 checksum) -------------------------------


@_from_sent
def _bitget_markets(m: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for a in m.get("args", []):
        if isinstance(a, dict) and a.get("channel") == "books":
            base, quote = _split(a["instId"])
            yield _market(a["instId"], base, quote)


@_stateless
def _bitget_classifier(msg: Any) -> int:
    d = _dict(msg)
    if _dict(d.get("arg")).get("channel") != "books" or "data" not in d:
        return OTHER
    return SNAPSHOT if d.get("action") == "snapshot" else DEPTH


SPECS: dict[str, Spec] = {
    "okx": Spec("okx", _okx_markets, _okx_classifier, _okx_prepare,
                note="2022 capture has no seqId, so ccxt skips its nonce check; ccxt does not verify the "
                     "OKX checksum"),
    "bitfinex": Spec("bitfinex", _bitfinex_markets, _bitfinex_classifier,
                     note="channel ids come from the capture's own 'subscribed' events"),
    "gemini": Spec("gemini", _gemini_markets, _gemini_classifier),
    "coinbaseexchange": Spec("coinbaseexchange", _coinbase_markets, _coinbase_classifier, _coinbase_prepare),
    "bitget": Spec("bitget", _bitget_markets, _bitget_classifier,
                   note="spot v1 stream (instType 'sp'); ccxt's own checksum check is on"),
}
