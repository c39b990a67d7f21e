"""GateHandler on the real cryptofeed Gate.io session (``GATEIO.ws.1.0`` + ``GATEIO.http.0.0``).

The capture (April 2021, API v4) subscribes ``spot.order_book_update`` (100ms) for 10 pairs and
fetched one ``/spot/order_book?with_id=true`` snapshot for each: the channel and fields are
today's. Books are checked level by level against ``RefGate``, an independent rebuild by Gate's
documented procedure written here with plain ``json``/``Decimal`` and no cryptoarb code. Gap,
resync, malformed and unknown frames are made from the real ones.
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
from cryptoarb.venues.gate import SNAPSHOT_METHOD, GateHandler
from tests.venuekit import Record, count, feed, feed_all, merged_records, mismatch

pytestmark = pytest.mark.realdata

PAIRS = ("HAI_ETH", "QTUM3S_USDT", "FAST_USDT", "OMG_USDT", "ZKS_ETH", "NEO_BTC", "INK_USDT", "DIS_USDT",
         "BTC_USDC", "NANO_USDT")

Rec = Record


# -- independent reference ----------------------------------------------------------------
class RefGate:
    """Gate's procedure, plainly: buffer, snapshot ``id``, drop ``u <= id``, first ``U <= id + 1``,
    then ``U == last u + 1``; absolute quantities, 0 deletes."""

    def __init__(self) -> None:
        self.books: dict[str, dict[str, Any]] = {}

    def book(self, pair: str) -> dict[str, Any]:
        return self.books.setdefault(pair, {"bids": {}, "asks": {}, "id": None, "buffer": [], "applied": 0,
                                            "gaps": 0, "dropped": 0, "stale": 0})

    def snapshot(self, pair: str, body: bytes) -> None:
        snap = json.loads(body)
        b = self.book(pair)
        b["bids"] = {Decimal(p): (p, q) for p, q in snap["bids"] if Decimal(q)}
        b["asks"] = {Decimal(p): (p, q) for p, q in snap["asks"] if Decimal(q)}
        b["id"] = snap["id"]
        pending, b["buffer"] = b["buffer"], []
        for d in pending:
            if d["u"] <= b["id"]:
                b["dropped"] += 1
            else:
                self.diff(d)

    def frame(self, raw: bytes) -> None:
        msg = json.loads(raw)
        if msg.get("channel") == "spot.order_book_update" and msg.get("event") == "update":
            d = msg["result"]
            b = self.book(d["s"])
            if b["id"] is None:
                b["buffer"].append(d)
            else:
                self.diff(d)

    def diff(self, d: dict[str, Any]) -> None:
        b = self.book(d["s"])
        if d["u"] <= b["id"]:
            b["stale"] += 1
            return
        if d["U"] > b["id"] + 1:
            b["gaps"] += 1
            return
        for side, key in (("bids", "b"), ("asks", "a")):
            for price, size in d.get(key, []):
                if Decimal(size) == 0:
                    b[side].pop(Decimal(price), None)
                else:
                    b[side][Decimal(price)] = (price, size)
        b["id"] = d["u"]
        b["applied"] += 1

    def levels(self, pair: str, side: str) -> list[tuple[float, float]]:
        lv = self.books[pair][side]
        return [(float(lv[k][0]), float(lv[k][1])) for k in sorted(lv, reverse=side == "bids")]

    def body(self, pair: str) -> bytes:
        b = self.books[pair]
        side = {s: [list(b[s][k]) for k in sorted(b[s], reverse=s == "bids")] for s in ("bids", "asks")}
        return json.dumps({"id": b["id"], "current": 0, "update": 0, **side}).encode()


# -- capture and driving ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def records(shared_data_root: Path) -> list[Rec]:
    return merged_records(shared_data_root, "GATEIO.ws.1.0", "GATEIO.http.0.0")


@dataclass
class Calls:
    books: list[tuple[str, bool]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)

    def on_book(self, book: OrderBook, local_ns: int) -> None:
        self.books.append((book.key, book.valid))

    def on_event(self, ev: Any) -> None:
        if isinstance(ev, Quote):
            self.quotes.append(ev)
        else:
            assert isinstance(ev, Trade)
            self.trades.append(ev)


def new_handler() -> tuple[GateHandler, Calls]:
    c = Calls()
    h = GateHandler("gate", Catalog(), c.on_book, on_event=c.on_event,
                    request_snapshot=lambda i: c.requests.append(i.symbol), discover=True)
    return h, c


@dataclass
class Run:
    h: GateHandler
    calls: Calls
    ref: RefGate
    kinds: dict[int, int]


@pytest.fixture(scope="module")
def run(records: list[Rec]) -> Run:
    h, calls = new_handler()
    ref = RefGate()
    kinds = feed_all(h, ref, records)
    return Run(h, calls, ref, kinds)


# -- the whole real session -------------------------------------------------------------------
def test_every_captured_book_ends_valid_and_equals_the_reference(run: Run) -> None:
    h = run.h
    assert sorted(sy.instrument.exchange_symbol for sy in h.syncs.values()) == sorted(PAIRS)
    for pair in PAIRS:
        sync = h.syncs[h.unify(pair)]
        ref = run.ref.books[pair]
        assert sync.book.state == VALID and sync.book.valid, pair
        assert mismatch(sync.book, run.ref, pair) is None
        assert sync.last_id == sync.book.update_id == ref["id"]
        assert (sync.diffs_applied, sync.dropped_before_snapshot, sync.stale_skipped) == (
            ref["applied"], ref["dropped"], ref["stale"])
        assert sync.gaps == ref["gaps"] == 0 and sync.resyncs == 0 and sync.buffer == []
    total = sum(s.diffs_applied + s.dropped_before_snapshot + s.stale_skipped for s in h.syncs.values())
    assert total == 172 and sum(s.diffs_applied for s in h.syncs.values()) == 159


def test_counts_and_callbacks(run: Run, records: list[Rec]) -> None:
    h = run.h
    assert run.kinds[DEPTH] == count(records, b'"spot.order_book_update","event":"update"') == 172
    assert run.kinds[TRADE] == len(run.calls.trades) == count(records, b'"spot.trades","event":"update"') == 9
    assert run.kinds[-1] == 10
    # spot.tickers and spot.candlesticks updates: channels this handler does not follow
    assert h.unknown_streams == count(records, b'"spot.tickers","event":"update"') + count(
        records, b'"spot.candlesticks","event":"update"') == 36
    assert run.kinds[OTHER] == 36 + count(records, b'"event":"subscribe"')
    assert h.bad_messages == 0 and run.calls.requests == [] and h.snapshot_retries == 0
    assert run.calls.books and all(valid for _, valid in run.calls.books)
    # one call per snapshot and per live update (DIS_USDT's first update was buffered, applied with
    # its snapshot: one call for both)
    assert len(run.calls.books) == 10 + sum(s.diffs_applied for s in h.syncs.values()) - 1
    t = run.calls.trades[0]
    assert (t.key, t.side, t.price, t.qty, t.trade_id) == ("gate DIS/USDT", "sell", 121.58, 0.201, 816995772)
    assert t.exchange_ns == 1619093543708264200


# -- faults made from real frames --------------------------------------------------------------
def one_pair(records: list[Rec], pair: str) -> list[Rec]:
    return [r for r in records if (r[0] == HTTP and f"currency_pair={pair}&".encode() in r[1].encode())
            or (r[0] == RECV and b'"spot.order_book_update","event":"update"' in r[3]
                and f'"s":"{pair}"'.encode() in r[3])]


def test_gap_invalidates_until_a_new_snapshot_then_matches_again(records: list[Rec]) -> None:
    recs = one_pair(records, "OMG_USDT")
    snap_at = next(i for i, r in enumerate(recs) if r[0] == HTTP)
    drop = snap_at + 20
    full = RefGate()
    h, c = new_handler()
    for r in recs[:drop]:
        feed(h, full, r)
    sync = h.syncs["OMG/USDT"]
    assert sync.book.valid
    before = sync.book.snapshot_levels()
    n = len(c.books)
    full.frame(recs[drop][3])  # lost: the handler never sees it
    assert h.on_message(recs[drop + 1][3], 1) == DEPTH
    full.frame(recs[drop + 1][3])
    assert sync.gaps == 1 and not sync.book.valid and sync.book.state != VALID
    assert c.requests == ["OMG/USDT"] and sync.book.snapshot_levels() == before
    for r in recs[drop + 2 : drop + 8]:
        feed(h, full, r)
    assert len(c.books) == n and len(sync.buffer) == 7
    mid = RefGate()  # a snapshot taken 4 updates after the lost one
    for r in recs[: drop + 5]:
        feed_ref(mid, r)
    h.on_snapshot(sync.instrument, mid.body("OMG_USDT"), 2)
    assert sync.book.valid and len(c.books) == n + 1 and sync.gaps == 1
    assert mismatch(sync.book, full, "OMG_USDT") is None
    for r in recs[drop + 8 :]:
        feed(h, full, r)
    assert sync.book.valid and sync.last_id == full.books["OMG_USDT"]["id"]
    assert mismatch(sync.book, full, "OMG_USDT") is None
    assert all(valid for _, valid in c.books)


def feed_ref(ref: RefGate, r: Rec) -> None:
    if r[0] == HTTP:
        ref.snapshot(r[1].split("currency_pair=")[1].split("&")[0], r[3])
    else:
        ref.frame(r[3])


def test_first_update_must_follow_the_snapshot(records: list[Rec]) -> None:
    """A snapshot older than every buffered update is asked again (no gap, nothing shown)."""
    recs = one_pair(records, "NEO_BTC")
    snap = next(r for r in recs if r[0] == HTTP)  # id 31244065
    h, c = new_handler()
    for r in [r for r in recs if r[0] == RECV][8:12]:
        h.on_message(r[3], 1)
    sync = h.syncs["NEO/BTC"]
    h.on_snapshot(sync.instrument, snap[3], 2)
    assert h.snapshot_retries == 1 and c.requests == ["NEO/BTC"] and sync.gaps == 0
    assert sync.book.state != VALID and len(sync.buffer) == 4 and c.books == []


def test_malformed_frames_raise_and_leave_the_book_alone(records: list[Rec]) -> None:
    recs = one_pair(records, "NANO_USDT")
    h, _ = new_handler()
    for r in recs:
        feed(h, None, r)
    sync = h.syncs["NANO/USDT"]
    state = (sync.book.snapshot_levels(), sync.last_id, sync.diffs_applied)
    last = recs[-1][3]
    nxt = json.loads(last)
    nxt["result"]["U"] = nxt["result"]["u"] = nxt["result"]["u"] + 1
    nxt["result"]["b"] = [["8.7411", "2"]]
    wrong_id = json.loads(json.dumps(nxt))
    wrong_id["result"]["U"] = "first"
    wrong_level = json.loads(json.dumps(nxt))
    wrong_level["result"]["b"] = [["8.7411"]]
    no_pair = json.loads(json.dumps(nxt))
    del no_pair["result"]["s"]
    bad = [last[:-7], b"", b"null", json.dumps(wrong_id).encode(), json.dumps(wrong_level).encode(),
           json.dumps(no_pair).encode(), b'{"channel":"spot.order_book_update","event":"surprise","result":{}}']
    for i, raw in enumerate(bad, 1):
        with pytest.raises(MessageError):
            h.on_message(raw, 5)
        assert h.bad_messages == i
        assert (sync.book.snapshot_levels(), sync.last_id, sync.diffs_applied) == state
    assert sync.book.valid and sync.gaps == 0
    assert h.on_message(json.dumps(nxt).encode(), 6) == DEPTH and sync.book.bid_qty == 2.0
    with pytest.raises(MessageError, match="invalid currency_pair"):
        h.on_snapshot(sync.instrument, b'{"label":"INVALID_PARAM_VALUE","message":"invalid currency_pair"}', 7)
    with pytest.raises(MessageError):
        h.on_snapshot(sync.instrument, b'{"id": 5, "bids": [["1"]]}', 7)


def test_unknown_channels_and_control_frames(records: list[Rec]) -> None:
    h, calls = new_handler()
    h.on_event = None
    ack = next(r[3] for r in records if r[0] == RECV and b'"event":"subscribe"' in r[3])
    assert h.on_message(ack, 1) == OTHER
    assert h.on_message(b'{"time":1,"time_ms":1000,"channel":"spot.pong","event":"","result":null}', 1) == OTHER
    assert h.unknown_streams == 0
    ticker = next(r[3] for r in records if r[0] == RECV and b'"spot.tickers","event":"update"' in r[3])
    assert h.on_message(ticker, 1) == OTHER
    assert h.unknown_streams == 1 and h.syncs == {} and h.bad_messages == 0
    quote = b'{"time":1,"channel":"spot.book_ticker","event":"update","result":{"t":1,"u":7,"s":"BTC_USDT",' \
            b'"b":"1.5","B":"2","a":"1.6","A":"3"}}'
    h.on_event = calls.on_event
    assert h.on_message(quote, 1) == QUOTE
    q = calls.quotes[0]
    assert (q.key, q.bid, q.bid_qty, q.ask, q.ask_qty, q.update_id) == ("gate BTC/USDT", 1.5, 2.0, 1.6, 3.0, 7)


def test_unify_follows_ccxt() -> None:
    h, _ = new_handler()
    assert h.unify("BTC_USDT") == "BTC/USDT"
    assert h.unify("QTUM3S_USDT") == "QTUM3S/USDT"
    assert h.unify("BCHSV_USDT") == "BSV/USDT"
    assert h.unify("GTC_USDT") == "GAMECOM/USDT"
    assert h.unify("btc_usdc") == "BTC/USDC"
    for bad in ("BTCUSDT", "_USDT", "BTC_"):
        with pytest.raises(UnknownInstrument):
            h.unify(bad)


def test_live_spec() -> None:
    h, _ = new_handler()
    assert hasattr(ccxt.gate(), SNAPSHOT_METHOD)
    inst = Instrument("gate", "BTC/USDT", "BTC", "USDT", exchange_symbol="BTC_USDT")
    assert h.snapshot_request(inst) == ("public_spot_get_order_book",
                                        {"currency_pair": "BTC_USDT", "limit": 100, "with_id": "true"})
    insts = [Instrument("gate", f"C{i}/USDT", f"C{i}", "USDT", exchange_symbol=f"C{i}_USDT") for i in range(150)]
    msgs = [json.loads(m) for m in h.subscribe_messages(insts)]
    depth = [m for m in msgs if m["channel"] == "spot.order_book_update"]
    trades = [m for m in msgs if m["channel"] == "spot.trades"]
    assert len(depth) == 150 and depth[0]["payload"] == ["C0_USDT", "100ms"]
    assert [len(m["payload"]) for m in trades] == [100, 50]
    assert all(m["event"] == "subscribe" and isinstance(m["time"], int) for m in msgs)
    assert h.ws_url == "wss://api.gateio.ws/ws/v4/" and h.rest_snapshot
    assert h.ping is not None and json.loads(h.ping[1])["channel"] == "spot.ping"
    h.ping = None
    assert h.ping is None


def test_a_cut_off_snapshot_is_exact_only_up_to_its_depth() -> None:
    h, c = new_handler()
    asks = [[f"{101 + i}", "1"] for i in range(100)]  # 101 .. 200: cut off at 200
    inst = h.instrument_for("ABC_USDT")
    h.on_snapshot(inst, json.dumps({"id": 10, "bids": [["100", "1"]], "asks": asks}).encode(), 1)
    sync = h.syncs["ABC/USDT"]
    eat = [[f"{101 + i}", "0"] for i in range(99)]
    upd: dict[str, Any] = {"time": 1, "channel": "spot.order_book_update", "event": "update",
                           "result": {"t": 1, "s": "ABC_USDT", "U": 11, "u": 11, "b": [], "a": eat}}
    h.on_message(json.dumps(upd).encode(), 2)
    assert sync.book.valid and sync.book.ask == 200.0
    upd["result"].update(U=12, u=12, a=[["200", "0"], ["250", "4"]])  # 201..249 were never seen
    h.on_message(json.dumps(upd).encode(), 3)
    assert not sync.book.valid and sync.resyncs == 1 and sync.gaps == 0 and c.requests == ["ABC/USDT"]


def test_a_bad_trade_time_is_a_message_error(records: list[Rec]) -> None:
    h, c = new_handler()
    trade = next(r[3] for r in records if r[0] == RECV and b'"spot.trades","event":"update"' in r[3])
    with pytest.raises(MessageError):
        h.on_message(trade.replace(b'"create_time_ms":"', b'"create_time_ms":"x'), 1)
    assert h.bad_messages == 1 and c.trades == []
    assert h.on_message(trade, 2) == TRADE and len(c.trades) == 1
