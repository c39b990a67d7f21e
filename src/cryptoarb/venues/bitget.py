"""Bitget (``bitget``) order books from the public ``books`` channel (in-stream snapshot).

Current API: v2 public WebSocket (``wss://ws.bitget.com/v2/ws/public``), ``instType`` ``SPOT``,
``USDT-FUTURES``, ``USDC-FUTURES`` or ``COIN-FUTURES``. Bitget documents ("Depth Channel"):

- ``books`` pushes ``action: "snapshot"`` first, then ``action: "update"`` with absolute sizes
  ("0" deletes a level);
- ``checksum``: CRC32, signed 32-bit, of ``bid1Px:bid1Sz:ask1Px:ask1Sz:...`` over the best 25
  levels of each side (a shorter side just stops contributing), built from the original strings
  ("0.5000" is not "0.5"). The original strings of every level are therefore kept beside the
  float book. Bitget sends ``checksum: 0`` where it computes none (snapshots of some channels):
  0 means "not provided";
- ``seq`` "increases when the order book is updated and can be used to detect out-of-order
  packets": an update whose ``seq`` is below the previous one is a gap. ``seq`` may step by
  more than one, so the checksum is what proves nothing was lost near the top. A ``pseq``
  (previous ``seq``, as Bitget's newer UTA stream sends) is honoured when present and non-zero:
  it must equal the previous ``seq``. UTA's own frame layout (``topic``/``symbol``, ``a``/``b``)
  is not parsed: this handler speaks v2 (and v1).

Legacy: the 2022 v1 stream (``wss://ws.bitget.com/spot/v1/stream``, ``instType`` ``SP``/``sp``,
``MC``/``mc``), as in the cryptofeed capture ``BITGET.ws.1.0``, is the same channel family with
the same checksum rule (it verifies on every push of that capture) and no ``seq``: it is parsed
too; the checksum is then the only check. v1 trades (arrays) and tickers (``bestBid``) as well.

A failed check makes the book invalid and queues ``unsubscribe`` + ``subscribe`` for that
instrument in ``outbox`` (Bitget answers with a fresh snapshot).

COIN-FUTURES (coin-margined, ``BTC/USD:BTC``) sizes are in the base coin, like the USDT-margined
ones (``Instrument.base_sized``: the book holds BTC, PnL is settled in BTC at the exit price).

Bitget names a spot market and a perpetual alike (``BTCUSDT``): books are routed by
``(instType, instId)``, and contracts are named ``BTCUSDT_UMCBL`` / ``BTCUSD_DMCBL`` /
``BTCPERP_CMCBL`` (Bitget's v1 contract ids) when an instrument has to be made up (``discover``).
"""

from __future__ import annotations

import msgspec
import orjson

from cryptoarb.core.book import VALID
from cryptoarb.core.events import Quote, Trade
from cryptoarb.core.instruments import Instrument, Kind
from cryptoarb.venues._decode import TextLevel, floats, num
from cryptoarb.venues.base import DEPTH, OTHER, QUOTE, SNAPSHOT, TRADE, BookSync, MessageError
from cryptoarb.venues.catalog import UnknownInstrument
from cryptoarb.venues.checksum import PushHandler, TextBook, interleaved

VENUES = ("bitget",)
CHECKSUM_DEPTH = 25

_QUOTES = ("USDT", "USDC", "USDE", "BTC", "ETH", "EUR", "BRL", "TRY", "BGB", "USD")
#: instType -> (spot?, v1 contract suffix)
_TYPES = {
    "SPOT": (True, ""), "SP": (True, ""),
    "USDT-FUTURES": (False, "UMCBL"), "USDC-FUTURES": (False, "CMCBL"), "COIN-FUTURES": (False, "DMCBL"),
    "MC": (False, ""),
}


class _Arg(msgspec.Struct):
    instType: str = ""
    channel: str = ""
    instId: str = ""


class _Frame(msgspec.Struct):
    """A push (``arg`` + ``data``) or an event (``event``: subscribe, unsubscribe, error)."""

    arg: _Arg | None = None
    action: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    event: str = ""
    code: int | str = 0
    msg: str = ""


class _Book(msgspec.Struct):
    asks: list[TextLevel]  # [price, size]: strings kept for the checksum
    bids: list[TextLevel]
    ts: int = 0
    checksum: int = 0
    seq: int | None = None
    pseq: int | None = None


class _Ticker(msgspec.Struct):
    bidPr: str = ""  # v2
    bidSz: str = ""
    askPr: str = ""
    askSz: str = ""
    bestBid: str = ""  # v1 (no sizes)
    bestAsk: str = ""
    ts: int = 0


class _Trade(msgspec.Struct):
    price: float
    size: float
    side: str
    tradeId: int = 0
    ts: int = 0


_V1Trade = tuple[int, float, float, str]  # [ts, price, size, side]

_decode_frame = msgspec.json.Decoder(_Frame, strict=False).decode
_decode_books = msgspec.json.Decoder(list[_Book], strict=False).decode
_decode_tickers = msgspec.json.Decoder(list[_Ticker], strict=False).decode
_decode_trades = msgspec.json.Decoder(list[_Trade | _V1Trade], strict=False).decode

