"""BitfinexHandler on the real Bitfinex capture, plus the checksum on real books.

The cryptofeed capture ``BITFINEX.ws.11.0`` (2021) sent ``{"event":"conf","flags":65536}``:
65536 is SEQ_ALL (TIMESTAMP is 32768), so every channel message carries the connection's
sequence number (1..1670, no gap) and there is no checksum in the capture. 7 P0 books
(``len`` 100): 7 snapshots and 1,593 updates, plus tickers, trades and heartbeats.

Independent checks: ``RefBitfinex`` below (plain ``json`` with the number texts kept, no
cryptoarb code) rebuilds every book from the documented rules and is compared level by level
with the handler's books. For the checksum, the same real stream is replayed with a
``[CHAN_ID, "cs", CHECKSUM, SEQ]`` frame after every book message, as Bitfinex sends them with
OB_CHECKSUM, computed by the reference from the JSON number texts (what Bitfinex's own
JavaScript hashes): the handler, which hashes floats rewritten the JavaScript way, must agree
on all 1,600 of them.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.core.book import INVALID, SYNCING, VALID, OrderBook
from cryptoarb.core.events import BookStateChange, Quote, Trade
from cryptoarb.venues.base import DEPTH, OTHER, QUOTE, SNAPSHOT, TRADE
from cryptoarb.venues.bitfinex import OB_CHECKSUM, SEQ_ALL, BitfinexHandler, book_checksum, js_number
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from tests.venuekit import assert_all_rejected, capture_frames, levels

pytestmark = pytest.mark.realdata

CAPTURE = "BITFINEX.ws.11.0"
BOOKS = {  # chanId -> (native, ccxt symbol) of the capture's books
    232957: ("tTESTBTC:TESTUSD", "TESTBTC/TESTUSD"), 225206: ("tDOGUSD", "MDOGE/USD"),
    204928: ("tODEUSD", "ODE/USD"), 232955: ("tIOTETH", "IOTA/ETH"), 232956: ("tMNABTC", "MANA/BTC"),
    232954: ("tBFTUSD", "BFT/USD"), 232958: ("tSNGUSD", "SNGLS/USD"),
}
UPDATES = 1593
LAST_SEQ = 1670


# -- the independent reference ------------------------------------------------------------
def signed_crc(text: str) -> int:
    c = zlib.crc32(text.encode())
    return c - 2**32 if c >= 2**31 else c


class RefBitfinex:
    """P0 books by the documented rules, number texts as sent (JavaScript's own)."""

    def __init__(self) -> None:
        self.chans: dict[str, tuple[str, str]] = {}
        self.books: dict[str, dict[str, dict[str, str]]] = {}  # native -> side -> price text -> amount text
        self.last_seq = 0
        self.seq_gaps = 0
        self.updates = 0
        self.book_seq: dict[str, int] = {}  # native -> sequence number of its last book message

    def feed(self, raw: bytes) -> str | None:
        """Returns the chanId (text) of a book message."""
        msg = json.loads(raw, parse_float=str, parse_int=str)
        if isinstance(msg, dict):
            if msg["event"] == "subscribed":
                self.chans[msg["chanId"]] = (msg["channel"], msg["symbol"])
            return None
        seq = int(msg[-1])
        self.seq_gaps += seq != self.last_seq + 1
        self.last_seq = seq
        chan, payload = msg[0], msg[1]
        if self.chans.get(chan, ("",))[0] != "book" or isinstance(payload, str):
            return None
        native = self.chans[chan][1]
        self.book_seq[native] = seq
        if not payload or isinstance(payload[0], list):
            self.books[native] = {"b": {}, "a": {}}
            for price, _, amount in payload:
                self.books[native]["b" if Decimal(amount) > 0 else "a"][price] = amount
        else:
            self.updates += 1
            price, count, amount = payload
            side = self.books[native]["b" if Decimal(amount) > 0 else "a"]
            if int(count) == 0:
                del side[price]  # Bitfinex never deletes a level it did not send
            else:
                side[price] = amount
        return str(chan)

    def strings(self, native: str, side: str) -> list[tuple[str, str]]:
        levels = self.books[native][side]
        return [(p, levels[p]) for p in sorted(levels, key=Decimal, reverse=side == "b")]

    def levels(self, native: str, side: str) -> list[tuple[float, float]]:
        return [(float(p), abs(float(a))) for p, a in self.strings(native, side)]

    def checksum(self, native: str) -> int:
        """Documented: 25 bids and asks interleaved, price:amount, asks negative, ':' joined."""
        bids, asks = self.strings(native, "b")[:25], self.strings(native, "a")[:25]
        parts: list[str] = []
        for i in range(25):
            if i < len(bids):
                parts += bids[i]
            if i < len(asks):
                parts += asks[i]  # the amount text is already negative
        return signed_crc(":".join(parts))

    def snapshot_frame(self, native: str, chan: int, seq: int) -> bytes:
        levels = [f"[{p},1,{a}]" for p, a in self.strings(native, "b") + self.strings(native, "a")]
        return f"[{chan},[{','.join(levels)}],{seq}]".encode()


# -- driving the handler --------------------------------------------------------------------
@dataclass
class Recorder:
    calls: list[tuple[str, bool, int]] = field(default_factory=list)
    states: list[BookStateChange] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)

    def on_book(self, book: OrderBook, local_ns: int) -> None:
        self.calls.append((book.instrument.symbol, book.valid, book.state))


