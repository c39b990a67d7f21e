"""Bitfinex (``bitfinex``) order books: WebSocket v2 ``book`` channel, precision ``P0``.

A subscription streams a snapshot, then one message per price level ``[PRICE, COUNT, AMOUNT]``:
AMOUNT > 0 is a bid, < 0 an ask; COUNT 0 deletes the level (AMOUNT 1 for a bid, -1 for an ask).
Bitfinex keeps the subscribed length itself (it deletes the levels leaving it), so no
truncation is needed.

Integrity comes from the ``conf`` flags we send, as Bitfinex documents them:

- ``SEQ_ALL`` (65536) appends a sequence number to every channel message of the connection,
  all channels together, heartbeats included. A jump means a message of *some* channel was
  lost, so every book of the connection is resynced;
- ``OB_CHECKSUM`` (131072) sends ``[CHAN_ID, "cs", CHECKSUM, SEQ]`` after each book change: the
  signed CRC32 of the 25 best bids and asks interleaved (bid price, bid amount, ask price,
  ask amount (negative), ...) joined by ":", each number written as JavaScript's
  ``String(number)`` writes it (Bitfinex serialises with JavaScript: the JSON text of the
  numbers). Floats keep the shortest round-trip digits, so that text is rebuilt exactly
  (``js_number``).

A resync unsubscribes the book's channel and subscribes again (``outbox``); the new channel's
snapshot makes the book valid. The 2021 cryptofeed capture sent ``flags: 65536``: that is
SEQ_ALL (TIMESTAMP is 32768), so it has sequence numbers and no checksums. Without TIMESTAMP
the frames carry no exchange time: ``exchange_ns`` stays 0 and ``update_id`` is the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any

import msgspec
import orjson

from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.events import Quote, Trade
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues._decode import decode_int, decode_parts, decode_str
from cryptoarb.venues.base import DEPTH, OTHER, QUOTE, SNAPSHOT, TRADE, BookSync, MessageError, ResubscribingHandler
from cryptoarb.venues.catalog import UnknownInstrument
from cryptoarb.venues.checksum import interleaved

VENUES = ("bitfinex",)
TIMESTAMP = 32768
SEQ_ALL = 65536
OB_CHECKSUM = 131072
INFO_RESTART, INFO_MAINTENANCE_START, INFO_MAINTENANCE_END = 20051, 20060, 20061
ERR_ALREADY_SUBSCRIBED = 10301

#: ccxt's ``bitfinex.commonCurrencies``
CURRENCIES = {
    "XBT": "BTC", "BCHSV": "BSV", "UST": "USDT", "EUTF0": "EURT", "USTF0": "USDT", "ALG": "ALGO",
    "AMP": "AMPL", "ATO": "ATOM", "BCHABC": "XEC", "BCHN": "BCH", "DAT": "DATA", "DOG": "MDOGE",
    "DSH": "DASH", "EDO": "PNT", "EUS": "EURS", "EUT": "EURT", "HTX": "HT", "IDX": "ID", "IOT": "IOTA",
    "IQX": "IQ", "LUNA": "LUNC", "LUNA2": "LUNA", "MNA": "MANA", "ORS": "ORS Group", "PAS": "PASS",
    "QSH": "QASH", "QTM": "QTUM", "RBT": "RBTC", "SNG": "SNGLS", "STJ": "STORJ", "TERRAUST": "USTC",
    "TSD": "TUSD", "YGG": "YEED", "YYW": "YOYOW", "UDC": "USDC", "VSY": "VSYS", "WAX": "WAXP",
    "XCH": "XCHF", "ZBT": "ZB",
}

_BOOK, _TRADES, _TICKER, _UNKNOWN = "book", "trades", "ticker", ""


class _Event(msgspec.Struct):
    event: str
    channel: str = ""
    chanId: int = 0
    symbol: str = ""
    prec: str = ""
    length: str | int = msgspec.field(default="", name="len")
    flags: int = 0
    code: int = 0
    msg: str = ""


_decode_event = msgspec.json.Decoder(_Event).decode
_decode_levels = msgspec.json.Decoder(list[tuple[float, float, float]]).decode
_decode_level = msgspec.json.Decoder(tuple[float, float, float]).decode
_decode_floats = msgspec.json.Decoder(list[float]).decode
_decode_trade = msgspec.json.Decoder(tuple[int, int, float, float]).decode


@dataclass(slots=True)
class _Chan:
    kind: str
    native: str
    sync: BookSync | None = None
    length: str = "25"


def js_number(x: float) -> str:
    """``String(x)`` in JavaScript: shortest round-trip digits (as Python's ``repr``), exponent
    form only below 1e-6 or from 1e21, no trailing ``.0``."""
    r = repr(x)
    if "e" not in r:
        return r[:-2] if r.endswith(".0") else r
    mant, _, exp = r.partition("e")
    sign = "-" if mant.startswith("-") else ""
    digits = mant.lstrip("-").replace(".", "")
    k = len(digits)
    n = int(exp) + 1  # x = 0.<digits> * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{sign}{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return f"{sign}0.{'0' * -n}{digits}"
    frac = f".{digits[1:]}" if k > 1 else ""
    return f"{sign}{digits[0]}{frac}e{'+' if n > 0 else '-'}{abs(n - 1)}"


def book_checksum(book: OrderBook) -> int:
    """Bitfinex's signed CRC32 of the 25 best bids and asks, interleaved (asks' amounts negative)."""
    return interleaved([(js_number(p), js_number(q)) for p, q in islice(book.bids(), 25)],
                       [(js_number(p), js_number(-q)) for p, q in islice(book.asks(), 25)])


class BitfinexHandler(ResubscribingHandler):
    """Bitfinex trading-pair books (and trades, tickers) on one WebSocket connection."""

    venues = VENUES
    refusal = "not a Bitfinex venue: {venue!r} (expected one of {expected})"
    ws_url = "wss://api-pub.bitfinex.com/ws/2"
    max_symbols_per_message = 1  # one channel per subscribe message
    max_symbols_per_connection = 12  # Bitfinex allows 25 public channels per connection; 2 per symbol
    flags = SEQ_ALL | OB_CHECKSUM
    book_length = "100"  # P0 lengths: 1, 25, 100, 250

    def _setup(self) -> None:
        self._chans: dict[int, _Chan] = {}
        self._retired: set[int] = set()  # unsubscribed channels whose last frames may still come
        self._seq = 0  # last sequence number (SEQ_ALL), 0 before the first
        self._flags = 0  # as acknowledged by the venue

    # -- live ------------------------------------------------------------------------
    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        msgs = [{"event": "conf", "flags": self.flags}]
        for inst in insts:
            msgs.append(self._book_sub(inst.exchange_symbol, self.book_length))
            if self.wants_events:
                msgs.append({"event": "subscribe", "channel": "trades", "symbol": inst.exchange_symbol})
        return [orjson.dumps(m).decode() for m in msgs]

    @staticmethod
    def _book_sub(native: str, length: str) -> dict[str, Any]:
        return {"event": "subscribe", "channel": "book", "symbol": native, "prec": "P0", "freq": "F0",
                "len": length}

    def unify(self, native: str) -> str:
        """``tBTCUSD`` -> ``BTC/USD``, ``tTESTBTC:TESTUSD`` -> ``TESTBTC/TESTUSD``,
        ``tBTCF0:USTF0`` -> ``BTC/USDT:USDT`` (ccxt's symbols and currency codes)."""
        pair = native[1:] if native.startswith("t") else ""
        base, sep, quote = pair.partition(":")
        if not sep and len(pair) == 6:
            base, quote = pair[:3], pair[3:]
        if not base or not quote:
            raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")
        if base.endswith("F0") and quote.endswith("F0"):  # perpetual swap, settled in the quote
            q = CURRENCIES.get(quote[:-2], quote[:-2])
            return f"{CURRENCIES.get(base[:-2], base[:-2])}/{q}:{q}"
        return f"{CURRENCIES.get(base, base)}/{CURRENCIES.get(quote, quote)}"

    def on_connect(self, insts: list[Instrument], local_ns: int) -> None:
        """A new connection: new channel ids, a new sequence; everything is subscribed anew."""
        self._chans.clear()
        self._retired.clear()
        self._seq = self._flags = 0
        super().on_connect(insts, local_ns)

    def resubscribe_messages(self, sync: BookSync) -> list[str]:
        """Unsubscribe the book's channel (retired: its last frames may still come), subscribe anew."""
        native, length = sync.instrument.exchange_symbol, self.book_length
        msgs = []
        for chan_id, ch in list(self._chans.items()):
            if ch.sync is sync:
                del self._chans[chan_id]
                self._retired.add(chan_id)
                native, length = ch.native, ch.length
                msgs.append(orjson.dumps({"event": "unsubscribe", "chanId": chan_id}).decode())
        return [*msgs, orjson.dumps(self._book_sub(native, length)).decode()]

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        """Handle one raw frame; returns its kind (DEPTH, SNAPSHOT, ...). Raises MessageError."""
        if not raw.startswith(b"["):
            return self._on_event(raw, local_ns)
        try:
            parts = decode_parts(raw)
            chan_id = decode_int(parts[0])
            body = bytes(parts[1])
            tag = decode_str(body) if body.startswith(b'"') else ""
            seq_at = 3 if tag in ("cs", "te", "tu") else 2
            seq = decode_int(parts[seq_at]) if self._flags & SEQ_ALL else 0
            ch = self._chans.get(chan_id)
            kind = ch.kind if ch is not None and tag != "hb" else _UNKNOWN
            data: Any = None
            snap = body.startswith((b"[[", b"[]"))
            if kind == _BOOK:
                if tag == "cs":
                    data = decode_int(parts[2])
                elif not tag:
                    data = _decode_levels(body) if snap else [_decode_level(body)]
            elif kind == _TICKER and not tag:
                data = _decode_floats(body)
                if len(data) < 4:
                    raise ValueError("a ticker has at least 4 fields")
            elif kind == _TRADES and tag == "te":
                data = _decode_trade(parts[2])
        except (ValueError, IndexError) as e:  # msgspec.DecodeError is a ValueError
            self.bad_messages += 1
            raise MessageError(f"bad Bitfinex frame: {e}") from None
        if seq:
            if self._seq and seq != self._seq + 1:
                self._seq_gap(f"sequence {seq} after {self._seq}", local_ns)
                if ch is not None and ch.sync is not None:  # its channel was just retired: not applied
                    self._seq = seq
                    return OTHER
            self._seq = seq
        if tag == "hb":
            return OTHER
        if ch is None or kind == _UNKNOWN:
            if chan_id not in self._retired:
                self.unknown_streams += 1
                if ch is None and self._chans:
                    # Channel ids are ours (every one was announced by a "subscribed" event): a
                    # frame of none of them is a frame of some channel with a corrupt id, i.e. a
                    # lost message of that channel, which the sequence cannot show (it counted it).
                    self._seq_gap(f"frame of unknown channel {chan_id}", local_ns)
            return OTHER
        if kind == _BOOK:
            assert ch.sync is not None
            if tag == "cs":
                self._verify(ch.sync, data, local_ns)
                return DEPTH
            if tag:
                self.unknown_streams += 1
                return OTHER
            self._on_book(ch.sync, data, snap, seq, local_ns)
            return SNAPSHOT if snap else DEPTH
        if kind == _TICKER:
            if tag == "" and self.on_event is not None:
                key = self.instrument_for(ch.native).key
                self.on_event(Quote(key, data[0], data[1], data[2], data[3], seq, 0, local_ns))
            return QUOTE
        if data is not None and self.on_event is not None:  # "te": [ID, MTS, AMOUNT, PRICE]
            tid, mts, amount, price = data
            side = "buy" if amount > 0 else "sell"
            self.on_event(Trade(self.instrument_for(ch.native).key, price, abs(amount), side, tid,
                                mts * 1_000_000, local_ns))
        return TRADE  # trade snapshots and "tu" confirmations carry nothing new

    def _on_book(self, sync: BookSync, levels: list[tuple[float, float, float]], snap: bool, seq: int,
                 local_ns: int) -> None:
        book = sync.book
        if snap:  # no exchange time in these frames (no TIMESTAMP flag)
            book.load_snapshot([(p, a) for p, _, a in levels if a > 0], [(p, -a) for p, _, a in levels if a < 0])
            self._stamp(sync, seq, book.exchange_ns, local_ns)
            self._now_valid(sync, "snapshot", local_ns)
        elif book.state != VALID:
            sync.dropped_before_snapshot += 1
        else:
            p, count, a = levels[0]
            level = ((p, 0.0 if count == 0 else abs(a)),)
            bids, asks = (level, ()) if a > 0 else ((), level)
            self._apply_diff(sync, bids, asks, seq, book.exchange_ns, local_ns)

    def _verify(self, sync: BookSync, expected: int, local_ns: int) -> None:
        if sync.book.state == VALID:  # no book to check until the snapshot
            self._checksum_ok(sync, book_checksum(sync.book), expected, local_ns)

    def _seq_gap(self, reason: str, local_ns: int) -> None:
        """A lost message of an unknown channel: every book of the connection is suspect."""
        for ch in list(self._chans.values()):
            if ch.sync is not None:
                self._gap(ch.sync, reason, None, local_ns)

    def _on_event(self, raw: bytes, local_ns: int) -> int:
        try:
            ev = _decode_event(raw)
        except msgspec.DecodeError as e:
            self.bad_messages += 1
            raise MessageError(f"not a Bitfinex message: {e}") from None
        if ev.event == "subscribed":
            if ev.channel == "book" and ev.prec in ("P0", ""):
                sync = self.sync_for(self.instrument_for(ev.symbol))
                self._chans[ev.chanId] = _Chan(_BOOK, ev.symbol, sync, str(ev.length or "25"))
            elif ev.channel in (_TRADES, _TICKER) and ev.symbol.startswith("t"):
                self._chans[ev.chanId] = _Chan(ev.channel, ev.symbol)
            else:  # other precisions, raw books, candles, funding: not handled, counted when they come
                self._chans[ev.chanId] = _Chan(_UNKNOWN, ev.symbol)
        elif ev.event == "error":
            # 10300 subscription failed, 10302 unknown channel, 10305 too many channels: the
            # market is not streamed. 10301 (already subscribed) and 104xx (unsubscribe of a
            # channel already gone) change nothing.
            if ev.code != ERR_ALREADY_SUBSCRIBED and not 10400 <= ev.code < 10500:
                self._rejected(ev.symbol, f"Bitfinex error {ev.code}: {ev.msg}")
        elif ev.event == "conf" and ev.flags:
            self._flags = ev.flags
            self.checksum_depth = 25 if ev.flags & OB_CHECKSUM else 0  # "cs" covers 25 levels per side
        elif ev.event == "info" and ev.code in (INFO_RESTART, INFO_MAINTENANCE_START):
            for ch in list(self._chans.values()):  # books freeze: invalid until resubscribed
                if ch.sync is not None and ch.sync.book.state == VALID:
                    self._resync(ch.sync, f"Bitfinex info {ev.code}", local_ns)
        elif ev.event == "info" and ev.code == INFO_MAINTENANCE_END:
            for ch in list(self._chans.values()):  # Bitfinex advises subscribing again
                if ch.sync is not None:
                    self._resync(ch.sync, f"Bitfinex info {ev.code}", local_ns)
                    self.outbox += self.resubscribe_messages(ch.sync)
        return OTHER


__all__ = ["OB_CHECKSUM", "SEQ_ALL", "TIMESTAMP", "VENUES", "BitfinexHandler", "book_checksum", "js_number"]
