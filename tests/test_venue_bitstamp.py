"""Bitstamp handler on the real capture: ``diff_order_book`` frames joined to REST ``order_book``.

``BITSTAMP.ws.1.0`` and ``BITSTAMP.http.0.0`` are one 2022 session, merged by receive time:
the snapshots come first, the stream after (the recorder delivered the WebSocket frames late,
but they are stamped from before the snapshots on). Every book is checked against a tiny
independent rebuild of the documented procedure (plain json + dicts): drop the diffs whose
``microtimestamp`` is <= the snapshot's, apply the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.core.book import INVALID, SYNCING, VALID
from cryptoarb.replay.cryptofeed import HTTP, RECV, read_records, venue_of
from cryptoarb.venues.base import DEPTH, OTHER, MessageError
from cryptoarb.venues.bitstamp import BitstampHandler
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from tests.venuekit import Levels, ValidRecorder, levels

pytestmark = pytest.mark.realdata

Recorder = ValidRecorder


def new_handler() -> tuple[BitstampHandler, Recorder]:
    rec = Recorder()
    h = BitstampHandler("bitstamp", Catalog(), rec.on_book, request_snapshot=rec.requests.append,
                        on_state=rec.states.append, discover=True)
    return h, rec


# -- the independent reference (no cryptoarb code) -------------------------------------------
class RefBooks:
    def __init__(self) -> None:
        self.books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
        self.snap_mts: dict[str, int] = {}
        self.last_mts: dict[str, int] = {}
        self.applied: dict[str, int] = {}
        self.dropped: dict[str, int] = {}

    def snapshot(self, pair: str, body: bytes) -> None:
        snap = json.loads(body)
        self.books[pair] = ({float(p): float(q) for p, q in snap["bids"] if float(q)},
                            {float(p): float(q) for p, q in snap["asks"] if float(q)})
        self.snap_mts[pair] = self.last_mts[pair] = int(snap["microtimestamp"])
        self.applied[pair] = self.dropped[pair] = 0

    def frame(self, raw: bytes) -> None:
        msg = json.loads(raw)
        if msg.get("event") != "data" or not msg["channel"].startswith("diff_order_book_"):
            return
        pair = msg["channel"][len("diff_order_book_"):]
        d = msg["data"]
        if pair not in self.books:
            return
        if int(d["microtimestamp"]) <= self.snap_mts[pair]:
            self.dropped[pair] += 1
            return
        assert int(d["microtimestamp"]) > self.last_mts[pair]
        for side, book in (("bids", self.books[pair][0]), ("asks", self.books[pair][1])):
            for p, q in d[side]:
                if float(q) == 0:
                    book.pop(float(p), None)
                else:
                    book[float(p)] = float(q)
        self.last_mts[pair] = int(d["microtimestamp"])
        self.applied[pair] += 1

    def levels(self, pair: str) -> tuple[Levels, Levels]:
        bids, asks = self.books[pair]
        return sorted(bids.items(), reverse=True), sorted(asks.items())

    def body(self, pair: str) -> bytes:
        """The current book as a REST order_book body."""
        bids, asks = self.levels(pair)
        mts = self.last_mts[pair]
        return json.dumps({"timestamp": str(mts // 1_000_000), "microtimestamp": str(mts),
                           "bids": [[repr(p), repr(q)] for p, q in bids],
                           "asks": [[repr(p), repr(q)] for p, q in asks]}).encode()


# -- the capture ----------------------------------------------------------------------------------
@dataclass
class Session:
    records: list[Any]  # ws RECV and HTTP records, merged by ts_ns


def pair_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def session(shared_data_root: Path) -> Session:
    d = shared_data_root / "exchange-captures"
    ws = [r for r in read_records(d / "BITSTAMP.ws.1.0") if r.kind == RECV]
    http = list(read_records(d / "BITSTAMP.http.0.0"))
    assert all(r.kind == HTTP and venue_of(r.url) == "bitstamp" for r in http)
    return Session(sorted(ws + http, key=lambda r: r.ts_ns))


def feed(h: BitstampHandler, ref: RefBooks | None, r: Any) -> int | None:
    if r.kind == HTTP:
        if ref is not None:
            ref.snapshot(pair_of(r.url), r.payload)
        h.on_snapshot(h.instrument_for(h.native_of_rest_url(r.url)), r.payload, r.ts_ns)
        return None
    if ref is not None:
        ref.frame(r.payload)
    return h.on_message(r.payload, r.ts_ns)


@dataclass
class Replay:
    handler: BitstampHandler
    rec: Recorder
    ref: RefBooks
    kinds: dict[int, int]


@pytest.fixture(scope="module")
def replay(session: Session) -> Replay:
    h, rec = new_handler()
    ref = RefBooks()
    kinds: dict[int, int] = {}
    for r in session.records:
        kind = feed(h, ref, r)
        if kind is not None:
            kinds[kind] = kinds.get(kind, 0) + 1
    return Replay(h, rec, ref, kinds)


STREAMED = ["ethusd", "xrpeur", "bateur", "usdteur", "usdtusd", "xlmgbp", "adaeur", "batbtc", "galaeur"]


def test_every_streamed_book_valid_and_equal_to_the_reference(replay: Replay) -> None:
    h, ref = replay.handler, replay.ref
    for pair in STREAMED:
        sync = h.syncs[h.unify(pair)]
        assert sync.book.state == VALID and sync.book.valid, pair
        assert levels(sync.book) == ref.levels(pair), pair
        assert sync.counters() == {"diffs_applied": ref.applied[pair], "dropped_before_snapshot": ref.dropped[pair],
                                   "gaps": 0, "resyncs": 0}, pair
        assert ref.dropped[pair] > 0  # the stream starts before the snapshot: the join is proven
        assert sync.last_id == sync.book.update_id == ref.last_mts[pair]
        assert sync.book.exchange_ns == ref.last_mts[pair] * 1000
    assert sum(ref.applied.values()) == 615 and sum(ref.dropped.values()) == 102


def test_the_pair_without_diffs_keeps_its_snapshot_held(replay: Replay, session: Session) -> None:
    """sgbeur: snapshot, then its channel confirmation, and no diff in the whole capture.

    Nothing proves the stream covers the snapshot's instant (the confirmation is recorded after
    the snapshot, and no diff is stamped before it), so the book stays SYNCING. A diff stamped
    before the snapshot is that proof: it validates the held snapshot, with nothing applied."""
    h = replay.handler
    sync = h.syncs["SGB/EUR"]
    assert sync.book.state == SYNCING and not sync.book.valid and sync.book.depth() == (0, 0)
    assert sync.counters() == {"diffs_applied": 0, "dropped_before_snapshot": 0, "gaps": 0, "resyncs": 0}
    snap = next(r for r in session.records if r.kind == HTTP and pair_of(r.url) == "sgbeur")
    mts = int(json.loads(snap.payload)["microtimestamp"])
    h2, rec2 = new_handler()
    h2.on_snapshot(h2.instrument_for("sgbeur"), snap.payload, 1)
    assert h2.syncs["SGB/EUR"].book.state == SYNCING
    diff = {"data": {"timestamp": str(mts // 10**6), "microtimestamp": str(mts - 1), "bids": [["0.1", "0"]],
                     "asks": []}, "channel": "diff_order_book_sgbeur", "event": "data"}
    assert h2.on_message(json.dumps(diff).encode(), 2) == DEPTH
    s2 = h2.syncs["SGB/EUR"]
    assert s2.book.valid and s2.book.depth() == (82, 436) and s2.dropped_before_snapshot == 1
    assert rec2.calls == [("bitstamp SGB/EUR", mts)]


def test_counts_and_callbacks(replay: Replay) -> None:
    h, rec = replay.handler, replay.rec
    assert replay.kinds == {DEPTH: 717, OTHER: 20 + 10}  # 20 confirmations, 10 trades (not subscribed)
    assert h.unknown_streams == 10 and h.bad_messages == 0 and h.outbox == []
    assert len(rec.calls) == 9 + 615  # each join, then each applied diff
    assert [s.state for s in rec.states] == [VALID] * 9
    # the confirmations asked for snapshots (the held ones were not proven yet); replay answers none
    assert sorted(i.exchange_symbol for i in rec.requests) == sorted([*STREAMED, "sgbeur"])
    for key in {k for k, _ in rec.calls}:
        uids = [u for k, u in rec.calls if k == key]
        assert uids == sorted(set(uids))


# -- faults on the real stream --------------------------------------------------------------------
def diffs_of(session: Session, pair: str) -> list[int]:
    ch = f'"channel":"diff_order_book_{pair}"'.encode()
    return [i for i, r in enumerate(session.records) if r.kind == RECV and ch in r.payload]


def eth_calls(rec: Recorder) -> int:
    return sum(1 for k, _ in rec.calls if k == "bitstamp ETH/USD")


def test_microtimestamp_going_back_is_a_gap_then_a_rest_snapshot_resyncs(session: Session) -> None:
    h, rec = new_handler()
    ref = RefBooks()
    idx = diffs_of(session, "ethusd")
    lost, snap_after, deliver_after = idx[40], idx[50], idx[60]
    sync = None
    calls_at_gap = 0
    body = b""
    for i, r in enumerate(session.records):
        if i == lost:
            ref.frame(r.payload)
            msg = json.loads(r.payload)
            assert sync is not None and sync.book.valid
            msg["data"]["microtimestamp"] = str(sync.last_id)  # not after the previous diff
            assert h.on_message(json.dumps(msg).encode(), r.ts_ns) == DEPTH
            assert (sync.gaps, sync.resyncs) == (1, 1) and sync.book.state == SYNCING
            assert rec.requests[-1] == sync.instrument and rec.states[-1].state == INVALID
            assert "microtimestamp" in rec.states[-1].reason
            calls_at_gap = eth_calls(rec)
            continue
        feed(h, ref, r)
        sync = h.syncs.get("ETH/USD")
        if lost < i <= deliver_after and r.kind == RECV and b"ethusd" in r.payload:
            assert sync is not None and not sync.book.valid and eth_calls(rec) == calls_at_gap
        if i == snap_after:
            body = ref.body("ethusd")
        if i == deliver_after:
            assert sync is not None and len(sync.buffer) == 20
            h.on_snapshot(sync.instrument, body, r.ts_ns)  # what the feed fetched after the request
            assert sync.book.valid and levels(sync.book) == ref.levels("ethusd")
            assert eth_calls(rec) == calls_at_gap + 1 and sync.buffer == []
    assert sync is not None and sync.book.valid and levels(sync.book) == ref.levels("ethusd")
    assert sync.gaps == 1 and sync.last_id == ref.last_mts["ethusd"]


def test_equal_microtimestamp_is_a_gap_too(session: Session) -> None:
    h, _ = new_handler()
    idx = diffs_of(session, "batbtc")
    for r in session.records[: idx[30]]:
        feed(h, None, r)
    sync = h.syncs["BAT/BTC"]
    msg = json.loads(session.records[idx[30]].payload)
    msg["data"]["microtimestamp"] = str(sync.last_id)
    before = levels(sync.book)
    h.on_message(json.dumps(msg).encode(), 1)
    assert sync.gaps == 1 and not sync.book.valid and levels(sync.book) == before


def malformed(good: bytes) -> list[bytes]:
    msg = json.loads(good)
    d = msg["data"]
    return [
        good[: len(good) // 2], b"", b"nope", b"[]", b'{"channel":"diff_order_book_ethusd"}',
        json.dumps({**msg, "data": {**d, "bids": 5}}).encode(),
        json.dumps({**msg, "data": {**d, "asks": [["1.0"]]}}).encode(),
        json.dumps({**msg, "data": {**d, "bids": [["abc", "1"]]}}).encode(),
        json.dumps({**msg, "data": {**d, "microtimestamp": "x"}}).encode(),
        json.dumps({**msg, "data": {k: v for k, v in d.items() if k != "microtimestamp"}}).encode(),
        json.dumps({**msg, "data": [d]}).encode(),
        json.dumps({**msg, "channel": "diff_order_book_"}).encode(),
    ]  # bts:error is a refused subscription, not a malformed frame (tests/test_feed_rejections.py)


def test_malformed_frames_raise_and_leave_the_book_unchanged(session: Session) -> None:
    h, _ = new_handler()
    ref = RefBooks()
    idx = diffs_of(session, "ethusd")
    for r in session.records[: idx[30]]:
        feed(h, ref, r)
    sync = h.syncs["ETH/USD"]
    before = levels(sync.book)
    good = session.records[idx[30]].payload
    cases = malformed(good)
    for raw in cases:
        with pytest.raises(MessageError):
            h.on_message(raw, 1)
        assert levels(sync.book) == before and sync.book.valid
    assert h.bad_messages == len(cases)
    ref.frame(good)
    assert h.on_message(good, 2) == DEPTH and levels(sync.book) == ref.levels("ethusd") and sync.gaps == 0


# -- the snapshot join rules, hand-made ------------------------------------------------------------
def diff(mts: int, bids: list[list[str]] | None = None, pair: str = "btcusd") -> bytes:
    return json.dumps({"data": {"timestamp": str(mts // 10**6), "microtimestamp": str(mts), "bids": bids or [],
                                "asks": [["101.0", "1"]]},
                       "channel": f"diff_order_book_{pair}", "event": "data"}).encode()


def snapshot(mts: int, bid: str = "100.0") -> bytes:
    return json.dumps({"timestamp": str(mts // 10**6), "microtimestamp": str(mts), "bids": [[bid, "1"]],
                       "asks": [["101.0", "2"], ["102.0", "1"]]}).encode()


def confirmed(pair: str = "btcusd") -> bytes:
    return json.dumps({"event": "bts:subscription_succeeded", "channel": f"diff_order_book_{pair}",
                       "data": {}}).encode()


def test_snapshot_joins_at_once_after_the_confirmation() -> None:
    h, rec = new_handler()
    inst = h.instrument_for("btcusd")
    h.on_connect([inst], 1)
    assert rec.requests == []  # not before the subscription is live
    assert h.on_message(confirmed(), 2) == OTHER
    assert rec.requests == [inst]
    h.on_message(diff(1_000, [["99.0", "1"]]), 3)  # buffered, covered by the snapshot
    h.on_message(diff(3_000, [["98.0", "1"]]), 4)  # buffered, after the snapshot
    h.on_snapshot(inst, snapshot(2_000), 5)
    sync = h.syncs["BTC/USD"]
    assert sync.book.valid and levels(sync.book) == ([(100.0, 1.0), (98.0, 1.0)], [(101.0, 1.0), (102.0, 1.0)])
    assert (sync.dropped_before_snapshot, sync.diffs_applied, sync.last_id) == (1, 1, 3_000)
    assert rec.calls == [("bitstamp BTC/USD", 3_000)]
    h.on_snapshot(inst, snapshot(2_500, "90.0"), 6)  # a late duplicate answer: the book is already valid
    assert sync.book.bid == 100.0


def test_a_diff_older_than_the_snapshot_after_newer_ones_is_a_gap() -> None:
    """Right after the join, a diff the snapshot covers is dropped; once a newer diff is applied,
    an older one can only be out of order: a gap, not a silent drop on a valid book."""
    h, _ = new_handler()
    inst = h.instrument_for("btcusd")
    h.on_message(confirmed(), 1)
    h.on_snapshot(inst, snapshot(2_000), 2)
    sync = h.syncs["BTC/USD"]
    assert sync.book.valid
    h.on_message(diff(1_500, [["99.0", "1"]]), 3)  # in the snapshot, nothing applied since: dropped
    assert sync.book.valid and sync.dropped_before_snapshot == 1 and sync.gaps == 0
    h.on_message(diff(3_000, [["98.0", "1"]]), 4)
    assert sync.book.valid and sync.last_id == 3_000
    h.on_message(diff(1_800, [["97.0", "1"]]), 5)  # older than the snapshot, after a newer diff
    assert sync.gaps == 1 and not sync.book.valid
    assert sync.dropped_before_snapshot == 1


def test_unproven_snapshot_is_replaced() -> None:
    h, rec = new_handler()
    inst = h.instrument_for("btcusd")
    h.on_snapshot(inst, snapshot(2_000), 1)  # no confirmation, no diff yet: held
    assert h.syncs["BTC/USD"].book.state == SYNCING and rec.requests == []
    h.on_message(diff(3_000, [["98.0", "1"]]), 2)  # newer: the held snapshot may have missed diffs
    assert rec.requests == [inst] and not h.syncs["BTC/USD"].book.valid
    h.on_snapshot(inst, snapshot(2_500), 3)  # older than the buffered diff: still unproven
    assert rec.requests == [inst, inst] and not h.syncs["BTC/USD"].book.valid
    h.on_snapshot(inst, snapshot(4_000, "97.0"), 4)  # the buffered diff predates it: proven
    sync = h.syncs["BTC/USD"]
    assert sync.book.valid and sync.book.bid == 97.0 and sync.dropped_before_snapshot == 1


def test_request_reconnect_resyncs_every_book() -> None:
    h, rec = new_handler()
    for pair in ("btcusd", "etheur"):
        h.on_message(confirmed(pair), 1)
        h.on_snapshot(h.instrument_for(pair), snapshot(2_000), 2)
    assert len(h.syncs) == 2 and all(s.book.valid for s in h.syncs.values())
    rec.requests.clear()
    assert h.on_message(b'{"event":"bts:request_reconnect","channel":"","data":""}', 3) == OTHER
    assert h.reconnect_requested
    assert all(s.book.state == SYNCING and s.resyncs == 1 and s.gaps == 0 for s in h.syncs.values())
    assert sorted(i.symbol for i in rec.requests) == ["BTC/USD", "ETH/EUR"]
    h.on_snapshot(h.instrument_for("btcusd"), snapshot(3_000), 4)  # still subscribed: joins at once
    assert h.syncs["BTC/USD"].book.valid
    h.on_connect([s.instrument for s in h.syncs.values()], 5)
    assert not h.reconnect_requested


def test_unknown_channel_heartbeat_and_live_spec() -> None:
    import ccxt

    h, _ = new_handler()
    trade = b'{"data":{"id":1,"amount":0.1,"price":3805.44,"type":0,"microtimestamp":"1"},' \
            b'"channel":"live_trades_ethusd","event":"trade"}'
    assert h.on_message(trade, 1) == OTHER and h.unknown_streams == 1
    assert h.on_message(b'{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}', 2) == OTHER
    assert h.on_message(b'{"event":"bts:subscription_succeeded","channel":"live_trades_ethusd","data":{}}',
                        3) == OTHER
    assert h.unknown_streams == 1 and h.bad_messages == 0 and h.syncs == {}
    assert h.ping == (5.0, '{"event":"bts:heartbeat"}') and h.rest_snapshot
    assert h.ws_url == "wss://ws.bitstamp.net"
    inst = h.instrument_for("btcusd")
    assert [json.loads(m) for m in h.subscribe_messages([inst])] == [
        {"event": "bts:subscribe", "data": {"channel": "diff_order_book_btcusd"}}]
    method, params = h.snapshot_request(inst)
    assert (method, params) == ("public_get_order_book_pair", {"pair": "btcusd"})
    assert hasattr(ccxt.bitstamp(), method)
    with pytest.raises(MessageError):
        h.on_snapshot(inst, b'{"timestamp":"1","bids":[]}', 4)


@pytest.mark.parametrize(
    ("native", "symbol"),
    [("btcusd", "BTC/USD"), ("ETHBTC", "ETH/BTC"), ("usdtusd", "USDT/USD"), ("xrpeur", "XRP/EUR"),
     ("eurcusdc", "EURC/USDC"), ("usdceur", "USDC/EUR"), ("btcpyusd", "BTC/PYUSD"), ("sgbeur", "SGB/EUR"),
     ("btcusdt", "BTC/USDT"), ("ethgbp", "ETH/GBP")],
)
def test_unify(native: str, symbol: str) -> None:
    assert new_handler()[0].unify(native) == symbol


def test_unify_and_catalog_reject_unknown() -> None:
    with pytest.raises(UnknownInstrument):
        new_handler()[0].unify("usd")
    h = BitstampHandler("bitstamp", Catalog(), lambda b, t: None)
    with pytest.raises(UnknownInstrument):
        h.on_message(diff(1), 1)
    with pytest.raises(ValueError):
        BitstampHandler("bitstampx", Catalog(), lambda b, t: None)