def new_handler(discover: bool = True) -> tuple[BitfinexHandler, Recorder]:
    rec = Recorder()
    h = BitfinexHandler("bitfinex", Catalog(), rec.on_book, on_event=rec.events.append,
                        on_state=rec.states.append, discover=discover)
    return h, rec


def resequence(raw: bytes, seq: int) -> bytes:
    return re.sub(rb",\d+\]$", b",%d]" % seq, raw)


def with_checksums(frames: list[tuple[int, bytes]]) -> tuple[list[tuple[int, bytes]], int]:
    """The stream as sent with OB_CHECKSUM: a checksum frame after every book message."""
    ref = RefBitfinex()
    out: list[tuple[int, bytes]] = []
    seq = 0
    added = 0
    for ns, raw in frames:
        if raw.startswith(b"{"):
            out.append((ns, raw.replace(b'"flags":65536', b'"flags":%d' % (SEQ_ALL | OB_CHECKSUM))))
            ref.feed(raw)
            continue
        seq += 1
        raw = resequence(raw, seq)
        out.append((ns, raw))
        chan = ref.feed(raw)
        if chan is not None:
            seq += 1
            cs = f'[{chan},"cs",{ref.checksum(ref.chans[chan][1])},{seq}]'.encode()
            ref.feed(cs)
            out.append((ns, cs))
            added += 1
    return out, added


@pytest.fixture(scope="module")
def frames(shared_data_root: Path) -> list[tuple[int, bytes]]:
    return capture_frames(shared_data_root, CAPTURE)


@dataclass
class Replay:
    handler: BitfinexHandler
    rec: Recorder
    ref: RefBitfinex
    kinds: dict[int, int]
    mismatches: list[str]


@pytest.fixture(scope="module")
def replay(frames: list[tuple[int, bytes]]) -> Replay:
    h, rec = new_handler()
    ref = RefBitfinex()
    kinds: dict[int, int] = {}
    mismatches: list[str] = []
    for i, (ns, raw) in enumerate(frames):
        chan = ref.feed(raw)
        kind = h.on_message(raw, ns)
        kinds[kind] = kinds.get(kind, 0) + 1
        if chan is not None and (ref.updates % 200 == 0 or i == len(frames) - 1):
            for native, symbol in BOOKS.values():
                if native in ref.books:
                    want = (ref.levels(native, "b"), ref.levels(native, "a"))
                    if levels(h.syncs[symbol].book) != want and len(mismatches) < 5:
                        mismatches.append(f"frame {i}: {symbol}")
    return Replay(h, rec, ref, kinds, mismatches)


