"""HTX (``htx``, ex Huobi) spot order books: ``market.$symbol.mbp.150`` + in-stream snapshots;
and its USDT-margined (linear) perpetual swaps: ``market.$contract_code.depth.size_150.high_freq``.

Every frame HTX sends is gzip-compressed JSON. Its keep-alive is an application ping from the
server, ``{"ping": ts}``, which must be answered with ``{"pong": ts}`` (put in ``outbox``).

Current API ("Market By Price (incremental update)", the documented procedure):

- subscribe ``{"sub": "market.$symbol.mbp.150"}`` and buffer the updates
  (``tick.seqNum``/``tick.prevSeqNum``);
- request the image over the same socket, ``{"req": "market.$symbol.mbp.150"}`` (put in
  ``outbox`` when the first update of a book without one arrives, and on every resync); its
  ``rep`` carries ``data.seqNum``;
- drop buffered updates with ``seqNum <= snapshot seqNum``; the first one applied must have
  ``prevSeqNum <= snapshot seqNum``; then ``prevSeqNum == previous seqNum``, anything else is a
  gap (new ``req``). A snapshot older than every buffered update is requested again (no gap).

HTX streams the 150-level window: levels leaving it arrive as deletions, so the book is the
exact top 150.

The 2021 capture subscribes ``market.$symbol.depth.step0``, a channel HTX still documents: a full
150-level snapshot per frame (``tick.version``). Each one replaces the book (an older version
than the book's is skipped); such books need no ``req``.

Linear swaps (HTX USDT-margined contracts "Subscribe incremental market depth data"; ccxt.pro
``htx.watch_order_book``) stream on their own endpoint (``LINEAR_URL``, gzip frames, the same
``{"ping"}``/``{"pong"}``): ``{"sub": "market.BTC-USDT.depth.size_150.high_freq", "data_type":
"incremental"}`` answers with ``tick.event == "snapshot"`` (the whole book, ``version``), then
``"update"`` ticks whose ``version`` is the previous one + 1; sizes are contracts (ccxt's
``contractSize``, our ``Instrument.contract_size``). Anything else is a gap: the book is
re-subscribed (``unsub`` + ``sub``), which brings a new snapshot. Only USDT-margined perpetuals:
coin-margined swaps (``/swap-ws``) and dated futures (``/ws``) are refused before connecting.
"""

from __future__ import annotations

import re
import zlib

import msgspec
import orjson

from cryptoarb.core.book import VALID
from cryptoarb.core.events import Trade
from cryptoarb.core.instruments import Instrument, Kind
from cryptoarb.venues._decode import Level
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, TRADE, BookSync, Handler, MessageError
from cryptoarb.venues.catalog import UnknownInstrument

VENUES = ("htx",)
LEVELS = 150
#: HTX spot quote currencies, longest match first (``yfihusd`` is YFI/HUSD, not YFIH/USD)
_QUOTES = ("usdt", "usdc", "usdd", "husd", "tusd", "btc", "eth", "trx", "eur", "gbp", "brl", "try", "uah", "ht")
#: ccxt's commonCurrencies for htx (so symbols match ccxt's)
_ALIASES = {"XBT": "BTC", "BCHSV": "BSV", "NGL": "GFNGL", "GET": "THEMIS", "GTC": "GAMECOM", "HIT": "HITCHAIN",
            "PNT": "PENTA", "SBTC": "SUPERBITCOIN", "SOUL": "SOULSAVER", "BIFI": "BITCOINFILE", "FUD": "FTX Users Debt"}

_MBP, _STEP, _HF = 10, 11, 12  # route kinds besides TRADE
#: USDT-margined perpetual swaps (HTX docs; ccxt.pro uses the AWS host ``api.hbdm.vn``)
LINEAR_URL = "wss://api.hbdm.com/linear-swap-ws"


class _Env(msgspec.Struct):
    ch: str = ""
    ts: int = 0
    tick: msgspec.Raw = msgspec.Raw(b"")
    ping: int | None = None
    rep: str = ""
    status: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    subbed: str = ""
    unsubbed: str = ""
    err_msg: str = msgspec.field(name="err-msg", default="")
    err_code: str | int = msgspec.field(name="err-code", default="")


