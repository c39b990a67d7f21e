"""BinanceHandler against an independent reference rebuild, on real Binance captures.

Every capture line goes to the handler and to ``tests/refbook.RefBook`` (the documented
procedure, written separately); the full books are compared level by level at sampled points
and at the end. Gap, resync, stale, malformed and unknown-market handling is exercised on the
same real streams (lines dropped, repeated or altered), plus a few hand-made frames.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.core.book import INVALID, SYNCING, VALID, OrderBook
from cryptoarb.core.events import BookStateChange, Quote, Trade
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues.base import DEPTH, OTHER, QUOTE, SNAPSHOT, TRADE, MessageError
from cryptoarb.venues.binance import BinanceHandler
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from tests.refbook import RefBook, split_line

pytestmark = pytest.mark.realdata

CHECK_EVERY = 500  # compare the full books each time this many more diffs are applied


@dataclass(frozen=True)
class Market:
    name: str
    venue: str
    symbol: str
    files: tuple[str, ...]
    futures: bool
    diffs_applied: int  # by the documented procedure (see ../shared/data/README.md)
    depth_stream: str


MARKETS = {
    "spot": Market(
        "spot", "binance", "BTC/USDT", ("spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"),
        False, 6493, "btcusdt@depth@100ms",
    ),
    "usdm": Market(
        "usdm", "binanceusdm", "BTC/USDT:USDT", ("usdm_btcusdt_20240808.gz",), True, 6547, "btcusdt@depth@0ms",
    ),
    "coinm": Market(
        "coinm", "binancecoinm", "BTC/USD:BTC", ("cm_btcusd_perp_20240808.gz", "cm_btcusd_perp_20240809.gz"),
        True, 44772, "btcusd_perp@depth@0ms",
    ),
}
FUTURES = [m for m in MARKETS if MARKETS[m].futures]


# -- capture loading (each file read once per module) ------------------------------------
@dataclass
class Capture:
    market: Market
    lines: list[tuple[int, bytes]]  # (local_ns, raw frame)
    snapshot_at: int  # index of the REST snapshot line
    depth_at: list[int]  # indices of the depth-diff lines

    @property
    def inst(self) -> Instrument:
        return Catalog().get(self.market.venue, self.market.symbol)


@pytest.fixture(scope="module")
def captures(shared_data: Path) -> Callable[[str], Capture]:
    cache: dict[str, Capture] = {}

    def load(name: str) -> Capture:
        if name not in cache:
            m = MARKETS[name]
            lines: list[tuple[int, bytes]] = []
            for f in m.files:
                with gzip.open(shared_data / f, "rb") as g:
                    lines.extend(split_line(raw) for raw in g if raw.strip())
            snaps = [i for i, (_, raw) in enumerate(lines) if raw.startswith(b'{"lastUpdateId"')]
            assert len(snaps) == 1, f"{name}: expected one snapshot line, found {len(snaps)}"
            depth = [i for i, (_, raw) in enumerate(lines) if b"@depth" in raw[:48]]
            cache[name] = Capture(m, lines, snaps[0], depth)
        return cache[name]

    return load


# -- driving the handler and the reference together ---------------------------------------
@dataclass
class Recorder:
    """The handler's callbacks, recording everything."""

    index: int = -1  # index of the line being fed
    calls: list[tuple[int, bool, int, bool, int]] = field(default_factory=list)  # idx, valid, state, crossed, uid
    books: set[int] = field(default_factory=set)
    requests: list[Instrument] = field(default_factory=list)
    states: list[BookStateChange] = field(default_factory=list)
    quotes: int = 0
    trades: int = 0

    def on_book(self, book: OrderBook, local_ns: int) -> None:
        self.calls.append((self.index, book.valid, book.state, book.crossed, book.update_id))
        self.books.add(id(book))

    def on_event(self, ev: Any) -> None:
        if isinstance(ev, Quote):
            self.quotes += 1
        elif isinstance(ev, Trade):
            self.trades += 1
        else:  # pragma: no cover - a failure message
            raise AssertionError(f"unexpected event {ev!r}")