# -- the whole real capture ------------------------------------------------------------------
def test_capture_every_book_valid_no_gap(replay: Replay) -> None:
    h = replay.handler
    assert sorted(h.syncs) == sorted(s for _, s in BOOKS.values())
    for symbol, sync in h.syncs.items():
        assert sync.book.valid and sync.book.state == VALID, symbol
        assert sync.gaps == 0 and sync.resyncs == 0 and sync.dropped_before_snapshot == 0
    assert sum(s.diffs_applied for s in h.syncs.values()) == UPDATES == replay.ref.updates
    assert replay.ref.seq_gaps == 0 and replay.ref.last_seq == LAST_SEQ
    assert h._seq == LAST_SEQ and h._flags == SEQ_ALL  # the capture's conf: sequence numbers on
    assert (h.checksums_ok, h.checksum_failures) == (0, 0)  # no checksum in this capture
    assert h.bad_messages == 0 and h.unknown_streams == 0 and h.outbox == []
    for native, symbol in BOOKS.values():  # no exchange ids on Bitfinex: the connection's sequence
        assert h.syncs[symbol].book.update_id == replay.ref.book_seq[native], symbol


def test_capture_full_books_equal_the_reference(replay: Replay) -> None:
    assert replay.mismatches == []
    for native, symbol in BOOKS.values():
        book = replay.handler.syncs[symbol].book
        assert levels(book) == (replay.ref.levels(native, "b"), replay.ref.levels(native, "a")), symbol
    assert replay.handler.syncs["MANA/BTC"].book.depth() == (51, 88)


def test_capture_kinds_and_callbacks(replay: Replay) -> None:
    # 7 tickers and 7 trade channels: 21 ticker updates, 7 trade snapshots; 42 heartbeats + 23 events
    assert replay.kinds == {SNAPSHOT: 7, DEPTH: UPDATES, QUOTE: 21, TRADE: 7, OTHER: 65}
    assert len(replay.rec.calls) == 7 + UPDATES
    assert all(valid and state == VALID for _, valid, state in replay.rec.calls)
    assert [s.state for s in replay.rec.states] == [VALID] * 7
    quotes = [e for e in replay.rec.events if isinstance(e, Quote)]
    assert len(quotes) == 21 and len(replay.rec.events) == 21
    first = quotes[0]
    assert (first.key, first.bid, first.bid_qty, first.ask, first.ask_qty) == (
        "bitfinex BFT/USD", 0.068965, 60157.36709703, 0.0774, 48578.50804052)


def test_checksums_verify_on_the_real_books(frames: list[tuple[int, bytes]]) -> None:
    stream, added = with_checksums(frames)
    assert added == 7 + UPDATES
    h, rec = new_handler()
    for ns, raw in stream:
        h.on_message(raw, ns)
    assert h._flags == SEQ_ALL | OB_CHECKSUM
    assert (h.checksums_ok, h.checksum_failures) == (added, 0)
    assert all(s.book.valid and s.gaps == 0 for s in h.syncs.values())
    assert len(rec.calls) == 7 + UPDATES


# -- faults on the real stream ---------------------------------------------------------------
def _book_updates(frames: list[tuple[int, bytes]], chan: int) -> list[int]:
    prefix = b"[%d,[" % chan
    return [i for i, (_, raw) in enumerate(frames) if raw.startswith(prefix) and not raw.startswith(prefix + b"[")]


