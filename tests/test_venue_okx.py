"""OkxHandler on real OKX v5 messages.

- ``exchange-captures/OKX.ws.1.0`` (cryptofeed, May 2022): ``books`` (legacy format: checksum, no
  ``seqId``/``prevSeqId``), ``tickers`` and ``trades`` for BTC-USDT, UNI-USD-SWAP and BTC-USD-220527.
  The capture has no ``.http`` file (OKX books start from the stream).
- Independent check: a plain ``json`` + ``dict`` rebuild in this file (no cryptoarb code) is
  compared with the handler's full books after every push, and its own CRC32 of the top 25
  levels matches the ``checksum`` OKX sent with every push.
- Current format (``seqId``/``prevSeqId``): the ``exchange-fixtures/okx__*`` messages, and the real
  capture pushes with sequence ids added, for chaining, heartbeats, gaps and resyncs.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.core.book import INVALID, SYNCING, VALID
from cryptoarb.core.events import Quote, Trade
from cryptoarb.venues.base import DEPTH, OTHER, QUOTE, SNAPSHOT, TRADE, MessageError
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from cryptoarb.venues.okx import OkxHandler, parse_rest_book
from tests.venuekit import BookRecorder, dumps, edit_frame, levels, stream_frames, warm_up

pytestmark = pytest.mark.realdata

SYMBOLS = {"BTC-USDT": "BTC/USDT", "UNI-USD-SWAP": "UNI/USD:UNI", "BTC-USD-220527": "BTC/USD:BTC-220527"}


# -- the independent reference ----------------------------------------------------------------
def ref_crc(bids: list[list[str]], asks: list[list[str]]) -> int:
    """OKX's documented checksum: bid1Px:bid1Sz:ask1Px:ask1Sz:... over 25 levels, signed CRC32."""
    parts = []
    for i in range(25):
        if i < len(bids):
            parts += [bids[i][0], bids[i][1]]
        if i < len(asks):
            parts += [asks[i][0], asks[i][1]]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 2**32 if crc >= 2**31 else crc


