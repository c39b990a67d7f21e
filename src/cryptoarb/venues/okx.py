"""OKX v5 (``okx``) order books from the public ``books`` channel (400 levels, in-stream snapshot).

The procedure is OKX's documented one ("WebSocket / Order book channel"):

- the first push after subscribing is ``action: "snapshot"``, the following ones are
  ``action: "update"`` with absolute sizes ("0" deletes a level);
- current format: every push carries ``seqId`` and ``prevSeqId``. The snapshot has
  ``prevSeqId`` -1; an update chains when its ``prevSeqId`` equals the ``seqId`` of the push
  before it. ``seqId == prevSeqId`` is a no-change heartbeat (it chains too). After maintenance
  OKX may restart ``seqId`` below ``prevSeqId``: still accepted, since ``prevSeqId`` chains.
  Anything else is a gap;
- ``checksum``: CRC32, as a signed 32-bit integer, of ``bid1Px:bid1Sz:ask1Px:ask1Sz:...`` over the
  best 25 levels of each side (a side with fewer levels just stops contributing), built from
  the venue's original strings ("8477" is not "8477.0"). So the original strings of every level
  are kept beside the float book. Recent OKX pushes send ``checksum: 0`` (the field is being
  retired): 0 means "not provided", the ``seqId`` chain is then the check;
- legacy format (2022, e.g. the cryptofeed capture ``OKX.ws.1.0``): no ``seqId``/``prevSeqId``; the
  checksum of every push is then the only check, and it must verify.

A broken chain or a failed checksum makes the book invalid and queues ``unsubscribe`` +
``subscribe`` for that ``instId`` in ``outbox``: OKX answers with a fresh snapshot. Updates seen
meanwhile are dropped (counted in ``dropped_before_snapshot``).

REST: OKX's REST book (``GET /api/v5/market/books``, ccxt ``public_get_market_books``) carries no
``seqId``, so it cannot be chained onto the stream and the handler never needs it
(``rest_snapshot = False``); ``parse_rest_book`` decodes that body for tools and checks.
"""

from __future__ import annotations

import re

import msgspec
import orjson

from cryptoarb.core.book import VALID
from cryptoarb.core.events import Quote, Trade
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues._decode import Levels, TextLevel, floats, num
from cryptoarb.venues.base import DEPTH, OTHER, QUOTE, SNAPSHOT, TRADE, BookSync, MessageError
from cryptoarb.venues.catalog import UnknownInstrument
from cryptoarb.venues.checksum import PushHandler, TextBook, interleaved

VENUES = ("okx",)
CHECKSUM_DEPTH = 25


class _Arg(msgspec.Struct):
    channel: str = ""
    instId: str = ""


class _Frame(msgspec.Struct):
    """A push (``arg`` + ``data``) or an event (``event``: subscribe, unsubscribe, error, notice)."""

    arg: _Arg | None = None
    action: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    event: str = ""


class _Error(msgspec.Struct):
    code: str | int = ""
    msg: str = ""


_decode_error = msgspec.json.Decoder(_Error).decode
_RETRY = frozenset({"60014", "63999"})


class _Book(msgspec.Struct):
    asks: list[TextLevel]  # [price, size, deprecated "0", order count]: strings kept for the checksum
    bids: list[TextLevel]
    ts: int = 0
    checksum: int | None = None
    seqId: int | None = None
    prevSeqId: int | None = None


class _Ticker(msgspec.Struct):
    bidPx: str = ""  # empty when a side is empty
    bidSz: str = ""
    askPx: str = ""
    askSz: str = ""
    ts: int = 0


class _Trade(msgspec.Struct):
    px: float
    sz: float
    side: str
    tradeId: int = 0
    ts: int = 0


class _RestBody(msgspec.Struct):
    code: str = ""
    msg: str = ""
    data: list[_Book] = []


_decode_frame = msgspec.json.Decoder(_Frame, strict=False).decode
_decode_books = msgspec.json.Decoder(list[_Book], strict=False).decode
_decode_tickers = msgspec.json.Decoder(list[_Ticker], strict=False).decode
_decode_trades = msgspec.json.Decoder(list[_Trade], strict=False).decode
_decode_rest = msgspec.json.Decoder(_RestBody, strict=False).decode

