"""Coinbase handlers on real data: the 2021 Exchange-feed capture and the Advanced Trade fixtures.

``COINBASE.ws.28.0`` is the Coinbase Pro ``level2`` feed (``coinbaseexchange``): replayed whole
and checked against a tiny independent rebuild (plain json + dicts). The current Advanced Trade
format (``coinbase``, ``l2_data`` with a connection-wide ``sequence_num``) exists only as the
``exchange-fixtures`` messages: they build the expected book, and hand-made frames derived from
them exercise gaps, resubscription and malformed input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.core.book import INVALID, SYNCING, VALID, OrderBook
from cryptoarb.core.instruments import Instrument, Kind
from cryptoarb.replay.cryptofeed import RECV, read_records, venue_of
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, MessageError
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from cryptoarb.venues.coinbase import CoinbaseExchangeHandler, CoinbaseHandler, iso_ns, parse_product_book
from tests.venuekit import Levels, ValidRecorder, assert_valid, levels

pytestmark = pytest.mark.realdata


@dataclass
class Recorder(ValidRecorder):
    calls: list[tuple[str, bool, int]] = field(default_factory=list)  # type: ignore[assignment]  # key, valid, update_id

    def on_book(self, book: OrderBook, local_ns: int) -> None:
        assert_valid(book)
        self.calls.append((book.key, book.valid, book.update_id))


def exchange_handler(catalog: Catalog | None = None) -> tuple[CoinbaseExchangeHandler, Recorder]:
    rec = Recorder()
    h = CoinbaseExchangeHandler("coinbaseexchange", catalog or Catalog(), rec.on_book,
                                request_snapshot=rec.requests.append, on_state=rec.states.append, discover=True)
    return h, rec


def advanced_handler(catalog: Catalog | None = None, discover: bool = True) -> tuple[CoinbaseHandler, Recorder]:
    rec = Recorder()
    h = CoinbaseHandler("coinbase", catalog or Catalog(), rec.on_book, request_snapshot=rec.requests.append,
                        on_state=rec.states.append, discover=discover)
    return h, rec


# -- the independent reference (no cryptoarb code) -------------------------------------------
class RefBooks:
    """Coinbase Exchange level2 by its documentation: a snapshot sets the book, each l2update
    change sets one level (size 0 removes it); changes before a product's snapshot are ignored."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
        self.applied: dict[str, int] = {}

    def feed(self, raw: bytes) -> None:
        msg = json.loads(raw)
        if msg.get("type") == "snapshot":
            bids = {float(p): float(q) for p, q in msg["bids"] if float(q) != 0}
            asks = {float(p): float(q) for p, q in msg["asks"] if float(q) != 0}
            self.books[msg["product_id"]] = (bids, asks)
            self.applied[msg["product_id"]] = 0
        elif msg.get("type") == "l2update" and msg["product_id"] in self.books:
            bids, asks = self.books[msg["product_id"]]
            for side, p, q in msg["changes"]:
                levels_ = bids if side == "buy" else asks
                if float(q) == 0:
                    levels_.pop(float(p), None)
                else:
                    levels_[float(p)] = float(q)
            self.applied[msg["product_id"]] += 1

    def levels(self, product: str) -> tuple[Levels, Levels]:
        bids, asks = self.books[product]
        return sorted(bids.items(), reverse=True), sorted(asks.items())


# -- the 2021 capture (coinbaseexchange) -------------------------------------------------------
@dataclass
class Replay:
    handler: CoinbaseExchangeHandler
    rec: Recorder
    ref: RefBooks
    kinds: dict[int, int]
    frames: list[bytes]
    mismatches: list[str]
    checked: int


@pytest.fixture(scope="module")
def capture(shared_data_root: Path) -> Replay:
    path = shared_data_root / "exchange-captures" / "COINBASE.ws.28.0"
    records = list(read_records(path))
    assert venue_of(records[0].url) == "coinbaseexchange"
    frames = [r.payload for r in records if r.kind == RECV]
    h, rec = exchange_handler()
    ref = RefBooks()
    kinds: dict[int, int] = {}
    mismatches: list[str] = []
    checked = 0
    for i, raw in enumerate(frames):
        ref.feed(raw)
        kind = h.on_message(raw, 1_618_000_000_000_000_000 + i)
        kinds[kind] = kinds.get(kind, 0) + 1
        if i % 250 == 0 and kind == DEPTH:  # the full book just changed, level by level
            product = json.loads(raw)["product_id"]
            checked += 1
            if levels(h.syncs[h.unify(product)].book) != ref.levels(product) and len(mismatches) < 5:
                mismatches.append(f"frame {i}: {product}")
    return Replay(h, rec, ref, kinds, frames, mismatches, checked)


