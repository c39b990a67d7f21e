"""Kraken Futures (``krakenfutures``) order books over ``wss://futures.kraken.com/ws/v1``.

The ``book`` feed sends a ``book_snapshot``, then one ``book`` message per level change, each
with ``seq``, the subscription's message sequence number (+1 per message of a product). A
delta whose ``seq`` is not the previous one + 1 means messages were lost: the book is invalid
and that product alone is re-subscribed (unsubscribe + subscribe in ``outbox``); its new
snapshot restarts the chain. An older ``seq`` is a duplicate and is skipped. Quantity 0
deletes a level; snapshots may list zero levels, which are ignored. There is no checksum.

The REST ``orderbook`` has no ``seq``, so books start from the stream (``rest_snapshot =
False``); ``parse_rest_orderbook`` reads a REST body for out-of-band checks. Kraken asks for a
ping at least every 60 s: the feed's WebSocket ping frames (every 20 s) are that ping, and the
``heartbeat`` feed is subscribed so a quiet market never looks stale.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from cryptoarb.core.book import VALID
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues._decode import Levels
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, BookSync, MessageError, ResubscribingHandler
from cryptoarb.venues.catalog import UnknownInstrument

VENUES = ("krakenfutures",)
_PREFIXES = {"PI": True, "FI": True, "PF": False, "FF": False}  # inverse?  (perpetual/fixed-date)


class _Level(msgspec.Struct):
    price: float
    qty: float


class _Msg(msgspec.Struct):
    """Any frame of the feed: book snapshot, book delta, heartbeat or event."""

    feed: str = ""
    event: str = ""
    product_id: str = ""
    seq: int = -1
    side: str = ""
    price: float = -1.0
    qty: float = -1.0
    timestamp: int = 0
    bids: list[_Level] = []
    asks: list[_Level] = []
    message: str = ""  # {"event":"error","message":"Invalid product id"}


class _RestBook(msgspec.Struct):
    bids: Levels
    asks: Levels


class _Rest(msgspec.Struct):
    result: str
    orderBook: _RestBook | None = None
    error: str = ""


_decode = msgspec.json.Decoder(_Msg).decode
_decode_rest = msgspec.json.Decoder(_Rest, strict=False).decode


class KrakenFuturesHandler(ResubscribingHandler):
    """Kraken Futures books, one WebSocket connection."""

    venues = VENUES
    refusal = "not Kraken Futures: {venue!r} (expected one of {expected})"
    ws_url = "wss://futures.kraken.com/ws/v1"
    max_symbols_per_message = 25
    max_symbols_per_connection = 100

    def _setup(self) -> None:
        self._products: dict[str, BookSync] = {}

    # -- live ------------------------------------------------------------------------
    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        msgs = [orjson.dumps({"event": "subscribe", "feed": "heartbeat"}).decode()]
        for i in range(0, len(insts), self.max_symbols_per_message):
            ids = [inst.exchange_symbol.upper() for inst in insts[i : i + self.max_symbols_per_message]]
            msgs.append(orjson.dumps({"event": "subscribe", "feed": "book", "product_ids": ids}).decode())
        return msgs

    def snapshot_request(self, inst: Instrument) -> tuple[str, dict[str, Any]]:
        """REST ``orderbook`` (for out-of-band checks only: it cannot seed a streamed book)."""
        return "public_get_orderbook", {"symbol": inst.exchange_symbol.upper()}

    def unify(self, native: str) -> str:
        """``PI_XBTUSD`` -> ``BTC/USD:BTC``, ``PF_XBTUSD`` -> ``BTC/USD:USD``,
        ``FI_XBTUSD_230929`` -> ``BTC/USD:BTC-230929`` (ccxt's symbols)."""
        kind, _, rest = native.upper().partition("_")
        pair, _, expiry = rest.partition("_")
        if kind not in _PREFIXES or not pair.endswith("USD") or len(pair) <= 3:
            raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")
        base = {"XBT": "BTC", "BCHSV": "BSV"}.get(pair[:-3], pair[:-3])  # ccxt's commonCurrencies
        symbol = f"{base}/USD:{base if _PREFIXES[kind] else 'USD'}"
        return f"{symbol}-{expiry}" if expiry else symbol

    def resubscribe_messages(self, sync: BookSync) -> list[str]:
        pid = sync.instrument.exchange_symbol.upper()
        return [orjson.dumps({"event": event, "feed": "book", "product_ids": [pid]}).decode()
                for event in ("unsubscribe", "subscribe")]

    def _sync(self, product_id: str) -> BookSync:
        sync = self._products.get(product_id)
        if sync is None:
            sync = self._products[product_id] = self.sync_for(self.instrument_for(product_id))
        return sync

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        """Handle one raw frame; returns its kind (DEPTH, SNAPSHOT, OTHER). Raises MessageError."""
        try:
            m = _decode(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not a Kraken Futures message: {e}") from None
        feed = m.feed
        if m.event == "error":  # names no product: the subscription of this connection failed
            self._rejected(m.product_id or None, f"Kraken Futures: {m.message}")
            return OTHER
        if m.event:  # info, subscribed, unsubscribed, alert, pong
            return OTHER
        if feed == "book":
            if not m.product_id or m.seq < 0 or m.side not in ("buy", "sell") or m.price < 0.0 or m.qty < 0.0:
                self.bad_messages += 1
                raise MessageError("book delta without product_id, seq, side, price or qty")
            self._on_delta(self._sync(m.product_id), m, local_ns)
            return DEPTH
        if feed == "book_snapshot":
            if not m.product_id or m.seq < 0:
                self.bad_messages += 1
                raise MessageError("book snapshot without product_id or seq")
            self._on_snapshot(self._sync(m.product_id), m, local_ns)
            return SNAPSHOT
        if feed == "heartbeat":
            return OTHER
        if feed:
            self.unknown_streams += 1
            return OTHER
        self.bad_messages += 1
        raise MessageError("neither a feed message nor an event")

    def _on_delta(self, sync: BookSync, m: _Msg, local_ns: int) -> None:
        book = sync.book
        if book.state != VALID:
            sync.dropped_before_snapshot += 1
            return
        if m.seq <= sync.last_id:
            sync.stale_skipped += 1
            return
        if m.seq != sync.last_id + 1:
            self._gap(sync, f"seq {m.seq} after {sync.last_id}", None, local_ns)
            return
        level = ((m.price, m.qty),)
        bids, asks = (level, ()) if m.side == "buy" else ((), level)
        self._apply_diff(sync, bids, asks, m.seq, m.timestamp * 1_000_000, local_ns)

    def _on_snapshot(self, sync: BookSync, m: _Msg, local_ns: int) -> None:
        sync.book.load_snapshot([(lv.price, lv.qty) for lv in m.bids], [(lv.price, lv.qty) for lv in m.asks])
        self._stamp(sync, m.seq, m.timestamp * 1_000_000, local_ns)
        self._now_valid(sync, f"snapshot {m.seq}", local_ns)


def parse_rest_orderbook(raw: bytes) -> tuple[Levels, Levels]:
    """A REST ``orderbook`` body -> ``(bids, asks)``, best first."""
    try:
        body = _decode_rest(raw)
    except msgspec.DecodeError as e:
        raise MessageError(f"bad Kraken Futures orderbook body: {e}") from None
    if body.result != "success" or body.orderBook is None:
        raise MessageError(f"Kraken Futures orderbook error: {body.error or body.result}")
    return body.orderBook.bids, body.orderBook.asks


__all__ = ["VENUES", "KrakenFuturesHandler", "parse_rest_orderbook"]