def test_sequence_gap_resyncs_every_book_then_a_new_subscription_restores_one(
        frames: list[tuple[int, bytes]]) -> None:
    updates = _book_updates(frames, 225206)
    lost = updates[len(updates) // 2]
    h, rec = new_handler()
    ref = RefBitfinex()
    new_chan = 999001
    offset = 0
    expose = None
    resub_at = lost + 60
    for i, (ns, raw) in enumerate(frames):
        ref.feed(raw)
        if i == lost:
            continue
        if i == resub_at:  # Bitfinex answers the re-subscription: a new channel and its snapshot
            sub = {"event": "subscribed", "channel": "book", "chanId": new_chan, "symbol": "tDOGUSD",
                   "prec": "P0", "freq": "F0", "len": "100", "pair": "DOGUSD"}
            assert h.on_message(json.dumps(sub).encode(), ns) == OTHER
            assert h.on_message(ref.snapshot_frame("tDOGUSD", new_chan, h._seq + 1), ns) == SNAPSHOT
            offset = 1
            assert h.syncs["MDOGE/USD"].book.valid
        if raw.startswith(b"[") and offset:  # later frames: one more before them, DOGUSD on its new channel
            raw = resequence(raw, int(raw.rsplit(b",", 1)[1][:-1]) + offset).replace(b"[225206,", b"[%d," % new_chan)
        h.on_message(raw, ns)
        if expose is None and any(s.gaps for s in h.syncs.values()):
            expose = i
            assert all((s.gaps, s.resyncs) == (1, 1) for s in h.syncs.values())
            assert all(not s.book.valid and s.book.state == SYNCING for s in h.syncs.values())
            assert [s.state for s in rec.states[-7:]] == [INVALID] * 7
            assert "sequence" in rec.states[-1].reason
            out = [json.loads(m) for m in h.outbox]
            assert len(out) == 14
            assert sorted(m["chanId"] for m in out[::2]) == sorted(BOOKS)
            assert {m["symbol"] for m in out[1::2]} == {n for n, _ in BOOKS.values()}
            assert out[1] == {"event": "subscribe", "channel": "book", "symbol": BOOKS[out[0]["chanId"]][0],
                              "prec": "P0", "freq": "F0", "len": "100"}
            calls_at_gap = len(rec.calls)
        if expose is not None and i < resub_at:
            assert len(rec.calls) == calls_at_gap, "on_book for an invalid book"
    assert expose == lost + 1
    doge = h.syncs["MDOGE/USD"]
    assert doge.book.valid and doge.gaps == 1
    assert levels(doge.book) == (ref.levels("tDOGUSD", "b"), ref.levels("tDOGUSD", "a"))
    # the others wait for their own new subscriptions: never published meanwhile
    assert all(s.book.state == SYNCING for k, s in h.syncs.items() if k != "MDOGE/USD")
    assert {c[0] for c in rec.calls[calls_at_gap:]} == {"MDOGE/USD"}
    assert h.unknown_streams == 0  # frames of the retired channels are expected, not unknown


def test_corrupted_checksum_invalidates_that_book_only(frames: list[tuple[int, bytes]]) -> None:
    stream, _ = with_checksums(frames)
    cs_at = [i for i, (_, raw) in enumerate(stream) if raw.startswith(b'[232955,"cs",')][300]
    h, rec = new_handler()
    for ns, raw in stream[:cs_at]:
        h.on_message(raw, ns)
    iota = h.syncs["IOTA/ETH"]
    assert iota.book.valid
    chan, _, value, seq = json.loads(stream[cs_at][1])
    calls = len(rec.calls)
    assert h.on_message(json.dumps([chan, "cs", value ^ 1, seq]).encode(), 1) == DEPTH
    assert (h.checksum_failures, iota.gaps) == (1, 1)
    assert not iota.book.valid and iota.book.state == SYNCING and len(rec.calls) == calls
    assert [json.loads(m) for m in h.outbox] == [
        {"event": "unsubscribe", "chanId": 232955},
        {"event": "subscribe", "channel": "book", "symbol": "tIOTETH", "prec": "P0", "freq": "F0", "len": "100"}]
    assert all(s.book.valid for k, s in h.syncs.items() if k != "IOTA/ETH")
    for ns, raw in stream[cs_at + 1 :]:  # the rest of the stream: the old channel is ignored
        h.on_message(raw, ns)
    assert not iota.book.valid and h.checksum_failures == 1 and h.unknown_streams == 0
    assert all(s.book.valid and s.gaps == 0 for k, s in h.syncs.items() if k != "IOTA/ETH")


def _warm(frames: list[tuple[int, bytes]], upto: int) -> BitfinexHandler:
    h, _ = new_handler()
    for ns, raw in frames[:upto]:
        h.on_message(raw, ns)
    return h


def _state(h: BitfinexHandler) -> list[Any]:
    return [(k, levels(s.book), s.book.state, s.diffs_applied, s.gaps) for k, s in sorted(h.syncs.items())] + [
        h._seq, h.checksums_ok, list(h.outbox)]


def test_malformed_frames_raise_and_leave_books_unchanged(frames: list[tuple[int, bytes]]) -> None:
    updates = _book_updates(frames, 225206)
    h = _warm(frames, updates[100])
    raw = frames[updates[100]][1]
    seq = h._seq + 1
    assert raw.endswith(b",%d]" % seq)
    cases = {
        "truncated": raw[:-4],
        "not JSON": b"hello",
        "empty array": b"[]",
        "no payload": b"[225206]",
        "channel id is a string": b'["225206",[279380,1,0.1],%d]' % seq,
        "level of two": b"[225206,[279380,1],%d]" % seq,
        "price is a string": b'[225206,["279380",1,0.1],%d]' % seq,
        "amount is null": b"[225206,[279380,1,null],%d]" % seq,
        "snapshot level of two": b"[225206,[[279380,1]],%d]" % seq,
        "no sequence": b"[225206,[279380,1,0.1]]",
        "sequence is a string": b'[225206,[279380,1,0.1],"x"]',
        "checksum is a string": b'[225206,"cs","x",%d]' % seq,
        "ticker too short": b"[232950,[1,2],%d]" % seq,
        "event without event": b'{"chanId":1}',
        "event of the wrong type": b'{"event":1}',
    }
    assert_all_rejected(h, cases, _state)
    assert h.on_message(raw, 2) == DEPTH  # the genuine frame: no gap, applied
    assert all(s.gaps == 0 and s.book.valid for s in h.syncs.values()) and h._seq == seq


def test_unknown_channels_are_counted_and_skipped(frames: list[tuple[int, bytes]]) -> None:
    h = _warm(frames, 300)
    before = _state(h)[:-3]
    seq = h._seq
    sub = b'{"event":"subscribed","channel":"candles","chanId":778,"key":"trade:1m:tBTCUSD"}'
    assert h.on_message(sub, 1) == OTHER
    assert h.on_message(b"[778,[1,2,3,4,5,6],%d]" % (seq + 1), 1) == OTHER
    sub = b'{"event":"subscribed","channel":"book","chanId":779,"symbol":"tBTCUSD","prec":"R0","len":"25"}'
    assert h.on_message(sub, 1) == OTHER
    assert h.on_message(b"[779,[[1,2,3]],%d]" % (seq + 2), 1) == OTHER  # a raw book: not handled
    assert h.on_message(b'[778,"hb",%d]' % (seq + 3), 1) == OTHER  # heartbeats are not counted
    assert h.unknown_streams == 2 and h.bad_messages == 0
    assert _state(h)[:-3] == before and all(s.gaps == 0 for s in h.syncs.values())


def test_a_frame_of_a_channel_never_subscribed_resyncs_every_book(frames: list[tuple[int, bytes]]) -> None:
    """Channel ids are announced by "subscribed" events: a frame of no channel of ours is a frame
    of one of ours with a corrupt id, lost to its book while the sequence counted it."""
    h = _warm(frames, 300)
    valid = [s for s in h.syncs.values() if s.book.valid]
    assert valid
    assert h.on_message(b"[777,[1,2,3],%d]" % (h._seq + 1), 1) == OTHER
    assert h.unknown_streams == 1
    assert all(s.gaps == 1 and not s.book.valid for s in valid)
    assert h.outbox  # each resubscribed


def test_trades_and_tickers_become_events(frames: list[tuple[int, bytes]]) -> None:
    h, rec = new_handler()
    for ns, raw in frames[:40]:
        h.on_message(raw, ns)
    seq = h._seq
    rec.events.clear()
    assert h.on_message(b'[232959,"te",[669899160,1618677546000,-12.5,0.0769],%d]' % (seq + 1), 5) == TRADE
    assert h.on_message(b'[232959,"tu",[669899160,1618677546000,-12.5,0.0769],%d]' % (seq + 2), 6) == TRADE
    assert h.on_message(b'[232949,[0.07,1.5,0.071,2.5,0,0,0.0705,10,0.08,0.06],%d]' % (seq + 3), 7) == QUOTE
    trade, quote = rec.events
    assert isinstance(trade, Trade) and isinstance(quote, Quote)
    assert (trade.key, trade.price, trade.qty, trade.side, trade.trade_id, trade.exchange_ns) == (
        "bitfinex BFT/USD", 0.0769, 12.5, "sell", 669899160, 1618677546000 * 10**6)
    assert (quote.bid, quote.bid_qty, quote.ask, quote.ask_qty, quote.update_id) == (0.07, 1.5, 0.071, 2.5, seq + 3)


def test_maintenance_info_events(frames: list[tuple[int, bytes]]) -> None:
    h = _warm(frames, 300)
    valid = [k for k, s in h.syncs.items() if s.book.valid]
    assert len(valid) == 5
    assert h.on_message(b'{"event":"info","code":20060,"msg":"Entering maintenance mode"}', 1) == OTHER
    assert all(not s.book.valid for s in h.syncs.values()) and h.outbox == []
    assert h.on_message(b'{"event":"info","code":20061,"msg":"Maintenance ended"}', 2) == OTHER
    assert len(h.outbox) == 2 * 5  # every book channel so far unsubscribed and subscribed again
    assert all(s.gaps == 0 for s in h.syncs.values())


def test_empty_snapshot_then_levels() -> None:
    h, rec = new_handler()
    h.on_message(b'{"event":"subscribed","channel":"book","chanId":5,"symbol":"tBTCUST","prec":"P0","len":"25"}', 1)
    assert h.on_message(b"[5,[]]", 2) == SNAPSHOT
    book = h.syncs["BTC/USDT"].book
    assert book.valid and book.depth() == (0, 0)
    h.on_message(b"[5,[60000,1,0.5]]", 3)
    h.on_message(b"[5,[60010,2,-1.25]]", 4)
    h.on_message(b"[5,[60000,0,1]]", 5)
    assert levels(book) == ([], [(60010.0, 1.25)]) and len(rec.calls) == 4


def test_a_snapshot_right_after_a_lost_message_is_not_trusted() -> None:
    """Its channel is being replaced: a book loaded from it would never be updated again."""
    h, rec = new_handler()
    h.on_message(b'{"event":"conf","status":"OK","flags":65536}', 1)
    h.on_message(b'{"event":"subscribed","channel":"book","chanId":5,"symbol":"tBTCUSD","prec":"P0","len":"25"}', 1)
    h.on_message(b"[5,[[60000,1,0.5],[60010,1,-1]],1]", 2)
    sync = h.syncs["BTC/USD"]
    assert sync.book.valid and len(rec.calls) == 1
    assert h.on_message(b"[5,[[60001,1,0.5],[60010,1,-1]],3]", 3) == OTHER  # seq 2 was lost
    assert sync.gaps == 1 and sync.book.state == SYNCING and len(rec.calls) == 1
    assert levels(sync.book) == ([(60000.0, 0.5)], [(60010.0, 1.0)])
    assert [json.loads(m)["event"] for m in h.outbox] == ["unsubscribe", "subscribe"]
    assert h.on_message(b"[5,[60002,1,0.5],4]", 4) == OTHER  # the retired channel: ignored
    h.on_message(b'{"event":"subscribed","channel":"book","chanId":6,"symbol":"tBTCUSD","prec":"P0","len":"25"}', 5)
    assert h.on_message(b"[6,[[60002,1,0.5],[60010,1,-1]],5]", 6) == SNAPSHOT
    assert sync.book.valid and len(rec.calls) == 2 and h.unknown_streams == 0


# -- the checksum on hand-made data -----------------------------------------------------------
@pytest.mark.parametrize(
    ("x", "js"),
    [(60400.0, "60400"), (0.068965, "0.068965"), (1.7023900800000002, "1.7023900800000002"), (2e-8, "2e-8"),
     (1.5e-7, "1.5e-7"), (0.000001, "0.000001"), (0.00002505, "0.00002505"), (-0.00426663, "-0.00426663"),
     (1e21, "1e+21"), (1.2345e22, "1.2345e+22"), (1e16, "10000000000000000"), (123456789012345680000.0,
     "123456789012345680000"), (-1.0, "-1"), (0.1, "0.1"), (1e-6, "0.000001"), (1e-7, "1e-7")],
)
def test_js_number_writes_numbers_as_javascript_does(x: float, js: str) -> None:
    assert js_number(x) == js


def test_checksum_on_a_hand_made_book() -> None:
    """Bitfinex's documented algorithm, written out for a small book of awkward numbers."""
    h, rec = new_handler()
    h.on_message(b'{"event":"conf","status":"OK","flags":196608}', 1)
    h.on_message(b'{"event":"subscribed","channel":"book","chanId":9,"symbol":"tTESTBTC:TESTUSD",'
                 b'"prec":"P0","len":"25"}', 1)
    snap = b"[9,[[60400,2,1.5],[1e-7,1,2.5e-8],[60401,1,-1.7023900800000002],[1.5e14,3,-0.000001]],1]"
    h.on_message(snap, 2)
    book = h.syncs["TESTBTC/TESTUSD"].book
    text = "60400:1.5:60401:-1.7023900800000002:1e-7:2.5e-8:150000000000000:-0.000001"
    assert book_checksum(book) == signed_crc(text)
    assert h.on_message(b'[9,"cs",%d,2]' % signed_crc(text), 3) == DEPTH
    assert (h.checksums_ok, h.checksum_failures) == (1, 0) and book.valid
    h.on_message(b"[9,[60402,1,-3],3]", 4)  # a new ask, second best: asks go 60401, 60402, 1.5e14
    text = "60400:1.5:60401:-1.7023900800000002:1e-7:2.5e-8:60402:-3:150000000000000:-0.000001"
    assert h.on_message(b'[9,"cs",%d,4]' % signed_crc(text), 5) == DEPTH
    assert (h.checksums_ok, h.checksum_failures) == (2, 0) and book.valid
    h.on_message(b"[9,[60402,0,-1],5]", 6)  # deleted, but the venue's checksum still counts it
    assert h.on_message(b'[9,"cs",%d,6]' % signed_crc(text), 7) == DEPTH
    assert (h.checksums_ok, h.checksum_failures) == (2, 1) and not book.valid
    assert [json.loads(m) for m in h.outbox] == [
        {"event": "unsubscribe", "chanId": 9},
        {"event": "subscribe", "channel": "book", "symbol": "tTESTBTC:TESTUSD", "prec": "P0", "freq": "F0",
         "len": "25"}]
    assert len(rec.calls) == 3


# -- naming and live settings -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("native", "symbol"),
    [("tBTCUSD", "BTC/USD"), ("tTESTBTC:TESTUSD", "TESTBTC/TESTUSD"), ("tDOGUSD", "MDOGE/USD"),
     ("tIOTETH", "IOTA/ETH"), ("tMNABTC", "MANA/BTC"), ("tBTCUST", "BTC/USDT"), ("tBTCF0:USTF0", "BTC/USDT:USDT"),
     ("tETHF0:USTF0", "ETH/USDT:USDT"), ("tXAUT:USD", "XAUT/USD")],
)
def test_unify(native: str, symbol: str) -> None:
    assert new_handler()[0].unify(native) == symbol


