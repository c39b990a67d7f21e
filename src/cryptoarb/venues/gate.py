"""Gate (``gate``, ex Gate.io) spot order books: API v4 ``spot.order_book_update`` + REST snapshot;
and its USDT-settled perpetuals, the same procedure on the futures endpoint (``gate_futures``).

Gate's documented way to keep a local spot book ("How to maintain local order book"):

- subscribe to ``spot.order_book_update`` (``[pair, "100ms"]``) and buffer the diffs, which carry
  ``U``/``u``, the first and last order-book update id they contain;
- fetch ``GET /spot/order_book?currency_pair=..&with_id=true``, whose ``id`` is the update id of
  the snapshot;
- drop buffered diffs with ``u <= id``; the first one applied must have ``U <= id + 1``; after
  that every diff must have ``U == previous u + 1`` (``U > previous u + 1`` is a gap; a diff with
  ``u <= previous u`` is an old one, skipped): the join of :mod:`cryptoarb.venues.join`.

The 2021 capture and today's API share this channel and its fields (today's frames add
``time_ms``), so one code path serves both. Gate also offers ``spot.obu`` (order book v2 with
in-stream full snapshots), not used here.

Depths are aligned: the stream maintains the best ``STREAM_DEPTH`` (100) levels of each side, so
the REST snapshot asks for exactly that many (Gate's own example: ``limit=100``), and a level
pushed out of the best 100 is dropped from our book too (the venue no longer updates it: kept,
it would be phantom liquidity). A side returned with >= 100 levels records its last price as a
horizon, and when the best price of that side moves past it the book is resynced (the levels
behind the horizon are unknown). A frame with ``"full": true`` is a full snapshot of the stream's
depth: it replaces the book (and makes it valid) instead of being applied as a diff.
"""

from __future__ import annotations

import re
import time
from itertools import islice
from typing import Any

import msgspec
import orjson

from cryptoarb.core.book import OrderBook
from cryptoarb.core.events import Quote, Trade
from cryptoarb.core.instruments import Instrument, Kind
from cryptoarb.venues import gate_futures as fut
from cryptoarb.venues._decode import Level
from cryptoarb.venues.base import DEPTH, OTHER, QUOTE, SNAPSHOT, TRADE, BookSync, MessageError
from cryptoarb.venues.catalog import UnknownInstrument
from cryptoarb.venues.join import RangeJoinHandler

VENUES = ("gate",)
SNAPSHOT_METHOD = "public_spot_get_order_book"
STREAM_DEPTH = 100  # levels per side spot.order_book_update maintains
SNAPSHOT_LIMIT = STREAM_DEPTH  # the REST snapshot covers what the stream keeps up to date, no more
#: ccxt's commonCurrencies for gate (so symbols match ccxt's)
_ALIASES = {"XBT": "BTC", "BCHSV": "BSV", "ORT": "XREATORS", "ASS": "ASSF", "88MPH": "MPH", "AXIS": "AXISDEFI",
            "BIFI": "BITCOINFILE", "BOX": "DEFIBOX", "BYN": "BEYONDFI", "EGG": "GOOSEFINANCE", "GTC": "GAMECOM",
            "GTC_HT": "GAMECOM_HT", "GTC_BSC": "GAMECOM_BSC", "HIT": "HITCHAIN", "MM": "MILLION", "MPH": "MORPHER",
            "POINT": "GATEPOINT", "RAI": "RAIREFLEXINDEX", "SBTC": "SUPERBITCOIN", "TNC": "TRINITYNETWORKCREDIT",
            "VAI": "VAIOT", "TRAC": "TRACO"}


class _Err(msgspec.Struct):
    code: int = 0
    message: str = ""


class _Env(msgspec.Struct):
    channel: str = ""
    event: str = ""
    result: msgspec.Raw = msgspec.Raw(b"")
    error: _Err | None = None
    payload: list[str] = []