#: Bitget's CRC32 of the best ``CHECKSUM_DEPTH`` levels (best first, ``bid1Px:bid1Sz:ask1Px:...``), signed 32-bit
checksum = interleaved


class _Route(TextBook[str]):
    """A book plus the original ``"price:size"`` text of each level, which its checksum hashes."""

    __slots__ = ("inst_id", "inst_type")

    def __init__(self, sync: BookSync, inst_type: str, inst_id: str) -> None:
        super().__init__(sync)
        self.inst_type = inst_type
        self.inst_id = inst_id


class BitgetHandler(PushHandler):
    """Bitget spot and futures books of one public v2 connection (v1 frames understood too)."""

    venues = VENUES
    refusal = "not a Bitget venue: {venue!r} (expected one of {expected})"
    max_symbols_per_message = 24  # 2 channels each: a request stays under Bitget's 4096 bytes
    max_symbols_per_connection = 24  # Bitget: fewer than 50 channels per connection for stability
    checksum_depth = CHECKSUM_DEPTH
    ping = (30.0, "ping")  # Bitget closes a connection without a ping for 2 minutes; it answers "pong"

    def _setup(self) -> None:
        self.ws_url = "wss://ws.bitget.com/v2/ws/public"
        self._routes: dict[tuple[str, str], _Route] = {}
        self._by_symbol: dict[str, _Route] = {}
        self._keys: dict[tuple[str, str], str] = {}

    @classmethod
    def check_instruments(cls, insts: list[Instrument]) -> None:
        """Bitget's coin-margined (COIN-FUTURES) contracts are sized in the base coin (book sizes,
        orders and positions in BTC for BTC/USD:BTC), not in quote-valued contracts as ccxt's
        ``inverse`` + ``contractSize`` 1 would suggest: an instrument must say so
        (``Instrument.base_sized``, the default for this venue) or its quantities would be
        misstated by a factor of the price."""
        wrong = [i.symbol for i in insts if i.kind is Kind.INVERSE and not i.base_sized]
        if wrong:
            raise ValueError(f"bitget: coin-margined contracts ({', '.join(wrong)}) are sized in the base coin; "
                             "their instruments must be base_sized")

    # -- naming ----------------------------------------------------------------------
    @staticmethod
    def inst_type(inst: Instrument) -> str:
        if inst.kind is Kind.SPOT:
            return "SPOT"
        if inst.kind is Kind.INVERSE:
            return "COIN-FUTURES"
        return "USDC-FUTURES" if inst.settle == "USDC" else "USDT-FUTURES"

    def unify(self, native: str) -> str:
        """BTCUSDT / BTCUSDT_SPBL -> BTC/USDT, BTCUSDT_UMCBL -> BTC/USDT:USDT,
        BTCUSD_DMCBL -> BTC/USD:BTC, BTCPERP_CMCBL -> BTC/USDC:USDC."""
        pair, _, suffix = native.upper().partition("_")
        if suffix == "CMCBL" and pair.endswith("PERP") and len(pair) > 4:
            return f"{pair[:-4]}/USDC:USDC"
        for q in _QUOTES:
            if pair.endswith(q) and len(pair) > len(q):
                base = pair[: -len(q)]
                if suffix in ("", "SPBL"):
                    return f"{base}/{q}"
                if suffix in ("UMCBL", "CMCBL") and q in ("USDT", "USDC"):
                    return f"{base}/{q}:{q}"
                if suffix == "DMCBL" and q == "USD":
                    return f"{base}/{q}:{base}"
                break
        raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")

    def _instrument(self, inst_type: str, inst_id: str) -> Instrument:
        """The catalog's instrument of a stream's (instType, instId), or (discover) a provisional
        one. The kind must match: a spot market and a perpetual share their instId."""
        spot, suffix = _TYPES[inst_type.upper()]
        if not spot and not suffix:  # v1 "mc": margin coin from the id
            suffix = "DMCBL" if inst_id.upper().endswith("USD") else "CMCBL" if "PERP" in inst_id else "UMCBL"
        inst = self.catalog.find_native(self.venue, inst_id)
        if inst is not None and (inst.kind is Kind.SPOT) == spot:
            return inst
        native = inst_id if spot else f"{inst_id}_{suffix}"
        symbol = self.unify(native)
        try:
            return self.catalog.get(self.venue, symbol)
        except UnknownInstrument:
            if not self.discover:
                raise
        return self.catalog.provisional(self.venue, symbol, native)

    def _key(self, inst_type: str, inst_id: str) -> str:
        k = (inst_type, inst_id)
        key = self._keys.get(k)
        if key is None:
            key = self._keys[k] = self._instrument(inst_type, inst_id).key
        return key

    # -- live ------------------------------------------------------------------------
    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        msgs = []
        for i in range(0, len(insts), self.max_symbols_per_message):
            args = []
            for inst in insts[i : i + self.max_symbols_per_message]:
                t, n = self.inst_type(inst), inst.exchange_symbol.partition("_")[0].upper()
                args.append({"instType": t, "channel": "books", "instId": n})
                if self.wants_events:
                    args.append({"instType": t, "channel": "trade", "instId": n})
            msgs.append(orjson.dumps({"op": "subscribe", "args": args}).decode())
        return msgs

    def resubscribe_messages(self, sync: BookSync) -> list[str]:
        route = self._by_symbol.get(sync.instrument.symbol)
        inst = sync.instrument
        inst_type, inst_id = ((route.inst_type.upper(), route.inst_id) if route is not None
                              else (self.inst_type(inst), inst.exchange_symbol.partition("_")[0].upper()))
        arg = {"instType": inst_type, "channel": "books", "instId": inst_id}
        return [orjson.dumps({"op": op, "args": [arg]}).decode() for op in ("unsubscribe", "subscribe")]

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        """Handle one raw frame; returns its kind (DEPTH, SNAPSHOT, ...). Raises MessageError."""
        if raw == b"pong":
            return OTHER
        try:
            f = _decode_frame(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not a Bitget message: {e}") from None
        if f.event:
            if f.event == "error":  # {"event":"error","arg":{...,"instId":"BTCXXX"},"code":30001,"msg":"..."}
                native = f.arg.instId if f.arg is not None else None
                self._rejected(native or None, f"Bitget error {f.code}: {f.msg}", retry=str(f.code) == "30006")
            return OTHER  # subscribe/unsubscribe acknowledgements
        arg = f.arg
        if arg is None or not f.data or not arg.instId or arg.instType.upper() not in _TYPES:
            self.bad_messages += 1
            raise MessageError("Bitget frame with neither an event nor a channel push of a known instType")
        channel = arg.channel
        if channel == "books":
            k = (arg.instType, arg.instId)
            route = self._routes.get(k)
            if route is None:
                sync = self.sync_for(self._instrument(arg.instType, arg.instId))
                route = self._routes[k] = self._by_symbol[sync.instrument.symbol] = _Route(sync, *k)
            return self._on_books(route, f.action, f.data, local_ns)
        if channel == "trade":
            return self._on_trades(arg, f.action, f.data, local_ns)
        if channel == "ticker":
            return self._on_tickers(arg, f.data, local_ns)
        self.unknown_streams += 1
        return OTHER

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
            raise MessageError(f"bad Bitget books push for {route.inst_id}: {e}") from None
        sync = route.sync
        if action == "snapshot":
            self._push_snapshot(route, d, bids, asks, d.seq, f"snapshot seq={d.seq}", local_ns)
            return SNAPSHOT
        if action != "update":
            self.bad_messages += 1
            raise MessageError(f"Bitget books push for {route.inst_id} with action {action!r}")
        if sync.book.state != VALID:
            sync.dropped_before_snapshot += 1  # a resubscription's snapshot is on its way
            return DEPTH
        if d.pseq and d.pseq != sync.last_id:
            self._gap(sync, f"pseq {d.pseq} != previous seq {sync.last_id}", None, local_ns)
            return DEPTH
        if d.seq is not None and d.seq < sync.last_id:
            self._gap(sync, f"seq {d.seq} < previous seq {sync.last_id}: out of order", None, local_ns)
            return DEPTH
        self._push_update(route, d, bids, asks, d.seq, local_ns)
        return DEPTH

    # -- trades and tickers ----------------------------------------------------------
    def _on_trades(self, arg: _Arg, action: str, data: msgspec.Raw, local_ns: int) -> int:
        if self.on_event is None or action == "snapshot":  # a snapshot is past trades: history
            return TRADE
        key = self._key(arg.instType, arg.instId)
        try:
            rows = _decode_trades(data)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"bad Bitget trade push for {arg.instId}: {e}") from None
        for t in reversed(rows):  # newest first on the wire
            if isinstance(t, _Trade):
                self.on_event(Trade(key, t.price, t.size, t.side, t.tradeId, t.ts * 1_000_000, local_ns))
            else:
                self.on_event(Trade(key, t[1], t[2], t[3], 0, t[0] * 1_000_000, local_ns))
        return TRADE

    def _on_tickers(self, arg: _Arg, data: msgspec.Raw, local_ns: int) -> int:
        if self.on_event is None:
            return QUOTE
        key = self._key(arg.instType, arg.instId)
        try:
            quotes = [
                Quote(key, num(t.bidPr or t.bestBid), num(t.bidSz), num(t.askPr or t.bestAsk), num(t.askSz),
                      0, t.ts * 1_000_000, local_ns)
                for t in _decode_tickers(data)
            ]
        except (msgspec.DecodeError, ValueError) as e:
            self.bad_messages += 1
            raise MessageError(f"bad Bitget ticker push for {arg.instId}: {e}") from None
        for q in quotes:
            self.on_event(q)
        return QUOTE


__all__ = ["CHECKSUM_DEPTH", "VENUES", "BitgetHandler", "checksum"]
