"""Bybit order books: the v5 public ``orderbook`` stream (``bybit``), and the legacy v2 ``orderBookL2_25``.

**v5** (current API): topic ``orderbook.{depth}.{symbol}`` on
``wss://stream.bybit.com/v5/public/{spot|linear|inverse}``, one URL per category with identical
topic names, so one handler serves one category (``category``, ``url_for``; the live feed opens a
connection per category and tells each connection's handler its category, ``serve``). Bybit sends a ``snapshot`` on
subscription, then ``delta`` frames with absolute quantities (0 deletes). ``data.u`` is the
update id: each delta's ``u`` must be the previous ``u`` + 1, anything else is a gap (the
book is invalid and re-subscribed: Bybit answers with a fresh snapshot). A snapshot always
replaces the book, as documented: ``u == 1`` means the service restarted, and level-1 books
resend a snapshot with an unchanged ``u`` after 3 s without change. ``seq`` (cross sequence)
only orders books of different depths; no checksum exists. The REST book
(``snapshot_request``, :func:`parse_rest_orderbook`) shares ``u`` only with the 500-level
(derivatives) or 200-level (spot) stream, not with the 50-level one we use, so books come
from the stream's snapshots (``rest_snapshot = False``); the REST book serves checks.

**Legacy v2** (``wss://stream.bybit.com/realtime``, shut down in 2023; the 2021 capture):
``orderBookL2_25.{symbol}`` snapshot = list of levels ``{price, id, side, size}`` (or
``{"order_book": [...]}``); delta = ``{delete, update, insert}`` lists keyed by level ``id``,
with only the matching engine's ``cross_seq`` (increasing, not contiguous) as order. Replayed
as a legacy path with the checks it allows: ``cross_seq`` must increase, a delete or update
must name a known id (same side and price), an insert a new one; anything else is a gap. A
lost delta that keeps the ids consistent cannot be detected: v2 has no update id.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import orjson

from cryptoarb.core.book import VALID
from cryptoarb.core.instruments import Instrument, Kind
from cryptoarb.venues._decode import Levels
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, BookSync, MessageError, ResubscribingHandler
from cryptoarb.venues.catalog import UnknownInstrument

VENUES = ("bybit",)
_WS = {
    "spot": "wss://stream.bybit.com/v5/public/spot",
    "linear": "wss://stream.bybit.com/v5/public/linear",
    "inverse": "wss://stream.bybit.com/v5/public/inverse",
}
LEGACY_WS = "wss://stream.bybit.com/realtime"
_CATEGORY = {Kind.SPOT: "spot", Kind.LINEAR: "linear", Kind.INVERSE: "inverse"}
_SPOT_QUOTES = ("USDT", "USDC", "USDE", "BTC", "ETH", "EUR", "BRL", "DAI", "MNT")
_MONTHS = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                       "NOV", "DEC"), 1)}


class _Book(msgspec.Struct):
    s: str
    b: Levels
    a: Levels
    u: int
    seq: int = 0


class _BookFrame(msgspec.Struct):
    topic: str
    type: str
    data: _Book
    ts: int = 0


class _Frame(msgspec.Struct):
    """Any frame: v5 topics, legacy v2 topics, op replies (subscribe, pong)."""

    topic: str = ""
    type: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    ts: int = 0
    op: str = ""
    success: bool = True
    ret_msg: str = ""
    conn_id: str = ""
    cross_seq: int = 0
    timestamp_e6: int = 0


class _Rest(msgspec.Struct):
    retCode: int
    retMsg: str = ""
    result: _Book | None = None
    time: int = 0


class _L2Del(msgspec.Struct):
    id: int
    side: str


class _L2(msgspec.Struct):
    id: int
    side: str
    price: float
    size: float


class _L2Snap(msgspec.Struct):
    order_book: list[_L2]


class _L2Delta(msgspec.Struct):
    delete: list[_L2Del] = []
    update: list[_L2] = []
    insert: list[_L2] = []


_decode_frame = msgspec.json.Decoder(_Frame, strict=False).decode
_decode_book_frame = msgspec.json.Decoder(_BookFrame, strict=False).decode
_decode_book = msgspec.json.Decoder(_Book, strict=False).decode
_decode_rest = msgspec.json.Decoder(_Rest, strict=False).decode
_decode_l2_snap = msgspec.json.Decoder(list[_L2] | _L2Snap, strict=False).decode
_decode_l2_delta = msgspec.json.Decoder(_L2Delta, strict=False).decode


def parse_rest_orderbook(raw: bytes) -> tuple[str, Levels, Levels, int, int]:
    """A REST ``/v5/market/orderbook`` body -> (symbol, bids, asks, u, ts ms)."""
    try:
        rest = _decode_rest(raw)
    except msgspec.DecodeError as e:
        raise MessageError(f"not a Bybit orderbook body: {e}") from None
    if rest.retCode != 0 or rest.result is None:
        raise MessageError(f"bybit orderbook error {rest.retCode}: {rest.retMsg}")
    r = rest.result
    return r.s, r.b, r.a, r.u, rest.time


def _expiry(code: str) -> str:
    """``26DEC25`` -> ``251226`` (ccxt's expiry suffix)."""
    if len(code) != 7 or code[2:5] not in _MONTHS or not (code[:2] + code[5:]).isdigit():
        raise ValueError(code)
    return f"{code[5:]}{_MONTHS[code[2:5]]:02d}{code[:2]}"


class BybitHandler(ResubscribingHandler):
    """The books of one Bybit category on one connection (v5), or of a legacy v2 capture."""

    venues = VENUES
    refusal = "not a Bybit venue: {venue!r}"
    max_symbols_per_message = 10  # spot accepts at most 10 args per subscribe request
    max_symbols_per_connection = 200  # well inside the 21,000 characters of args per connection
    ping = (20.0, '{"op":"ping"}')  # Bybit drops connections without an application ping
    depth = 50  # orderbook.50: pushed every 20 ms on spot and derivatives

    def _setup(self) -> None:
        cats = {_CATEGORY[i.kind] for i in self.catalog.all() if i.venue == self.venue}
        self.category = cats.pop() if len(cats) == 1 else "linear"
        self.ws_url = _WS[self.category]
        self._routes: dict[str, BookSync] = {}  # by topic
        self._topics: dict[str, str] = {}  # ccxt symbol -> its book topic (for resubscription)
        self._ids: dict[str, dict[int, tuple[float, bool]]] = {}  # legacy: symbol -> id -> (price, is_bid)
        self._req = 0

    # -- live ------------------------------------------------------------------------
    def serve(self, insts: list[Instrument]) -> None:
        """The category of this handler's connection: each category streams on its own endpoint
        with the same topic names (``orderbook.50.BTCUSDT`` is spot on one, the USDT perpetual on
        another), so a connection's handler routes by its own category. A run follows spot,
        linear and inverse markets at once: one connection (and handler) per category."""
        cats = sorted({_CATEGORY[i.kind] for i in insts})
        if len(cats) > 1:
            raise ValueError(f"bybit: one connection serves one category, got {', '.join(cats)}")
        if cats and cats[0] != self.category:
            self.category = cats[0]
            self.ws_url = _WS[self.category]
            self._routes.clear()
            self._topics.clear()

    def instrument_for(self, native: str) -> Instrument:
        """The market of ``native`` in this handler's category: a spot market and a USDT
        perpetual share their id (``BTCUSDT``), so the category decides, not the id alone."""
        inst = self.catalog.find_native(self.venue, native)
        if inst is not None and _CATEGORY[inst.kind] == self.category:
            return inst
        symbol = self.unify(native)
        try:
            return self.catalog.get(self.venue, symbol)
        except UnknownInstrument as e:
            if not self.discover:
                raise UnknownInstrument(f"unknown {self.category} market {native!r}: {e}") from None
        return self.catalog.provisional(self.venue, symbol, native)

    def url_for(self, inst: Instrument) -> str:
        """Each category has its own endpoint: the feed needs one connection per category."""
        return _WS[_CATEGORY[inst.kind]]

    def topic(self, inst: Instrument) -> str:
        return self._topics.get(inst.symbol) or f"orderbook.{self.depth}.{inst.exchange_symbol}"

    def _op(self, op: str, args: list[str]) -> str:
        self._req += 1
        return orjson.dumps({"op": op, "args": args, "req_id": str(self._req)}).decode()

    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        topics = [self.topic(i) for i in insts]
        n = self.max_symbols_per_message
        return [self._op("subscribe", topics[k : k + n]) for k in range(0, len(topics), n)]

    def snapshot_request(self, inst: Instrument) -> tuple[str, dict[str, Any]]:
        """The REST book (checks only: its ``u`` is not the 50-level stream's)."""
        params = {"category": _CATEGORY[inst.kind], "symbol": inst.exchange_symbol, "limit": self.depth}
        return "public_get_v5_market_orderbook", params

    def unify(self, native: str) -> str:
        n = native.upper()
        try:
            if self.category == "spot":
                for q in _SPOT_QUOTES:
                    if n.endswith(q) and len(n) > len(q):
                        return f"{n[: -len(q)]}/{q}"
            elif "-" in n:  # dated linear futures: BTCUSDT-26DEC25, BTC-26DEC25 (USDC)
                pair, code = n.split("-", 1)
                quote = "USDT" if pair.endswith("USDT") else "USDC"
                base = pair[:-4] if pair.endswith("USDT") else pair
                return f"{base}/{quote}:{quote}-{_expiry(code)}"
            elif n.endswith("PERP"):  # USDC perpetuals: BTCPERP
                return f"{n[:-4]}/USDC:USDC"
            elif n.endswith(("USDT", "USDC")):
                return f"{n[:-4]}/{n[-4:]}:{n[-4:]}"
            elif n.endswith("USD") and len(n) > 3:  # inverse perpetual (v5 inverse, legacy v2)
                return f"{n[:-3]}/USD:{n[:-3]}"
        except ValueError:
            pass
        raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r} ({self.category})")

    def resubscribe_messages(self, sync: BookSync) -> list[str]:
        """In-stream snapshots: re-subscribing the topic makes Bybit send a new one."""
        topic = [self.topic(sync.instrument)]
        return [self._op("unsubscribe", topic), self._op("subscribe", topic)]

    def _route(self, topic: str) -> BookSync:
        sync = self._routes.get(topic)
        if sync is None:
            sync = self.sync_for(self.instrument_for(topic.rpartition(".")[2]))
            self._routes[topic] = sync
            self._topics[sync.instrument.symbol] = topic
        return sync

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        if raw.startswith(b'{"topic":"orderbook.'):
            try:
                bf = _decode_book_frame(raw)
            except msgspec.DecodeError:
                pass  # the general path gives the precise error
            else:
                return self._v5(self._route(bf.topic), bf.type, bf.data, bf.ts, local_ns)
        try:
            f = _decode_frame(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not a Bybit frame: {e}") from None
        topic = f.topic
        if topic:
            try:
                if topic.startswith("orderbook."):
                    data = _decode_book(f.data)
                    return self._v5(self._route(topic), f.type, data, f.ts, local_ns)
                if topic.startswith(("orderBookL2_25.", "orderBook_200.")):
                    return self._legacy(self._route(topic), f, local_ns)
            except msgspec.DecodeError as e:
                self.bad_messages += 1
                raise MessageError(f"bad {topic} payload: {e}") from None
            self.unknown_streams += 1
            return OTHER
        if f.op or f.conn_id:  # subscribe acknowledgements (v2: no op, a conn_id), pongs
            if not f.success and f.op == "subscribe":
                # {"success":false,"ret_msg":"Invalid symbol :[orderbook.50.BTCXXX]","op":"subscribe"}
                topics = [t for b in re.findall(r"\[([^\]]*)\]", f.ret_msg) for t in b.split(",") if t]
                for topic in topics or [""]:
                    native = topic.rsplit(".", 1)[-1] if topic else None
                    self._rejected(native, f"Bybit: {f.ret_msg}", symbol=self._symbol_of(native))
                return OTHER
            if not f.success:
                self.bad_messages += 1
                raise MessageError(f"bybit {f.op or 'request'} failed: {f.ret_msg}")
            return OTHER
        self.bad_messages += 1
        raise MessageError("neither a topic frame nor an op reply")

    def _symbol_of(self, native: str | None) -> str:
        """The ccxt symbol of a refused market of this category ("" when it cannot be named)."""
        if not native:
            return ""
        try:
            return self.instrument_for(native).symbol
        except UnknownInstrument:
            return ""

    def _v5(self, sync: BookSync, kind: str, d: _Book, ts: int, local_ns: int) -> int:
        book = sync.book
        if kind == "snapshot":
            book.load_snapshot(d.b, d.a)
            self._loaded(sync, d.u, ts * 1_000_000, local_ns, f"snapshot u={d.u}")
            return SNAPSHOT
        if kind != "delta":
            self.bad_messages += 1
            raise MessageError(f"orderbook frame of type {kind!r}")
        if book.state != VALID:  # the coming snapshot contains it
            sync.dropped_before_snapshot += 1
            return DEPTH
        if d.u != sync.last_id + 1:
            self._gap(sync, f"delta u={d.u} after u={sync.last_id}", None, local_ns)
            return DEPTH
        self._apply_diff(sync, d.b, d.a, d.u, ts * 1_000_000, local_ns)
        return DEPTH

    def _legacy(self, sync: BookSync, f: _Frame, local_ns: int) -> int:
        book = sync.book
        if f.type == "snapshot":
            if book.state == VALID and f.cross_seq <= sync.last_id:
                # v2 sends a snapshot only on subscription: one older than the book is a stale
                # repeat, the book (chained past it) stays as it is
                sync.stale_skipped += 1
                return SNAPSHOT
            snap = _decode_l2_snap(f.data)
            levels = snap if isinstance(snap, list) else snap.order_book
            ids = {x.id: (x.price, self._is_bid(x.side)) for x in levels}
            self._ids[sync.instrument.symbol] = ids
            book.load_snapshot([(x.price, x.size) for x in levels if ids[x.id][1]],
                               [(x.price, x.size) for x in levels if not ids[x.id][1]])
            self._loaded(sync, f.cross_seq, f.timestamp_e6 * 1000, local_ns, f"snapshot cross_seq={f.cross_seq}")
            return SNAPSHOT
        if f.type != "delta":
            self.bad_messages += 1
            raise MessageError(f"{f.topic} frame of type {f.type!r}")
        d = _decode_l2_delta(f.data)
        for side in [x.side for x in d.delete] + [x.side for x in d.update] + [x.side for x in d.insert]:
            self._is_bid(side)  # a malformed side is a bad frame, found before anything changes
        if book.state != VALID:
            sync.dropped_before_snapshot += 1
            return DEPTH
        ids = self._ids[sync.instrument.symbol]
        why = ""
        if f.cross_seq <= sync.last_id:
            why = f"cross_seq {f.cross_seq} after {sync.last_id}"
        gone = {g.id for g in d.delete}
        for g in d.delete:
            if g.id not in ids:
                why = why or f"delete of unknown level id {g.id}"
        for x in d.update:
            known = ids.get(x.id)
            if known is None or x.id in gone or known != (x.price, x.side == "Buy"):
                why = why or f"update of unknown level id {x.id}"
        for x in d.insert:
            if x.id in ids and x.id not in gone:
                why = why or f"insert of existing level id {x.id}"
        if why:
            self._gap(sync, why, None, local_ns)
            return DEPTH
        bids: Levels = []
        asks: Levels = []
        for g in d.delete:
            price, bid = ids.pop(g.id)
            (bids if bid else asks).append((price, 0.0))
        for y in (*d.update, *d.insert):
            bid = y.side == "Buy"
            ids[y.id] = (y.price, bid)
            (bids if bid else asks).append((y.price, y.size))
        self._apply_diff(sync, bids, asks, f.cross_seq, f.timestamp_e6 * 1000, local_ns)
        return DEPTH

    def _is_bid(self, side: str) -> bool:
        if side == "Buy":
            return True
        if side == "Sell":
            return False
        self.bad_messages += 1
        raise MessageError(f"legacy level with side {side!r}")


__all__ = ["LEGACY_WS", "VENUES", "BybitHandler", "parse_rest_orderbook"]