class _Depth(msgspec.Struct):
    s: str
    U: int
    u: int
    b: list[Level] = []
    a: list[Level] = []
    t: int = 0  # ms
    full: bool = False  # a full snapshot of the stream's depth, not a diff


class _Book(msgspec.Struct):
    id: int = -1
    bids: list[Level] = []
    asks: list[Level] = []
    update: int = 0  # ms
    message: str = ""  # an error body: {"label": ..., "message": ...}


class _BookTicker(msgspec.Struct):
    s: str
    b: float
    B: float
    a: float
    A: float
    u: int = 0
    t: int = 0


class _Trade(msgspec.Struct):
    currency_pair: str
    price: float
    amount: float
    side: str
    id: int = 0
    create_time_ms: str | float = 0.0  # a decimal string of ms ("1619093543708.2642")


def _ns_of_ms(ms: str | float) -> int:
    """Exact ns from Gate's decimal ms string (a float would lose the last digits)."""
    if isinstance(ms, float):
        return int(ms * 1_000_000)
    whole, _, frac = ms.partition(".")
    try:
        return int(whole) * 1_000_000 + int((frac + "000000")[:6])
    except ValueError:
        raise msgspec.ValidationError(f"bad create_time_ms {ms!r}") from None


_decode_env = msgspec.json.Decoder(_Env).decode
_decode_depth = msgspec.json.Decoder(_Depth, strict=False).decode
_decode_book = msgspec.json.Decoder(_Book, strict=False).decode
_decode_ticker = msgspec.json.Decoder(_BookTicker, strict=False).decode
_decode_trade = msgspec.json.Decoder(_Trade, strict=False).decode

_OK_EVENTS = frozenset({"subscribe", "unsubscribe"})


