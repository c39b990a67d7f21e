"""Bybit handler on real data: the legacy v2 capture and the current v5 fixtures.

``BYBIT.ws.26.0`` (2021) is the v2 ``orderBookL2_25`` feed for the inverse BTCUSD and EOSUSD
perpetuals: replayed whole through the legacy path and checked against a tiny independent
rebuild keyed by level id (plain json + dicts). The v5 ``orderbook`` format exists only as the
``exchange-fixtures`` messages: they build the expected book, and hand-made frames derived from
them exercise the ``u`` chain, restarts, resubscription and malformed input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.core.book import INVALID, SYNCING, VALID, OrderBook
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.replay.cryptofeed import RECV, read_records, venue_of
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, MessageError
from cryptoarb.venues.bybit import BybitHandler, parse_rest_orderbook
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from tests.venuekit import Levels, ValidRecorder, levels

pytestmark = pytest.mark.realdata

Recorder = ValidRecorder


def new_handler(catalog: Catalog | None = None, discover: bool = True) -> tuple[BybitHandler, Recorder]:
    rec = Recorder()
    h = BybitHandler("bybit", catalog or Catalog(), rec.on_book, on_state=rec.states.append, discover=discover)
    return h, rec


# -- the independent reference (no cryptoarb code) -------------------------------------------
class RefL2:
    """Bybit v2 orderBookL2_25 by its documentation: the snapshot lists levels by id; a delta
    deletes, updates and inserts levels by id. Returns False on an inconsistent delta."""

    def __init__(self) -> None:
        self.levels: dict[str, dict[int, tuple[str, float, float]]] = {}  # symbol -> id -> side, price, size
        self.applied: dict[str, int] = {}

    def feed(self, raw: bytes) -> bool:
        msg = json.loads(raw)
        topic = msg.get("topic", "")
        if not topic.startswith("orderBookL2_25."):
            return True
        sym = topic.split(".")[1]
        if msg["type"] == "snapshot":
            self.levels[sym] = {x["id"]: (x["side"], float(x["price"]), float(x["size"])) for x in msg["data"]}
            self.applied[sym] = 0
            return True
        book = self.levels[sym]
        for x in msg["data"]["delete"]:
            if book.pop(x["id"], None) is None:
                return False
        for x in msg["data"]["update"] + msg["data"]["insert"]:
            book[x["id"]] = (x["side"], float(x["price"]), float(x["size"]))
        self.applied[sym] += 1
        return True

    def book(self, sym: str) -> tuple[Levels, Levels]:
        lv = self.levels[sym].values()
        return (sorted(((p, q) for s, p, q in lv if s == "Buy"), reverse=True),
                sorted((p, q) for s, p, q in lv if s == "Sell"))


# -- the 2021 capture (legacy v2) ------------------------------------------------------------
@dataclass
class Replay:
    handler: BybitHandler
    rec: Recorder
    ref: RefL2
    kinds: dict[int, int]
    frames: list[bytes]
    mismatches: list[str]
    checked: int


@pytest.fixture(scope="module")
def capture(shared_data_root: Path) -> Replay:
    records = list(read_records(shared_data_root / "exchange-captures" / "BYBIT.ws.26.0"))
    assert venue_of(records[0].url) == "bybit" and records[0].url.endswith("/realtime")  # the v2 endpoint
    frames = [r.payload for r in records if r.kind == RECV]
    h, rec = new_handler()
    ref = RefL2()
    kinds: dict[int, int] = {}
    mismatches: list[str] = []
    checked = 0
    for i, raw in enumerate(frames):
        assert ref.feed(raw), f"the reference found frame {i} inconsistent"
        kind = h.on_message(raw, 1_618_677_000_000_000_000 + i)
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == DEPTH and i % 20 == 0:
            sym = json.loads(raw)["topic"].split(".")[1]
            checked += 1
            if levels(h.syncs[h.unify(sym)].book) != ref.book(sym) and len(mismatches) < 5:
                mismatches.append(f"frame {i} {sym}")
    return Replay(h, rec, ref, kinds, frames, mismatches, checked)


def test_capture_books_valid_and_equal_to_the_reference(capture: Replay) -> None:
    h, ref = capture.handler, capture.ref
    assert sorted(h.syncs) == ["BTC/USD:BTC", "EOS/USD:EOS"]
    for native, applied in (("BTCUSD", 506), ("EOSUSD", 510)):
        sync = h.syncs[h.unify(native)]
        assert sync.book.state == VALID and sync.book.valid
        assert levels(sync.book) == ref.book(native)
        assert sync.book.depth() == (25, 25)  # orderBookL2_25 keeps 25 levels a side
        assert ref.applied[native] == applied
        assert sync.counters() == {"diffs_applied": applied, "dropped_before_snapshot": 0, "gaps": 0,
                                   "resyncs": 0}
        assert sync.instrument.kind is Kind.INVERSE
        last = json.loads(next(f for f in reversed(capture.frames) if native.encode() + b'","type"' in f))
        assert sync.last_id == sync.book.update_id == last["cross_seq"]
        assert sync.book.exchange_ns == last["timestamp_e6"] * 1000
    assert capture.mismatches == [] and capture.checked >= 40


def test_capture_counts_and_callbacks(capture: Replay) -> None:
    h, rec = capture.handler, capture.rec
    assert capture.kinds == {SNAPSHOT: 2, DEPTH: 1016, OTHER: 4 + 76}  # 4 subscribe acks, 76 trade frames
    assert h.unknown_streams == 76 and h.bad_messages == 0 and h.outbox == []
    assert len(rec.calls) == 2 + 1016
    for key in ("bybit BTC/USD:BTC", "bybit EOS/USD:EOS"):
        uids = [u for k, u in rec.calls if k == key]
        assert uids == sorted(set(uids))  # cross_seq only moves forward
    assert [s.state for s in rec.states] == [VALID, VALID]


def legacy_warm(capture: Replay, upto: int = 200) -> tuple[BybitHandler, Recorder, RefL2]:
    h, rec = new_handler()
    ref = RefL2()
    for raw in capture.frames[:upto]:
        ref.feed(raw)
        h.on_message(raw, 1)
    return h, rec, ref


def next_delta(capture: Replay, start: int, native: str) -> tuple[int, dict[str, Any]]:
    for i in range(start, len(capture.frames)):
        msg = json.loads(capture.frames[i])
        if msg.get("topic") == f"orderBookL2_25.{native}" and msg["type"] == "delta":
            return i, msg
    raise AssertionError("no delta left")


@pytest.mark.parametrize("fault", ["delete unknown id", "insert existing id", "update moves price", "cross_seq back"])
def test_legacy_inconsistent_delta_is_a_gap_and_resubscribes(capture: Replay, fault: str) -> None:
    h, rec, _ = legacy_warm(capture)
    sync = h.syncs["BTC/USD:BTC"]
    before = levels(sync.book)
    _, msg = next_delta(capture, 200, "BTCUSD")
    some_id, some = next(iter(h._ids["BTC/USD:BTC"].items()))
    lv = {"price": str(some[0]), "symbol": "BTCUSD", "id": some_id, "side": "Buy" if some[1] else "Sell"}
    if fault == "delete unknown id":
        msg["data"]["delete"] = [{**lv, "id": 1}]
    elif fault == "insert existing id":
        msg["data"]["insert"] = [{**lv, "size": 5}]
    elif fault == "update moves price":
        msg["data"]["update"] = [{**lv, "price": "1.5", "size": 5}]
    else:
        msg["cross_seq"] = sync.last_id
    calls = len(rec.calls)
    assert h.on_message(json.dumps(msg).encode(), 2) == DEPTH
    assert (sync.gaps, sync.resyncs) == (1, 1) and sync.book.state == SYNCING and not sync.book.valid
    assert levels(sync.book) == before  # nothing of the inconsistent delta was applied
    assert [json.loads(m)["op"] for m in h.outbox] == ["unsubscribe", "subscribe"]
    assert all(json.loads(m)["args"] == ["orderBookL2_25.BTCUSD"] for m in h.outbox)
    assert rec.states[-1].state == INVALID and len(rec.calls) == calls
    # the next snapshot (what the resubscription brings) makes it valid again
    snap = next(f for f in capture.frames if f.startswith(b'{"topic":"orderBookL2_25.BTCUSD","type":"snapshot"'))
    assert h.on_message(snap, 3) == SNAPSHOT and sync.book.valid and len(rec.calls) == calls + 1


def test_legacy_stale_snapshot_replayed_later_is_skipped(capture: Replay) -> None:
    """v2 sends a snapshot on subscription only: one older than the chained book (a stale repeat)
    must not replace it."""
    h, _, ref = legacy_warm(capture, 400)
    sync = h.syncs["BTC/USD:BTC"]
    assert sync.book.valid and sync.diffs_applied > 0
    before = levels(sync.book)
    snap = next(f for f in capture.frames if f.startswith(b'{"topic":"orderBookL2_25.BTCUSD","type":"snapshot"'))
    assert json.loads(snap)["cross_seq"] < sync.last_id
    assert h.on_message(snap, 2) == SNAPSHOT
    assert levels(sync.book) == before and sync.book.valid and sync.stale_skipped == 1
    assert levels(sync.book) == ref.book("BTCUSD")


def test_legacy_malformed_frames_raise_and_leave_the_book_unchanged(capture: Replay) -> None:
    h, _, ref = legacy_warm(capture)
    sync = h.syncs["BTC/USD:BTC"]
    before = levels(sync.book)
    i, msg = next_delta(capture, 200, "BTCUSD")
    good = capture.frames[i]
    d = msg["data"]
    bad_side = {**d, "update": [{**x, "side": "Hold"} for x in d["update"]] or [{"id": 1, "side": "Hold",
                                                                                  "price": "1", "size": 1}]}
    cases = [
        good[: len(good) // 2],
        json.dumps({**msg, "data": {**d, "insert": [{"id": 1, "side": "Buy", "price": "x", "size": 1}]}}).encode(),
        json.dumps({**msg, "data": {**d, "insert": [{"id": 1, "side": "Buy", "price": "1"}]}}).encode(),  # no size
        json.dumps({**msg, "data": bad_side}).encode(),
        json.dumps({**msg, "data": [1, 2]}).encode(),
        json.dumps({**msg, "type": "partial"}).encode(),
    ]
    for raw in cases:
        with pytest.raises(MessageError):
            h.on_message(raw, 2)
        assert levels(sync.book) == before and sync.book.valid
    assert h.bad_messages == len(cases) and sync.gaps == 0
    ref.feed(good)
    assert h.on_message(good, 3) == DEPTH and levels(sync.book) == ref.book("BTCUSD")


# -- v5: the current-format fixtures -----------------------------------------------------------
@pytest.fixture(scope="module")
def fixtures(shared_data_root: Path) -> dict[str, bytes]:
    d = shared_data_root / "exchange-fixtures"
    return {n: (d / f"bybit__{n}.json").read_bytes() for n in ("ws_orderbook_snapshot", "ws_orderbook_delta",
                                                                 "http_get_orderbook")}


SNAP = ([(27450.0, 0.5), (27449.5, 1.0)], [(27451.0, 0.75), (27451.5, 0.9)])
AFTER_DELTA = ([(27450.0, 0.4), (27449.5, 1.0)], [(27451.5, 0.9)])


def test_fixtures_build_the_expected_book(fixtures: dict[str, bytes]) -> None:
    h, rec = new_handler()
    assert h.on_message(fixtures["ws_orderbook_snapshot"], 10) == SNAPSHOT
    sync = h.syncs["BTC/USDT:USDT"]  # a linear handler: BTCUSDT is the USDT perpetual
    assert sync.book.valid and levels(sync.book) == SNAP
    assert sync.last_id == 123456789 and sync.book.exchange_ns == 1709891679000 * 1_000_000
    assert h.on_message(fixtures["ws_orderbook_delta"], 11) == DEPTH
    assert levels(sync.book) == AFTER_DELTA and sync.book.update_id == 123456790
    assert rec.calls == [("bybit BTC/USDT:USDT", 123456789), ("bybit BTC/USDT:USDT", 123456790)]
    assert sync.counters() == {"diffs_applied": 1, "dropped_before_snapshot": 0, "gaps": 0, "resyncs": 0}


def test_rest_fixture_parses_and_the_method_exists(fixtures: dict[str, bytes]) -> None:
    import ccxt

    sym, bids, asks, u, ts = parse_rest_orderbook(fixtures["http_get_orderbook"])
    assert (sym, u, ts) == ("BTCUSDT", 1234567, 1709891679050)
    assert bids == [(27450.5, 1.5), (27450.0, 2.0), (27449.5, 0.75)]
    assert asks == [(27451.0, 1.2), (27451.5, 3.0), (27452.0, 0.5)]
    h, _ = new_handler()
    inst = Catalog().provisional("bybit", "BTC/USDT:USDT", "BTCUSDT")
    book = OrderBook(inst)
    book.load_snapshot(bids, asks)
    assert levels(book) == (bids, asks)
    method, params = h.snapshot_request(inst)
    assert (method, params) == ("public_get_v5_market_orderbook",
                                {"category": "linear", "symbol": "BTCUSDT", "limit": 50})
    assert hasattr(ccxt.bybit(), method)
    assert not h.rest_snapshot  # in-stream snapshots: REST u is not the 50-level stream's
    with pytest.raises(MessageError):
        parse_rest_orderbook(b'{"retCode":10001,"retMsg":"params error","result":{}}')
    with pytest.raises(MessageError):
        parse_rest_orderbook(fixtures["http_get_orderbook"][:60])


# -- v5: hand-made frames from the fixtures -------------------------------------------------------
def v5(kind: str, u: int, b: list[list[str]] | None = None, a: list[list[str]] | None = None,
       topic: str = "orderbook.50.BTCUSDT") -> bytes:
    sym = topic.rsplit(".", 1)[1]
    return json.dumps({"topic": topic, "type": kind, "ts": 1709891679500,
                       "data": {"s": sym, "b": b or [], "a": a or [], "u": u, "seq": 987654322 + u},
                       "cts": 1709891679400}).encode()


def warm() -> tuple[BybitHandler, Recorder]:
    h, rec = new_handler()
    h.on_message(v5("snapshot", 100, [["100.0", "1"]], [["101.0", "1"]]), 1)
    h.on_message(v5("delta", 101, [["99.5", "2"]]), 2)
    return h, rec


def test_u_gap_invalidates_and_resubscribes_then_a_snapshot_resyncs() -> None:
    h, rec = warm()
    sync = h.syncs["BTC/USDT:USDT"]
    calls = len(rec.calls)
    assert h.on_message(v5("delta", 103, [["99.0", "1"]]), 3) == DEPTH  # u=102 was lost
    assert (sync.gaps, sync.resyncs) == (1, 1)
    assert sync.book.state == SYNCING and not sync.book.valid
    assert [json.loads(m)["op"] for m in h.outbox] == ["unsubscribe", "subscribe"]
    assert all(json.loads(m)["args"] == ["orderbook.50.BTCUSDT"] for m in h.outbox)
    assert rec.states[-1].state == INVALID and "u=103 after u=101" in rec.states[-1].reason
    assert h.on_message(v5("delta", 104, [["98.0", "1"]]), 4) == DEPTH  # dropped: the snapshot will hold it
    assert sync.dropped_before_snapshot == 1 and len(rec.calls) == calls and sync.buffer == []
    assert h.on_message(v5("snapshot", 200, [["100.0", "3"]], [["101.0", "1"]]), 5) == SNAPSHOT
    assert sync.book.valid and levels(sync.book) == ([(100.0, 3.0)], [(101.0, 1.0)])
    assert h.on_message(v5("delta", 201, a=[["101.0", "0"], ["102.0", "4"]]), 6) == DEPTH
    assert levels(sync.book) == ([(100.0, 3.0)], [(102.0, 4.0)])
    assert len(rec.calls) == calls + 2 and rec.states[-1].state == VALID


@pytest.mark.parametrize("u", [101, 100, 50])
def test_delta_not_after_the_previous_u_is_a_gap(u: int) -> None:
    """A repeated or older delta means the stream is not what we think: never skipped silently."""
    h, _ = warm()
    sync = h.syncs["BTC/USDT:USDT"]
    before = levels(sync.book)
    h.on_message(v5("delta", u, [["1.0", "1"]]), 3)
    assert sync.gaps == 1 and not sync.book.valid and levels(sync.book) == before


def test_snapshot_u1_is_a_service_restart_and_replaces_the_book() -> None:
    h, rec = warm()
    sync = h.syncs["BTC/USDT:USDT"]
    assert h.on_message(v5("snapshot", 1, [["90.0", "1"]], [["91.0", "1"]]), 3) == SNAPSHOT
    assert levels(sync.book) == ([(90.0, 1.0)], [(91.0, 1.0)]) and sync.book.valid
    assert sync.gaps == 0 and sync.last_id == 1
    assert rec.calls[-1] == ("bybit BTC/USDT:USDT", 1) and rec.states[-1].state == VALID
    assert h.on_message(v5("delta", 2, [["90.5", "1"]]), 4) == DEPTH
    assert sync.book.bid == 90.5 and sync.gaps == 0 and h.outbox == []


def test_level1_repeated_snapshot_with_the_same_u() -> None:
    h, _ = new_handler()
    t = "orderbook.1.BTCUSDT"
    h.on_message(v5("snapshot", 7, [["100.0", "1"]], [["101.0", "1"]], topic=t), 1)
    h.on_message(v5("snapshot", 7, [["100.0", "1"]], [["101.0", "1"]], topic=t), 2)
    h.on_message(v5("delta", 8, [["100.0", "2"]], topic=t), 3)
    sync = h.syncs["BTC/USDT:USDT"]
    assert sync.book.valid and sync.gaps == 0 and sync.book.bid_qty == 2.0


def test_key_order_does_not_matter(fixtures: dict[str, bytes]) -> None:
    """``data`` before ``topic`` misses the fast path and takes the general one: same book."""
    h, _ = new_handler()
    for name in ("ws_orderbook_snapshot", "ws_orderbook_delta"):
        msg = json.loads(fixtures[name])
        h.on_message(json.dumps({"data": msg["data"], **msg}).encode(), 1)
    assert levels(h.syncs["BTC/USDT:USDT"].book) == AFTER_DELTA


def test_v5_malformed_frames_raise_and_leave_the_book_unchanged(fixtures: dict[str, bytes]) -> None:
    h, _ = new_handler()
    h.on_message(fixtures["ws_orderbook_snapshot"], 1)
    sync = h.syncs["BTC/USDT:USDT"]
    good = fixtures["ws_orderbook_delta"]
    msg = json.loads(good)
    d = msg["data"]
    cases = [
        good[: len(good) // 2], b"", b"hello", b"[1]", b"{}",
        json.dumps({**msg, "data": {**d, "b": 5}}).encode(),
        json.dumps({**msg, "data": {**d, "a": [["27451.00"]]}}).encode(),
        json.dumps({**msg, "data": {**d, "b": [["abc", "1"]]}}).encode(),
        json.dumps({**msg, "data": {**d, "u": "x"}}).encode(),
        json.dumps({**msg, "data": {k: v for k, v in d.items() if k != "u"}}).encode(),
        json.dumps({**msg, "data": [d]}).encode(),
        json.dumps({**msg, "type": "partial"}).encode(),
        b'{"success":false,"ret_msg":"error:handler not found","conn_id":"x","op":"unsubscribe"}',
    ]  # a failed subscribe is a refused subscription (tests/test_feed_rejections.py)
    for raw in cases:
        with pytest.raises(MessageError):
            h.on_message(raw, 2)
        assert levels(sync.book) == SNAP and sync.book.valid and sync.last_id == 123456789
    assert h.bad_messages == len(cases)
    assert h.on_message(good, 3) == DEPTH and levels(sync.book) == AFTER_DELTA and sync.gaps == 0


def test_unknown_topic_acks_and_pongs() -> None:
    h, _ = warm()
    trade = {"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 1, "data": [{"p": "100", "v": "1"}]}
    assert h.on_message(json.dumps(trade).encode(), 3) == OTHER
    assert h.unknown_streams == 1
    for reply in (b'{"success":true,"ret_msg":"pong","conn_id":"a","req_id":"","op":"ping"}',
                  b'{"req_id":"","op":"pong","args":["1675418560633"],"conn_id":"b"}',
                  b'{"success":true,"ret_msg":"subscribe","conn_id":"c","req_id":"1","op":"subscribe"}'):
        assert h.on_message(reply, 4) == OTHER
    assert h.bad_messages == 0 and h.unknown_streams == 1 and h.syncs["BTC/USDT:USDT"].book.valid
    assert h.ping == (20.0, '{"op":"ping"}')


def test_reconnection_clears_pending_resubscriptions() -> None:
    h, _ = warm()
    sync = h.syncs["BTC/USDT:USDT"]
    h.on_message(v5("delta", 150), 3)
    assert h.outbox
    h.on_connect([sync.instrument], 4)
    assert h.outbox == [] and sync.book.state == SYNCING
    assert [json.loads(m)["args"] for m in h.subscribe_messages([sync.instrument])] == [["orderbook.50.BTCUSDT"]]


def _inst(symbol: str, native: str, kind: Kind) -> Instrument:
    base, quote = symbol.split(":")[0].split("/")
    return Instrument("bybit", symbol, base, quote, kind, 0.01, 0.001, 0.0, 1.0, Fees(0.001, 0.001), native)


def test_category_endpoints_and_batching() -> None:
    spot = Catalog([_inst("BTC/USDT", "BTCUSDT", Kind.SPOT), _inst("ETH/USDT", "ETHUSDT", Kind.SPOT)])
    h, _ = new_handler(spot, discover=False)
    assert h.category == "spot" and h.ws_url == "wss://stream.bybit.com/v5/public/spot"
    h.on_message(v5("snapshot", 1, [["1", "1"]], [["2", "1"]]), 1)
    assert list(h.syncs) == ["BTC/USDT"]  # the catalog's spot market
    inv = _inst("BTC/USD:BTC", "BTCUSD", Kind.INVERSE)
    assert h.url_for(inv) == "wss://stream.bybit.com/v5/public/inverse"
    assert new_handler(Catalog([inv]))[0].ws_url == "wss://stream.bybit.com/v5/public/inverse"
    assert new_handler()[0].ws_url == "wss://stream.bybit.com/v5/public/linear"  # default, mixed catalogs
    cat = Catalog()
    insts = [cat.provisional("bybit", f"C{i}/USDT:USDT", f"C{i}USDT") for i in range(23)]
    msgs = [json.loads(m) for m in h.subscribe_messages(insts)]
    assert [len(m["args"]) for m in msgs] == [10, 10, 3]  # spot allows 10 args per request
    assert msgs[0]["op"] == "subscribe" and msgs[0]["args"][0] == "orderbook.50.C0USDT"
    with pytest.raises(UnknownInstrument, match="BTCUSDT"):
        new_handler(Catalog([inv]), discover=False)[0].on_message(v5("snapshot", 1), 1)
    with pytest.raises(ValueError):
        BybitHandler("bybitx", Catalog(), lambda b, t: None)


@pytest.mark.parametrize(
    ("category", "native", "symbol"),
    [
        ("linear", "BTCUSDT", "BTC/USDT:USDT"),
        ("linear", "ETHUSDC", "ETH/USDC:USDC"),
        ("linear", "BTCPERP", "BTC/USDC:USDC"),
        ("linear", "BTCUSDT-26DEC25", "BTC/USDT:USDT-251226"),
        ("linear", "BTC-27MAR26", "BTC/USDC:USDC-260327"),
        ("linear", "BTCUSD", "BTC/USD:BTC"),  # legacy v2 and v5 inverse perpetuals
        ("inverse", "EOSUSD", "EOS/USD:EOS"),
        ("spot", "BTCUSDT", "BTC/USDT"),
        ("spot", "ETHBTC", "ETH/BTC"),
        ("spot", "BTCEUR", "BTC/EUR"),
    ],
)
def test_unify(category: str, native: str, symbol: str) -> None:
    h, _ = new_handler()
    h.category = category
    assert h.unify(native) == symbol


@pytest.mark.parametrize(("category", "native"), [("linear", "BTC-99XYZ25"), ("inverse", "BTCUSDH25"),
                                                  ("spot", "USDT"), ("linear", "FOO")])
def test_unify_rejects_what_it_cannot_name(category: str, native: str) -> None:
    h, _ = new_handler()
    h.category = category
    with pytest.raises(UnknownInstrument):
        h.unify(native)