def test_unify_rejects_funding_and_junk() -> None:
    for bad in ("fUSD", "BTCUSD", "tBTC", "t:USD"):
        with pytest.raises(UnknownInstrument):
            new_handler()[0].unify(bad)


def test_unknown_symbol_without_discover_raises(frames: list[tuple[int, bytes]]) -> None:
    h, _ = new_handler(discover=False)
    sub = next(raw for _, raw in frames if raw.startswith(b'{"event":"subscribed","channel":"book"'))
    with pytest.raises(UnknownInstrument, match="TESTBTC:TESTUSD"):
        h.on_message(sub, 1)
    assert h.syncs == {}


def test_subscribe_messages_and_live_settings() -> None:
    h, _ = new_handler()
    insts = [h.instrument_for("tBTCUSD"), h.instrument_for("tETHUSD")]
    msgs = [json.loads(m) for m in h.subscribe_messages(insts)]
    assert msgs[0] == {"event": "conf", "flags": 196608}
    assert msgs[1:] == [
        {"event": "subscribe", "channel": "book", "symbol": "tBTCUSD", "prec": "P0", "freq": "F0", "len": "100"},
        {"event": "subscribe", "channel": "trades", "symbol": "tBTCUSD"},
        {"event": "subscribe", "channel": "book", "symbol": "tETHUSD", "prec": "P0", "freq": "F0", "len": "100"},
        {"event": "subscribe", "channel": "trades", "symbol": "tETHUSD"},
    ]
    assert 2 * h.max_symbols_per_connection <= 25  # Bitfinex: 25 public channels per connection
    assert h.ws_url == "wss://api-pub.bitfinex.com/ws/2" and h.rest_snapshot is False and h.ping is None
    h.outbox.append("stale")
    h.on_connect(insts, 1)
    assert h.outbox == [] and h._seq == 0 and h._flags == 0