class GateHandler(RangeJoinHandler):
    """All pairs of one Gate spot connection (REST snapshot + ``spot.order_book_update`` diffs)."""

    venues = VENUES
    refusal = "not a Gate venue: {venue!r}"
    gap_reason = "U {first} > previous u {last} + 1"
    snapshot_reason = "snapshot id {}"
    max_symbols_per_message = 100  # trades take a list of pairs; depth is one message per pair
    max_symbols_per_connection = 100
    ws_url = "wss://api.gateio.ws/ws/v4/"

    def _setup(self) -> None:
        super()._setup()
        self._syncs: dict[str, BookSync] = {}  # by pair
        self._fsyncs: dict[str, BookSync] = {}  # by perpetual contract (its id is the spot pair's)
        self._prefix = "spot"  # "futures" on a connection to the futures endpoint
        self._ping_set = False
        self._ping_value: tuple[float, str] | None = None

    # -- live ------------------------------------------------------------------------
    @property
    def ping(self) -> tuple[float, str] | None:
        """``spot.ping`` every 15 s, built when read: Gate wants a current ``time`` in requests."""
        if self._ping_set:
            return self._ping_value
        return 15.0, orjson.dumps({"time": int(time.time()), "channel": f"{self._prefix}.ping"}).decode()

    @ping.setter
    def ping(self, value: tuple[float, str] | None) -> None:
        self._ping_set = True
        self._ping_value = value

    @classmethod
    def check_instruments(cls, insts: list[Instrument]) -> None:
        for inst in insts:
            why = fut.check(inst)
            if why:
                raise ValueError(why)

    def url_for(self, inst: Instrument) -> str:
        """Spot pairs and USDT perpetuals stream from different endpoints (one connection each)."""
        return fut.WS_URL if fut.is_futures(inst) else self.ws_url

    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        if insts:  # a connection serves one endpoint: its pings are that endpoint's
            self._prefix = "futures" if fut.is_futures(insts[0]) else "spot"
        now = int(time.time())
        futures = [i for i in insts if fut.is_futures(i)]
        if futures:
            return [orjson.dumps({"time": now, "channel": fut.CHANNEL, "event": "subscribe",
                                  "payload": [i.exchange_symbol, fut.INTERVAL, str(fut.LEVELS)]}).decode()
                    for i in futures]
        msgs = [orjson.dumps({"time": now, "channel": "spot.order_book_update", "event": "subscribe",
                              "payload": [inst.exchange_symbol, "100ms"]}).decode() for inst in insts]
        if not self.wants_events:
            return msgs
        for i in range(0, len(insts), self.max_symbols_per_message):
            pairs = [inst.exchange_symbol for inst in insts[i : i + self.max_symbols_per_message]]
            msgs.append(orjson.dumps({"time": now, "channel": "spot.trades", "event": "subscribe",
                                      "payload": pairs}).decode())
        return msgs

    def snapshot_request(self, inst: Instrument) -> tuple[str, dict[str, Any]]:
        if fut.is_futures(inst):
            return fut.SNAPSHOT_METHOD, {"settle": fut.SETTLE, "contract": inst.exchange_symbol,
                                         "limit": fut.LEVELS, "with_id": "true"}
        return SNAPSHOT_METHOD, {"currency_pair": inst.exchange_symbol, "limit": SNAPSHOT_LIMIT, "with_id": "true"}

    def unify(self, native: str) -> str:
        base, sep, quote = native.upper().rpartition("_")
        if not sep or not base or not quote:
            raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")
        return f"{_ALIASES.get(base, base)}/{_ALIASES.get(quote, quote)}"

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        try:
            env = _decode_env(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not a Gate message: {e}") from None
        channel = env.channel
        if env.event != "update":
            if env.error is not None and env.event == "subscribe":
                # {"channel":"spot.order_book_update","event":"subscribe","error":{"code":2,"message":"unknown
                # currency pair BTC_XXX"},"result":null}: code 3 (server error) is worth a retry
                m = re.search(r"[A-Z0-9]+_[A-Z0-9]+", env.error.message)
                native = env.payload[0] if env.payload else (m.group(0) if m else None)
                why, retry = f"Gate error {env.error.code}: {env.error.message}", env.error.code == 3
                if channel.startswith("futures.") and native:  # a perpetual shares its id with a pair
                    self._rejected(None, why, retry, symbol=fut.unify(native))
                else:
                    self._rejected(native, why, retry=retry)
                return OTHER
            if env.event in _OK_EVENTS or channel in ("spot.pong", "futures.pong"):
                return OTHER
            self.bad_messages += 1
            raise MessageError(f"unexpected Gate event {env.event!r} on {channel!r}")
        try:
            if channel == "spot.order_book_update":
                d = _decode_depth(env.result)
                if d.full:
                    self._on_full(self._sync(d.s), d, local_ns)
                    return SNAPSHOT
                self._on_depth(self._sync(d.s), d, local_ns)
                return DEPTH
            if channel == fut.CHANNEL:
                f = fut.decode_depth(env.result)
                self._on_depth(self._fsync(f.s), _Depth(f.s, f.U, f.u, fut.levels(f.b), fut.levels(f.a), f.t), local_ns)
                return DEPTH
            if channel == "spot.trades":
                if self.on_event is not None:
                    tr = _decode_trade(env.result)
                    self.on_event(Trade(self._sync(tr.currency_pair).book.key, tr.price, tr.amount, tr.side, tr.id,
                                        _ns_of_ms(tr.create_time_ms), local_ns))
                return TRADE
            if channel == "spot.book_ticker":
                if self.on_event is not None:
                    q = _decode_ticker(env.result)
                    self.on_event(Quote(self._sync(q.s).book.key, q.b, q.B, q.a, q.A, q.u, q.t * 1_000_000, local_ns))
                return QUOTE
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"bad {channel} payload: {e}") from None
        self.unknown_streams += 1
        return OTHER

    def _sync(self, pair: str) -> BookSync:
        sync = self._syncs.get(pair)
        if sync is None:
            sync = self._syncs[pair] = self.sync_for(self._instrument(pair, False))
        return sync

    def _fsync(self, contract: str) -> BookSync:
        sync = self._fsyncs.get(contract)
        if sync is None:
            sync = self._fsyncs[contract] = self.sync_for(self._instrument(contract, True))
        return sync

    def _instrument(self, native: str, futures: bool) -> Instrument:
        """The catalog's market of a spot pair or a perpetual: both are named ``BTC_USDT``, so the
        kind must match (else it is found by its unified symbol); provisional with ``discover``."""
        inst = self.catalog.find_native(self.venue, native)
        if inst is not None and fut.is_futures(inst) == futures:
            return inst
        if not futures and inst is None:
            return self.instrument_for(native)  # unknown pair: the catalog's error, or discovery
        symbol = fut.unify(native) if futures else self.unify(native)
        if not symbol:
            raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")
        try:
            return self.catalog.get(self.venue, symbol)
        except UnknownInstrument:
            if not self.discover:
                raise
        return self.catalog.provisional(self.venue, symbol, native)

    @staticmethod
    def _span(d: _Depth) -> tuple[int, int]:
        return d.U, d.u

    def _apply(self, sync: BookSync, d: _Depth, after: int) -> None:
        self._apply_diff(sync, d.b, d.a, d.u, d.t * 1_000_000)
        bids, asks = sync.book.depth()
        if bids > STREAM_DEPTH or asks > STREAM_DEPTH:
            _trim(sync.book)

    def _on_full(self, sync: BookSync, d: _Depth, local_ns: int) -> None:
        """``full: true``: the stream's whole depth, with update id ``u``: the book starts over
        from it (a pending REST snapshot older than ``u`` is then ignored: the book is valid)."""
        sync.dropped_before_snapshot += len(sync.buffer)
        sync.buffer = []
        sync.book.load_snapshot(d.b, d.a)
        self._horizon.pop(sync.instrument.symbol, None)
        _trim(sync.book)
        self._loaded(sync, d.u, d.t * 1_000_000, local_ns, f"full snapshot u {d.u}")

    # -- snapshots -------------------------------------------------------------------
    def on_snapshot(self, inst: Instrument, raw: bytes, local_ns: int) -> None:
        """A REST ``/spot/order_book?with_id=true`` (or ``/futures/usdt/order_book``) body for ``inst``."""
        if inst.kind is not Kind.SPOT:
            self._on_futures_snapshot(inst, raw, local_ns)
            return
        try:
            snap = _decode_book(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"bad order_book snapshot for {inst.key}: {e}") from None
        if snap.id < 0:
            self.bad_messages += 1
            why = snap.message or "no id (with_id=true missing?)"
            raise MessageError(f"order_book snapshot for {inst.key} unusable: {why}")
        self._join(self.sync_for(inst), snap.id, snap.bids, snap.asks, snap.update * 1_000_000, local_ns)

    def _on_futures_snapshot(self, inst: Instrument, raw: bytes, local_ns: int) -> None:
        try:
            snap = fut.decode_book(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"bad futures order_book snapshot for {inst.key}: {e}") from None
        if snap.id < 0:
            self.bad_messages += 1
            why = snap.message or "no id (with_id=true missing?)"
            raise MessageError(f"futures order_book snapshot for {inst.key} unusable: {why}")
        self._join(self.sync_for(inst), snap.id, fut.levels(snap.bids), fut.levels(snap.asks),
                   round(snap.update * 1000) * 1_000_000, local_ns)


def _trim(book: OrderBook) -> None:
    """Drop the levels beyond the best ``STREAM_DEPTH`` of each side (the venue stopped updating them)."""
    nb, na = book.depth()
    bids = [(p, 0.0) for p, _ in islice(book.bids(), STREAM_DEPTH, None)] if nb > STREAM_DEPTH else []
    asks = [(p, 0.0) for p, _ in islice(book.asks(), STREAM_DEPTH, None)] if na > STREAM_DEPTH else []
    if bids or asks:
        book.apply(bids, asks)


__all__ = ["SNAPSHOT_LIMIT", "SNAPSHOT_METHOD", "STREAM_DEPTH", "VENUES", "GateHandler"]
