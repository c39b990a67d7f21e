"""Kraken spot (``kraken``) order books: WebSocket v2 ``book`` (current) and v1 ``book-N`` (legacy).

Kraken streams the snapshot, then level updates, with no sequence number: integrity rests on a
CRC32 of the top 10 levels per side (v2: snapshot and every update; v1: every update). As
Kraken's "book checksum" guides say: apply all levels of a message in order (qty 0 deletes),
then cut each side to the subscribed depth (no delete comes for a level pushed out of scope);
the checksum hashes the 10 best asks (low to high) then the 10 best bids (high to low), price
then quantity *as sent*, "." removed, leading zeros stripped. v1 sends strings; v2 sends JSON
numbers "containing full precision" (trailing zeros kept), which floats cannot reproduce, so each
level keeps a token made from the raw JSON text (``msgspec.Raw``) beside the float book. A
mismatch means our book is wrong: it is invalidated and that symbol alone re-subscribed
(unsubscribe + subscribe in ``outbox``); the fresh snapshot makes it valid again.

Live feeds use v2; v1 frames (``[chanID, {...}, "book-1000", "XBT/CHF"]``, the 2021 capture) are
decoded too (same checksum family) and re-subscribed in v1 form. No sequence links a REST book
to the stream, so books start from it (``rest_snapshot = False``; ``parse_rest_depth`` reads a
REST ``Depth`` body for checks), and ``book.update_id`` counts applied updates.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson

from cryptoarb.core.book import VALID
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues._decode import Levels, decode_parts, decode_str
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, BookSync, MessageError, ResubscribingHandler
from cryptoarb.venues.catalog import UnknownInstrument
from cryptoarb.venues.checksum import TextBook, keep

VENUES = ("kraken",)
DEPTHS = (10, 25, 100, 500, 1000)  # the depths Kraken accepts

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class _L1(msgspec.Struct, array_like=True):  # ["price", "volume", "timestamp"(, "r": republished)]
    price: str
    volume: str
    timestamp: str = ""
    flag: str = ""


class _V1Part(msgspec.Struct):  # an object of a v1 frame: snapshot "as"/"bs" or update "a"/"b"
    snap_asks: list[_L1] | None = msgspec.field(default=None, name="as")
    snap_bids: list[_L1] | None = msgspec.field(default=None, name="bs")
    a: list[_L1] = []
    b: list[_L1] = []
    c: str = ""


class _L2(msgspec.Struct):  # a v2 level; the raw JSON numbers are kept for the checksum
    price: msgspec.Raw
    qty: msgspec.Raw


class _Item(msgspec.Struct):
    symbol: str
    bids: list[_L2] = []
    asks: list[_L2] = []
    checksum: int = -1
    timestamp: str = ""


class _BookMsg(msgspec.Struct):
    channel: str
    type: str
    data: list[_Item]


class _Result(msgspec.Struct):
    channel: str = ""
    symbol: str = ""
    depth: int = 0


class _Env(msgspec.Struct):  # any object frame: v2 channel message or method response, v1 event
    channel: str = ""
    method: str = ""
    success: bool = True
    result: _Result | None = None
    event: str = ""
    channelName: str = ""
    pair: str = ""
    error: str = ""  # v2: why a request failed
    symbol: str = ""  # v2: the symbol a failed subscribe named
    status: str = ""  # v1 subscriptionStatus: "error"
    errorMessage: str = ""


class _RestDepth(msgspec.Struct):  # {"error": [], "result": {pair: {"asks": [[p, q, ts]], "bids": [...]}}}
    error: list[str] = []
    result: dict[str, dict[str, list[tuple[float, float, float]]]] = {}


_decode_book = msgspec.json.Decoder(_BookMsg).decode
_decode_env = msgspec.json.Decoder(_Env).decode
_decode_v1 = msgspec.json.Decoder(_V1Part).decode
_decode_rest = msgspec.json.Decoder(_RestDepth, strict=False).decode

#: ccxt's ``kraken.commonCurrencies``: Kraken codes -> ccxt codes
CURRENCIES = {
    "XBT": "BTC", "BCHSV": "BSV", "LUNA": "LUNC", "LUNA2": "LUNA", "REPV2": "REP", "REP": "REPV1",
    "UST": "USTC", "XDG": "DOGE", "FEE": "KFEE", "XETC": "ETC", "XETH": "ETH", "XLTC": "LTC",
    "XMLN": "MLN", "XREP": "REP", "XXBT": "BTC", "XXDG": "DOGE", "XXLM": "XLM", "XXMR": "XMR",
    "XXRP": "XRP", "XZEC": "ZEC", "ZAUD": "AUD", "ZCAD": "CAD", "ZEUR": "EUR", "ZGBP": "GBP",
    "ZJPY": "JPY", "ZUSD": "USD",
}
_QUOTES = ("USDT", "USDC", "USD", "EUR", "GBP", "CHF", "CAD", "JPY", "AUD", "XBT", "ETH", "DAI")


def _tok(text: bytes) -> bytes:
    """A price or quantity as the checksum wants it: "." removed, leading zeros stripped.

    Kraken sends plain decimals at full precision; anything else fails the checksum, safely."""
    return text.replace(b".", b"").lstrip(b"0")


def _parse_v2(levels: list[_L2]) -> tuple[Levels, list[bytes]]:
    out = [(float(lv.price), float(lv.qty)) for lv in levels]  # ValueError unless numbers
    return out, [_tok(bytes(lv.price)) + _tok(bytes(lv.qty)) for lv in levels]


def _parse_v1(levels: list[_L1]) -> tuple[Levels, list[bytes], int]:
    out = [(float(lv.price), float(lv.volume)) for lv in levels]
    toks = [_tok(lv.price.encode()) + _tok(lv.volume.encode()) for lv in levels]
    return out, toks, max((_v1_ns(lv.timestamp) for lv in levels if lv.timestamp), default=0)


def _v1_ns(ts: str) -> int:
    sec, _, frac = ts.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def _iso_ns(ts: str) -> int:
    return (datetime.fromisoformat(ts) - _EPOCH) // _US * 1000 if ts else 0  # TypeError if naive


def _merge(side: dict[float, bytes], levels: Levels, toks: list[bytes], limit: int, worst: Any) -> Levels:
    """Apply ``levels`` to a side's tokens, cut it to ``limit`` levels (dropping the ``worst``
    first); returns the levels for the book, with the cut ones as deletions."""
    keep(side, levels, toks)
    if len(side) <= limit:
        return levels
    cut = list(levels)
    while len(side) > limit:
        p = worst(side)
        del side[p]
        cut.append((p, 0.0))
    return cut


class _KBook(TextBook[bytes]):
    """A book's checksum side: price -> checksum token of every level, plus how it is fed."""

    __slots__ = ("depth", "limit", "native", "v1")

    def __init__(self, sync: BookSync, native: str, v1: bool, depth: int) -> None:
        super().__init__(sync)
        self.native = native  # the name the venue uses for it (resubscriptions)
        self.v1 = v1
        self.depth = depth  # subscribed depth
        self.limit = depth  # truncation depth: never below the last snapshot's size


