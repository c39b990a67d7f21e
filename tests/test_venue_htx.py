"""HtxHandler on the real cryptofeed Huobi session (``HUOBI.ws.44.0``), gzip frames and all.

The capture (April 2021) subscribes ``market.$symbol.depth.step0`` for 10 symbols: each frame is
a full 150-level book (a channel HTX still documents), so the reference for every book is the
frame itself, decoded here with ``gzip``/``json`` only. The current ``mbp.150`` incremental
channel is not in the capture: its frames are made from the real ones, each update being the
difference between two consecutive real step0 books (``prevSeqNum``/``seqNum`` = their versions)
and each ``rep`` image a real book. The capture also holds the pongs cryptofeed sent: the
handler's must be the same.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.events import Trade
from cryptoarb.core.instruments import Instrument
from cryptoarb.replay.cryptofeed import RECV, SENT, read_records
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, TRADE, MessageError
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from cryptoarb.venues.htx import HtxHandler

pytestmark = pytest.mark.realdata

SYMBOLS = {"trioeth": "TRIO/ETH", "borusdt": "BOR/USDT", "omgbtc": "OMG/BTC", "xvgeth": "XVG/ETH",
           "yfihusd": "YFI/HUSD", "zeneth": "ZEN/ETH", "dogeeth": "DOGE/ETH", "fil3susdt": "FIL3S/USDT",
           "propyeth": "PROPY/ETH", "nesteth": "NEST/ETH"}


@dataclass
class Capture:
    frames: list[tuple[int, bytes]]  # (ts_ns, gzip payload) received
    sent: list[bytes]


@pytest.fixture(scope="module")
def cap(shared_data_root: Path) -> Capture:
    recs = list(read_records(shared_data_root / "exchange-captures" / "HUOBI.ws.44.0"))
    return Capture([(r.ts_ns, r.payload) for r in recs if r.kind == RECV], [r.payload for r in recs if r.kind == SENT])


def unzip(raw: bytes) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(gzip.decompress(raw))
    return out


def ref_levels(tick: dict[str, Any], side: str) -> list[tuple[float, float]]:
    return sorted(((float(p), float(q)) for p, q in tick[side] if q), reverse=side == "bids")


def same(book: OrderBook, tick: dict[str, Any]) -> bool:
    return list(book.bids()) == ref_levels(tick, "bids") and list(book.asks()) == ref_levels(tick, "asks")


@dataclass
class Calls:
    books: list[tuple[str, bool]] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)

    def on_book(self, book: OrderBook, local_ns: int) -> None:
        self.books.append((book.key, book.valid))

    def on_event(self, ev: Any) -> None:
        assert isinstance(ev, Trade)
        self.trades.append(ev)


def new_handler() -> tuple[HtxHandler, Calls]:
    c = Calls()
    return HtxHandler("htx", Catalog(), c.on_book, on_event=c.on_event, discover=True), c


# -- the whole real session (legacy depth.step0) --------------------------------------------------
def test_every_step0_frame_is_the_book_and_pongs_match_the_capture(cap: Capture) -> None:
    h, c = new_handler()
    kinds: dict[int, int] = {}
    last: dict[str, dict[str, Any]] = {}
    mismatches = []
    for ns, raw in cap.frames:
        k = h.on_message(raw, ns)
        kinds[k] = kinds.get(k, 0) + 1
        msg = unzip(raw)
        if ".depth.step0" in msg.get("ch", ""):
            native = msg["ch"].split(".")[1]
            last[native] = msg
            sync = h.syncs[SYMBOLS[native]]
            if not same(sync.book, msg["tick"]) or sync.book.update_id != msg["tick"]["version"]:
                mismatches.append(msg["ch"])
    assert mismatches == []
    assert sorted(h.syncs) == sorted(SYMBOLS.values())
    for native, msg in last.items():
        sync = h.syncs[SYMBOLS[native]]
        assert sync.book.state == VALID and sync.book.valid and same(sync.book, msg["tick"])
        assert sync.gaps == 0 and sync.resyncs == 0 and sync.stale_skipped == 0
        assert sync.book.exchange_ns == msg["ts"] * 1_000_000
    assert kinds == {SNAPSHOT: 292, TRADE: 44, OTHER: 26}  # 20 sub acks, 6 pings
    assert sum(s.diffs_applied for s in h.syncs.values()) == 292  # full books applied
    assert h.bad_messages == 0 and h.unknown_streams == 0
    assert len(c.books) == 292 and all(valid for _, valid in c.books)
    # the server's pings answered exactly as cryptofeed did (and no req: step0 books need none)
    pongs = [json.loads(s) for s in cap.sent if s.startswith(b'{"pong"')]
    assert len(pongs) == 6 and [json.loads(m) for m in h.outbox] == pongs
    trade_frames = [m for m in (unzip(r) for _, r in cap.frames) if m.get("ch", "").endswith(".trade.detail")]
    assert len(trade_frames) == 44 and len(c.trades) == sum(len(m["tick"]["data"]) for m in trade_frames)
    t = c.trades[0]
    assert (t.key, t.side, t.price, t.qty, t.trade_id) == ("htx TRIO/ETH", "buy", 9.2e-07, 20995.88, 100045088885)


# -- the current mbp.150 channel, made from the real books -------------------------------------
CH = "market.fil3susdt.mbp.150"


@pytest.fixture(scope="module")
def books(cap: Capture) -> list[dict[str, Any]]:
    """The real step0 ticks of fil3susdt, in order (31 of them)."""
    out = [unzip(r) for _, r in cap.frames]
    return [m for m in out if m.get("ch") == "market.fil3susdt.depth.step0"]


def update(books: list[dict[str, Any]], i: int) -> bytes:
    """An mbp.150 update taking book ``i - 1`` to book ``i``: changed levels, removed ones at 0."""
    prev, cur = books[i - 1]["tick"], books[i]["tick"]
    tick: dict[str, Any] = {"seqNum": cur["version"], "prevSeqNum": prev["version"]}
    for side in ("bids", "asks"):
        was = {p: q for p, q in prev[side]}
        now = {p: q for p, q in cur[side]}
        tick[side] = [[p, 0] for p in was if p not in now] + [[p, q] for p, q in now.items() if was.get(p) != q]
    return gzip.compress(json.dumps({"ch": CH, "ts": books[i]["ts"], "tick": tick}).encode())


def image(books: list[dict[str, Any]], i: int) -> bytes:
    t = books[i]["tick"]
    data = {"seqNum": t["version"], "bids": t["bids"], "asks": t["asks"]}
    return gzip.compress(json.dumps({"id": CH, "rep": CH, "status": "ok", "ts": books[i]["ts"], "data": data}).encode())


def test_mbp_buffer_image_then_chain(books: list[dict[str, Any]]) -> None:
    h, c = new_handler()
    for i in (1, 2, 3):
        assert h.on_message(update(books, i), i) == DEPTH
    assert [json.loads(m) for m in h.outbox] == [{"req": CH, "id": CH}]  # asked once, on the first update
    sync = h.syncs["FIL3S/USDT"]
    assert not sync.book.valid and len(sync.buffer) == 3 and c.books == []
    assert h.on_message(image(books, 2), 4) == SNAPSHOT  # holds updates 1 and 2; 3 chains on it
    assert sync.book.valid and same(sync.book, books[3]["tick"]) and sync.dropped_before_snapshot == 2
    for i in range(4, len(books)):
        h.on_message(update(books, i), 10 + i)
        assert same(sync.book, books[i]["tick"]), i
    assert sync.last_id == books[-1]["tick"]["version"] and sync.gaps == 0 and sync.diffs_applied == len(books) - 3
    assert len(c.books) == len(books) - 3 and all(v for _, v in c.books)
    assert h.on_message(image(books, 5), 99) == SNAPSHOT and same(sync.book, books[-1]["tick"])  # late duplicate
    assert h.on_message(update(books, 7), 99) == DEPTH and sync.stale_skipped == 1  # old update: skipped


def test_mbp_gap_asks_for_a_new_image_over_the_socket(books: list[dict[str, Any]]) -> None:
    h, c = new_handler()
    h.on_message(update(books, 1), 1)
    h.on_message(image(books, 1), 2)
    for i in range(2, 10):
        h.on_message(update(books, i), i)
    sync = h.syncs["FIL3S/USDT"]
    h.outbox.clear()
    n = len(c.books)
    before = sync.book.snapshot_levels()
    h.on_message(update(books, 11), 11)  # update 10 lost
    assert sync.gaps == 1 and not sync.book.valid and sync.book.snapshot_levels() == before
    assert [json.loads(m) for m in h.outbox] == [{"req": CH, "id": CH}]
    h.on_message(update(books, 12), 12)
    h.on_message(update(books, 13), 13)
    assert len(c.books) == n and len(h.outbox) == 1  # buffered, not shown, asked only once
    h.on_message(image(books, 11), 14)
    assert sync.book.valid and same(sync.book, books[13]["tick"]) and len(c.books) == n + 1
    for i in range(14, len(books)):
        h.on_message(update(books, i), i)
    assert same(sync.book, books[-1]["tick"]) and sync.gaps == 1 and all(v for _, v in c.books)


def test_a_too_large_seqnum_is_a_gap_not_a_frozen_book(books: list[dict[str, Any]]) -> None:
    """One update whose seqNum is implausibly large would make every later update look old
    (skipped, the book VALID and frozen): the next update, newer than the last one applied
    started, shows it, and the book resyncs."""
    h, c = new_handler()
    h.on_message(update(books, 1), 1)
    h.on_message(image(books, 1), 2)
    for i in range(2, 8):
        h.on_message(update(books, i), i)
    sync = h.syncs["FIL3S/USDT"]
    m = json.loads(gzip.decompress(update(books, 8)))
    m["tick"]["seqNum"] *= 2
    h.on_message(gzip.compress(json.dumps(m).encode()), 8)  # applied (its levels are right)
    h.outbox.clear()
    h.on_message(update(books, 9), 9)
    assert sync.gaps == 1 and not sync.book.valid and sync.stale_skipped == 0
    assert [json.loads(x) for x in h.outbox] == [{"req": CH, "id": CH}]
    h.on_message(update(books, 8), 10)  # a true duplicate after a resync is just buffered
    assert all(v for _, v in c.books)


def test_an_image_older_than_every_buffered_update_is_asked_again(books: list[dict[str, Any]]) -> None:
    h, c = new_handler()
    for i in (5, 6, 7):
        h.on_message(update(books, i), i)
    h.outbox.clear()
    h.on_message(image(books, 2), 8)
    sync = h.syncs["FIL3S/USDT"]
    assert h.snapshot_retries == 1 and sync.gaps == 0 and not sync.book.valid and c.books == []
    assert [json.loads(m) for m in h.outbox] == [{"req": CH, "id": CH}] and len(sync.buffer) == 3
    h.on_message(image(books, 5), 9)
    assert sync.book.valid and same(sync.book, books[7]["tick"])


def test_reset_asks_for_an_mbp_image_but_not_for_a_step0_book(cap: Capture, books: list[dict[str, Any]]) -> None:
    h, _ = new_handler()
    h.on_message(update(books, 1), 1)
    h.on_message(image(books, 1), 2)
    step0 = next(r for _, r in cap.frames if unzip(r).get("ch") == "market.omgbtc.depth.step0")
    h.on_message(step0, 3)
    h.outbox.clear()
    h.reset(h.syncs["OMG/BTC"].instrument, 4, "stale feed")
    assert h.outbox == [] and not h.syncs["OMG/BTC"].book.valid
    h.on_message(step0, 5)  # the next full book restores it
    assert h.syncs["OMG/BTC"].book.valid
    h.reset(h.syncs["FIL3S/USDT"].instrument, 6, "stale feed")
    assert [json.loads(m) for m in h.outbox] == [{"req": CH, "id": CH}]


# -- malformed, control and unknown frames -------------------------------------------------------
def test_malformed_frames_raise_and_leave_the_book_alone(cap: Capture) -> None:
    h, _ = new_handler()
    frame = next(r for _, r in cap.frames if unzip(r).get("ch") == "market.borusdt.depth.step0")
    h.on_message(frame, 1)
    sync = h.syncs["BOR/USDT"]
    state = (sync.book.snapshot_levels(), sync.last_id)
    msg = unzip(frame)
    text = json.dumps(msg).encode()
    wrong_level = json.loads(text)
    wrong_level["tick"]["version"] += 1
    wrong_level["tick"]["bids"][0] = ["lots", 1]
    wrong_version = json.loads(text)
    wrong_version["tick"]["version"] = "new"
    flipped = bytearray(frame)
    flipped[len(flipped) // 2] ^= 0xFF
    bad = [frame[: len(frame) // 2], bytes(flipped), b"\x1f\x8b" + b"\x00" * 20, gzip.compress(text[:-9]),
           gzip.compress(json.dumps(wrong_level).encode()), gzip.compress(json.dumps(wrong_version).encode()),
           gzip.compress(b"{}"), gzip.compress(b"[]"), b"not gzip, not json"]
    no_version = json.loads(text)
    del no_version["tick"]["version"]
    no_seq = {"ch": "market.borusdt.mbp.150", "ts": 1, "tick": {"prevSeqNum": 1, "bids": [], "asks": []}}
    no_image_seq = {"id": 1, "rep": "market.borusdt.mbp.150", "status": "ok", "ts": 1, "data": {"bids": []}}
    bad += [gzip.compress(json.dumps(m).encode()) for m in (no_version, no_seq, no_image_seq)]
    for i, raw in enumerate(bad, 1):
        with pytest.raises(MessageError):
            h.on_message(raw, 2)
        assert h.bad_messages == i
        assert (sync.book.snapshot_levels(), sync.last_id) == state
    assert sync.book.valid and sync.gaps == 0 and sync.buffer == [] and h.outbox == []


def test_ping_acks_errors_and_unknown_channels(cap: Capture) -> None:
    h, _ = new_handler()
    ping = next(r for _, r in cap.frames if b'"ping"' in gzip.decompress(r))
    assert h.on_message(ping, 1) == OTHER
    assert h.outbox == [json.dumps({"pong": unzip(ping)["ping"]}, separators=(",", ":"))]
    ack = next(r for _, r in cap.frames if b'"subbed"' in gzip.decompress(r))
    err = {"id": CH, "status": "error", "err-code": "bad-request", "err-msg": "invalid topic", "ts": 1}
    for raw in (ack, gzip.compress(json.dumps(err).encode())):
        assert h.on_message(raw, 2) == OTHER
    assert h.unknown_streams == 0 and h.bad_messages == 0
    kline = {"ch": "market.btcusdt.kline.1min", "ts": 1, "tick": {"id": 1, "open": 1.0}}
    assert h.on_message(gzip.compress(json.dumps(kline).encode()), 3) == OTHER
    assert h.unknown_streams == 1 and h.syncs == {}


def test_unify_follows_ccxt() -> None:
    h, _ = new_handler()
    for native, symbol in SYMBOLS.items():
        assert h.unify(native) == symbol
    assert h.unify("btcusdt") == "BTC/USDT"
    assert h.unify("ETHBTC") == "ETH/BTC"
    assert h.unify("bchsvusdt") == "BSV/USDT"
    assert h.unify("htusdt") == "HT/USDT"
    for bad in ("usdt", "foobar"):
        with pytest.raises(UnknownInstrument):
            h.unify(bad)


def test_live_spec() -> None:
    h, _ = new_handler()
    inst = Instrument("htx", "BTC/USDT", "BTC", "USDT", exchange_symbol="btcusdt")
    assert [json.loads(m) for m in h.subscribe_messages([inst])] == [
        {"sub": "market.btcusdt.mbp.150", "id": "market.btcusdt.mbp.150"}]
    assert json.loads(h.snapshot_message(inst)) == {"req": "market.btcusdt.mbp.150", "id": "market.btcusdt.mbp.150"}
    assert h.ws_url == "wss://api.huobi.pro/feed" and not h.rest_snapshot and h.ping is None
    with pytest.raises(NotImplementedError):
        h.snapshot_request(inst)