def test_capture_every_book_valid_and_equal_to_the_reference(capture: Replay) -> None:
    h, ref = capture.handler, capture.ref
    assert len(ref.books) == 10
    assert sorted(h.syncs) == sorted(h.unify(p) for p in ref.books)
    for product in ref.books:
        sync = h.syncs[h.unify(product)]
        book = sync.book
        assert book.state == VALID and book.valid, product
        assert levels(book) == ref.levels(product), product
        assert sync.counters() == {"diffs_applied": ref.applied[product], "dropped_before_snapshot": 0,
                                   "gaps": 0, "resyncs": 0}
        assert sync.instrument.kind is Kind.SPOT and sync.instrument.exchange_symbol == product
    assert capture.mismatches == [] and capture.checked >= 30
    assert sum(ref.applied.values()) == 9719


def test_capture_counts_and_callbacks(capture: Replay) -> None:
    h, rec, kinds = capture.handler, capture.rec, capture.kinds
    assert kinds == {SNAPSHOT: 10, DEPTH: 9719, OTHER: 3 + 107 + 10 + 97}  # subscriptions, ticker, (last_)match
    assert h.unknown_streams == 107 + 10 + 97  # ticker and matches were not subscribed by this handler
    assert h.bad_messages == 0 and h.outbox == [] and rec.requests == []
    assert len(rec.calls) == 10 + 9719  # every snapshot and every update, all on valid books
    assert all(valid for _, valid, _ in rec.calls)
    assert [s.state for s in rec.states] == [VALID] * 10


def test_advanced_handler_rejects_the_legacy_feed_with_the_reason(capture: Replay) -> None:
    """The 2021 frames have no ``sequence_num``: the Advanced Trade handler cannot check them."""
    h, _ = advanced_handler()
    snapshot = next(f for f in capture.frames if f.startswith(b'{"type":"snapshot"'))
    with pytest.raises(MessageError, match="without sequence_num"):
        h.on_message(snapshot, 1)
    assert h.syncs == {} and h.bad_messages == 1


# -- Advanced Trade: the current-format fixtures ----------------------------------------------
@pytest.fixture(scope="module")
def fixtures(shared_data_root: Path) -> dict[str, bytes]:
    d = shared_data_root / "exchange-fixtures"
    return {n: (d / f"coinbase__{n}.json").read_bytes() for n in ("ws_l2_data_snapshot", "ws_l2_data_update",
                                                                    "http_product_book")}


SNAP_BIDS = [(68900.0, 1.5), (68899.5, 0.75), (68899.0, 2.3)]
SNAP_ASKS = [(68901.0, 0.5), (68901.5, 1.2), (68902.0, 0.8)]
UPD_BIDS = [(68900.0, 2.0), (68899.5, 0.75), (68899.0, 2.3)]
UPD_ASKS = [(68901.5, 1.2), (68902.0, 0.8)]


def test_fixtures_build_the_expected_book(fixtures: dict[str, bytes]) -> None:
    h, rec = advanced_handler()
    assert h.on_message(fixtures["ws_l2_data_snapshot"], 10) == SNAPSHOT
    book = h.syncs["BTC/USD"].book
    assert book.valid and levels(book) == (SNAP_BIDS, SNAP_ASKS)
    assert h.on_message(fixtures["ws_l2_data_update"], 11) == DEPTH
    assert levels(book) == (UPD_BIDS, UPD_ASKS)
    assert book.update_id == 1 and h.last_seq == 1
    assert book.exchange_ns == iso_ns("2026-04-07T14:30:01.456789Z") == 1_775_572_201_456_789_000
    assert book.local_ns == 11
    assert [c[2] for c in rec.calls] == [0, 1]
    assert h.syncs["BTC/USD"].counters() == {"diffs_applied": 1, "dropped_before_snapshot": 0, "gaps": 0,
                                            "resyncs": 0}