class KrakenHandler(ResubscribingHandler):
    """Kraken spot books, one WebSocket v2 connection (v1 frames understood too)."""

    venues = VENUES
    refusal = "not a Kraken spot venue: {venue!r} (expected one of {expected})"
    ws_url = "wss://ws.kraken.com/v2"
    max_symbols_per_message = 25
    max_symbols_per_connection = 100
    ping = (30.0, '{"method":"ping"}')
    depth = 100  # subscribed book depth, one of DEPTHS
    checksum_depth = 10  # Kraken's CRC32 covers the 10 best levels per side
    frames_span_books = True  # a v2 book message holds a list of symbols

    def _setup(self) -> None:
        self._kbooks: dict[str, _KBook] = {}  # by native name
        self._by_symbol: dict[str, _KBook] = {}
        self._depths: dict[str, int] = {}  # acknowledged subscription depth by native name
        self._req = 0

    # -- live ------------------------------------------------------------------------
    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        msgs = []
        for i in range(0, len(insts), self.max_symbols_per_message):
            syms = [inst.symbol for inst in insts[i : i + self.max_symbols_per_message]]  # v2 names ccxt's way
            params = {"channel": "book", "symbol": syms, "depth": self.depth, "snapshot": True}
            self._req += 1
            msgs.append(orjson.dumps({"method": "subscribe", "params": params, "req_id": self._req}).decode())
        return msgs

    def snapshot_request(self, inst: Instrument) -> tuple[str, dict[str, Any]]:
        """REST ``Depth`` (for out-of-band checks only: it cannot seed a streamed book)."""
        pair = inst.exchange_symbol if inst.exchange_symbol and "/" not in inst.exchange_symbol else ""
        return "public_get_depth", {"pair": pair or inst.symbol.replace("/", ""), "count": 500}

    def unify(self, native: str) -> str:
        n = native.upper()
        base, sep, quote = n.partition("/")
        if not sep:  # REST ids: XXBTZUSD, XBTUSDT, ADAXBT
            if len(n) == 8 and n[0] in "XZ" and n[4] in "XZ":
                base, quote = n[:4], n[4:]
            else:
                quote = next((q for q in _QUOTES if n.endswith(q) and len(n) > len(q)), "")
                base = n[: -len(quote)] if quote else ""
        if not base or not quote:
            raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")
        return f"{CURRENCIES.get(base, base)}/{CURRENCIES.get(quote, quote)}"

    def instrument_for(self, native: str) -> Instrument:
        """By market id, else by ccxt symbol (v2 names are ccxt symbols, ids are REST ids)."""
        try:
            return self.catalog.find_native(self.venue, native) or self.catalog.get(self.venue, self.unify(native))
        except UnknownInstrument:
            return super().instrument_for(native)

    def resubscribe_messages(self, sync: BookSync) -> list[str]:
        kb = self._by_symbol.get(sync.instrument.symbol)
        native = kb.native if kb is not None else sync.instrument.symbol
        depth = kb.depth if kb is not None else self.depth
        if kb is not None and kb.v1:
            sub = {"name": "book", "depth": depth}
            msgs: list[dict[str, Any]] = [{"event": e, "pair": [native], "subscription": sub}
                                          for e in ("unsubscribe", "subscribe")]
        else:
            p = {"channel": "book", "symbol": [native], "depth": depth}
            msgs = [{"method": "unsubscribe", "params": p},
                    {"method": "subscribe", "params": {**p, "snapshot": True}}]
        return [orjson.dumps(m).decode() for m in msgs]

    def _kbook(self, native: str, v1: bool) -> _KBook:
        kb = self._kbooks.get(native)
        if kb is None:
            sync = self.sync_for(self.instrument_for(native))
            kb = _KBook(sync, native, v1, self._depths.get(native, self.depth))
            self._kbooks[native] = self._by_symbol[sync.instrument.symbol] = kb
        return kb

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        """Handle one raw frame; returns its kind (DEPTH, SNAPSHOT, ...). Raises MessageError."""
        if raw.startswith(b'{"channel":"book"'):
            try:
                msg = _decode_book(raw)
            except msgspec.DecodeError:
                pass  # the general path below gives the precise error
            else:
                return self._on_v2_book(msg, local_ns)
        if raw.startswith(b"["):
            return self._on_v1(raw, local_ns)
        try:
            env = _decode_env(raw)
            book_msg = _decode_book(raw) if env.channel == "book" else None
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not a Kraken message: {e}") from None
        if book_msg is not None:
            return self._on_v2_book(book_msg, local_ns)
        if env.channel:  # heartbeat, status; trades and tickers are not subscribed
            if env.channel not in ("heartbeat", "status"):
                self.unknown_streams += 1
            return OTHER
        if env.method:  # responses to subscribe/unsubscribe/ping
            if env.method == "subscribe" and not env.success:
                # {"method":"subscribe","success":false,"error":"Currency pair not supported","symbol":"BTC/XXX"}
                self._rejected(None, f"Kraken: {env.error}", symbol=env.symbol)
                return OTHER
            res = env.result
            if env.method == "subscribe" and env.success and res is not None and res.channel == "book" and res.depth:
                self._depths[res.symbol] = res.depth
                if res.symbol in self._kbooks:
                    self._kbooks[res.symbol].depth = res.depth
            return OTHER
        if env.event == "subscriptionStatus" and env.status == "error":
            self._rejected(env.pair or None, f"Kraken: {env.errorMessage}")
            return OTHER
        if env.event:  # v1: heartbeat, systemStatus, subscriptionStatus, pong
            if env.channelName.startswith("book-") and env.channelName[5:].isdigit():
                self._depths[env.pair] = int(env.channelName[5:])
            return OTHER
        self.bad_messages += 1
        raise MessageError("neither a channel message, a method response nor an event")

    def _on_v2_book(self, msg: _BookMsg, local_ns: int) -> int:
        snap = msg.type == "snapshot"
        try:
            if not snap and msg.type != "update":
                raise ValueError(f"unknown book message type {msg.type!r}")
            items = [(self._kbook(it.symbol, False), *_parse_v2(it.bids), *_parse_v2(it.asks), it.checksum,
                      _iso_ns(it.timestamp)) for it in msg.data]
        except (ValueError, TypeError) as e:
            self.bad_messages += 1
            raise MessageError(f"bad Kraken book message: {e}") from None
        for kb, b, bt, a, at, checksum, ex_ns in items:
            if snap:
                self._snapshot(kb, b, bt, a, at, checksum, ex_ns, local_ns)
            else:
                self._update(kb, b, bt, a, at, checksum, ex_ns, local_ns)
        return SNAPSHOT if snap else DEPTH

    def _on_v1(self, raw: bytes, local_ns: int) -> int:
        try:
            parts = decode_parts(raw)
            if len(parts) < 4:
                raise ValueError("a v1 channel frame has at least 4 elements")
            name = decode_str(parts[-2])
            native = decode_str(parts[-1])
            if not name.startswith("book-"):
                self.unknown_streams += 1
                return OTHER
            depth = int(name[5:])
            objs = [_decode_v1(p) for p in parts[1:-2]]
            first = objs[0]
            snap = first.snap_asks is not None or first.snap_bids is not None
            if snap:
                b, bt, tb = _parse_v1(first.snap_bids or [])
                a, at, ta = _parse_v1(first.snap_asks or [])
                checksum = -1
            else:
                b, bt, tb = _parse_v1([lv for o in objs for lv in o.b])
                a, at, ta = _parse_v1([lv for o in objs for lv in o.a])
                checksum = next((int(o.c) for o in objs if o.c), -1)
            kb = self._kbook(native, True)
        except ValueError as e:  # msgspec.DecodeError is a ValueError
            self.bad_messages += 1
            raise MessageError(f"bad Kraken v1 frame: {e}") from None
        kb.depth, kb.v1 = depth, True
        if snap:
            self._snapshot(kb, b, bt, a, at, -1, max(ta, tb), local_ns)
            return SNAPSHOT
        self._update(kb, b, bt, a, at, checksum, max(ta, tb), local_ns)
        return DEPTH

    # -- books -----------------------------------------------------------------------
    def _snapshot(self, kb: _KBook, b: Levels, bt: list[bytes], a: Levels, at: list[bytes],
                  expected: int, ex_ns: int, local_ns: int) -> None:
        kb.load(b, bt, a, at)
        kb.limit = max(kb.depth, len(kb.bids), len(kb.asks))
        kb.sync.book.load_snapshot(b, a)
        self._done(kb, expected, ex_ns, local_ns, True)

    def _update(self, kb: _KBook, b: Levels, bt: list[bytes], a: Levels, at: list[bytes],
                expected: int, ex_ns: int, local_ns: int) -> None:
        sync = kb.sync
        if sync.book.state != VALID:
            sync.dropped_before_snapshot += 1
            return
        bids, asks = _merge(kb.bids, b, bt, kb.limit, min), _merge(kb.asks, a, at, kb.limit, max)
        self._apply_diff(sync, bids, asks, sync.diffs_applied + 1, ex_ns or sync.book.exchange_ns)
        self._done(kb, expected, ex_ns, local_ns, False)

    def _done(self, kb: _KBook, expected: int, ex_ns: int, local_ns: int, snapshot: bool) -> None:
        """Verify the checksum when one was sent; publish the book if it is valid."""
        book = kb.sync.book
        if ex_ns:
            book.exchange_ns = ex_ns
        book.local_ns = local_ns
        if expected >= 0 and not self._checksum_ok(kb.sync, book_checksum(kb), expected, local_ns):
            return
        if snapshot:
            self._now_valid(kb.sync, "snapshot", local_ns)
        elif book.valid:
            self.on_book(book, local_ns)


def book_checksum(kb: _KBook) -> int:
    """Kraken's CRC32 of the 10 best asks then the 10 best bids of a book (unsigned)."""
    bids, asks = kb.top(KrakenHandler.checksum_depth)
    return zlib.crc32(b"".join(asks + bids))


def parse_rest_depth(raw: bytes) -> dict[str, tuple[Levels, Levels]]:
    """A REST ``Depth`` body -> ``{pair id: (bids, asks)}``, best first."""
    try:
        body = _decode_rest(raw)
    except msgspec.DecodeError as e:
        raise MessageError(f"bad Kraken Depth body: {e}") from None
    if body.error:
        raise MessageError(f"Kraken Depth error: {', '.join(body.error)}")
    return {k: ([(p, q) for p, q, _ in v.get("bids", [])], [(p, q) for p, q, _ in v.get("asks", [])])
            for k, v in body.result.items()}


__all__ = ["DEPTHS", "VENUES", "KrakenHandler", "book_checksum", "parse_rest_depth"]
