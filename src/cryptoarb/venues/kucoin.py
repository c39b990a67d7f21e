"""KuCoin spot (``kucoin``) order books from the ``/market/level2`` incremental stream.

KuCoin's documented calibration procedure (spot "Level2 - Market Data", current API):

- ``trade.l2update`` diffs carry ``sequenceStart``/``sequenceEnd`` and, per change,
  ``[price, size, sequence]``; they are buffered until a REST snapshot with ``sequence`` arrives;
- a diff with ``sequenceEnd <= snapshot sequence`` is already in the snapshot (dropped); in a
  diff straddling the snapshot only changes whose own sequence is newer are applied (a change's
  sequence is the last modification of that price, so an older one is in the snapshot);
- afterwards a diff must start at or before ``last + 1``: ``sequenceStart > last + 1`` is a gap;
  ``sequenceEnd <= last`` is an old diff, skipped;
- price ``"0"`` is a sequence-only no-op; size ``"0"`` deletes the level.

The 2021 capture has the same frames without ``data.time``: one code path serves both.

Snapshots: the public ``GET /api/v1/market/orderbook/level2_100`` (top 100 levels); the full book
(``/api/v3/market/orderbook/level2``) needs an API key: set ``snapshot_method`` to
``FULL_SNAPSHOT_METHOD`` when the REST client has one. A cut-off side (>= 100 levels) records
its last price as a horizon: the book is exact only on the near side of it, so when the best
price of that side moves past it the book is resynced (the levels behind it are unknown).

Connection: the WebSocket URL carries a token from ``POST /api/v1/bullet-public``
(``BULLET_METHOD``); ``bullet_url`` builds the URL from that body and ``use_bullet`` also sets
the ``{"type": "ping"}`` keep-alive to the server's ``pingInterval``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import msgspec
import orjson

from cryptoarb.core.events import Quote, Trade
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues._decode import Level
from cryptoarb.venues.base import DEPTH, OTHER, QUOTE, TRADE, BookSync, MessageError
from cryptoarb.venues.catalog import UnknownInstrument
from cryptoarb.venues.join import RangeJoinHandler

VENUES = ("kucoin",)
BULLET_METHOD = "public_post_bullet_public"
SNAPSHOT_METHOD = "public_get_market_orderbook_level2_100"
FULL_SNAPSHOT_METHOD = "private_get_market_orderbook_level2"
#: ccxt's commonCurrencies for kucoin (so symbols match ccxt's)
_ALIASES = {"XBT": "BTC", "BCHSV": "BSV", "BIFI": "BIFIF", "VAI": "VAIOT", "WAX": "WAXP",
            "ALT": "APTOSLAUNCHTOKEN", "KALT": "ALT", "FUD": "FTX Users' Debt"}

_Change = tuple[float, float, int]


class _Changes(msgspec.Struct):
    asks: list[_Change] = []
    bids: list[_Change] = []


class _L2(msgspec.Struct):
    sequenceStart: int
    sequenceEnd: int
    changes: _Changes
    symbol: str = ""
    time: int = 0  # ms; absent in the 2021 format


class _Env(msgspec.Struct):
    type: str = ""
    topic: str = ""
    subject: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    code: int | str = 0  # an error: {"type":"error","code":404,"data":"topic /market/level2:BTC-XXX is not found"}


class _Book(msgspec.Struct):
    sequence: int
    bids: list[Level] = []
    asks: list[Level] = []
    time: int = 0


class _Rest(msgspec.Struct):
    code: str = ""
    msg: str = ""
    data: _Book | None = None


class _Ticker(msgspec.Struct):
    bestBid: float
    bestBidSize: float
    bestAsk: float
    bestAskSize: float
    sequence: int = 0
    time: int = 0


class _Match(msgspec.Struct):
    price: float
    size: float
    side: str
    sequence: int = 0
    time: int = 0  # ns


class _Server(msgspec.Struct):
    endpoint: str
    pingInterval: int = 18_000


class _BulletData(msgspec.Struct):
    token: str
    instanceServers: list[_Server]


class _Bullet(msgspec.Struct):
    data: _BulletData


_decode_env = msgspec.json.Decoder(_Env).decode
_decode_l2 = msgspec.json.Decoder(_L2, strict=False).decode
_decode_rest = msgspec.json.Decoder(_Rest, strict=False).decode
_decode_ticker = msgspec.json.Decoder(_Ticker, strict=False).decode
_decode_match = msgspec.json.Decoder(_Match, strict=False).decode
_decode_bullet = msgspec.json.Decoder(_Bullet, strict=False).decode

_KINDS = {"/market/level2": DEPTH, "/market/ticker": QUOTE, "/market/match": TRADE}
_ACKS = frozenset({"welcome", "ack", "pong", "error"})


class KucoinHandler(RangeJoinHandler):
    """All symbols of one KuCoin spot connection (REST snapshot + level2 diffs)."""

    venues = VENUES
    refusal = "not a KuCoin venue: {venue!r}"
    gap_reason = "sequenceStart {first} > last {last} + 1"
    max_symbols_per_message = 100  # symbols per topic in one subscribe
    max_symbols_per_connection = 150  # KuCoin allows 300 topics per connection; two topics per symbol
    ws_url = "wss://ws-api-spot.kucoin.com/"  # needs ?token=... from bullet-public: use_bullet()
    snapshot_method = SNAPSHOT_METHOD

    def _setup(self) -> None:
        super()._setup()
        self._routes: dict[str, tuple[BookSync, int]] = {}
        self._sub_id = 0

    # -- live ------------------------------------------------------------------------
    @staticmethod
    def bullet_url(body: bytes) -> tuple[str, float]:
        """The WebSocket URL (with token) and ping interval (s) from a bullet-public body."""
        try:
            data = _decode_bullet(body).data
            server = data.instanceServers[0]
        except (msgspec.DecodeError, IndexError) as e:
            raise MessageError(f"bad bullet-public response: {e}") from None
        url = f"{server.endpoint}?{urlencode({'token': data.token, 'connectId': 'cryptoarb'})}"
        return url, server.pingInterval / 1000.0

    def use_bullet(self, body: bytes) -> None:
        """Point this handler at the server a bullet-public body names (call before connecting)."""
        url, interval = self.bullet_url(body)
        self.ws_url = url
        self.ping = (interval, '{"id":"ping","type":"ping"}')

    def connect_request(self) -> tuple[str, dict[str, Any]] | None:
        return BULLET_METHOD, {}  # a fresh token (and endpoint) for every connection

    def on_connect_response(self, body: bytes) -> None:
        self.use_bullet(body)

    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        msgs = []
        for i in range(0, len(insts), self.max_symbols_per_message):
            ids = ",".join(inst.exchange_symbol for inst in insts[i : i + self.max_symbols_per_message])
            for topic in ("/market/level2", "/market/match") if self.wants_events else ("/market/level2",):
                self._sub_id += 1
                msgs.append(orjson.dumps({"id": str(self._sub_id), "type": "subscribe", "topic": f"{topic}:{ids}",
                                          "privateChannel": False, "response": True}).decode())
        return msgs

    def _on_error(self, env: _Env) -> None:
        """A refused request: the markets its topic names are rejected (429: too many requests,
        and 509: subscriptions over the limit per request, are worth a retry)."""
        try:
            text = msgspec.json.decode(env.data, type=str) if env.data else ""
        except msgspec.DecodeError:
            text = bytes(env.data).decode(errors="replace")
        m = re.search(r"/market/[A-Za-z0-9]+:([A-Za-z0-9,-]+)", text)
        natives = m.group(1).split(",") if m else [""]
        retry = str(env.code) in ("429", "509")
        for native in natives:
            self._rejected(native or None, f"KuCoin error {env.code}: {text}", retry=retry)

    def snapshot_request(self, inst: Instrument) -> tuple[str, dict[str, Any]]:
        return self.snapshot_method, {"symbol": inst.exchange_symbol}

    def unify(self, native: str) -> str:
        base, sep, quote = native.upper().partition("-")
        if not sep or not base or not quote or "-" in quote:
            raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")
        return f"{_ALIASES.get(base, base)}/{_ALIASES.get(quote, quote)}"

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        try:
            env = _decode_env(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not a KuCoin message: {e}") from None
        if env.type != "message":
            if env.type == "error":
                self._on_error(env)
                return OTHER
            if env.type in _ACKS:
                return OTHER
            self.bad_messages += 1
            raise MessageError(f"unknown KuCoin message type {env.type!r}")
        route = self._routes.get(env.topic) or self._route(env.topic)
        if route is None:
            self.unknown_streams += 1
            return OTHER
        sync, kind = route
        try:
            if kind == DEPTH:
                self._on_depth(sync, _decode_l2(env.data), local_ns)
            elif self.on_event is None:
                pass
            elif kind == QUOTE:
                t = _decode_ticker(env.data)
                self.on_event(Quote(sync.book.key, t.bestBid, t.bestBidSize, t.bestAsk, t.bestAskSize,
                                    t.sequence, t.time * 1_000_000, local_ns))
            else:
                m = _decode_match(env.data)
                self.on_event(Trade(sync.book.key, m.price, m.size, m.side, m.sequence, m.time, local_ns))
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"bad {env.topic} payload: {e}") from None
        return kind

    def _route(self, topic: str) -> tuple[BookSync, int] | None:
        channel, _, native = topic.partition(":")
        kind = _KINDS.get(channel)
        if kind is None or not native or "," in native:
            return None
        route = self._routes[topic] = (self.sync_for(self.instrument_for(native)), kind)
        return route

    @staticmethod
    def _span(d: _L2) -> tuple[int, int]:
        return d.sequenceStart, d.sequenceEnd

    def _apply(self, sync: BookSync, d: _L2, after: int) -> None:
        ch = d.changes
        if d.sequenceStart > after:  # the usual case: every change is new
            bids = [(p, q) for p, q, _ in ch.bids if p]
            asks = [(p, q) for p, q, _ in ch.asks if p]
        else:  # straddles the snapshot: only the changes made after it
            bids = [(p, q) for p, q, s in ch.bids if p and s > after]
            asks = [(p, q) for p, q, s in ch.asks if p and s > after]
        self._apply_diff(sync, bids, asks, d.sequenceEnd, d.time * 1_000_000 if d.time else sync.book.exchange_ns)

    # -- snapshots -------------------------------------------------------------------
    def on_snapshot(self, inst: Instrument, raw: bytes, local_ns: int) -> None:
        """A REST level2 body (``{"code": "200000", "data": {"sequence": ...}}``) for ``inst``."""
        try:
            rest = _decode_rest(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"bad level2 snapshot for {inst.key}: {e}") from None
        if rest.code != "200000" or rest.data is None:
            self.bad_messages += 1
            raise MessageError(f"level2 snapshot for {inst.key} failed: code {rest.code} {rest.msg}")
        snap = rest.data
        self._join(self.sync_for(inst), snap.sequence, snap.bids, snap.asks, snap.time * 1_000_000, local_ns)


__all__ = ["BULLET_METHOD", "FULL_SNAPSHOT_METHOD", "SNAPSHOT_METHOD", "VENUES", "KucoinHandler"]
