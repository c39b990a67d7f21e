"""Bitstamp order books (``bitstamp``): ``diff_order_book_{pair}`` joined to the REST ``order_book``.

Bitstamp's documented procedure: subscribe to ``diff_order_book_{pair}`` (absolute level
quantities, 0 deletes), then fetch the REST ``/api/v2/order_book/{pair}`` snapshot, drop the
diffs whose ``microtimestamp`` is <= the snapshot's, and apply the rest. Nothing else orders
the stream: there is no sequence number and no checksum, so the rules enforced are

- a snapshot joins the stream only if the stream provably covers its instant: the channel's
  ``bts:subscription_succeeded`` came before the snapshot arrived (live: snapshots are asked
  for only after it), or a diff stamped at or before the snapshot was received. Otherwise the
  snapshot is held; the first newer diff without that proof discards it for a fresh one;
- diff microtimestamps must increase strictly; one that does not is a gap (resync by REST).

``bts:request_reconnect`` (the server is about to drop the connection) resyncs every book
and sets ``reconnect_requested`` for the feed. The keep-alive is ``{"event": "bts:heartbeat"}``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from cryptoarb.core.book import VALID
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues._decode import Levels
from cryptoarb.venues.base import DEPTH, OTHER, BookSync, Handler, MessageError
from cryptoarb.venues.catalog import UnknownInstrument

VENUES = ("bitstamp",)
_DIFF = "diff_order_book_"
_QUOTES = ("pyusd", "usdt", "usdc", "eurc", "gusd", "usd", "eur", "gbp", "btc", "eth", "pax", "dai")


class _Frame(msgspec.Struct):
    event: str
    channel: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")


class _Book(msgspec.Struct):
    """A diff (``data`` of a ``diff_order_book`` frame) or a REST snapshot body: same fields."""

    microtimestamp: int
    bids: Levels
    asks: Levels


class _Error(msgspec.Struct):
    message: str = ""
    code: Any = None


_decode_frame = msgspec.json.Decoder(_Frame, strict=False).decode
_decode_book = msgspec.json.Decoder(_Book, strict=False).decode
_decode_error = msgspec.json.Decoder(_Error, strict=False).decode


class BitstampHandler(Handler):
    """All Bitstamp pairs of one connection."""

    venues = VENUES
    refusal = "not a Bitstamp venue: {venue!r}"
    rest_snapshot = True
    max_symbols_per_message = 1  # one channel per bts:subscribe message
    max_symbols_per_connection = 100
    ping = (5.0, '{"event":"bts:heartbeat"}')

    def _setup(self) -> None:
        self.ws_url = "wss://ws.bitstamp.net"
        self._routes: dict[str, BookSync] = {}  # by channel
        self._confirmed: set[str] = set()  # symbols whose diff channel is confirmed on this connection
        self._held: dict[str, _Book] = {}  # snapshots waiting for proof that the stream covers them
        self._snap_mts: dict[str, int] = {}  # microtimestamp of the snapshot a valid book started from

    # -- live ------------------------------------------------------------------------
    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        return [
            orjson.dumps({"event": "bts:subscribe", "data": {"channel": _DIFF + i.exchange_symbol.lower()}}).decode()
            for i in insts
        ]

    def snapshot_request(self, inst: Instrument) -> tuple[str, dict[str, Any]]:
        return "public_get_order_book_pair", {"pair": inst.exchange_symbol.lower()}

    def unify(self, native: str) -> str:
        n = native.lower()
        for q in _QUOTES:
            if n.endswith(q) and len(n) > len(q):
                return f"{n[: -len(q)].upper()}/{q.upper()}"
        raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")

    def on_connect(self, insts: list[Instrument], local_ns: int) -> None:
        """Books start over; their snapshots are asked for once each channel is confirmed (a
        snapshot fetched before the subscription is live could miss diffs)."""
        self._confirmed.clear()
        self._held.clear()
        self.reconnect_requested = False
        request, self.request_snapshot = self.request_snapshot, None
        try:
            super().on_connect(insts, local_ns)
        finally:
            self.request_snapshot = request

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        try:
            f = _decode_frame(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not a Bitstamp frame: {e}") from None
        event = f.event
        channel = f.channel
        if event == "data" and channel.startswith(_DIFF):
            try:
                diff = _decode_book(f.data)
            except msgspec.DecodeError as e:
                self.bad_messages += 1
                raise MessageError(f"bad {channel} payload: {e}") from None
            self._on_diff(self._route(channel), diff, local_ns)
            return DEPTH
        if event == "bts:subscription_succeeded":
            if channel.startswith(_DIFF):
                self._on_confirmed(self._route(channel))
            return OTHER
        if event in ("bts:heartbeat", "bts:unsubscription_succeeded"):
            return OTHER
        if event == "bts:request_reconnect":
            self.reconnect_requested = True
            for sync in list(self.syncs.values()):
                self._resync(sync, "bts:request_reconnect: the server will close the connection", local_ns)
            return OTHER
        if event == "bts:error":  # {"event":"bts:error","channel":"","data":{"code":null,"message":"..."}}
            try:
                why = _decode_error(f.data).message
            except msgspec.DecodeError:
                why = bytes(f.data).decode(errors="replace")
            native = channel.rsplit("_", 1)[-1] if channel else ""
            self._rejected(native or None, f"Bitstamp error on {channel or 'the connection'}: {why}")
            return OTHER
        self.unknown_streams += 1  # live_trades_*, live_orders_*, ...: not subscribed here
        return OTHER

    def _route(self, channel: str) -> BookSync:
        sync = self._routes.get(channel)
        if sync is None:
            pair = channel[len(_DIFF) :] if channel.startswith(_DIFF) else ""
            if not pair:
                self.bad_messages += 1
                raise MessageError(f"channel {channel!r} names no pair")
            sync = self._routes[channel] = self.sync_for(self.instrument_for(pair))
        return sync

    def _on_confirmed(self, sync: BookSync) -> None:
        self._confirmed.add(sync.instrument.symbol)
        if sync.book.state != VALID and self.request_snapshot is not None:
            self.request_snapshot(sync.instrument)

    def _on_diff(self, sync: BookSync, d: _Book, local_ns: int) -> None:
        if sync.book.state != VALID:
            self._buffer(sync, d)
            held = self._held.get(sync.instrument.symbol)
            if held is not None:
                self._join(sync, held, local_ns)
            return
        mts = d.microtimestamp
        snap_mts = self._snap_mts[sync.instrument.symbol]
        if mts <= snap_mts and sync.last_id == snap_mts:  # already in the snapshot, no later diff yet
            sync.dropped_before_snapshot += 1
            return
        if mts <= sync.last_id:  # out of order (older than a diff applied after the snapshot too)
            self._gap(sync, f"microtimestamp {mts} not after {sync.last_id}", None, local_ns)
            return
        self._apply_diff(sync, d.bids, d.asks, mts, mts * 1000, local_ns)

    # -- snapshots -------------------------------------------------------------------
    def on_snapshot(self, inst: Instrument, raw: bytes, local_ns: int) -> None:
        """A REST ``order_book`` body for ``inst``."""
        try:
            snap = _decode_book(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"bad order_book snapshot for {inst.key}: {e}") from None
        sync = self.sync_for(inst)
        if sync.book.state == VALID:
            return  # not needed any more: the book is consistent and moving on
        self._held.pop(inst.symbol, None)
        if inst.symbol in self._confirmed or any(d.microtimestamp <= snap.microtimestamp for d in sync.buffer):
            self._load(sync, snap, local_ns)
        elif not sync.buffer:
            self._held[inst.symbol] = snap  # the next diff proves or disproves coverage
        elif self.request_snapshot is not None:  # only newer diffs: the snapshot may predate them all
            self.request_snapshot(inst)

    def _join(self, sync: BookSync, held: _Book, local_ns: int) -> None:
        """A diff arrived while a snapshot is held: stamped at or before it, it proves the
        stream covers the snapshot; stamped after it, the snapshot may have missed diffs."""
        del self._held[sync.instrument.symbol]
        if any(d.microtimestamp <= held.microtimestamp for d in sync.buffer):
            self._load(sync, held, local_ns)
        elif self.request_snapshot is not None:
            self.request_snapshot(sync.instrument)

    def _load(self, sync: BookSync, snap: _Book, local_ns: int) -> None:
        sync.book.load_snapshot(snap.bids, snap.asks)
        smts = self._snap_mts[sync.instrument.symbol] = snap.microtimestamp
        self._stamp(sync, smts, smts * 1000, local_ns)
        buffered = sync.buffer
        sync.buffer = []
        for i, d in enumerate(buffered):
            if d.microtimestamp <= smts:
                sync.dropped_before_snapshot += 1
            elif d.microtimestamp <= sync.last_id:
                sync.gaps += 1
                self._resync(sync, f"buffered microtimestamp {d.microtimestamp} not after {sync.last_id}", local_ns)
                sync.buffer = buffered[i + 1 :]
                return
            else:
                self._apply_diff(sync, d.bids, d.asks, d.microtimestamp, d.microtimestamp * 1000)
        self._now_valid(sync, f"snapshot microtimestamp {smts}", local_ns)


__all__ = ["VENUES", "BitstampHandler"]