def new_handler(m: Market) -> tuple[BinanceHandler, Recorder]:
    rec = Recorder()
    h = BinanceHandler(
        m.venue, Catalog(), rec.on_book, on_event=rec.on_event, request_snapshot=rec.requests.append,
        on_state=rec.states.append,
    )
    return h, rec


def book_mismatch(book: OrderBook, ref: RefBook) -> str | None:
    """None when the handler's full book equals the reference level by level."""
    for side, got, want in (("bids", list(book.bids()), ref.float_bids()),
                            ("asks", list(book.asks()), ref.float_asks())):
        if got != want:
            for i, (g, w) in enumerate(zip(got, want, strict=False)):
                if g != w:
                    return f"{side}[{i}]: handler {g} != reference {w} ({len(got)} vs {len(want)} levels)"
            return f"{side}: handler has {len(got)} levels, reference {len(want)}"
    return None


@dataclass
class FullRun:
    cap: Capture
    handler: BinanceHandler
    rec: Recorder
    ref: RefBook
    kinds: dict[int, int]
    checkpoints: list[int]
    mismatches: list[str]
    counter_mismatches: list[str]
    first_valid_at: int | None


def full_run(cap: Capture) -> FullRun:
    m = cap.market
    h, rec = new_handler(m)
    ref = RefBook(m.futures)
    kinds: dict[int, int] = {}
    checkpoints: list[int] = []
    mismatches: list[str] = []
    counter_mismatches: list[str] = []
    first_valid_at = None
    last_checked = 0
    for i, (ns, raw) in enumerate(cap.lines):
        rec.index = i
        ref.feed(raw)
        kind = h.on_message(raw, ns)
        kinds[kind] = kinds.get(kind, 0) + 1
        sync = h.syncs.get(m.symbol)
        if sync is None:
            continue
        off = sync.diffs_applied != ref.applied or sync.gaps or (ref.synced and sync.last_id != ref.last_u)
        if off and len(counter_mismatches) < 5:
            counter_mismatches.append(
                f"line {i}: applied {sync.diffs_applied} vs {ref.applied}, gaps {sync.gaps}, "
                f"last_id {sync.last_id} vs {ref.last_u}"
            )
        if first_valid_at is None and sync.book.state == VALID:
            first_valid_at = i
        end = i == len(cap.lines) - 1
        if ref.synced and (ref.applied // CHECK_EVERY > last_checked // CHECK_EVERY or end):
            last_checked = ref.applied
            checkpoints.append(ref.applied)
            bad = book_mismatch(sync.book, ref)
            if bad and len(mismatches) < 5:
                mismatches.append(f"after {ref.applied} diffs (line {i}): {bad}")
    return FullRun(cap, h, rec, ref, kinds, checkpoints, mismatches, counter_mismatches, first_valid_at)


@pytest.fixture(scope="module", params=list(MARKETS))
def run(request: pytest.FixtureRequest, captures: Callable[[str], Capture]) -> FullRun:
    return full_run(captures(request.param))


# -- the whole real streams -----------------------------------------------------------------
def test_reference_rebuild_matches_the_documented_counts(run: FullRun) -> None:
    ref = run.ref
    assert ref.applied == run.cap.market.diffs_applied
    assert ref.gaps == 0
    assert ref.synced
    assert ref.depth_events == len(run.cap.depth_at)
    # every depth line is either applied or already in the snapshot
    assert ref.applied + ref.dropped == ref.depth_events


def test_full_book_equals_reference_at_sampled_points(run: FullRun) -> None:
    assert run.mismatches == []
    assert run.counter_mismatches == []
    assert len(run.checkpoints) >= run.cap.market.diffs_applied // CHECK_EVERY
    assert run.checkpoints[-1] == run.ref.applied
    sync = run.handler.syncs[run.cap.market.symbol]
    assert book_mismatch(sync.book, run.ref) is None
    assert sync.book.valid and sync.book.state == VALID and not sync.book.crossed
    assert sync.book.update_id == run.ref.last_u
    bids, asks = sync.book.top(5)
    assert (bids, asks) == run.ref.top(5)
    assert (sync.book.bid, sync.book.ask) == (bids[0][0], asks[0][0])
    assert (sync.book.bid_qty, sync.book.ask_qty) == (bids[0][1], asks[0][1])


def test_counters(run: FullRun) -> None:
    m = run.cap.market
    h = run.handler
    assert list(h.syncs) == [m.symbol]
    sync = h.syncs[m.symbol]
    assert sync.counters() == {
        "diffs_applied": m.diffs_applied,
        "dropped_before_snapshot": run.ref.dropped,
        "gaps": 0,
        "resyncs": 0,
    }
    assert run.ref.dropped > 0  # the snapshot is not the first line: some diffs predate it
    assert sync.stale_skipped == 0
    assert h.bad_messages == 0 and h.unknown_streams == 0
    assert run.rec.requests == []
    assert sync.buffer == []
    # every line was understood: depth, one snapshot, tickers and trades
    assert run.kinds[DEPTH] == len(run.cap.depth_at)
    assert run.kinds[SNAPSHOT] == 1
    assert run.kinds.get(OTHER, 0) == 0
    assert run.kinds[QUOTE] == run.rec.quotes and run.kinds[TRADE] == run.rec.trades
    assert sum(run.kinds.values()) == len(run.cap.lines)
    # one VALID transition, at the snapshot
    assert [(s.key, s.state) for s in run.rec.states] == [(sync.book.key, VALID)]


def test_on_book_only_for_valid_books_after_the_snapshot(run: FullRun) -> None:
    calls = run.rec.calls
    assert calls, "on_book was never called"
    assert run.first_valid_at == run.cap.snapshot_at
    assert min(c[0] for c in calls) == run.cap.snapshot_at  # first call: the snapshot itself
    assert all(valid and state == VALID and not crossed for _, valid, state, crossed, _ in calls)
    assert len(run.rec.books) == 1
    # once per change: the snapshot (with the buffered diffs applied), then once per live diff
    assert len(calls) == 1 + run.ref.applied - run.ref.applied_from_buffer
    uids = [c[4] for c in calls]
    assert uids == sorted(set(uids))  # always moving forward


# -- gaps and resyncs on the real streams ---------------------------------------------------
@pytest.mark.parametrize("name", list(MARKETS))
def test_gap_invalidates_then_fresh_snapshot_resyncs(name: str, captures: Callable[[str], Capture]) -> None:
    cap = captures(name)
    m = cap.market
    inst = cap.inst
    h, rec = new_handler(m)
    ref = RefBook(m.futures)
    d = cap.depth_at
    after_snap = [k for k, i in enumerate(d) if i > cap.snapshot_at]
    gap_k = after_snap[len(after_snap) // 2]  # the diff we lose
    expose_k = gap_k + 1  # the next one reveals the gap
    snap_k = gap_k + 150  # a REST snapshot is taken after this diff ...
    deliver_k = snap_k + 25  # ... and arrives after this one
    assert deliver_k < len(d) - 10
    sync = None
    snap_raw = b""
    buffered_u: list[int] = []
    calls_at_gap = applied_at_gap = dropped_at_gap = snap_id = 0
    buffered_lines = set(d[expose_k : deliver_k + 1])
    for i, (ns, raw) in enumerate(cap.lines):
        rec.index = i
        ref.feed(raw)
        if i == d[gap_k]:
            continue  # lost on the way to the handler
        h.on_message(raw, ns)
        sync = h.syncs[m.symbol]
        if i in buffered_lines:
            buffered_u.append(json.loads(raw)["data"]["u"])
        if i == d[expose_k]:
            assert sync.gaps == 1 and sync.resyncs == 1
            assert sync.book.state != VALID and not sync.book.valid
            assert rec.requests == [inst]
            assert [s.state for s in rec.states] == [VALID, INVALID]
            assert rec.states[-1].key == inst.key
            calls_at_gap = len(rec.calls)
            applied_at_gap = sync.diffs_applied
            dropped_at_gap = sync.dropped_before_snapshot
        if d[expose_k] <= i < d[deliver_k]:
            assert not sync.book.valid
            assert sync.book.state == SYNCING
        if i == d[snap_k]:
            snap_raw = ref.snapshot_json()
            snap_id = ref.last_u
        if i == d[deliver_k]:
            assert len(rec.calls) == calls_at_gap, "on_book called while the book was out of sync"
            assert sync.diffs_applied == applied_at_gap
            h.on_snapshot(inst, snap_raw, ns)
            assert sync.book.valid and sync.book.state == VALID
            assert book_mismatch(sync.book, ref) is None
            assert sync.last_id == ref.last_u
            assert len(rec.calls) == calls_at_gap + 1
            assert rec.states[-1].state == VALID
            # the buffered diffs already in the snapshot were dropped, the rest chained on
            stale = [u for u in buffered_u if (u < snap_id if m.futures else u <= snap_id)]
            assert sync.dropped_before_snapshot == dropped_at_gap + len(stale)
            assert sync.diffs_applied == applied_at_gap + len(buffered_u) - len(stale)
            assert len(stale) == (snap_k - gap_k - 1 if m.futures else snap_k - gap_k)
    assert sync is not None
    assert book_mismatch(sync.book, ref) is None
    assert sync.book.valid
    assert sync.gaps == 1 and sync.resyncs == 1
    assert rec.requests == [inst]
    assert ref.gaps == 0 and ref.applied == m.diffs_applied
    # all but the lost diff and the ones the snapshot covered (futures re-apply the one
    # whose u equals the snapshot id: it straddles it)
    assert sync.diffs_applied == m.diffs_applied - 1 - len(stale)
    assert rec.calls and all(valid for _, valid, _, _, _ in rec.calls)
    assert not any(d[expose_k] <= c[0] < d[deliver_k] for c in rec.calls)


# -- single messages on a warmed-up real book -------------------------------------------------
@dataclass
class Warm:
    cap: Capture
    handler: BinanceHandler
    rec: Recorder
    ref: RefBook
    next_k: int  # index in cap.depth_at of the next diff not fed yet

    @property
    def sync(self):  # type: ignore[no-untyped-def]
        return self.handler.syncs[self.cap.market.symbol]

    def raw_depth(self, k: int) -> bytes:
        return self.cap.lines[self.cap.depth_at[k]][1]

    def state(self) -> tuple[Any, ...]:
        s = self.sync
        b = s.book
        return (list(b.bids()), list(b.asks()), b.state, b.valid, b.update_id, s.last_id, s.diffs_applied,
                s.gaps, s.resyncs, len(self.rec.calls), len(self.rec.requests))


def warm(cap: Capture, diffs_after_snapshot: int = 100) -> Warm:
    """Handler and reference fed up to ``diffs_after_snapshot`` diffs after the snapshot."""
    h, rec = new_handler(cap.market)
    ref = RefBook(cap.market.futures)
    stop = [i for i in cap.depth_at if i > cap.snapshot_at][diffs_after_snapshot]
    for i, (ns, raw) in enumerate(cap.lines[:stop]):
        rec.index = i
        ref.feed(raw)
        h.on_message(raw, ns)
    w = Warm(cap, h, rec, ref, cap.depth_at.index(stop))
    assert w.sync.book.valid and book_mismatch(w.sync.book, ref) is None
    return w


def frame(stream: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":")).encode()


@pytest.mark.parametrize("name", list(MARKETS))
def test_old_diff_is_skipped_as_stale(name: str, captures: Callable[[str], Capture]) -> None:
    w = warm(captures(name))
    before = w.state()
    for back in (2, 10, 50):
        w.handler.on_message(w.raw_depth(w.next_k - back), 1)
    assert w.sync.stale_skipped == 3
    assert w.state() == before
    # and the stream carries on as if nothing happened
    nxt = w.raw_depth(w.next_k)
    w.ref.feed(nxt)
    assert w.handler.on_message(nxt, 2) == DEPTH
    assert book_mismatch(w.sync.book, w.ref) is None and w.sync.gaps == 0


@pytest.mark.parametrize(
    "name",
    [
        "spot",
        *FUTURES,
    ],
)
def test_redelivered_last_diff_is_skipped_as_stale(name: str, captures: Callable[[str], Capture]) -> None:
    w = warm(captures(name))
    before = w.state()
    w.handler.on_message(w.raw_depth(w.next_k - 1), 1)  # the diff just applied, again
    assert (w.sync.stale_skipped, w.sync.gaps) == (1, 0)
    assert w.state() == before


@pytest.mark.parametrize("name", FUTURES)
def test_futures_diff_with_wrong_pu_is_a_gap(name: str, captures: Callable[[str], Capture]) -> None:
    w = warm(captures(name))
    msg = json.loads(w.raw_depth(w.next_k))
    assert msg["data"]["pu"] == w.sync.last_id
    msg["data"]["pu"] -= 1
    calls = len(w.rec.calls)
    w.handler.on_message(json.dumps(msg).encode(), 1)
    assert (w.sync.gaps, w.sync.resyncs) == (1, 1)
    assert not w.sync.book.valid and w.sync.book.state == SYNCING
    assert w.rec.requests == [w.cap.inst]
    assert len(w.rec.calls) == calls
    assert w.rec.states[-1].state == INVALID and "pu" in w.rec.states[-1].reason
    # later diffs are buffered, not applied
    applied = w.sync.diffs_applied
    w.handler.on_message(w.raw_depth(w.next_k + 1), 2)
    assert w.sync.diffs_applied == applied and len(w.rec.calls) == calls
    assert len(w.sync.buffer) == 2  # the diff that exposed the gap is kept, it may chain on


def test_spot_diff_skipping_ids_is_a_gap(captures: Callable[[str], Capture]) -> None:
    w = warm(captures("spot"))
    msg = json.loads(w.raw_depth(w.next_k))
    assert msg["data"]["U"] == w.sync.last_id + 1
    msg["data"]["U"] += 2
    w.handler.on_message(json.dumps(msg).encode(), 1)
    assert (w.sync.gaps, w.sync.resyncs) == (1, 1)
    assert not w.sync.book.valid
    assert w.rec.requests == [w.cap.inst]


def _malformed(raw: bytes) -> list[tuple[str, bytes]]:
    msg = json.loads(raw)
    stream, data = msg["stream"], msg["data"]
    bad = []
    for what, change in (
        ("b is a number", {"b": 5}),
        ("a is a string", {"a": "61000.0"}),
        ("price not a number", {"b": [["abc", "1.0"]]}),
        ("level with one element", {"a": [["61000.0"]]}),
        ("level with three elements", {"b": [["61000.0", "1.0", "2.0"]]}),
        ("U is not an integer", {"U": "x"}),
        ("u is a list", {"u": [1]}),
    ):
        bad.append((what, frame(stream, {**data, **change})))
    bad.append(("u missing", frame(stream, {k: v for k, v in data.items() if k != "u"})))
    bad.append(("data is a list", frame(stream, [data])))  # type: ignore[arg-type]
    bad.append(("truncated JSON", raw[: len(raw) // 2]))
    bad.append(("cut after the stream name", raw[: raw.index(b'"data"') + 8]))
    bad.append(("not JSON", b"hello"))
    bad.append(("empty", b""))
    bad.append(("JSON array", b"[1,2,3]"))
    bad.append(("neither stream nor snapshot", b'{"result":null,"ident":1}'))
    return bad


@pytest.mark.parametrize("name", list(MARKETS))
def test_malformed_frames_raise_and_leave_the_book_unchanged(name: str, captures: Callable[[str], Capture]) -> None:
    w = warm(captures(name))
    nxt = w.raw_depth(w.next_k)
    before = w.state()
    cases = _malformed(nxt)
    for what, raw in cases:
        with pytest.raises(MessageError):
            w.handler.on_message(raw, 1)
        assert w.state() == before, what
    assert w.handler.bad_messages == len(cases)
    assert w.sync.stale_skipped == 0
    # the genuine message still applies and the book is right
    w.ref.feed(nxt)
    assert w.handler.on_message(nxt, 2) == DEPTH
    assert book_mismatch(w.sync.book, w.ref) is None
    assert w.sync.gaps == 0


@pytest.mark.parametrize("name", ["spot", "coinm"])
def test_key_order_does_not_matter(name: str, captures: Callable[[str], Capture]) -> None:
    """``data`` before ``stream`` takes the general decoding path: same result."""
    w = warm(captures(name))
    for k in range(w.next_k, w.next_k + 20):
        raw = w.raw_depth(k)
        msg = json.loads(raw)
        w.ref.feed(raw)
        reordered = json.dumps({"data": msg["data"], "stream": msg["stream"]}).encode()
        assert w.handler.on_message(reordered, 1) == DEPTH
    assert book_mismatch(w.sync.book, w.ref) is None


def test_unknown_stream_type_is_counted_and_skipped(captures: Callable[[str], Capture]) -> None:
    w = warm(captures("spot"))
    before = w.state()
    kline = frame("btcusdt@kline_1m", {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {"t": 1, "o": "1"}})
    assert w.handler.on_message(kline, 1) == OTHER
    assert w.handler.on_message(frame("btcusdt@aggTrade", {"e": "aggTrade"}), 1) == OTHER
    assert w.handler.unknown_streams == 2
    assert w.handler.bad_messages == 0
    assert w.state() == before
    assert list(w.handler.syncs) == ["BTC/USDT"]


@pytest.mark.parametrize(
    ("venue", "stream", "known"),
    [
        ("binance", "dogeusdt@depth@100ms", "BTCUSDT, ETHUSDT, BTCFDUSD"),
        ("binance", "dogeusdt@bookTicker", "BTCUSDT, ETHUSDT, BTCFDUSD"),
        ("binanceusdm", "dogeusdt@depth@0ms", "BTCUSDT, ETHUSDT"),
        ("binancecoinm", "dogeusd_perp@trade", "BTCUSD_PERP, ETHUSD_PERP"),
    ],
)
def test_unknown_symbol_raises_with_the_known_ones(venue: str, stream: str, known: str) -> None:
    h = BinanceHandler(venue, Catalog(), lambda b, ns: None)
    data = {"e": "depthUpdate", "E": 1, "U": 1, "u": 2, "pu": 0, "b": [], "a": [],
            "p": "1", "q": "1", "m": True, "B": "1", "A": "1"}
    with pytest.raises(UnknownInstrument) as e:
        h.on_message(frame(stream, data), 1)
    text = str(e.value)
    assert stream.split("@")[0] in text.lower()
    assert known in text
    assert h.syncs == {}


def test_unknown_symbol_in_a_futures_snapshot_raises() -> None:
    h = BinanceHandler("binancecoinm", Catalog(), lambda b, ns: None)
    snap = b'{"lastUpdateId":5,"E":1,"T":1,"symbol":"XRPUSD_PERP","bids":[],"asks":[]}'
    with pytest.raises(UnknownInstrument, match="BTCUSD_PERP, ETHUSD_PERP"):
        h.on_message(snap, 1)


# -- hand-made frames ------------------------------------------------------------------------
SPOT_STREAM = "btcusdt@depth@100ms"


def spot_diff(U: int, u: int, b: list[list[str]] | None = None, a: list[list[str]] | None = None) -> bytes:
    return frame(SPOT_STREAM, {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": U, "u": u,
                               "b": b or [], "a": a or []})


def usdm_diff(U: int, u: int, pu: int, b: list[list[str]] | None = None,
              a: list[list[str]] | None = None) -> bytes:
    return frame("btcusdt@depth@0ms", {"e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": U, "u": u,
                                       "pu": pu, "b": b or [], "a": a or []})


def snap(last: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    return json.dumps({"lastUpdateId": last, "bids": bids, "asks": asks}).encode()


def test_crossed_book_is_never_published() -> None:
    rec = Recorder()
    h = BinanceHandler("binance", Catalog(), rec.on_book, request_snapshot=rec.requests.append)
    h.on_message(spot_diff(101, 101), 1)
    assert h.on_message(snap(100, [["100.0", "1"]], [["101.0", "1"], ["102.0", "1"]]), 2) == SNAPSHOT
    assert len(rec.calls) == 1
    book = h.syncs["BTC/USDT"].book
    with pytest.raises(MessageError, match="crossed"):
        h.on_message(spot_diff(102, 102, b=[["101.5", "2"]]), 3)  # bid above the ask: a bad message
    assert not book.valid and book.state == SYNCING  # invalidated, resync asked
    s = h.syncs["BTC/USDT"]
    assert (s.gaps, s.resyncs, len(rec.requests), h.bad_books) == (1, 1, 1, 1)
    assert len(rec.calls) == 1
    h.on_message(spot_diff(103, 103, a=[["101.0", "0"]]), 4)  # buffered for the new snapshot
    h.on_message(snap(103, [["100.0", "1"]], [["102.0", "1"]]), 5)
    assert book.valid and (book.bid, book.ask) == (100.0, 102.0)
    assert len(rec.calls) == 2 and rec.calls[-1][1]


def test_snapshot_straddle_rule_spot() -> None:
    """Buffered diffs: drop u <= L; the first kept one must have U <= L+1 <= u."""
    rec = Recorder()
    h = BinanceHandler("binance", Catalog(), rec.on_book, request_snapshot=rec.requests.append)
    h.on_message(spot_diff(90, 95, b=[["99.0", "5"]]), 1)  # inside the snapshot: dropped
    h.on_message(spot_diff(96, 100, b=[["99.0", "6"]]), 1)  # u == L: dropped
    h.on_message(spot_diff(99, 104, b=[["98.0", "1"]]), 1)  # straddles L + 1 = 101
    h.on_message(spot_diff(105, 107, a=[["102.0", "0"]]), 1)
    h.on_message(snap(100, [["99.0", "1"]], [["101.0", "1"], ["102.0", "3"]]), 2)
    s = h.syncs["BTC/USDT"]
    assert s.counters() == {"diffs_applied": 2, "dropped_before_snapshot": 2, "gaps": 0, "resyncs": 0}
    assert list(s.book.bids()) == [(99.0, 1.0), (98.0, 1.0)]
    assert list(s.book.asks()) == [(101.0, 1.0)]
    assert s.last_id == 107 and s.book.valid


def test_snapshot_leaving_a_hole_is_a_gap() -> None:
    rec = Recorder()
    h = BinanceHandler("binancecoinm", Catalog(), rec.on_book, request_snapshot=rec.requests.append)
    inst = Catalog().get("binancecoinm", "BTC/USD:BTC")
    h.on_message(frame("btcusd_perp@depth@0ms", {"U": 110, "u": 120, "pu": 105, "b": [], "a": []}), 1)
    h.on_snapshot(inst, b'{"lastUpdateId":100,"E":1,"T":1,"bids":[["1.0","1"]],"asks":[["2.0","1"]]}', 2)
    s = h.syncs["BTC/USD:BTC"]
    assert (s.gaps, s.resyncs) == (1, 1)
    assert not s.book.valid and rec.calls == [] and rec.requests == [inst]
    assert len(s.buffer) == 1  # kept: it may chain onto the next snapshot
    h.on_snapshot(inst, b'{"lastUpdateId":115,"E":1,"T":1,"bids":[["1.0","1"]],"asks":[["2.0","1"]]}', 3)
    assert s.book.valid and s.last_id == 120 and len(rec.calls) == 1


@pytest.mark.parametrize("venue", ["binance", "binanceusdm"])
def test_duplicate_buffered_before_the_snapshot_is_skipped(venue: str) -> None:
    rec = Recorder()
    h = BinanceHandler(venue, Catalog(), rec.on_book, request_snapshot=rec.requests.append)
    if venue == "binance":
        d1 = spot_diff(101, 101, b=[["10.0", "2"]])
        d2 = spot_diff(102, 102, b=[["10.0", "3"]])
    else:
        d1 = usdm_diff(99, 101, 98, b=[["10.0", "2"]])
        d2 = usdm_diff(102, 102, 101, b=[["10.0", "3"]])
    for d in (d1, d2, d1):  # d1 delivered twice while waiting for the snapshot
        h.on_message(d, 1)
    inst = h.syncs[next(iter(h.syncs))].instrument
    h.on_snapshot(inst, snap(100, [["10.0", "1"]], [["11.0", "1"]]), 2)
    s = h.syncs[inst.symbol]
    assert s.book.valid and s.gaps == 0
    assert list(s.book.bids()) == [(10.0, 3.0)]
    assert s.last_id == 102 and s.diffs_applied == 2


def test_spot_snapshot_without_symbol_needs_one_waiting_book() -> None:
    h = BinanceHandler("binance", Catalog(), lambda b, ns: None)
    h.on_message(frame("btcusdt@depth@100ms", {"U": 1, "u": 2, "b": [], "a": []}), 1)
    h.on_message(frame("ethusdt@depth@100ms", {"U": 1, "u": 2, "b": [], "a": []}), 1)
    with pytest.raises(MessageError, match="2 books await"):
        h.on_message(snap(1, [], []), 2)
    assert h.bad_messages == 1
    assert all(s.book.state == SYNCING for s in h.syncs.values())


def test_bad_live_snapshot_raises() -> None:
    h = BinanceHandler("binance", Catalog(), lambda b, ns: None)
    inst = Catalog().get("binance", "BTC/USDT")
    with pytest.raises(MessageError):
        h.on_snapshot(inst, b'{"lastUpdateId":1,"bids":[["1"', 1)
    with pytest.raises(MessageError, match="lastUpdateId"):
        h.on_snapshot(inst, b'{"bids":[],"asks":[]}', 1)
    assert h.bad_messages == 2


def test_subscription_acknowledgement_is_not_a_bad_message() -> None:
    from cryptoarb.venues.base import OTHER
    from cryptoarb.venues.binance import BinanceHandler
    from cryptoarb.venues.catalog import Catalog

    h = BinanceHandler("binance", Catalog(), lambda b, t: None)
    assert h.on_message(b'{"result":null,"id":1}', 1) == OTHER
    assert h.bad_messages == 0


def test_futures_first_live_diff_after_a_snapshot_straddles_instead_of_chaining() -> None:
    """Found on the BINANCE_FUTURES capture: when every buffered diff is older than the snapshot,
    the first live diff cannot chain by ``pu`` yet; Binance's rule is U <= lastUpdateId <= u."""
    from cryptoarb.venues.binance import BinanceHandler
    from cryptoarb.venues.catalog import Catalog

    h = BinanceHandler("binanceusdm", Catalog(), lambda b, t: None)
    inst = Catalog().get("binanceusdm", "BTC/USDT:USDT")
    h.on_snapshot(inst, b'{"lastUpdateId":100,"E":1,"T":1,"bids":[["1.0","1"]],"asks":[["2.0","1"]]}', 1)
    s = h.syncs["BTC/USDT:USDT"]
    assert s.book.valid

    def diff(U: int, u: int, pu: int, bid: str) -> bytes:
        return (b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":2,"T":2,"s":"BTCUSDT",'
                b'"U":%d,"u":%d,"pu":%d,"b":[["1.0","%s"]],"a":[]}}' % (U, u, pu, bid.encode()))

    h.on_message(diff(95, 105, 90, "2"), 2)  # straddles 100: applied, although pu != 100
    assert s.gaps == 0 and s.last_id == 105 and s.book.bid_qty == 2.0
    h.on_message(diff(106, 110, 104, "3"), 3)  # from now on pu must chain
    assert s.gaps == 1 and not s.book.valid