#: OKX's CRC32 of the best ``CHECKSUM_DEPTH`` levels (best first, ``bid1Px:bid1Sz:ask1Px:...``), signed 32-bit
checksum = interleaved


def parse_rest_book(raw: bytes) -> tuple[Levels, Levels, int]:
    """Bids, asks (best first) and ``ts`` (ms) of a REST ``/api/v5/market/books`` body."""
    try:
        body = _decode_rest(raw)
        b = body.data[0] if body.code in ("", "0") and len(body.data) == 1 else None
        levels = (floats(b.bids), floats(b.asks)) if b is not None else None
    except (msgspec.DecodeError, ValueError, IndexError, TypeError) as e:
        raise MessageError(f"bad OKX REST book: {e}") from None
    if b is None or levels is None:
        raise MessageError(f"OKX REST book: code {body.code!r} {body.msg!r}, {len(body.data)} books")
    return levels[0], levels[1], b.ts


class _Route(TextBook[str]):
    """A book plus the original ``"price:size"`` text of each level, which its checksum hashes."""

    __slots__ = ("native",)

    def __init__(self, sync: BookSync, native: str) -> None:
        super().__init__(sync)
        self.native = native


class OkxHandler(PushHandler):
    """All OKX instruments (spot, swaps, futures) of one connection to the public endpoint."""

    venues = VENUES
    refusal = "not an OKX venue: {venue!r} (expected one of {expected})"
    max_symbols_per_message = 50  # 2 channels each; OKX caps a request at 64 KB
    max_symbols_per_connection = 100  # 400-level books are heavy: keep connections light
    checksum_depth = CHECKSUM_DEPTH
    ping = (25.0, "ping")  # OKX drops a connection silent for 30 s; it answers "pong"

    def _setup(self) -> None:
        self.ws_url = "wss://ws.okx.com:8443/ws/v5/public"
        self._routes: dict[str, _Route] = {}
        self._by_symbol: dict[str, _Route] = {}

    # -- live ------------------------------------------------------------------------
    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        msgs = []
        for i in range(0, len(insts), self.max_symbols_per_message):
            args = []
            for inst in insts[i : i + self.max_symbols_per_message]:
                n = inst.exchange_symbol
                args.append({"channel": "books", "instId": n})
                if self.wants_events:
                    args.append({"channel": "trades", "instId": n})
            msgs.append(orjson.dumps({"op": "subscribe", "args": args}).decode())
        return msgs

    def unify(self, native: str) -> str:
        """BTC-USDT -> BTC/USDT, BTC-USDT-SWAP -> BTC/USDT:USDT, BTC-USD-SWAP -> BTC/USD:BTC,
        BTC-USD-220527 -> BTC/USD:BTC-220527, BTC-USD-220527-30000-C -> BTC/USD:BTC-220527-30000-C."""
        parts = native.upper().split("-")
        if len(parts) >= 2 and all(parts):
            base, quote = parts[0], parts[1]
            settle = base if quote == "USD" else quote  # USD contracts are coin-margined
            if len(parts) == 2:
                return f"{base}/{quote}"
            if len(parts) == 3 and parts[2] == "SWAP":
                return f"{base}/{quote}:{settle}"
            expiry = parts[2]
            if len(expiry) == 6 and expiry.isdigit():
                if len(parts) == 3:
                    return f"{base}/{quote}:{settle}-{expiry}"
                if len(parts) == 5 and parts[4] in ("C", "P"):
                    return f"{base}/{quote}:{settle}-{expiry}-{parts[3]}-{parts[4]}"
        raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")

    def resubscribe_messages(self, sync: BookSync) -> list[str]:
        route = self._by_symbol.get(sync.instrument.symbol)
        native = route.native if route is not None else sync.instrument.exchange_symbol
        return [orjson.dumps({"op": op, "args": [{"channel": "books", "instId": native}]}).decode()
                for op in ("unsubscribe", "subscribe")]

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        """Handle one raw frame; returns its kind (DEPTH, SNAPSHOT, ...). Raises MessageError."""
        if raw == b"pong":
            return OTHER
        try:
            f = _decode_frame(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not an OKX message: {e}") from None
        if f.event:
            if f.event == "error":  # {"event":"error","code":"60018","msg":"...instId:BTC-XXX doesn't exist..."}
                self._on_error(raw)
            return OTHER  # subscribe/unsubscribe acknowledgements, notices
        arg = f.arg
        if arg is None or not f.data or not arg.instId:
            self.bad_messages += 1
            raise MessageError("OKX frame with neither an event nor a channel push")
        channel = arg.channel
        if channel == "books":
            route = self._routes.get(arg.instId)
            if route is None:
                route = self._routes[arg.instId] = _Route(self.sync_for(self.instrument_for(arg.instId)), arg.instId)
                self._by_symbol[route.sync.instrument.symbol] = route
            return self._on_books(route, f.action, f.data, local_ns)
        if channel == "trades":
            return self._on_trades(arg.instId, f.data, local_ns)
        if channel == "tickers":
            return self._on_tickers(arg.instId, f.data, local_ns)
        self.unknown_streams += 1
        return OTHER

    def _on_error(self, raw: bytes) -> None:
        """A refused request: 60018 (no such channel/instrument), 60012 (illegal request), ...;
        60014 (too frequent) and 63999 (internal error) are worth a retry."""
        try:
            err = _decode_error(raw)
        except msgspec.DecodeError:
            err = _Error()
        m = re.search(r"instId:([A-Za-z0-9_-]+)", err.msg)
        code = str(err.code)
        self._rejected(m.group(1) if m else None, f"OKX error {code}: {err.msg}", retry=code in _RETRY)

    def _on_books(self, route: _Route, action: str, data: msgspec.Raw, local_ns: int) -> int:
        try:
            items = _decode_books(data)
            if len(items) != 1:
                raise ValueError(f"{len(items)} entries in data")
            d = items[0]
            bids = floats(d.bids)
            asks = floats(d.asks)
        except (msgspec.DecodeError, ValueError, IndexError, TypeError) as e:
            self.bad_messages += 1
            raise MessageError(f"bad OKX books push for {route.native}: {e}") from None
        if action == "snapshot":
            self._push_snapshot(route, d, bids, asks, d.seqId, f"snapshot seqId={d.seqId}", local_ns)
            return SNAPSHOT
        if action != "update":
            self.bad_messages += 1
            raise MessageError(f"OKX books push for {route.native} with action {action!r}")
        sync = route.sync
        if sync.book.state != VALID:
            sync.dropped_before_snapshot += 1  # a resubscription's snapshot is on its way
            return DEPTH
        if d.prevSeqId is not None and d.prevSeqId != sync.last_id:
            self._gap(sync, f"prevSeqId {d.prevSeqId} != previous seqId {sync.last_id}", None, local_ns)
            return DEPTH
        self._push_update(route, d, bids, asks, d.seqId, local_ns)
        return DEPTH

    # -- trades and tickers ----------------------------------------------------------
    def _on_trades(self, native: str, data: msgspec.Raw, local_ns: int) -> int:
        if self.on_event is None:
            return TRADE
        key = self.instrument_for(native).key
        try:
            trades = _decode_trades(data)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"bad OKX trades push for {native}: {e}") from None
        for t in trades:
            self.on_event(Trade(key, t.px, t.sz, t.side, t.tradeId, t.ts * 1_000_000, local_ns))
        return TRADE

    def _on_tickers(self, native: str, data: msgspec.Raw, local_ns: int) -> int:
        if self.on_event is None:
            return QUOTE
        key = self.instrument_for(native).key
        try:
            quotes = [
                Quote(key, num(t.bidPx), num(t.bidSz), num(t.askPx), num(t.askSz), 0, t.ts * 1_000_000, local_ns)
                for t in _decode_tickers(data)
            ]
        except (msgspec.DecodeError, ValueError) as e:
            self.bad_messages += 1
            raise MessageError(f"bad OKX tickers push for {native}: {e}") from None
        for q in quotes:
            self.on_event(q)
        return QUOTE


__all__ = ["CHECKSUM_DEPTH", "VENUES", "OkxHandler", "checksum", "parse_rest_book"]
