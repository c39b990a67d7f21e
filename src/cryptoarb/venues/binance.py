"""Binance spot (``binance``), USDⓈ-M (``binanceusdm``), COIN-M (``binancecoinm``) and Binance.US
(``binanceus``, spot only: the spot protocol on its own hosts) order books.

Follows Binance's documented procedure for a local book: buffer ``depthUpdate`` diffs, take
a REST snapshot, drop buffered diffs already contained in it, then chain every diff onto the
previous one. Spot chains by ``U``/``u`` (first ``U`` <= last ``u`` + 1 <= ``u``); futures
chain by ``pu`` == previous ``u``. Anything else is a gap: the book is invalid until resynced.

Messages are the raw combined-stream frames ``{"stream": "...", "data": {...}}`` and the REST
snapshot body; they are decoded with msgspec into typed structs, straight to floats.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from cryptoarb.core.book import VALID
from cryptoarb.core.events import Quote, Trade
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues._decode import Levels
from cryptoarb.venues.base import BAD, DEPTH, OTHER, QUOTE, SNAPSHOT, TRADE, BookSync, Handler, MessageError
from cryptoarb.venues.catalog import UnknownInstrument

VENUES = ("binance", "binanceusdm", "binancecoinm", "binanceus")
FUTURES = frozenset({"binanceusdm", "binancecoinm"})


class _Error(msgspec.Struct):
    code: int = 0
    msg: str = ""


class _Envelope(msgspec.Struct):
    """A combined-stream frame, or a REST depth snapshot (the fields of both, all optional)."""

    stream: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    error: _Error | None = None  # {"error":{"code":2,"msg":"Invalid request: ..."},"id":1}
    lastUpdateId: int = -1
    symbol: str = ""
    E: int = 0
    bids: Levels = []
    asks: Levels = []
    id: int | None = None


class _Depth(msgspec.Struct):
    U: int
    u: int
    b: Levels
    a: Levels
    E: int = 0
    pu: int = -1


class _Ticker(msgspec.Struct):
    b: float
    B: float
    a: float
    A: float
    u: int = 0
    E: int = 0


class _Trade(msgspec.Struct):
    p: float
    q: float
    m: bool
    t: int = 0
    T: int = 0


class _DepthFrame(msgspec.Struct):
    stream: str
    data: _Depth


_decode_env = msgspec.json.Decoder(_Envelope, strict=False).decode
_decode_depth_frame = msgspec.json.Decoder(_DepthFrame, strict=False).decode
_decode_depth = msgspec.json.Decoder(_Depth, strict=False).decode
_decode_ticker = msgspec.json.Decoder(_Ticker, strict=False).decode
_decode_trade = msgspec.json.Decoder(_Trade, strict=False).decode

_KINDS = {"depth": DEPTH, "bookTicker": QUOTE, "trade": TRADE}


_WS = {
    "binance": "wss://stream.binance.com:9443/stream",
    # USDⓈ-M has one base URL per traffic category since 2026-04-23 (the plain ``/stream`` is
    # retired): ``/public`` (books, book tickers, trades), ``/market`` (the rest), ``/private``
    "binanceusdm": "wss://fstream.binance.com/{category}/stream",
    "binancecoinm": "wss://dstream.binance.com/stream",
    # Binance.US: the spot protocol on its own host (ccxt.pro ``binanceus``: ``/ws``; the
    # combined-stream form of the same endpoint is ``/stream``)
    "binanceus": "wss://stream.binance.us:9443/stream",
}
#: the streams we subscribe per symbol (``<symbol>@<stream>``) when trades/quotes have a consumer
STREAMS = ("depth@100ms", "bookTicker", "trade")
#: ... and when only the books do (the live engine): the depth diffs alone
BOOK_STREAMS = ("depth@100ms",)
#: USDⓈ-M streams served by ``/public`` (ccxt.pro 4.5.90 ``binance.get_future_ws_category``)
_PUBLIC = frozenset({"depth", "rpiDepth", "bookTicker", "trade"})


def stream_category(channel: str) -> str:
    """The USDⓈ-M endpoint category (``public`` or ``market``) serving stream ``channel``."""
    return "public" if channel in _PUBLIC else "market"


_CATEGORIES = {stream_category(s.split("@")[0]) for s in STREAMS}
assert len(_CATEGORIES) == 1, "every stream of a connection must be served by one USDⓈ-M endpoint"
_DEPTH_CALL = {"binance": "public_get_depth", "binanceusdm": "fapipublic_get_depth",
               "binancecoinm": "dapipublic_get_depth", "binanceus": "public_get_depth"}
_QUOTES = ("USDT", "FDUSD", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY", "DAI", "USD")


class BinanceHandler(Handler):
    """All symbols of one Binance venue on one combined stream."""

    venues = VENUES
    refusal = "not a Binance venue: {venue!r} (expected one of {expected})"
    rest_snapshot = True
    max_symbols_per_message = 50  # x3 streams each; Binance allows 1024 streams per connection
    max_symbols_per_connection = 300

    def _setup(self) -> None:
        self.futures = self.venue in FUTURES
        self.ws_url = _WS[self.venue].format(category=next(iter(_CATEGORIES)))
        self._routes: dict[str, tuple[BookSync, int]] = {}
        self._sub_id = 0

    # -- live ------------------------------------------------------------------------
    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        msgs = []
        for i in range(0, len(insts), self.max_symbols_per_message):
            streams = []
            kinds = STREAMS if self.wants_events else BOOK_STREAMS
            for inst in insts[i : i + self.max_symbols_per_message]:
                n = inst.exchange_symbol.lower()
                streams += [f"{n}@{s}" for s in kinds]
            self._sub_id += 1
            msgs.append(orjson.dumps({"method": "SUBSCRIBE", "params": streams, "id": self._sub_id}).decode())
        return msgs

    def snapshot_request(self, inst: Instrument) -> tuple[str, dict[str, Any]]:
        return _DEPTH_CALL[self.venue], {"symbol": inst.exchange_symbol.upper(), "limit": 1000}

    def unify(self, native: str) -> str:
        n = native.upper()
        if self.venue == "binancecoinm":
            pair, _, expiry = n.partition("_")
            base, quote = pair[:-3], pair[-3:]
            return f"{base}/{quote}:{base}" + ("" if expiry in ("", "PERP") else f"-{expiry}")
        for q in _QUOTES:
            if n.endswith(q) and len(n) > len(q):
                base = n[: -len(q)]
                return f"{base}/{q}:{q}" if self.venue == "binanceusdm" else f"{base}/{q}"
        raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")

    # -- routing ---------------------------------------------------------------------
    def _route(self, stream: str) -> tuple[BookSync, int] | None:
        native, _, rest = stream.partition("@")
        kind = _KINDS.get(rest.split("@", 1)[0])
        if kind is None:
            return None
        route = (self.sync_for(self.instrument_for(native)), kind)
        self._routes[stream] = route
        return route

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        """Handle one raw frame; returns its kind (DEPTH, QUOTE, ...). Raises MessageError."""
        # Fast path: a depth frame whose route is known decodes in one typed pass. Binance
        # writes "stream" first; anything else takes the general path below.
        if raw.startswith(b'{"stream":"'):
            at = raw.find(b"@", 11, 64)
            if raw.startswith(b"depth", at + 1):
                try:
                    frame = _decode_depth_frame(raw)
                except msgspec.DecodeError:
                    pass  # let the general path produce the precise error
                else:
                    route = self._routes.get(frame.stream) or self._route(frame.stream)
                    if route is not None:
                        self._on_depth(route[0], frame.data, local_ns)
                        return DEPTH
        try:
            env = _decode_env(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not a Binance message: {e}") from None
        stream = env.stream
        if not stream:
            if env.lastUpdateId >= 0:
                self._on_snapshot_env(env, local_ns)
                return SNAPSHOT
            if env.error is not None:  # a refused request (Binance names no stream in it)
                self._rejected(None, f"Binance error {env.error.code}: {env.error.msg}")
                return OTHER
            if env.id is not None:  # {"result": null, "id": N}: a subscription acknowledged
                return OTHER
            self.bad_messages += 1
            raise MessageError("neither a stream frame nor a depth snapshot")
        route = self._routes.get(stream)
        if route is None:
            route = self._route(stream)
            if route is None:
                self.unknown_streams += 1
                return OTHER
        sync, kind = route
        try:
            if kind == DEPTH:
                self._on_depth(sync, _decode_depth(env.data), local_ns)
            elif kind == QUOTE:
                if self.on_event is not None:
                    t = _decode_ticker(env.data)
                    self.on_event(
                        Quote(sync.book.key, t.b, t.B, t.a, t.A, t.u, t.E * 1_000_000, local_ns)
                    )
            elif self.on_event is not None:
                tr = _decode_trade(env.data)
                side = "sell" if tr.m else "buy"
                self.on_event(Trade(sync.book.key, tr.p, tr.q, side, tr.t, tr.T * 1_000_000, local_ns))
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"bad {stream} payload: {e}") from None
        return kind

    def _on_depth(self, sync: BookSync, d: _Depth, local_ns: int) -> None:
        if sync.book.state != VALID:
            self._buffer(sync, d)
            return
        last = sync.last_id
        if self.futures:
            if d.pu != last:
                if d.u < last or (d.u == last and not sync.expect_first):  # already in the book
                    self._stale(sync, d.U, d, local_ns)
                    return
                # right after a snapshot no diff chains by pu yet: the first one must straddle it
                if not (sync.expect_first and d.U <= last <= d.u):
                    self._gap(sync, f"pu {d.pu} != previous u {last}", d, local_ns)
                    return
        else:
            if d.u <= last:
                self._stale(sync, d.U, d, local_ns)
                return
            if last + 1 < d.U:
                self._gap(sync, f"U {d.U} > previous u {last} + 1", d, local_ns)
                return
        sync.expect_first = False
        sync.first_id = d.U
        self._apply_diff(sync, d.b, d.a, d.u, d.E * 1_000_000, local_ns)

    # -- snapshots -------------------------------------------------------------------
    def on_snapshot(self, inst: Instrument, raw: bytes, local_ns: int) -> None:
        """A REST ``/depth`` body for ``inst`` (live resync path)."""
        try:
            env = _decode_env(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"bad depth snapshot for {inst.key}: {e}") from None
        if env.lastUpdateId < 0:
            self.bad_messages += 1
            raise MessageError(f"depth snapshot for {inst.key} has no lastUpdateId")
        self._apply_snapshot(self.sync_for(inst), env, local_ns)

    def _on_snapshot_env(self, env: _Envelope, local_ns: int) -> None:
        if env.symbol:
            sync = self.sync_for(self.instrument_for(env.symbol))
        else:
            # Spot snapshots do not name their symbol: it belongs to the book awaiting one.
            waiting = [s for s in self.syncs.values() if s.book.state != VALID]
            if len(waiting) != 1:
                self.bad_messages += 1
                raise MessageError(
                    f"depth snapshot without a symbol, and {len(waiting)} books await one"
                )
            sync = waiting[0]
        self._apply_snapshot(sync, env, local_ns)

    def _apply_snapshot(self, sync: BookSync, env: _Envelope, local_ns: int) -> None:
        book = sync.book
        last = env.lastUpdateId
        if book.state == VALID:
            # A snapshot we did not ask for: the book is already consistent and newer diffs
            # are chained onto it, so the snapshot can only be older or equal in content.
            return
        book.load_snapshot(env.bids, env.asks)
        self._stamp(sync, last, env.E * 1_000_000, local_ns)
        buffered = sync.buffer
        sync.buffer = []
        book.set_state(VALID)
        fut = self.futures
        first = True
        for i, d in enumerate(buffered):
            if (d.u < last) if fut else (d.u <= last):
                sync.dropped_before_snapshot += 1
                continue
            if first:
                # The first diff must straddle the snapshot, or diffs are missing in between.
                ok = d.U <= last <= d.u if fut else d.U <= last + 1 <= d.u
                first = False
                why = f"first diff U={d.U} u={d.u} does not follow snapshot {last}"
            elif d.u <= sync.last_id:  # buffered twice (already applied), or the last id was implausible
                if sync.first_id >= d.U:
                    sync.stale_skipped += 1
                    continue
                ok = False
                why = f"buffered diff U={d.U} u={d.u} after the book's last update {sync.last_id}: implausible"
            else:
                ok = d.pu == sync.last_id if fut else sync.last_id + 1 >= d.U
                why = f"buffered diff U={d.U} u={d.u} breaks the chain at {sync.last_id}"
            ok = ok and d.u >= d.U
            if not ok:
                sync.gaps += 1
                self._resync(sync, why, local_ns)
                sync.buffer = buffered[i:]  # these may chain onto the next snapshot
                return
            sync.first_id = d.U
            self._apply_diff(sync, d.b, d.a, d.u, d.E * 1_000_000)
        sync.expect_first = first  # no buffered diff applied: the next live one must straddle
        self._now_valid(sync, f"snapshot {last}", local_ns)


__all__ = ["BAD", "VENUES", "BinanceHandler"]