def test_product_book_fixture_parses_to_the_rest_book(fixtures: dict[str, bytes]) -> None:
    product, bids, asks, ts = parse_product_book(fixtures["http_product_book"])
    assert product == "BTC-USD"
    assert bids == [(68923.66, 0.17189468), (68923.0, 0.05795895), (68922.99, 0.02177956),
                    (68921.72, 0.000016), (68921.61, 0.04352771)]
    assert asks == [(68923.67, 0.16987193), (68926.0, 0.058), (68926.09, 0.01015616), (68926.3, 0.0870495),
                    (68928.0, 0.058)]
    assert ts == iso_ns("2026-04-07T00:28:59.662782Z")
    inst = Catalog().provisional("coinbase", "BTC/USD", "BTC-USD")
    book = OrderBook(inst)
    book.load_snapshot(bids, asks)
    assert book.top(1) == ([[68923.66, 0.17189468]], [[68923.67, 0.16987193]])
    # it cannot seed a streamed book: no sequence_num joins it to the stream
    h, _ = advanced_handler()
    assert not h.rest_snapshot
    with pytest.raises(MessageError, match="from the stream"):
        h.on_snapshot(inst, fixtures["http_product_book"], 1)
    with pytest.raises(MessageError):
        parse_product_book(b'{"pricebook":{"product_id":"BTC-USD","bids":[{"price":"x"')


def test_snapshot_request_is_a_ccxt_method() -> None:
    import ccxt

    h, _ = advanced_handler()
    inst = Catalog().provisional("coinbase", "BTC/USD", "BTC-USD")
    method, params = h.snapshot_request(inst)
    assert method == "v3_public_get_brokerage_market_product_book"
    assert params == {"product_id": "BTC-USD", "limit": 1000}
    assert hasattr(ccxt.coinbase(), method)


# -- Advanced Trade: hand-made frames based on the fixtures -------------------------------------
def l2(seq: int, events: list[dict[str, Any]], channel: str = "l2_data") -> bytes:
    return json.dumps({"channel": channel, "client_id": "", "timestamp": "2026-04-07T14:30:01.456789Z",
                       "sequence_num": seq, "events": events}).encode()


def event(kind: str, product: str, *levels_: tuple[str, str, str]) -> dict[str, Any]:
    ups = [{"side": s, "event_time": "2026-04-07T14:30:01Z", "price_level": p, "new_quantity": q}
           for s, p, q in levels_]
    return {"type": kind, "product_id": product, "updates": ups}


def heartbeat(seq: int) -> bytes:
    return l2(seq, [{"current_time": "2026-04-07 14:30:01 +0000 UTC", "heartbeat_counter": str(seq)}],
              "heartbeats")


BTC_SNAP = event("snapshot", "BTC-USD", ("bid", "100.0", "1"), ("offer", "101.0", "2"))
ETH_SNAP = event("snapshot", "ETH-USD", ("bid", "10.0", "1"), ("offer", "11.0", "2"))


def two_books() -> tuple[CoinbaseHandler, Recorder]:
    h, rec = advanced_handler()
    assert h.on_message(l2(0, [BTC_SNAP]), 1) == SNAPSHOT
    assert h.on_message(l2(1, [ETH_SNAP]), 2) == SNAPSHOT
    assert h.on_message(l2(2, [event("update", "BTC-USD", ("bid", "100.5", "3"))]), 3) == DEPTH
    assert h.on_message(heartbeat(3), 4) == OTHER  # heartbeats keep the sequence moving
    return h, rec