class Ref:
    """One book: price (Decimal) -> [price str, size str]."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, list[str]] = {}
        self.asks: dict[Decimal, list[str]] = {}

    def feed(self, push: dict[str, Any], snapshot: bool) -> None:
        if snapshot:
            self.bids, self.asks = {}, {}
        for side, lvls in ((self.bids, push["bids"]), (self.asks, push["asks"])):
            for lv in lvls:
                if Decimal(lv[1]) == 0:
                    side.pop(Decimal(lv[0]), None)
                else:
                    side[Decimal(lv[0])] = [lv[0], lv[1]]

    def sorted(self) -> tuple[list[list[str]], list[list[str]]]:
        return ([self.bids[p] for p in sorted(self.bids, reverse=True)], [self.asks[p] for p in sorted(self.asks)])

    def floats(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        b, a = self.sorted()
        return [(float(p), float(q)) for p, q in b], [(float(p), float(q)) for p, q in a]

    def crc(self) -> int:
        return ref_crc(*self.sorted())


# -- capture ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames(shared_data_root: Path) -> list[tuple[int, bytes]]:
    """The received frames of OKX.ws.1.0, in time order (merged with OKX.http.0.0 if it existed)."""
    return stream_frames(shared_data_root, "OKX", "OKX")


def books_pushes(frames: list[tuple[int, bytes]]) -> list[tuple[int, int, dict[str, Any]]]:
    """(frame index, ns, message) of every books push."""
    out = []
    for i, (ns, raw) in enumerate(frames):
        m = json.loads(raw)
        if m.get("arg", {}).get("channel") == "books" and "data" in m:
            out.append((i, ns, m))
    return out


def handler(rec: BookRecorder | None = None, catalog: Catalog | None = None, discover: bool = True) -> OkxHandler:
    rec = rec or BookRecorder()
    return OkxHandler("okx", catalog or Catalog(), rec.on_book, rec.events.append, rec.requests.append,
                      rec.states.append, discover=discover)


# -- the real capture ---------------------------------------------------------------------------
def test_capture_is_the_legacy_books_format(frames: list[tuple[int, bytes]]) -> None:
    kinds: Counter[tuple[str, str]] = Counter()
    for _, raw in frames:
        m = json.loads(raw)
        kinds[(m.get("event") or m["arg"]["channel"], m.get("action", ""))] += 1
    assert kinds == {("subscribe", ""): 18, ("tickers", ""): 28, ("trades", ""): 74,
                     ("books", "snapshot"): 3, ("books", "update"): 287}
    pushes = books_pushes(frames)
    assert len(pushes) == 3 + 287
    assert all("seqId" not in m["data"][0] and "checksum" in m["data"][0] for _, _, m in pushes)


def test_replay_every_book_valid_and_every_checksum_verified(frames: list[tuple[int, bytes]]) -> None:
    rec = BookRecorder()
    h = handler(rec)
    kinds: Counter[int] = Counter()
    for ns, raw in frames:
        kinds[h.on_message(raw, ns)] += 1
    assert kinds == {SNAPSHOT: 3, DEPTH: 287, QUOTE: 28, TRADE: 74, OTHER: 18}
    assert sorted(h.syncs) == sorted(SYMBOLS.values())
    for sync in h.syncs.values():
        assert sync.book.state == VALID and sync.book.valid
        assert sync.counters()["gaps"] == 0 and sync.resyncs == 0 and sync.dropped_before_snapshot == 0
    assert (h.checksums_ok, h.checksum_failures) == (290, 0)
    assert (h.bad_messages, h.unknown_streams, h.outbox, rec.requests) == (0, 0, [], [])
    assert len(rec.calls) == 290 and all(valid and state == VALID for _, valid, state in rec.calls)
    assert [s.state for s in rec.states] == [VALID] * 3
    assert sum(isinstance(e, Trade) for e in rec.events) == 74  # one trade per push in this capture
    assert sum(isinstance(e, Quote) for e in rec.events) == 28
    inverse = h.syncs["UNI/USD:UNI"].instrument
    assert inverse.inverse and inverse.exchange_symbol == "UNI-USD-SWAP"


def test_reference_rebuild_equals_the_books_after_every_push(frames: list[tuple[int, bytes]]) -> None:
    """Independent check: the plain rebuild equals the handler's full books after each push,
    and its own CRC32 equals the checksum OKX sent (290 of 290)."""
    h = handler()
    refs: dict[str, Ref] = {}
    pushes = {i: m for i, _, m in books_pushes(frames)}
    verified = 0
    for i, (ns, raw) in enumerate(frames):
        h.on_message(raw, ns)
        m = pushes.get(i)
        if m is None:
            continue
        native = m["arg"]["instId"]
        ref = refs.setdefault(native, Ref())
        ref.feed(m["data"][0], m["action"] == "snapshot")
        assert ref.crc() == m["data"][0]["checksum"]
        verified += 1
        assert levels(h.syncs[SYMBOLS[native]].book) == ref.floats(), f"frame {i} {native}"
    assert verified == 290
    depth = {n: (len(r.bids), len(r.asks)) for n, r in refs.items()}
    assert depth == {"BTC-USDT": (400, 400), "UNI-USD-SWAP": (125, 118), "BTC-USD-220527": (74, 62)}


def test_lost_legacy_update_is_caught_by_the_checksum(frames: list[tuple[int, bytes]]) -> None:
    rec = BookRecorder()
    h = handler(rec)
    pushes = [(i, m) for i, _, m in books_pushes(frames) if m["arg"]["instId"] == "BTC-USDT"]
    lost = pushes[40][0]
    for i, (ns, raw) in enumerate(frames):
        if i == lost:
            continue
        h.on_message(raw, ns)
        if i == pushes[41][0]:
            sync = h.syncs["BTC/USDT"]
            assert (h.checksum_failures, sync.gaps, sync.book.state) == (1, 1, SYNCING)
            assert rec.requests == [sync.instrument]
            assert [json.loads(x)["op"] for x in h.outbox] == ["unsubscribe", "subscribe"]
            assert all(json.loads(x)["args"] == [{"channel": "books", "instId": "BTC-USDT"}] for x in h.outbox)
            calls = len(rec.calls)
    sync = h.syncs["BTC/USDT"]
    assert not sync.book.valid and sync.dropped_before_snapshot == len(pushes) - 42
    assert all(k != "okx BTC/USDT" for k, _, _ in rec.calls[calls:])  # no on_book for it after the gap
    assert [s.state for s in rec.states if s.key == "okx BTC/USDT"] == [VALID, INVALID]


# -- current format: seqId / prevSeqId ------------------------------------------------------------
def with_seq(frames: list[tuple[int, bytes]], heartbeat_every: int = 10) -> list[tuple[int, bytes]]:
    """The capture with OKX's current sequencing added: seqId steps irregularly (as OKX's do),
    prevSeqId names the previous push, plus a no-change heartbeat (seqId == prevSeqId)."""
    out = []
    seq: dict[str, int] = {}
    n = 0
    for ns, raw in frames:
        m = json.loads(raw)
        if m.get("arg", {}).get("channel") != "books" or "data" not in m:
            out.append((ns, raw))
            continue
        d = m["data"][0]
        native = m["arg"]["instId"]
        prev = -1 if m["action"] == "snapshot" else seq[native]
        seq[native] = (prev if prev > 0 else 1000) + 1 + n % 7
        d["prevSeqId"], d["seqId"] = prev, seq[native]
        out.append((ns, dumps(m)))
        n += 1
        if n % heartbeat_every == 0:
            hb = {"arg": m["arg"], "action": "update", "data": [{"asks": [], "bids": [], "ts": d["ts"],
                  "checksum": d["checksum"], "prevSeqId": seq[native], "seqId": seq[native]}]}
            out.append((ns, dumps(hb)))
    return out


def test_current_format_chains_by_prev_seq_id(frames: list[tuple[int, bytes]]) -> None:
    legacy = handler()
    for ns, raw in frames:
        legacy.on_message(raw, ns)
    h = handler()
    for ns, raw in with_seq(frames):
        h.on_message(raw, ns)
    assert h.checksums_ok == 290 + 29 and h.checksum_failures == 0  # 29 heartbeats verify too
    for sym, sync in h.syncs.items():
        assert sync.gaps == 0 and sync.book.valid
        assert levels(sync.book) == levels(legacy.syncs[sym].book)
        assert sync.book.update_id == sync.last_id > 1000


def test_seq_gap_invalidates_resubscribes_then_a_fresh_snapshot_resyncs(frames: list[tuple[int, bytes]]) -> None:
    stream = with_seq(frames, heartbeat_every=10**9)
    rec = BookRecorder()
    h = handler(rec)
    ref = Ref()
    idx = [k for k, (_, raw) in enumerate(stream) if b'"books","instId":"UNI-USD-SWAP"},"action"' in raw]
    lost, expose, resnap = idx[30], idx[31], idx[60]
    calls_at_gap = 0

    def uni_calls() -> int:
        return sum(c[0] == "okx UNI/USD:UNI" for c in rec.calls)

    for k, (ns, raw) in enumerate(stream):
        if k in idx:
            m = json.loads(raw)
            ref.feed(m["data"][0], m["action"] == "snapshot")
        if k == lost:
            continue
        if k == resnap:  # the answer to the resubscription: a snapshot continuing the sequence
            bids, asks = ref.sorted()
            d = m["data"][0]
            snap = {"arg": m["arg"], "action": "snapshot", "data": [{"asks": [[p, q, "0", "1"] for p, q in asks],
                    "bids": [[p, q, "0", "1"] for p, q in bids], "ts": d["ts"], "checksum": ref_crc(bids, asks),
                    "prevSeqId": -1, "seqId": d["seqId"]}]}
            assert h.on_message(dumps(snap), ns) == SNAPSHOT
            assert h.syncs["UNI/USD:UNI"].book.valid and uni_calls() == calls_at_gap + 1
            continue
        h.on_message(raw, ns)
        sync = h.syncs.get("UNI/USD:UNI")
        if k == expose:
            assert sync is not None and sync.gaps == 1 and not sync.book.valid and sync.book.state == SYNCING
            assert h.checksum_failures == 0  # found by the chain, before the checksum
            arg = {"channel": "books", "instId": "UNI-USD-SWAP"}
            assert [json.loads(x) for x in h.outbox] == [
                {"op": op, "args": [arg]} for op in ("unsubscribe", "subscribe")
            ]
            assert rec.requests == [sync.instrument]
            calls_at_gap = uni_calls()
        if expose < k < resnap and k in idx:
            assert sync is not None and not sync.book.valid
            assert uni_calls() == calls_at_gap
    sync = h.syncs["UNI/USD:UNI"]
    assert sync.book.valid and sync.gaps == 1 and sync.dropped_before_snapshot == 60 - 31 - 1
    assert levels(sync.book) == ref.floats()
    assert h.checksum_failures == 0
    assert all(valid for _, valid, _ in rec.calls)
    assert [s.state for s in rec.states if s.key == "okx UNI/USD:UNI"] == [VALID, INVALID, VALID]


def test_seq_id_reset_after_maintenance_is_accepted(frames: list[tuple[int, bytes]]) -> None:
    h = handler()
    stream = with_seq(frames, heartbeat_every=10**9)
    first = [k for k, (_, raw) in enumerate(stream) if b'"instId":"BTC-USDT"' in raw and b'"books"' in raw]
    for ns, raw in stream[: first[5]]:
        h.on_message(raw, ns)
    m = json.loads(stream[first[5]][1])
    m["data"][0]["seqId"] = 3  # lower than prevSeqId: the documented reset
    h.on_message(dumps(m), 1)
    m = json.loads(stream[first[6]][1])
    m["data"][0]["prevSeqId"], m["data"][0]["seqId"] = 3, 9
    h.on_message(dumps(m), 2)
    sync = h.syncs["BTC/USDT"]
    assert sync.gaps == 0 and sync.book.valid and sync.last_id == 9 and h.checksum_failures == 0


# -- fixtures (current format) ---------------------------------------------------------------------
def fixture(root: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "exchange-fixtures" / name).read_text())
    return data


def test_fixture_snapshot_and_update(shared_data_root: Path) -> None:
    snap = fixture(shared_data_root, "okx__ws_books_snapshot.json")
    upd = fixture(shared_data_root, "okx__ws_books_update.json")
    d = snap["data"][0]
    want_bids = [(float(p), float(q)) for p, q, *_ in d["bids"]]
    want_asks = [(float(p), float(q)) for p, q, *_ in d["asks"]]
    assert want_bids[0] == (8476.97, 256.0) and want_asks[-1] == (8506.96, 100.0)
    # As shipped, the checksum is OKX's illustrative doc value, not the CRC of these 8+8 levels.
    true_crc = ref_crc(d["bids"], d["asks"])
    assert (d["checksum"], true_crc) == (-855196043, -2102840145)
    rec = BookRecorder()
    h = handler(rec)
    assert h.on_message(dumps(snap), 1) == SNAPSHOT
    sync = h.syncs["BTC/USDT"]
    assert (h.checksum_failures, sync.gaps, sync.book.valid, rec.calls) == (1, 1, False, [])
    assert len(h.outbox) == 2
    # With the true checksum (or 0, "not provided", as OKX sends now) it builds the exact book.
    for crc in (true_crc, 0):
        h = handler(rec := BookRecorder())
        d["checksum"] = upd["data"][0]["checksum"] = crc
        assert h.on_message(dumps(snap), 1) == SNAPSHOT
        sync = h.syncs["BTC/USDT"]
        assert levels(sync.book) == (want_bids, want_asks)
        assert sync.book.valid and sync.last_id == sync.book.update_id == 123456
        assert h.on_message(dumps(upd), 2) == DEPTH  # prevSeqId 123456 -> seqId 123457, same levels
        assert levels(sync.book) == (want_bids, want_asks)
        assert (sync.last_id, sync.book.update_id, sync.gaps, sync.book.exchange_ns) == (
            123457, 123457, 0, 1597026383085 * 1_000_000)
        assert (h.checksums_ok, h.checksum_failures) == ((2, 0) if crc else (0, 0))
        assert len(rec.calls) == 2
        upd["data"][0]["prevSeqId"] = 123455  # not the last seqId: a gap
        h.on_message(dumps(upd), 3)
        assert sync.gaps == 1 and not sync.book.valid
        upd["data"][0]["prevSeqId"] = 123456


def test_fixture_rest_book(shared_data_root: Path) -> None:
    raw = (shared_data_root / "exchange-fixtures" / "okx__http_get_order_book.json").read_bytes()
    bids, asks, ts = parse_rest_book(raw)
    assert bids == [(41006.7, 0.487921), (41006.6, 0.2397), (41006.5, 1.125)]
    assert asks == [(41006.8, 0.60038921), (41006.9, 0.30178218), (41007.0, 2.0584253)]
    assert ts == 1704067200000
    with pytest.raises(MessageError):
        parse_rest_book(raw[:50])
    with pytest.raises(MessageError, match="code '51001'"):
        parse_rest_book(b'{"code":"51001","msg":"Instrument ID does not exist","data":[]}')
    h = handler()
    inst = h.instrument_for("BTC-USDT")
    with pytest.raises(MessageError, match="from the stream"):
        h.on_snapshot(inst, raw, 1)  # in-stream snapshots: REST bodies cannot chain onto seqId


# -- single hand-made frames on a real book -----------------------------------------------------------
@pytest.fixture
def warm(frames: list[tuple[int, bytes]]) -> tuple[OkxHandler, BookRecorder, list[bytes]]:
    """A handler fed up to the 20th BTC-USDT update; returns it with the remaining BTC-USDT pushes."""
    rec = BookRecorder()
    h = handler(rec)
    idx = [i for i, _, m in books_pushes(frames) if m["arg"]["instId"] == "BTC-USDT"]
    return h, rec, warm_up(h, frames, idx, 20)


def state(h: OkxHandler) -> tuple[Any, ...]:
    s = h.syncs["BTC/USDT"]
    return (*levels(s.book), s.book.state, s.book.update_id, s.diffs_applied, s.gaps, h.checksums_ok)


def test_corrupted_checksum_counts_a_failure_and_invalidates(
    warm: tuple[OkxHandler, BookRecorder, list[bytes]],
) -> None:
    h, rec, rest = warm
    m = json.loads(rest[0])
    m["data"][0]["checksum"] += 1
    calls = len(rec.calls)
    assert h.on_message(dumps(m), 1) == DEPTH
    sync = h.syncs["BTC/USDT"]
    assert (h.checksum_failures, sync.gaps, sync.book.valid, sync.book.state) == (1, 1, False, SYNCING)
    assert len(rec.calls) == calls and len(h.outbox) == 2
    assert rec.states[-1].state == INVALID and "checksum" in rec.states[-1].reason


@pytest.mark.parametrize(
    "bad",
    [
        lambda raw: raw[: len(raw) // 2],  # truncated JSON
        edit_frame("data/0/asks/0/0", float),  # a price as a JSON number
        edit_frame("data", lambda d: d[0]),  # data not a list
        edit_frame("data/0/bids", "x"),  # levels not a list
        edit_frame("data/0/asks/0", ["30000.1"]),  # a level without a size
        edit_frame("data/0/checksum", "abc"),  # checksum not a number
        edit_frame("action", "partial"),  # unknown action
        edit_frame("arg", None),  # no arg
        edit_frame("data", []),  # no entry
        lambda raw: b"[1,2,3]",
    ],
    ids=["truncated", "price-number", "data-object", "levels-string", "short-level", "checksum-string",
         "action", "no-arg", "empty-data", "array"],
)
def test_malformed_frames_raise_and_leave_the_book_unchanged(warm: tuple[OkxHandler, BookRecorder, list[bytes]],
                                                               bad: Any) -> None:
    h, rec, rest = warm
    before, calls = state(h), len(rec.calls)
    frame = bad(rest[0])
    with pytest.raises(MessageError):
        h.on_message(frame, 1)
    assert h.bad_messages == 1 and state(h) == before and len(rec.calls) == calls
    assert h.on_message(rest[0], 2) == DEPTH and h.checksum_failures == 0  # and the stream goes on


def test_level_with_a_non_numeric_size_is_rejected(warm: tuple[OkxHandler, BookRecorder, list[bytes]]) -> None:
    h, _, rest = warm
    before = state(h)
    m = json.loads(rest[0])
    m["data"][0]["bids"].append(["30000.1", "lots", "0", "1"])
    with pytest.raises(MessageError, match="BTC-USDT"):
        h.on_message(dumps(m), 1)
    assert state(h) == before


def test_events_pongs_and_unknown_channels(warm: tuple[OkxHandler, BookRecorder, list[bytes]]) -> None:
    h, _, _ = warm
    before = state(h)
    assert h.on_message(b"pong", 1) == OTHER
    assert h.on_message(b'{"event":"error","code":"60012","msg":"Invalid request"}', 1) == OTHER
    assert h.on_message(b'{"event":"notice","code":"64008","msg":"service upgrade"}', 1) == OTHER
    assert h.unknown_streams == 0
    candle = b'{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["1652459220000","30236","30240"]]}'
    books5 = b'{"arg":{"channel":"books5","instId":"BTC-USDT"},"data":[{"asks":[],"bids":[],"ts":"1"}]}'
    assert h.on_message(candle, 1) == OTHER and h.on_message(books5, 1) == OTHER
    assert h.unknown_streams == 2 and h.bad_messages == 0 and state(h) == before


def test_unknown_market_without_discover() -> None:
    h = handler(discover=False)
    with pytest.raises(UnknownInstrument, match="BTC-USDT"):
        h.on_message(b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[],'
                     b'"bids":[],"ts":"1","checksum":0}]}', 1)


# -- naming and the live side ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("native", "symbol"),
    [
        ("BTC-USDT", "BTC/USDT"),
        ("ETH-BTC", "ETH/BTC"),
        ("BTC-USDT-SWAP", "BTC/USDT:USDT"),
        ("BTC-USDC-SWAP", "BTC/USDC:USDC"),
        ("BTC-USD-SWAP", "BTC/USD:BTC"),
        ("BTC-USD-220527", "BTC/USD:BTC-220527"),
        ("ETH-USDT-241227", "ETH/USDT:USDT-241227"),
        ("BTC-USD-220527-30000-C", "BTC/USD:BTC-220527-30000-C"),
    ],
)
def test_unify(native: str, symbol: str) -> None:
    assert handler().unify(native) == symbol


@pytest.mark.parametrize("native", ["BTCUSDT", "BTC-", "BTC-USD-2205", "BTC-USD-SWAP-X"])
def test_unify_refuses(native: str) -> None:
    with pytest.raises(UnknownInstrument):
        handler().unify(native)


def test_live_description() -> None:
    h = handler()
    assert h.ws_url == "wss://ws.okx.com:8443/ws/v5/public" and not h.rest_snapshot
    assert h.ping == (25.0, "ping")
    cat = Catalog()
    insts = [cat.provisional("okx", f"C{i}/USDT", f"C{i}-USDT") for i in range(120)]
    msgs = [json.loads(m) for m in h.subscribe_messages(insts)]
    assert [len(m["args"]) for m in msgs] == [100, 100, 40]
    assert msgs[0]["op"] == "subscribe"
    assert msgs[0]["args"][:2] == [{"channel": "books", "instId": "C0-USDT"},
                                   {"channel": "trades", "instId": "C0-USDT"}]
    with pytest.raises(ValueError, match="not an OKX venue"):
        OkxHandler("binance", cat, lambda b, n: None)
