"""Coinbase order books: Advanced Trade (``coinbase``) and the Exchange feed (``coinbaseexchange``).

**Advanced Trade** (current API, ``wss://advanced-trade-ws.coinbase.com``, channel ``level2``):
frames on channel ``l2_data`` carry ``events`` of type ``snapshot`` (the whole book, sent on
subscription) or ``update`` (``updates[{side: bid|offer, price_level, new_quantity}]``,
absolute quantities, 0 deletes). Every frame of a connection, whatever its channel, carries
``sequence_num``, exactly one more than the previous frame's. The number is connection-wide:
a gap says a frame was lost without saying for which product, so *every* book of the
connection is invalidated and re-subscribed (unsubscribe + subscribe in ``outbox``; Coinbase
answers with a fresh snapshot). We also subscribe to ``heartbeats`` so the sequence keeps
flowing on quiet books. There is no checksum. Because the sequence belongs to a connection,
one handler must see exactly one connection: ``max_symbols_per_connection`` is set high so
the feed never splits it.

**Exchange** (ex Coinbase Pro, ``wss://ws-feed.exchange.coinbase.com``, the 2021 capture's
``level2``): ``{"type": "snapshot", "product_id", "bids": [[p, s]], "asks"}`` then
``{"type": "l2update", "product_id", "changes": [["buy"|"sell", p, s]], "time"}``. These
frames carry *no sequence number*, so a lost frame cannot be detected: a book is exact as
far as the connection delivers every frame in order (TCP does); a crossed book is never
published (``OrderBook.valid``), and a reset re-subscribes. Live we subscribe to
``level2_batch`` (same frames; ``level2`` now requires authentication) and ``heartbeat``.

REST: the product book (``snapshot_request``, parsed by :func:`parse_product_book`) has no
sequence number that could align it with the stream, so books start from the stream's
snapshots only (``rest_snapshot = False``); the REST book serves checks.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, ClassVar

import msgspec
import orjson

from cryptoarb.core.book import VALID
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues._decode import Levels
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, BookSync, MessageError, ResubscribingHandler
from cryptoarb.venues.catalog import UnknownInstrument

VENUES = ("coinbase", "coinbaseexchange")


class _Update(msgspec.Struct):
    side: str
    price_level: float
    new_quantity: float


class _Event(msgspec.Struct):
    type: str = ""
    product_id: str = ""
    updates: list[_Update] = []


class _Advanced(msgspec.Struct):
    """Any Advanced Trade frame: l2_data, heartbeats, subscriptions (or an error)."""

    channel: str = ""
    sequence_num: int = -1
    timestamp: str = ""
    events: list[_Event] = []
    type: str = ""
    message: str = ""


class _Exchange(msgspec.Struct):
    """Any Exchange-feed frame: snapshot, l2update, subscriptions, heartbeat, error."""

    type: str
    product_id: str = ""
    bids: Levels = []
    asks: Levels = []
    changes: list[tuple[str, float, float]] = []
    time: str = ""
    message: str = ""
    reason: str = ""


class _PriceLevel(msgspec.Struct):
    price: float
    size: float


class _Pricebook(msgspec.Struct):
    product_id: str
    bids: list[_PriceLevel]
    asks: list[_PriceLevel]
    time: str = ""


class _ProductBook(msgspec.Struct):
    pricebook: _Pricebook


_decode_advanced = msgspec.json.Decoder(_Advanced, strict=False).decode
_decode_exchange = msgspec.json.Decoder(_Exchange, strict=False).decode
_decode_product_book = msgspec.json.Decoder(_ProductBook, strict=False).decode

_EPOCH = date(1970, 1, 1)
_DAYS: dict[str, int] = {}


def iso_ns(s: str) -> int:
    """``2023-02-09T20:32:50.714964855Z`` -> ns since the epoch (0 when unreadable).

    Hand-rolled because it runs once per frame: the date part is cached per day."""
    try:
        base = _DAYS.get(s[:10])
        if base is None:
            base = _DAYS[s[:10]] = (date.fromisoformat(s[:10]) - _EPOCH).days * 86_400_000_000_000
        secs = int(s[11:13]) * 3600 + int(s[14:16]) * 60 + int(s[17:19])
        frac = s[20:].rstrip("Z") if s[19:20] == "." else ""
        return base + secs * 1_000_000_000 + (int((frac + "000000000")[:9]) if frac else 0)
    except ValueError:
        return 0


def parse_product_book(raw: bytes) -> tuple[str, Levels, Levels, int]:
    """A REST ``/brokerage/market/product_book`` body -> (product_id, bids, asks, time ns)."""
    try:
        pb = _decode_product_book(raw).pricebook
    except msgspec.DecodeError as e:
        raise MessageError(f"not a Coinbase product book: {e}") from None
    return (pb.product_id, [(x.price, x.size) for x in pb.bids], [(x.price, x.size) for x in pb.asks],
            iso_ns(pb.time))


class _Coinbase(ResubscribingHandler):
    """What both Coinbase feeds share: naming, routing, resubscription on resync."""

    _channel: ClassVar[dict[str, Any]] = {}  # the level2 channel as the subscribe message names it

    def _setup(self) -> None:
        self._routes: dict[str, BookSync] = {}

    def unify(self, native: str) -> str:
        parts = native.upper().split("-")
        if len(parts) == 2 and all(parts):
            return f"{parts[0]}/{parts[1]}"
        if len(parts) == 3 and parts[0] and parts[1:] == ["PERP", "INTX"]:  # INTX perpetuals
            return f"{parts[0]}/USDC:USDC"
        raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")

    def _sync(self, native: str) -> BookSync:
        sync = self._routes.get(native)
        if sync is None:
            if not native:
                self.bad_messages += 1
                raise MessageError("book frame without product_id")
            inst = self.catalog.find_native(self.venue, native)
            if inst is None and native.endswith("-USD"):
                # Advanced Trade merged USD and USDC books: a BTC-USDC subscription streams as BTC-USD
                inst = self.catalog.find_native(self.venue, native + "C")
            sync = self._routes[native] = self.sync_for(inst or self.instrument_for(native))
        return sync

    def _sub(self, kind: str, ids: list[str]) -> str:
        return orjson.dumps({"type": kind, "product_ids": ids, **self._channel}).decode()

    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        n = self.max_symbols_per_message
        ids = [i.exchange_symbol for i in insts]
        return [self._sub("subscribe", ids[k : k + n]) for k in range(0, len(ids), n)]

    def resubscribe_messages(self, sync: BookSync) -> list[str]:
        """In-stream snapshots: re-subscribing the product makes Coinbase send a new one."""
        native = [sync.instrument.exchange_symbol]
        return [self._sub("unsubscribe", native), self._sub("subscribe", native)]

    def coalesce(self, outbox: list[str]) -> list[str]:
        """A connection-wide gap resubscribes every product: one unsubscribe and one subscribe
        per ``max_symbols_per_message`` products (Coinbase allows 8 messages per second per IP),
        unsubscribes first; anything else is sent as it is, after them."""
        ids: dict[str, list[str]] = {"unsubscribe": [], "subscribe": []}
        rest: list[str] = []
        for msg in outbox:
            m = orjson.loads(msg)
            kind = m.get("type")
            if kind in ids and set(m) == {"type", "product_ids", *self._channel}:
                ids[kind] += [p for p in m["product_ids"] if p not in ids[kind]]
            else:
                rest.append(msg)
        n = self.max_symbols_per_message
        return [self._sub(kind, pids[k : k + n]) for kind, pids in ids.items() for k in range(0, len(pids), n)] + rest

    def _error(self, text: str) -> None:
        """An error frame: the products it names are rejected (none named: the subscription)."""
        natives = re.findall(r"\b[A-Z0-9]+-[A-Z0-9]+(?:-[A-Z0-9]+)?\b", text)
        for native in natives or [""]:
            self._rejected(native or None, f"{self.venue}: {text}")

    def _load(self, sync: BookSync, bids: Levels, asks: Levels, uid: int, ts: int, local_ns: int) -> None:
        sync.book.load_snapshot(bids, asks)
        self._loaded(sync, uid, ts, local_ns, f"snapshot ({uid})")

    def _diff(self, sync: BookSync, bids: Levels, asks: Levels, uid: int, ts: int, local_ns: int) -> None:
        if sync.book.state != VALID:  # waiting for the (re)subscription's snapshot: it will contain this
            sync.dropped_before_snapshot += 1
            return
        self._apply_diff(sync, bids, asks, uid, ts, local_ns)


class CoinbaseHandler(_Coinbase):
    """Advanced Trade ``level2`` books of one connection, chained by ``sequence_num``."""

    frames_span_books = True  # one l2_data frame can hold events of several products

    venues = ("coinbase",)
    refusal = "CoinbaseHandler serves 'coinbase' (Advanced Trade), not {venue!r}"
    max_symbols_per_message = 20
    max_symbols_per_connection = 1_000  # one connection per handler: the sequence is connection-wide
    _channel: ClassVar[dict[str, Any]] = {"channel": "level2"}

    def _setup(self) -> None:
        super()._setup()
        self.ws_url = "wss://advanced-trade-ws.coinbase.com"
        self.last_seq = -1  # sequence_num of the last frame of this connection (-1: none yet)
        self.sequence_gaps = 0

    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        return ['{"type":"subscribe","channel":"heartbeats"}', *super().subscribe_messages(insts)]

    def snapshot_request(self, inst: Instrument) -> tuple[str, dict[str, Any]]:
        """The REST book (checks only: it has no sequence_num to join the stream)."""
        return "v3_public_get_brokerage_market_product_book", {"product_id": inst.exchange_symbol, "limit": 1000}

    def on_connect(self, insts: list[Instrument], local_ns: int) -> None:
        self.last_seq = -1  # a new connection numbers its frames afresh
        super().on_connect(insts, local_ns)

    def on_message(self, raw: bytes, local_ns: int) -> int:
        try:
            msg = _decode_advanced(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not a Coinbase Advanced Trade frame: {e}") from None
        seq = msg.sequence_num
        if seq < 0:
            if msg.type == "error":  # {"type":"error","message":"failure to subscribe: BTC-XXX ..."}
                self._error(msg.message)
                return OTHER
            self.bad_messages += 1
            raise MessageError("Advanced Trade frame without sequence_num")
        # Everything that can fail is checked before the sequence moves or a book changes.
        work: list[tuple[BookSync, bool, Levels, Levels]] = []
        if msg.channel == "l2_data":
            for ev in msg.events:
                snap = ev.type == "snapshot"
                if not snap and ev.type != "update":
                    self.bad_messages += 1
                    raise MessageError(f"l2_data event of unknown type {ev.type!r}")
                bids: Levels = []
                asks: Levels = []
                for u in ev.updates:
                    if u.side == "bid":
                        bids.append((u.price_level, u.new_quantity))
                    elif u.side in ("offer", "ask"):
                        asks.append((u.price_level, u.new_quantity))
                    else:
                        self.bad_messages += 1
                        raise MessageError(f"l2_data update with side {u.side!r}")
                work.append((self._sync(ev.product_id), snap, bids, asks))
        elif msg.channel not in ("heartbeats", "subscriptions"):
            self.unknown_streams += 1
        last = self.last_seq
        self.last_seq = seq
        if last >= 0 and seq != last + 1:
            self.sequence_gaps += 1
            why = f"sequence_num {seq} after {last}: a frame of the connection was lost"
            for sync in list(self.syncs.values()):
                self._gap(sync, why, None, local_ns)
        if not work:
            return OTHER
        ts = iso_ns(msg.timestamp)
        kind = DEPTH
        for sync, snap, bids, asks in work:
            if snap:
                kind = SNAPSHOT
                self._load(sync, bids, asks, seq, ts, local_ns)
            else:
                self._diff(sync, bids, asks, seq, ts, local_ns)
        return kind


class CoinbaseExchangeHandler(_Coinbase):
    """Exchange-feed ``level2``/``level2_batch`` books: snapshot then ``l2update``, unsequenced."""

    venues = ("coinbaseexchange",)
    refusal = "CoinbaseExchangeHandler serves 'coinbaseexchange', not {venue!r}"
    max_symbols_per_message = 20
    max_symbols_per_connection = 100
    _channel: ClassVar[dict[str, Any]] = {"channels": ["level2_batch", "heartbeat"]}

    def _setup(self) -> None:
        super()._setup()
        self.ws_url = "wss://ws-feed.exchange.coinbase.com"

    def on_message(self, raw: bytes, local_ns: int) -> int:
        try:
            m = _decode_exchange(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not a Coinbase Exchange frame: {e}") from None
        t = m.type
        if t == "l2update":
            bids: Levels = []
            asks: Levels = []
            for side, p, q in m.changes:
                if side == "buy":
                    bids.append((p, q))
                elif side == "sell":
                    asks.append((p, q))
                else:
                    self.bad_messages += 1
                    raise MessageError(f"l2update change with side {side!r}")
            sync = self._sync(m.product_id)
            # no sequence number: a local count of applied frames stands in for update_id
            self._diff(sync, bids, asks, sync.last_id + 1, iso_ns(m.time), local_ns)
            return DEPTH
        if t == "snapshot":
            self._load(self._sync(m.product_id), m.bids, m.asks, 0, iso_ns(m.time), local_ns)
            return SNAPSHOT
        if t in ("subscriptions", "heartbeat"):
            return OTHER
        if t == "error":  # {"type":"error","message":"Failed to subscribe","reason":"BTC-XXX is not a valid product"}
            self._error(f"{m.message}: {m.reason}" if m.reason else m.message)
            return OTHER
        self.unknown_streams += 1  # ticker, match, ...: not subscribed by this handler
        return OTHER


__all__ = ["VENUES", "CoinbaseExchangeHandler", "CoinbaseHandler", "iso_ns", "parse_product_book"]