def test_sequence_gap_invalidates_every_book_and_resubscribes() -> None:
    h, rec = two_books()
    btc, eth = h.syncs["BTC/USD"], h.syncs["ETH/USD"]
    calls = len(rec.calls)
    # frame 4 is lost: frame 5 reveals it, whatever its channel or product
    assert h.on_message(l2(5, [event("update", "BTC-USD", ("bid", "100.5", "4"))]), 5) == DEPTH
    for sync in (btc, eth):
        assert sync.gaps == 1 and sync.resyncs == 1
        assert sync.book.state == SYNCING and not sync.book.valid
    assert h.sequence_gaps == 1
    assert [json.loads(m) for m in h.outbox] == [
        {"type": "unsubscribe", "product_ids": ["BTC-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"},
        {"type": "unsubscribe", "product_ids": ["ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "level2"},
    ]
    assert [(s.key, s.state) for s in rec.states[-2:]] == [(btc.book.key, INVALID), (eth.book.key, INVALID)]
    assert "sequence_num 5 after 3" in rec.states[-1].reason
    # updates before the new snapshots are dropped, never published
    assert h.on_message(l2(6, [event("update", "ETH-USD", ("offer", "11.0", "5"))]), 6) == DEPTH
    assert len(rec.calls) == calls and eth.dropped_before_snapshot == 1
    assert levels(btc.book)[0][0] == (100.5, 3.0)  # the update of the gap frame was not applied
    # the resubscriptions' snapshots make each book valid again
    assert h.on_message(l2(7, [event("snapshot", "BTC-USD", ("bid", "100.7", "1"), ("offer", "101.0", "1"))]),
                        7) == SNAPSHOT
    assert btc.book.valid and not eth.book.valid
    assert h.on_message(l2(8, [event("snapshot", "ETH-USD", ("bid", "10.5", "1"), ("offer", "11.5", "1"))]),
                        8) == SNAPSHOT
    assert eth.book.valid and levels(eth.book) == ([(10.5, 1.0)], [(11.5, 1.0)])
    assert len(rec.calls) == calls + 2
    assert h.on_message(l2(9, [event("update", "ETH-USD", ("bid", "10.5", "0"))]), 9) == DEPTH
    assert levels(eth.book) == ([], [(11.5, 1.0)]) and len(rec.calls) == calls + 3
    assert (btc.gaps, eth.gaps) == (1, 1)


@pytest.mark.parametrize("bad", [("bid", "NaN", "1"), ("offer", "-3", "1"), ("bid", "100.2", "1e308"),
                                 ("bid", "102.0", "1")])  # the last crosses the book
def test_a_bad_level_in_a_frame_of_several_products_resyncs_them_all(bad: tuple[str, str, str]) -> None:
    """One frame, two products, the first one's change impossible: the second's change is never
    applied, so both books resync (``frames_span_books``), none keeps a wrong VALID book."""
    h, rec = two_books()
    calls = len(rec.calls)
    frame = l2(4, [event("update", "BTC-USD", bad), event("update", "ETH-USD", ("bid", "10.5", "1"))])
    with pytest.raises(MessageError):
        h.on_message(frame, 5)
    for sync in h.syncs.values():
        assert sync.gaps == 1 and not sync.book.valid, sync.book
    assert h.bad_books == 1 and h.bad_messages == 1 and len(rec.calls) == calls


def test_gap_seen_on_a_heartbeat_and_a_repeated_frame_are_gaps_too() -> None:
    h, _ = two_books()
    assert h.on_message(heartbeat(7), 5) == OTHER
    assert all(s.gaps == 1 and not s.book.valid for s in h.syncs.values())
    h, _ = two_books()
    h.on_message(heartbeat(3), 5)  # a frame delivered twice: the connection is not trustworthy
    assert all(s.gaps == 1 and not s.book.valid for s in h.syncs.values())


def test_gap_exposed_by_a_snapshot_frame_keeps_that_snapshot() -> None:
    h, rec = two_books()
    assert h.on_message(l2(9, [BTC_SNAP]), 5) == SNAPSHOT
    btc, eth = h.syncs["BTC/USD"], h.syncs["ETH/USD"]
    assert btc.gaps == eth.gaps == 1
    assert btc.book.valid and not eth.book.valid  # the snapshot came after the loss: BTC is exact
    assert rec.calls[-1] == ("coinbase BTC/USD", True, 9)


def test_reconnection_restarts_the_sequence() -> None:
    h, _ = two_books()
    insts = [s.instrument for s in h.syncs.values()]
    h.on_connect(insts, 10)
    assert h.last_seq == -1 and h.outbox == []  # the subscribe messages bring fresh snapshots
    assert all(s.book.state == SYNCING and s.gaps == 0 for s in h.syncs.values())
    assert h.on_message(l2(0, [BTC_SNAP]), 11) == SNAPSHOT  # a new connection starts at 0: no gap
    assert h.syncs["BTC/USD"].book.valid and h.sequence_gaps == 0


def malformed(good: bytes) -> list[tuple[str, bytes]]:
    msg = json.loads(good)
    ev = msg["events"][0]
    up = ev["updates"][0]

    def frame(**changes: Any) -> bytes:
        return json.dumps({**msg, **changes}).encode()

    def with_event(**changes: Any) -> bytes:
        return frame(events=[{**ev, **changes}])

    return [
        ("truncated JSON", good[: len(good) // 2]),
        ("not JSON", b"hello"),
        ("empty", b""),
        ("JSON array", b"[1,2]"),
        ("no sequence_num", json.dumps({k: v for k, v in msg.items() if k != "sequence_num"}).encode()),
        ("sequence_num a string", frame(sequence_num="x")),
        ("events an object", frame(events=ev)),
        ("updates a number", with_event(updates=5)),
        ("price not a number", with_event(updates=[{**up, "price_level": "abc"}])),
        ("quantity missing", with_event(updates=[{"side": "bid", "price_level": "1"}])),
        ("unknown side", with_event(updates=[{**up, "side": "middle"}])),
        ("unknown event type", with_event(type="delta")),
        ("no product_id", with_event(product_id="")),
    ]


def test_malformed_frames_raise_and_leave_books_and_sequence_unchanged(fixtures: dict[str, bytes]) -> None:
    h, rec = advanced_handler()
    h.on_message(fixtures["ws_l2_data_snapshot"], 1)
    book = h.syncs["BTC/USD"].book
    good = fixtures["ws_l2_data_update"]
    cases = malformed(good)
    for what, raw in cases:
        with pytest.raises(MessageError):
            h.on_message(raw, 2)
        assert levels(book) == (SNAP_BIDS, SNAP_ASKS) and book.valid, what
        assert h.last_seq == 0, what
    assert h.bad_messages == len(cases) and len(rec.calls) == 1
    assert h.on_message(good, 3) == DEPTH  # the genuine frame still chains: no gap
    assert levels(book) == (UPD_BIDS, UPD_ASKS) and h.syncs["BTC/USD"].gaps == 0


def test_error_frame_and_unknown_channel() -> None:
    h, _ = two_books()
    refused: list[tuple[object, str]] = []
    h.on_reject = lambda _h, inst, native, why, retry: refused.append((inst, why))
    assert h.on_message(b'{"type":"error","message":"rate limit exceeded"}', 5) == OTHER
    assert refused == [(None, "coinbase: rate limit exceeded")] and h.rejections == 1
    trades = l2(4, [{"type": "update", "trades": [{"trade_id": "1", "price": "100", "size": "1"}]}], "market_trades")
    assert h.on_message(trades, 6) == OTHER
    assert h.unknown_streams == 1 and h.last_seq == 4  # counted, skipped, still sequenced
    subs = l2(5, [{"subscriptions": {"level2": ["BTC-USD"]}}], "subscriptions")
    assert h.on_message(subs, 7) == OTHER and h.unknown_streams == 1
    assert all(s.book.valid and s.gaps == 0 for s in h.syncs.values())


def test_usdc_subscription_streams_as_usd() -> None:
    """Advanced Trade serves BTC-USDC from the merged BTC-USD book (and names it so)."""
    inst = Instrument("coinbase", "BTC/USDC", "BTC", "USDC", Kind.SPOT, 0.01, 1e-8, 1.0, exchange_symbol="BTC-USDC")
    h, _ = advanced_handler(Catalog([inst]), discover=False)
    h.on_message(l2(0, [BTC_SNAP]), 1)
    assert list(h.syncs) == ["BTC/USDC"] and h.syncs["BTC/USDC"].book.valid
    with pytest.raises(UnknownInstrument, match="BTC-USDC"):
        h.on_message(l2(1, [ETH_SNAP]), 2)


def test_subscriptions_and_endpoints() -> None:
    h, _ = advanced_handler()
    cat = Catalog()
    insts = [cat.provisional("coinbase", f"C{i}/USD", f"C{i}-USD") for i in range(45)]
    msgs = [json.loads(m) for m in h.subscribe_messages(insts)]
    assert msgs[0] == {"type": "subscribe", "channel": "heartbeats"}
    assert [len(m["product_ids"]) for m in msgs[1:]] == [20, 20, 5]
    assert all(m["channel"] == "level2" for m in msgs[1:])
    assert h.ws_url == "wss://advanced-trade-ws.coinbase.com" and h.ping is None
    assert h.max_symbols_per_connection >= 1000  # one connection: the sequence is connection-wide
    x, _ = exchange_handler()
    assert x.ws_url == "wss://ws-feed.exchange.coinbase.com"
    assert [json.loads(m) for m in x.subscribe_messages(insts[:2])] == [
        {"type": "subscribe", "product_ids": ["C0-USD", "C1-USD"], "channels": ["level2_batch", "heartbeat"]}
    ]
    with pytest.raises(ValueError):
        CoinbaseHandler("coinbaseexchange", Catalog(), lambda b, t: None)
    with pytest.raises(ValueError):
        CoinbaseExchangeHandler("coinbase", Catalog(), lambda b, t: None)


@pytest.mark.parametrize(
    ("native", "symbol"),
    [("BTC-USD", "BTC/USD"), ("eth-eur", "ETH/EUR"), ("SKL-BTC", "SKL/BTC"), ("BTC-USDC", "BTC/USDC"),
     ("BTC-PERP-INTX", "BTC/USDC:USDC"), ("ETH-PERP-INTX", "ETH/USDC:USDC")],
)
def test_unify(native: str, symbol: str) -> None:
    assert advanced_handler()[0].unify(native) == symbol
    assert exchange_handler()[0].unify(native) == symbol


@pytest.mark.parametrize("native", ["BTCUSD", "BIT-28JUN24-CDE", "-USD", "BTC-"])
def test_unify_rejects_what_it_cannot_name(native: str) -> None:
    with pytest.raises(UnknownInstrument):
        advanced_handler()[0].unify(native)


# -- Exchange feed: hand-made frames ------------------------------------------------------------
def ex_snap(product: str = "BTC-USD") -> bytes:
    return json.dumps({"type": "snapshot", "product_id": product, "bids": [["100.0", "1"], ["99.0", "2"]],
                       "asks": [["101.0", "1"]]}).encode()


def ex_update(*changes: tuple[str, str, str], product: str = "BTC-USD") -> bytes:
    return json.dumps({"type": "l2update", "product_id": product, "changes": [list(c) for c in changes],
                       "time": "2021-04-17T16:43:37.075687Z"}).encode()


def test_exchange_feed_has_no_sequence_so_a_reset_resubscribes() -> None:
    h, rec = exchange_handler()
    assert h.on_message(ex_snap(), 1) == SNAPSHOT
    assert h.on_message(ex_update(("buy", "100.0", "0"), ("sell", "100.5", "3")), 2) == DEPTH
    sync = h.syncs["BTC/USD"]
    assert levels(sync.book) == ([(99.0, 2.0)], [(100.5, 3.0), (101.0, 1.0)])
    assert sync.book.exchange_ns == iso_ns("2021-04-17T16:43:37.075687Z") and sync.book.update_id == 1
    h.reset(sync.instrument, 3, "stale")  # nothing in the frames can reveal a loss: resync from outside
    assert sync.book.state == SYNCING and sync.resyncs == 1
    assert [json.loads(m) for m in h.outbox] == [
        {"type": "unsubscribe", "product_ids": ["BTC-USD"], "channels": ["level2_batch", "heartbeat"]},
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["level2_batch", "heartbeat"]},
    ]
    calls = len(rec.calls)
    h.on_message(ex_update(("buy", "99.0", "5")), 4)
    assert len(rec.calls) == calls and sync.dropped_before_snapshot == 1
    h.on_message(ex_snap(), 5)
    assert sync.book.valid and levels(sync.book) == ([(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.0)])
    assert len(rec.calls) == calls + 1


def test_exchange_crossed_book_is_never_published() -> None:
    h, rec = exchange_handler()
    h.on_message(ex_snap(), 1)
    with pytest.raises(MessageError, match="crossed"):
        h.on_message(ex_update(("buy", "101.5", "1")), 2)
    book = h.syncs["BTC/USD"].book
    assert not book.valid and len(rec.calls) == 1 and h.syncs["BTC/USD"].gaps == 1
    assert h.outbox  # re-subscribed: the fresh snapshot makes it valid
    h.on_message(ex_update(("sell", "101.0", "0"), ("buy", "101.5", "0")), 3)
    assert not book.valid and len(rec.calls) == 1
    h.on_message(ex_snap(), 4)
    assert book.valid and len(rec.calls) == 2


def test_exchange_malformed_frames_raise_and_leave_the_book_unchanged() -> None:
    h, _ = exchange_handler()
    h.on_message(ex_snap(), 1)
    book = h.syncs["BTC/USD"].book
    before = levels(book)
    good = ex_update(("buy", "99.5", "1"))
    cases = [
        good[:40], b"", b"[]", b'{"product_id":"BTC-USD"}',
        ex_update(("hold", "99.5", "1")), ex_update(("buy", "abc", "1")), ex_update(("buy", "99.5")),  # type: ignore[arg-type]
        json.dumps({"type": "l2update", "product_id": "BTC-USD", "changes": "buy"}).encode(),
        ex_update(("buy", "99.5", "1"), product=""),
    ]  # {"type":"error"} is a refused subscription (tests/test_feed_rejections.py)
    for raw in cases:
        with pytest.raises(MessageError):
            h.on_message(raw, 2)
        assert levels(book) == before and book.valid
    assert h.bad_messages == len(cases)
    assert h.on_message(good, 3) == DEPTH and (99.5, 1.0) in levels(book)[0]
