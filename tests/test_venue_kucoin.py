"""KucoinHandler on the real cryptofeed KuCoin session (``KUCOIN.ws.1.0`` + ``KUCOIN.http.0.0``).

The capture (April 2021) subscribes ``/market/level2`` for 10 symbols and fetched one REST level2
snapshot for 9 of them (``LTX-USDT`` sent no level2 diff and got no snapshot: no book). Its diff
frames are today's format minus ``data.time``. The books are checked level by level against
``RefKucoin``, an independent rebuild by KuCoin's documented procedure written here with plain
``json``/``Decimal`` and no cryptoarb code. Gap, resync, malformed and unknown frames are made
from the real ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.events import Quote, Trade
from cryptoarb.core.instruments import Instrument
from cryptoarb.replay.cryptofeed import HTTP, RECV
from cryptoarb.venues.base import DEPTH, OTHER, QUOTE, TRADE, MessageError
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from cryptoarb.venues.kucoin import BULLET_METHOD, FULL_SNAPSHOT_METHOD, SNAPSHOT_METHOD, KucoinHandler
from tests.venuekit import Record, count, feed, feed_all, merged_records, mismatch

pytestmark = pytest.mark.realdata

SYMBOLS = {"BCHSV-USDT": "BSV/USDT", "SNX-BTC": "SNX/BTC", "CAPP-BTC": "CAPP/BTC", "ANKR-BTC": "ANKR/BTC",
           "FET-BTC": "FET/BTC", "DAPPT-BTC": "DAPPT/BTC", "NRG-BTC": "NRG/BTC", "COV-BTC": "COV/BTC",
           "EQZ-BTC": "EQZ/BTC"}

Rec = Record


# -- independent reference ----------------------------------------------------------------
class RefKucoin:
    """KuCoin's calibration procedure, plainly: buffer diffs, load the snapshot, replay the
    buffer applying only changes with a sequence above the book's, then chain on
    ``sequenceStart <= last + 1``; price 0 is a no-op, size 0 deletes."""

    def __init__(self) -> None:
        self.books: dict[str, dict[str, Any]] = {}

    def book(self, sym: str) -> dict[str, Any]:
        return self.books.setdefault(sym, {"bids": {}, "asks": {}, "seq": None, "buffer": [], "applied": 0,
                                           "gaps": 0, "dropped": 0, "stale": 0})

    def snapshot(self, sym: str, body: bytes) -> None:
        data = json.loads(body)["data"]
        b = self.book(sym)
        b["bids"] = {Decimal(p): (p, q) for p, q in data["bids"] if Decimal(q)}
        b["asks"] = {Decimal(p): (p, q) for p, q in data["asks"] if Decimal(q)}
        b["seq"] = int(data["sequence"])
        pending, b["buffer"] = b["buffer"], []
        for d in pending:
            if d["sequenceEnd"] <= b["seq"]:
                b["dropped"] += 1
            else:
                self.diff(d)

    def frame(self, raw: bytes) -> None:
        msg = json.loads(raw)
        if msg.get("subject") == "trade.l2update":
            d = msg["data"]
            b = self.book(d["symbol"])
            if b["seq"] is None:
                b["buffer"].append(d)
            else:
                self.diff(d)

    def diff(self, d: dict[str, Any]) -> None:
        b = self.book(d["symbol"])
        if d["sequenceEnd"] <= b["seq"]:
            b["stale"] += 1
            return
        if d["sequenceStart"] > b["seq"] + 1:
            b["gaps"] += 1
            return
        for side in ("bids", "asks"):
            for price, size, seq in d["changes"][side]:
                if Decimal(price) == 0 or int(seq) <= b["seq"]:
                    continue
                if Decimal(size) == 0:
                    b[side].pop(Decimal(price), None)
                else:
                    b[side][Decimal(price)] = (price, size)
        b["seq"] = d["sequenceEnd"]
        b["applied"] += 1

    def levels(self, sym: str, side: str) -> list[tuple[float, float]]:
        lv = self.books[sym][side]
        keys = sorted(lv, reverse=side == "bids")
        return [(float(lv[k][0]), float(lv[k][1])) for k in keys]

    def body(self, sym: str) -> bytes:
        """This book as a KuCoin REST level2 body (a snapshot taken now)."""
        b = self.books[sym]
        side = {s: [list(b[s][k]) for k in sorted(b[s], reverse=s == "bids")] for s in ("bids", "asks")}
        return json.dumps({"code": "200000", "data": {"sequence": str(b["seq"]), "time": 0, **side}}).encode()


# -- capture and driving ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def records(shared_data_root: Path) -> list[Rec]:
    return merged_records(shared_data_root, "KUCOIN.ws.1.0", "KUCOIN.http.0.0")


@dataclass
class Rec0:
    calls: list[tuple[str, bool]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    quotes: int = 0
    trades: int = 0

    def on_book(self, book: OrderBook, local_ns: int) -> None:
        self.calls.append((book.key, book.valid))

    def on_event(self, ev: Any) -> None:
        if isinstance(ev, Quote):
            self.quotes += 1
        else:
            assert isinstance(ev, Trade)
            self.trades += 1


def new_handler() -> tuple[KucoinHandler, Rec0]:
    rec = Rec0()
    h = KucoinHandler("kucoin", Catalog(), rec.on_book, on_event=rec.on_event,
                      request_snapshot=lambda i: rec.requests.append(i.symbol), discover=True)
    return h, rec


@dataclass
class Run:
    h: KucoinHandler
    rec: Rec0
    ref: RefKucoin
    kinds: dict[int, int]


@pytest.fixture(scope="module")
def run(records: list[Rec]) -> Run:
    h, rec = new_handler()
    ref = RefKucoin()
    kinds = feed_all(h, ref, records)
    return Run(h, rec, ref, kinds)


# -- the whole real session -------------------------------------------------------------------
def test_every_captured_book_ends_valid_and_equals_the_reference(run: Run) -> None:
    h = run.h
    assert {s: sy.instrument.exchange_symbol for s, sy in h.syncs.items()} == {v: k for k, v in SYMBOLS.items()}
    for native, symbol in SYMBOLS.items():
        sync = h.syncs[symbol]
        ref = run.ref.books[native]
        assert sync.book.state == VALID and sync.book.valid, symbol
        assert mismatch(sync.book, run.ref, native) is None
        assert sync.last_id == sync.book.update_id == ref["seq"]
        assert (sync.diffs_applied, sync.dropped_before_snapshot, sync.stale_skipped) == (
            ref["applied"], ref["dropped"], ref["stale"])
        assert sync.gaps == ref["gaps"] == 0 and sync.resyncs == 0 and sync.buffer == []
    # BCHSV-USDT: 18 diffs older than its snapshot arrive after it (sent before the REST reply)
    assert h.syncs["BSV/USDT"].stale_skipped == 18
    # every level2 diff was applied, or was already in its book's snapshot
    assert sum(s.diffs_applied + s.dropped_before_snapshot + s.stale_skipped for s in h.syncs.values()) == 3853
    assert sum(s.diffs_applied for s in h.syncs.values()) == 3805


def test_counts_and_callbacks(run: Run, records: list[Rec]) -> None:
    h = run.h
    assert run.kinds[DEPTH] == count(records, b'"trade.l2update"') == 3853
    assert run.kinds[QUOTE] == run.rec.quotes == count(records, b'"trade.ticker"') == 830
    assert run.kinds[TRADE] == run.rec.trades == count(records, b'"trade.l3match"') == 18
    assert run.kinds[-1] == 9  # REST snapshots
    # welcome + acks + 6 candle frames (not a channel this handler knows: counted, skipped)
    assert h.unknown_streams == count(records, b'"/market/candles:') == 6
    assert h.bad_messages == 0 and run.rec.requests == [] and h.outbox == [] and h.snapshot_retries == 0
    assert run.rec.calls and all(valid for _, valid in run.rec.calls)
    assert len(run.rec.calls) == 9 + sum(s.diffs_applied for s in h.syncs.values())


# -- faults made from real frames --------------------------------------------------------------
def one_symbol(records: list[Rec], native: str) -> list[Rec]:
    """The snapshot and the level2 frames of one symbol, in capture order."""
    return [r for r in records if (r[0] == HTTP and r[1].endswith(native))
            or (r[0] == RECV and f'"/market/level2:{native}"'.encode() in r[3])]


def test_gap_invalidates_until_a_new_snapshot_then_matches_again(records: list[Rec]) -> None:
    recs = one_symbol(records, "BCHSV-USDT")
    snap_at = next(i for i, r in enumerate(recs) if r[0] == HTTP)
    drop = snap_at + 300  # well after the stale diffs
    full = RefKucoin()  # the reference sees every frame
    for r in recs[:drop]:
        (full.snapshot("BCHSV-USDT", r[3]) if r[0] == HTTP else full.frame(r[3]))
    h, rec = new_handler()
    for r in recs[:drop]:
        feed(h, None, r)
    sync = h.syncs["BSV/USDT"]
    assert sync.book.valid
    before = sync.book.snapshot_levels()
    calls = len(rec.calls)
    full.frame(recs[drop][3])  # the frame the handler never sees
    assert h.on_message(recs[drop + 1][3], 1) == DEPTH
    assert sync.gaps == 1 and sync.resyncs == 1 and not sync.book.valid and sync.book.state != VALID
    assert rec.requests == ["BSV/USDT"]
    assert sync.book.snapshot_levels() == before  # nothing applied across the gap
    # the diffs that follow are buffered, never shown
    for r in recs[drop + 1 : drop + 20]:
        full.frame(r[3])
    for r in recs[drop + 2 : drop + 20]:
        assert h.on_message(r[3], 1) == DEPTH
    assert len(rec.calls) == calls and len(sync.buffer) == 19
    # a snapshot taken 10 frames after the gap: the older buffered diffs are dropped, the rest chain
    mid = RefKucoin()
    for r in recs[: drop + 11]:
        (mid.snapshot("BCHSV-USDT", r[3]) if r[0] == HTTP else mid.frame(r[3]))
    h.on_snapshot(sync.instrument, mid.body("BCHSV-USDT"), 2)
    assert sync.book.valid and sync.gaps == 1 and len(rec.calls) == calls + 1
    assert sync.dropped_before_snapshot == 1 + 10  # the first snapshot's one, then the 10 the new one holds
    assert mismatch(sync.book, full, "BCHSV-USDT") is None
    for r in recs[drop + 20 :]:
        full.frame(r[3])
        h.on_message(r[3], 3)
    assert sync.book.valid and sync.gaps == 1 and sync.last_id == full.books["BCHSV-USDT"]["seq"]
    assert mismatch(sync.book, full, "BCHSV-USDT") is None
    assert all(valid for _, valid in rec.calls)


def test_snapshot_older_than_every_buffered_diff_is_asked_again_not_a_gap(records: list[Rec]) -> None:
    recs = one_symbol(records, "SNX-BTC")
    snap = next(r for r in recs if r[0] == HTTP)
    diffs = [r for r in recs if r[0] == RECV]
    h, rec = new_handler()
    for r in diffs[10:20]:  # the snapshot (sequence 1612844051657) predates these
        h.on_message(r[3], 1)
    sync = h.syncs["SNX/BTC"]
    h.on_snapshot(sync.instrument, snap[3], 2)
    assert h.snapshot_retries == 1 and rec.requests == ["SNX/BTC"] and sync.gaps == 0
    assert sync.book.state != VALID and len(sync.buffer) == 10 and rec.calls == []


def test_malformed_frames_raise_and_leave_the_book_alone(records: list[Rec]) -> None:
    recs = one_symbol(records, "EQZ-BTC")
    h, _ = new_handler()
    for r in recs:
        feed(h, None, r)
    sync = h.syncs["EQZ/BTC"]
    state = (sync.book.snapshot_levels(), sync.last_id, sync.book.update_id, sync.diffs_applied)
    last = recs[-1][3]
    nxt = json.loads(last)
    nxt["data"]["sequenceStart"] = nxt["data"]["sequenceEnd"] = nxt["data"]["sequenceEnd"] + 1
    nxt["data"]["changes"] = {"asks": [], "bids": [["0.00002383", "1", str(nxt["data"]["sequenceEnd"])]]}
    wrong_seq = json.loads(json.dumps(nxt))
    wrong_seq["data"]["sequenceStart"] = "next"
    wrong_price = json.loads(json.dumps(nxt))
    wrong_price["data"]["changes"]["bids"][0][0] = "lots"
    no_changes = json.loads(json.dumps(nxt))
    del no_changes["data"]["changes"]
    bad = [last[: len(last) // 2], b"", b"[1, 2]", b'{"type": 5}', json.dumps(wrong_seq).encode(),
           json.dumps(wrong_price).encode(), json.dumps(no_changes).encode(), b'{"type": "surprise"}']
    for i, raw in enumerate(bad, 1):
        with pytest.raises(MessageError):
            h.on_message(raw, 5)
        assert h.bad_messages == i
        assert (sync.book.snapshot_levels(), sync.last_id, sync.book.update_id, sync.diffs_applied) == state
    assert sync.book.valid and sync.gaps == 0
    # the well-formed frame still applies afterwards
    assert h.on_message(json.dumps(nxt).encode(), 6) == DEPTH and sync.book.bid_qty == 1.0
    with pytest.raises(MessageError, match="400100"):
        h.on_snapshot(sync.instrument, b'{"code": "400100", "msg": "symbol not exists"}', 7)
    with pytest.raises(MessageError):
        h.on_snapshot(sync.instrument, b'{"code": "200000", "data": {"bids": []}}', 7)


def test_unknown_channels_and_control_frames(records: list[Rec]) -> None:
    h, _ = new_handler()
    for raw in (b'{"id":"NSkIrWGB1s","type":"welcome"}', b'{"id":"1","type":"ack"}',
                b'{"id":"ping","type":"pong","timestamp":1}'):
        assert h.on_message(raw, 1) == OTHER
    assert h.unknown_streams == 0
    frame = next(r[3] for r in records if r[0] == RECV and b"trade.l2update" in r[3])
    other = frame.replace(b'"/market/level2:', b'"/market/snapshot:')
    assert h.on_message(other, 1) == OTHER
    assert h.unknown_streams == 1 and h.syncs == {} and h.bad_messages == 0


def test_unify_follows_ccxt() -> None:
    h, _ = new_handler()
    assert h.unify("BTC-USDT") == "BTC/USDT"
    assert h.unify("BCHSV-USDT") == "BSV/USDT"
    assert h.unify("WAX-BTC") == "WAXP/BTC"
    assert h.unify("eth-btc") == "ETH/BTC"
    for bad in ("BTCUSDT", "-USDT", "BTC-"):
        with pytest.raises(UnknownInstrument):
            h.unify(bad)
    with pytest.raises(UnknownInstrument):
        KucoinHandler("kucoin", Catalog(), lambda b, n: None).on_message(
            b'{"type":"message","topic":"/market/level2:BTC-USDT","subject":"trade.l2update","data":{}}', 1)


def test_live_spec() -> None:
    h, _ = new_handler()
    ex = ccxt.kucoin()
    for method in (SNAPSHOT_METHOD, FULL_SNAPSHOT_METHOD, BULLET_METHOD):
        assert hasattr(ex, method), method
    inst = Instrument("kucoin", "BTC/USDT", "BTC", "USDT", exchange_symbol="BTC-USDT")
    assert h.snapshot_request(inst) == ("public_get_market_orderbook_level2_100", {"symbol": "BTC-USDT"})
    insts = [Instrument("kucoin", f"C{i}/USDT", f"C{i}", "USDT", exchange_symbol=f"C{i}-USDT") for i in range(250)]
    msgs = [json.loads(m) for m in h.subscribe_messages(insts)]
    assert len(msgs) == 6
    assert [m["topic"].split(":")[0] for m in msgs] == ["/market/level2", "/market/match"] * 3
    assert all(m["type"] == "subscribe" and len(m["topic"].split(":")[1].split(",")) <= 100 for m in msgs)
    assert sum(len(m["topic"].split(",")) for m in msgs if m["topic"].startswith("/market/level2")) == 250
    assert h.ws_url.startswith("wss://") and h.ping is None  # until the bullet says where and how often
    bullet = {"code": "200000", "data": {"token": "2neAiuYvAU61ZDXANAGAsiL4", "instanceServers": [
        {"endpoint": "wss://ws-api-spot.kucoin.com/", "encrypt": True, "protocol": "websocket",
         "pingInterval": 18000, "pingTimeout": 10000}]}}
    h.use_bullet(json.dumps(bullet).encode())
    assert h.ws_url.startswith("wss://ws-api-spot.kucoin.com/?token=2neAiuYvAU61ZDXANAGAsiL4")
    assert h.ping is not None and h.ping[0] == 18.0 and json.loads(h.ping[1])["type"] == "ping"
    with pytest.raises(MessageError):
        h.use_bullet(b'{"code": "200000", "data": {"token": "x", "instanceServers": []}}')


def test_a_cut_off_snapshot_is_exact_only_up_to_its_depth() -> None:
    """A 100-level REST snapshot: once the bids behind its last level would be the best, resync."""
    h, rec = new_handler()
    bids = [[f"{100 - i}", "1"] for i in range(100)]  # 100 .. 1: cut off at 1
    body = {"code": "200000", "data": {"sequence": "10", "time": 0, "bids": bids, "asks": [["101", "1"]]}}
    inst = h.instrument_for("ABC-USDT")
    h.on_snapshot(inst, json.dumps(body).encode(), 1)
    sync = h.syncs["ABC/USDT"]
    assert sync.book.valid
    eat = [[f"{100 - i}", "0", str(11)] for i in range(99)]  # leaves only the level at 1
    data: dict[str, Any] = {"symbol": "ABC-USDT", "sequenceStart": 11, "sequenceEnd": 11, "time": 1,
                            "changes": {"bids": eat, "asks": []}}
    frame = {"type": "message", "topic": "/market/level2:ABC-USDT", "subject": "trade.l2update", "data": data}
    h.on_message(json.dumps(frame).encode(), 2)
    assert sync.book.valid and sync.book.bid == 1.0  # still inside the snapshot's depth
    data.update(sequenceStart=12, sequenceEnd=12, changes={"bids": [["1", "0", "12"]], "asks": []})
    h.on_message(json.dumps(frame).encode(), 3)
    assert not sync.book.valid and sync.resyncs == 1 and sync.gaps == 0 and rec.requests == ["ABC/USDT"]
    assert len(rec.calls) == 2 and all(valid for _, valid in rec.calls)