class _Tick(msgspec.Struct):
    bids: list[Level] = []
    asks: list[Level] = []
    seqNum: int = -1
    prevSeqNum: int = -1
    version: int = -1
    event: str = ""  # linear swaps: "snapshot" or "update"


class _TradeItem(msgspec.Struct):
    price: float
    amount: float
    direction: str
    tradeId: int = 0
    ts: int = 0


class _TradeTick(msgspec.Struct):
    data: list[_TradeItem]


_decode_env = msgspec.json.Decoder(_Env).decode
_decode_tick = msgspec.json.Decoder(_Tick, strict=False).decode
_decode_trades = msgspec.json.Decoder(_TradeTick, strict=False).decode


class HtxHandler(Handler):
    """All symbols of one HTX spot connection (``/feed``, where the 150-level MBP lives)."""

    venues = VENUES
    refusal = "not an HTX venue: {venue!r}"
    rest_snapshot = False
    max_symbols_per_message = 1  # one topic per sub
    max_symbols_per_connection = 100
    ws_url = "wss://api.huobi.pro/feed"

    def _setup(self) -> None:
        self._routes: dict[str, tuple[BookSync, int]] = {}
        self._full: set[str] = set()  # symbols fed by depth.step0 full snapshots: no req needed
        self.snapshot_retries = 0
        self._connecting = False

    def on_connect(self, insts: list[Instrument], local_ns: int) -> None:
        """A new connection subscribes every market anew (a swap's snapshot comes with it): the
        resyncs it makes queue no resubscription."""
        self._connecting = True
        try:
            super().on_connect(insts, local_ns)
        finally:
            self._connecting = False

    # -- live ------------------------------------------------------------------------
    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        return [self._msg("sub", inst) for inst in insts]

    @classmethod
    def check_instruments(cls, insts: list[Instrument]) -> None:
        for inst in insts:
            if inst.kind is not Kind.SPOT and (inst.kind is Kind.INVERSE or inst.settle != "USDT"
                                               or "-" in inst.symbol.partition(":")[2]):
                raise ValueError(f"htx {inst.symbol}: only spot and USDT-margined perpetual swaps are supported")

    def url_for(self, inst: Instrument) -> str:
        """Spot and linear swaps stream from different endpoints (one connection each)."""
        return self.ws_url if inst.kind is Kind.SPOT else LINEAR_URL

    def snapshot_message(self, inst: Instrument) -> str:
        """The ``req`` for the MBP image of ``inst`` (sent over the socket, answered by a ``rep``)."""
        return self._msg("req", inst)

    @staticmethod
    def _msg(op: str, inst: Instrument) -> str:
        if inst.kind is not Kind.SPOT:
            topic = f"market.{inst.exchange_symbol.upper()}.depth.size_{LEVELS}.high_freq"
            body = {op: topic, "id": topic}
            if op == "sub":
                body["data_type"] = "incremental"
            return orjson.dumps(body).decode()
        topic = f"market.{inst.exchange_symbol.lower()}.mbp.{LEVELS}"
        return orjson.dumps({op: topic, "id": topic}).decode()

    def unify(self, native: str) -> str:
        base, dash, quote = native.upper().partition("-")
        if dash:  # a linear swap's contract code, BTC-USDT
            if base and quote == "USDT":
                return f"{_ALIASES.get(base, base)}/USDT:USDT"
            raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")
        n = native.lower()
        for q in _QUOTES:
            if n.endswith(q) and len(n) > len(q):
                base, quote = n[: -len(q)].upper(), q.upper()
                return f"{_ALIASES.get(base, base)}/{_ALIASES.get(quote, quote)}"
        raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        if raw[:2] == b"\x1f\x8b":
            try:
                raw = zlib.decompress(raw, 31)
            except zlib.error as e:
                self.bad_messages += 1
                raise MessageError(f"bad HTX gzip frame: {e}") from None
        try:
            env = _decode_env(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not an HTX message: {e}") from None
        ch = env.ch
        try:
            if ch:
                route = self._routes.get(ch) or self._route(ch)
                if route is None:
                    self.unknown_streams += 1
                    return OTHER
                sync, kind = route
                if kind == _MBP:
                    self._on_mbp(sync, _decode_tick(env.tick), env.ts, local_ns)
                    return DEPTH
                if kind == _STEP:
                    self._on_full(sync, _decode_tick(env.tick), env.ts, local_ns)
                    return SNAPSHOT
                if kind == _HF:
                    return self._on_hf(sync, _decode_tick(env.tick), env.ts, local_ns)
                if self.on_event is not None:
                    key = sync.book.key
                    for t in _decode_trades(env.tick).data:
                        self.on_event(Trade(key, t.price, t.amount, t.direction, t.tradeId, t.ts * 1_000_000, local_ns))
                return TRADE
            if env.ping is not None:
                self.outbox.append(f'{{"pong":{env.ping}}}')
                return OTHER
            if env.rep and env.status == "ok":
                route = self._routes.get(env.rep) or self._route(env.rep)
                if route is None or route[1] != _MBP:
                    self.unknown_streams += 1
                    return OTHER
                self._on_image(route[0], _decode_tick(env.data), env.ts, local_ns)
                return SNAPSHOT
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"bad {ch or env.rep} payload: {e}") from None
        if env.status == "error":
            # {"status":"error","err-code":"bad-request","err-msg":"invalid topic market.btcxxx.mbp.150"}
            m = re.search(r"market\.([A-Za-z0-9-]+)\.", env.err_msg)
            self._rejected(m.group(1) if m else None, f"HTX error {env.err_code}: {env.err_msg}",
                           retry=env.err_code == "too-many-request")
            return OTHER
        if env.status or env.subbed or env.unsubbed:  # acks of sub/req
            return OTHER
        self.bad_messages += 1
        raise MessageError("neither a channel frame, a ping nor a reply")

    def _route(self, ch: str) -> tuple[BookSync, int] | None:
        parts = ch.split(".")
        if len(parts) < 4 or parts[0] != "market":
            return None
        if parts[2] == "mbp":
            kind = _MBP
        elif parts[2] == "depth" and parts[3] == "step0":
            kind = _STEP
        elif parts[2] == "depth" and parts[3].startswith("size_") and parts[-1] == "high_freq":
            kind = _HF
        elif parts[2] == "trade" and parts[3] == "detail":
            kind = TRADE
        else:
            return None
        sync = self.sync_for(self.instrument_for(parts[1]))
        if kind == _STEP:
            self._full.add(sync.instrument.symbol)
        route = self._routes[ch] = (sync, kind)
        return route

    def _on_mbp(self, sync: BookSync, t: _Tick, ts: int, local_ns: int) -> None:
        if t.seqNum < 0 or t.prevSeqNum < 0:
            raise msgspec.ValidationError("mbp update without seqNum/prevSeqNum")
        if sync.book.state != VALID:
            self._buffer(sync, t)
            if sync.expect_first:  # no image asked for yet (a resync asks at once)
                sync.expect_first = False
                self.outbox.append(self.snapshot_message(sync.instrument))
            return
        last = sync.last_id
        if t.seqNum <= last:
            self._stale(sync, t.prevSeqNum + 1, t, local_ns)
            return
        if t.prevSeqNum != last:
            self._gap(sync, f"prevSeqNum {t.prevSeqNum} != previous seqNum {last}", t, local_ns)
            return
        sync.first_id = last + 1
        self._apply_diff(sync, t.bids, t.asks, t.seqNum, ts * 1_000_000, local_ns)

    def _on_image(self, sync: BookSync, img: _Tick, ts: int, local_ns: int) -> None:
        """The ``rep`` of an MBP ``req``: the image the buffered updates chain onto."""
        if img.seqNum < 0:
            raise msgspec.ValidationError("mbp image without seqNum")
        book = sync.book
        if book.state == VALID:  # not needed: a duplicate reply
            return
        seq = img.seqNum
        buffered = sync.buffer
        start = 0
        while start < len(buffered) and buffered[start].seqNum <= seq:
            start += 1
        if start < len(buffered) and buffered[start].prevSeqNum > seq:
            # Older than every buffered update: the updates in between are in neither. Ask again.
            sync.buffer = buffered[start:]
            self.snapshot_retries += 1
            self.outbox.append(self.snapshot_message(sync.instrument))
            return
        sync.dropped_before_snapshot += start
        book.load_snapshot(img.bids, img.asks)
        self._stamp(sync, seq, ts * 1_000_000, local_ns)
        sync.buffer = []
        for i in range(start, len(buffered)):
            t = buffered[i]
            if t.seqNum <= sync.last_id and t.prevSeqNum < sync.first_id:  # buffered twice
                sync.stale_skipped += 1
                continue
            if t.seqNum <= sync.last_id or (i > start and t.prevSeqNum != sync.last_id):
                self._gap(sync, f"buffered prevSeqNum {t.prevSeqNum} != previous seqNum {sync.last_id}", None,
                          local_ns)
                sync.buffer = buffered[i:]
                return
            sync.first_id = t.prevSeqNum + 1
            self._apply_diff(sync, t.bids, t.asks, t.seqNum, ts * 1_000_000)
        self._now_valid(sync, f"mbp image {seq}", local_ns)

    def _on_full(self, sync: BookSync, t: _Tick, ts: int, local_ns: int) -> None:
        """A ``depth.step0`` frame: the whole 150-level book, replacing ours."""
        if t.version < 0:
            raise msgspec.ValidationError("depth.step0 tick without version")
        book = sync.book
        if book.state == VALID and t.version <= sync.last_id:
            if t.version == sync.last_id:  # the same book again
                sync.stale_skipped += 1
                return
            # Older than the book: this version or the last one is implausible (a corrupt, too
            # large version would otherwise freeze the book). Invalid until the next full book.
            self._gap(sync, f"depth.step0 version {t.version} before {sync.last_id}", None, local_ns)
            return
        book.load_snapshot(t.bids, t.asks)
        sync.diffs_applied += 1
        self._loaded(sync, t.version, ts * 1_000_000, local_ns, f"depth.step0 version {t.version}")

    def _on_hf(self, sync: BookSync, t: _Tick, ts: int, local_ns: int) -> int:
        """A linear swap's ``high_freq`` tick: a snapshot replaces the book, an update must carry
        the next ``version``."""
        if t.version < 0:
            raise msgspec.ValidationError("high_freq tick without version")
        if t.event == "snapshot":
            sync.dropped_before_snapshot += len(sync.buffer)
            sync.buffer = []
            sync.book.load_snapshot(t.bids, t.asks)
            self._loaded(sync, t.version, ts * 1_000_000, local_ns, f"high_freq snapshot version {t.version}")
            return SNAPSHOT
        if t.event != "update":
            raise msgspec.ValidationError(f"high_freq tick with event {t.event!r}")
        if sync.book.state != VALID:  # nothing chains until the snapshot the (re)subscription brings
            sync.dropped_before_snapshot += 1
            return DEPTH
        last = sync.last_id
        if t.version <= last:
            sync.stale_skipped += 1
            return DEPTH
        if t.version != last + 1:
            self._gap(sync, f"version {t.version} != previous version {last} + 1", None, local_ns)
            return DEPTH
        self._apply_diff(sync, t.bids, t.asks, t.version, ts * 1_000_000, local_ns)
        return DEPTH

    def _resync(self, sync: BookSync, reason: str, local_ns: int) -> None:
        """Invalidate and ask for a new image over the socket (step0 books just await the next;
        linear swaps are re-subscribed, which sends a new snapshot)."""
        super()._resync(sync, reason, local_ns)
        if sync.instrument.kind is not Kind.SPOT:
            if not self._connecting:
                self.outbox += [self._msg("unsub", sync.instrument), self._msg("sub", sync.instrument)]
        elif sync.instrument.symbol not in self._full:
            sync.expect_first = False
            self.outbox.append(self.snapshot_message(sync.instrument))


__all__ = ["LEVELS", "LINEAR_URL", "VENUES", "HtxHandler"]
