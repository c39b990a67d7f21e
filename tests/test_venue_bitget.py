"""BitgetHandler on real Bitget messages.

- ``exchange-captures/BITGET.ws.1.0`` (cryptofeed, April 2022) is the legacy v1 spot stream
  (``instType: sp``): ``books`` (snapshot + updates, CRC32 ``checksum``, no ``seq``), ``ticker``,
  ``trade`` and ``candle1m`` for 8 USDT pairs. The same checksum rule as v2 verifies on every
  push, so the handler reads it. No ``.http`` file (Bitget books start from the stream).
- Independent check: a plain ``json`` + ``dict`` rebuild in this file (no cryptoarb code) equals
  the handler's full books after every push, and its own CRC32 of the top 25 levels equals
  the ``checksum`` Bitget sent with every push.
- Current v2 format (``instType: SPOT``, ``seq``): no v2 fixture is shipped, so the real pushes
  are rewritten into it (same levels and checksums, ``seq`` added) for ordering, gap and
  resync cases.
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
from cryptoarb.core.instruments import Kind
from cryptoarb.venues.base import DEPTH, OTHER, QUOTE, SNAPSHOT, TRADE, MessageError
from cryptoarb.venues.bitget import BitgetHandler
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from tests.venuekit import BookRecorder, dumps, edit_frame, levels, stream_frames, warm_up

pytestmark = pytest.mark.realdata

PAIRS = ("CULTUSDT", "EOSUSDT", "VVSUSDT", "GOGUSDT", "AVAXUSDT", "STGUSDT", "HOTUSDT", "SUNUSDT")


def symbol(native: str) -> str:
    return native[:-4] + "/USDT"


# -- the independent reference ----------------------------------------------------------------
def ref_crc(bids: list[list[str]], asks: list[list[str]]) -> int:
    """Bitget's documented checksum: bid1:ask1:bid2:ask2... (price:size) over 25 levels, signed CRC32."""
    parts = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 2**32 if crc >= 2**31 else crc


class Ref:
    def __init__(self) -> None:
        self.bids: dict[Decimal, list[str]] = {}
        self.asks: dict[Decimal, list[str]] = {}

    def feed(self, push: dict[str, Any], snapshot: bool) -> None:
        if snapshot:
            self.bids, self.asks = {}, {}
        for side, lvls in ((self.bids, push["bids"]), (self.asks, push["asks"])):
            for p, q in lvls:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = [p, q]

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
    return stream_frames(shared_data_root, "BITGET", "Bitget")


def is_books(m: dict[str, Any]) -> bool:
    return m.get("arg", {}).get("channel") == "books" and "data" in m


def handler(rec: BookRecorder | None = None, catalog: Catalog | None = None, discover: bool = True) -> BitgetHandler:
    rec = rec or BookRecorder()
    return BitgetHandler("bitget", catalog or Catalog(), rec.on_book, rec.events.append, rec.requests.append,
                         rec.states.append, discover=discover)


# -- the real (v1) capture -----------------------------------------------------------------------
def test_capture_is_the_v1_spot_stream(frames: list[tuple[int, bytes]]) -> None:
    kinds: Counter[tuple[str, str]] = Counter()
    for _, raw in frames:
        m = json.loads(raw)
        assert m["arg"]["instType"] == "sp"
        kinds[(m.get("event") or m["arg"]["channel"], m.get("action", ""))] += 1
    assert kinds == {("subscribe", ""): 32, ("books", "snapshot"): 8, ("books", "update"): 435,
                     ("ticker", "snapshot"): 128, ("trade", "snapshot"): 8, ("trade", "update"): 30,
                     ("candle1m", "snapshot"): 8, ("candle1m", "update"): 35}
    books = [json.loads(raw)["data"][0] for _, raw in frames if b'"channel":"books"' in raw and b'"data"' in raw]
    assert len(books) == 8 + 435 and all("seq" not in d and d["checksum"] != 0 for d in books)


def test_replay_every_book_valid_and_every_checksum_verified(frames: list[tuple[int, bytes]]) -> None:
    rec = BookRecorder()
    h = handler(rec)
    kinds: Counter[int] = Counter()
    for ns, raw in frames:
        kinds[h.on_message(raw, ns)] += 1
    assert kinds == {SNAPSHOT: 8, DEPTH: 435, QUOTE: 128, TRADE: 38, OTHER: 32 + 43}
    assert sorted(h.syncs) == sorted(symbol(n) for n in PAIRS)
    for sync in h.syncs.values():
        assert sync.book.state == VALID and sync.book.valid and sync.instrument.kind is Kind.SPOT
        assert sync.gaps == 0 and sync.resyncs == 0 and sync.dropped_before_snapshot == 0
    assert (h.checksums_ok, h.checksum_failures) == (443, 0)
    assert (h.bad_messages, h.unknown_streams, h.outbox, rec.requests) == (0, 43, [], [])  # 43 candle1m
    assert len(rec.calls) == 443 and all(valid and state == VALID for _, valid, state in rec.calls)
    assert [s.state for s in rec.states] == [VALID] * 8
    trades = [e for e in rec.events if isinstance(e, Trade)]
    assert len(trades) == 30  # the live ones; the 8 snapshot lists are history
    assert sum(isinstance(e, Quote) for e in rec.events) == 128
    t = trades[0]
    assert (t.key, t.price, t.qty, t.side, t.exchange_ns) == (
        "bitget HOT/USDT", 0.005613, 890.8, "buy", 1649290077777 * 1_000_000)


def test_reference_rebuild_equals_the_books_after_every_push(frames: list[tuple[int, bytes]]) -> None:
    h = handler()
    refs: dict[str, Ref] = {}
    verified = 0
    for i, (ns, raw) in enumerate(frames):
        h.on_message(raw, ns)
        m = json.loads(raw)
        if not is_books(m):
            continue
        native = m["arg"]["instId"]
        ref = refs.setdefault(native, Ref())
        ref.feed(m["data"][0], m["action"] == "snapshot")
        assert ref.crc() == m["data"][0]["checksum"]
        verified += 1
        assert levels(h.syncs[symbol(native)].book) == ref.floats(), f"frame {i} {native}"
    assert verified == 443


def test_lost_v1_update_is_caught_by_the_checksum(frames: list[tuple[int, bytes]]) -> None:
    rec = BookRecorder()
    h = handler(rec)
    idx = [i for i, (_, raw) in enumerate(frames) if b'"books","instId":"EOSUSDT"},"data"' in raw]
    for i, (ns, raw) in enumerate(frames):
        if i == idx[20]:
            continue
        h.on_message(raw, ns)
        if i == idx[21]:
            sync = h.syncs["EOS/USDT"]
            assert (h.checksum_failures, sync.gaps, sync.book.state) == (1, 1, SYNCING)
            assert rec.requests == [sync.instrument]
            arg = {"instType": "SP", "channel": "books", "instId": "EOSUSDT"}  # v1 asks v1 again
            assert [json.loads(x) for x in h.outbox] == [{"op": "unsubscribe", "args": [arg]},
                                                          {"op": "subscribe", "args": [arg]}]
            calls = len(rec.calls)
    sync = h.syncs["EOS/USDT"]
    assert not sync.book.valid and sync.dropped_before_snapshot == len(idx) - 22
    assert all(k != "bitget EOS/USDT" for k, _, _ in rec.calls[calls:])
    assert [s.state for s in rec.states if s.key == "bitget EOS/USDT"] == [VALID, INVALID]


# -- current v2 format ------------------------------------------------------------------------------
def as_v2(frames: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The capture rewritten as v2 pushes: instType SPOT, a ``seq`` stepping irregularly."""
    out = []
    seq = 5000
    for ns, raw in frames:
        m = json.loads(raw)
        m["arg"]["instType"] = "SPOT"
        if is_books(m):
            seq += 1 + seq % 3
            m["data"][0]["seq"] = seq
            m["ts"] = int(m["data"][0]["ts"])
        out.append((ns, dumps(m)))
    return out


def test_v2_format_builds_the_same_books(frames: list[tuple[int, bytes]]) -> None:
    v1 = handler()
    for ns, raw in frames:
        v1.on_message(raw, ns)
    h = handler()
    for ns, raw in as_v2(frames):
        h.on_message(raw, ns)
    assert (h.checksums_ok, h.checksum_failures) == (443, 0)
    for sym, sync in h.syncs.items():
        assert sync.gaps == 0 and sync.book.valid
        assert levels(sync.book) == levels(v1.syncs[sym].book)
        assert sync.book.update_id == sync.last_id > 5000


def test_v2_out_of_order_seq_invalidates_then_a_fresh_snapshot_resyncs(frames: list[tuple[int, bytes]]) -> None:
    stream = as_v2(frames)
    rec = BookRecorder()
    h = handler(rec)
    ref = Ref()
    idx = [k for k, (_, raw) in enumerate(stream) if b'"books","instId":"AVAXUSDT"},"data"' in raw]
    late, resnap = idx[10], idx[30]
    arg = {"instType": "SPOT", "channel": "books", "instId": "AVAXUSDT"}
    calls = 0

    def avax_calls() -> int:
        return sum(c[0] == "bitget AVAX/USDT" for c in rec.calls)

    for k, (ns, raw) in enumerate(stream):
        m = json.loads(raw)
        if k in idx:
            ref.feed(m["data"][0], m["action"] == "snapshot")
        if k == resnap:
            bids, asks = ref.sorted()
            snap = {"action": "snapshot", "arg": arg, "data": [{"asks": asks, "bids": bids, "checksum": 0,
                                                                 "seq": m["data"][0]["seq"], "ts": "1"}]}
            assert h.on_message(dumps(snap), ns) == SNAPSHOT  # checksum 0: "not provided" on a snapshot
            assert h.syncs["AVAX/USDT"].book.valid and avax_calls() == calls + 1
            continue
        h.on_message(raw, ns)
        if k == late:  # an older push delivered now: out of order
            old = json.loads(stream[idx[5]][1])
            h.on_message(dumps(old), ns)
            sync = h.syncs["AVAX/USDT"]
            assert sync.gaps == 1 and sync.book.state == SYNCING and h.checksum_failures == 0
            assert rec.states[-1].state == INVALID and "out of order" in rec.states[-1].reason
            assert [json.loads(x) for x in h.outbox] == [{"op": "unsubscribe", "args": [arg]},
                                                          {"op": "subscribe", "args": [arg]}]
            calls = avax_calls()
        if late < k < resnap:
            assert avax_calls() == calls
    sync = h.syncs["AVAX/USDT"]
    assert sync.book.valid and sync.gaps == 1 and sync.dropped_before_snapshot == 30 - 10 - 1
    assert levels(sync.book) == ref.floats()
    assert h.checksum_failures == 0 and all(valid for _, valid, _ in rec.calls)


def test_pseq_must_chain_when_present(frames: list[tuple[int, bytes]]) -> None:
    stream = as_v2(frames)
    idx = [k for k, (_, raw) in enumerate(stream) if b'"books","instId":"SUNUSDT"},"data"' in raw]
    h = handler()
    for ns, raw in stream[: idx[3]]:
        h.on_message(raw, ns)
    sync = h.syncs["SUN/USDT"]
    m = json.loads(stream[idx[3]][1])
    m["data"][0]["pseq"] = sync.last_id
    h.on_message(dumps(m), 1)
    assert sync.gaps == 0 and sync.book.valid
    m = json.loads(stream[idx[4]][1])
    m["data"][0]["pseq"] = sync.last_id - 1  # names a push we never saw
    h.on_message(dumps(m), 2)
    assert sync.gaps == 1 and not sync.book.valid


# -- single hand-made frames on a real book ----------------------------------------------------------
@pytest.fixture
def warm(frames: list[tuple[int, bytes]]) -> tuple[BitgetHandler, BookRecorder, list[bytes]]:
    rec = BookRecorder()
    h = handler(rec)
    idx = [i for i, (_, raw) in enumerate(frames) if b'"books","instId":"HOTUSDT"},"data"' in raw]
    return h, rec, warm_up(h, frames, idx, 10)


def state(h: BitgetHandler) -> tuple[Any, ...]:
    s = h.syncs["HOT/USDT"]
    return (*levels(s.book), s.book.state, s.book.update_id, s.diffs_applied, s.gaps, h.checksums_ok)


def test_corrupted_checksum_counts_a_failure_and_invalidates(
    warm: tuple[BitgetHandler, BookRecorder, list[bytes]],
) -> None:
    h, rec, rest = warm
    m = json.loads(rest[0])
    m["data"][0]["checksum"] ^= 0x10
    calls = len(rec.calls)
    assert h.on_message(dumps(m), 1) == DEPTH
    sync = h.syncs["HOT/USDT"]
    assert (h.checksum_failures, sync.gaps, sync.book.valid, sync.book.state) == (1, 1, False, SYNCING)
    assert len(rec.calls) == calls and len(h.outbox) == 2
    assert "checksum" in rec.states[-1].reason


@pytest.mark.parametrize(
    "bad",
    [
        lambda raw: raw[: len(raw) // 2],
        edit_frame("data/0/asks/0/1", float),  # a size as a JSON number
        edit_frame("data", lambda d: d[0]),
        edit_frame("data/0/bids", {"0.0056": "1"}),
        edit_frame("data/0/asks/0", []),
        edit_frame("data/0/bids/0/0", "zero"),
        edit_frame("action", "partial"),
        edit_frame("arg", None),
        edit_frame("arg/instType", "XX"),
        lambda raw: b'"pong"',
    ],
    ids=["truncated", "size-number", "data-object", "levels-object", "empty-level", "non-numeric-price",
         "action", "no-arg", "inst-type", "string"],
)
def test_malformed_frames_raise_and_leave_the_book_unchanged(warm: tuple[BitgetHandler, BookRecorder, list[bytes]],
                                                               bad: Any) -> None:
    h, rec, rest = warm
    before, calls = state(h), len(rec.calls)
    with pytest.raises(MessageError):
        h.on_message(bad(rest[0]), 1)
    assert h.bad_messages == 1 and state(h) == before and len(rec.calls) == calls
    assert h.on_message(rest[0], 2) == DEPTH and h.checksum_failures == 0


def test_events_pongs_and_unknown_channels(warm: tuple[BitgetHandler, BookRecorder, list[bytes]]) -> None:
    h, _, _ = warm
    before, unknown = state(h), h.unknown_streams
    assert h.on_message(b"pong", 1) == OTHER
    assert h.on_message(b'{"event":"error","code":30001,"msg":"instType:SP,channel:books5 doesn\'t exist"}', 1) == OTHER
    depth = b'{"action":"snapshot","arg":{"instType":"SPOT","channel":"books5","instId":"HOTUSDT"},"data":[{}]}'
    assert h.on_message(depth, 1) == OTHER
    assert h.unknown_streams == unknown + 1 and h.bad_messages == 0 and state(h) == before


# -- naming and routing -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("native", "sym"),
    [
        ("BTCUSDT", "BTC/USDT"),
        ("BTCUSDT_SPBL", "BTC/USDT"),
        ("ETHBTC", "ETH/BTC"),
        ("BTCUSDT_UMCBL", "BTC/USDT:USDT"),
        ("BTCUSD_DMCBL", "BTC/USD:BTC"),
        ("BTCPERP_CMCBL", "BTC/USDC:USDC"),
        ("ETHUSDC_CMCBL", "ETH/USDC:USDC"),
    ],
)
def test_unify(native: str, sym: str) -> None:
    assert handler().unify(native) == sym


@pytest.mark.parametrize("native", ["USDT", "BTCXYZ", "BTCUSDT_DMCBL", "BTCUSD_UMCBL"])
def test_unify_refuses(native: str) -> None:
    with pytest.raises(UnknownInstrument):
        handler().unify(native)


def snapshot_frame(inst_type: str, inst_id: str, bid: str, ask: str) -> bytes:
    bids, asks = [[bid, "1"]], [[ask, "2"]]
    return dumps({"action": "snapshot", "arg": {"instType": inst_type, "channel": "books", "instId": inst_id},
                  "data": [{"asks": asks, "bids": bids, "checksum": ref_crc(bids, asks), "seq": 1, "ts": "1"}]})


def test_spot_and_perpetual_of_one_id_are_two_books() -> None:
    h = handler()
    h.on_message(snapshot_frame("SPOT", "BTCUSDT", "100.0", "100.5"), 1)
    h.on_message(snapshot_frame("USDT-FUTURES", "BTCUSDT", "101.0", "101.5"), 2)
    h.on_message(snapshot_frame("COIN-FUTURES", "BTCUSD", "99", "99.5"), 3)
    assert {s: (x.book.bid, x.instrument.kind) for s, x in h.syncs.items()} == {
        "BTC/USDT": (100.0, Kind.SPOT), "BTC/USDT:USDT": (101.0, Kind.LINEAR), "BTC/USD:BTC": (99.0, Kind.INVERSE)}
    assert h.checksums_ok == 3
    # a catalog holding both under the same venue id: each stream finds its own kind
    cat = Catalog([h.syncs["BTC/USDT:USDT"].instrument, h.syncs["BTC/USDT"].instrument])
    h2 = handler(catalog=cat, discover=False)
    h2.on_message(snapshot_frame("USDT-FUTURES", "BTCUSDT", "101.0", "101.5"), 1)
    h2.on_message(snapshot_frame("SPOT", "BTCUSDT", "100.0", "100.5"), 1)
    assert sorted(h2.syncs) == ["BTC/USDT", "BTC/USDT:USDT"]
    with pytest.raises(UnknownInstrument):
        h2.on_message(snapshot_frame("SPOT", "ETHUSDT", "1", "2"), 1)


def test_live_description() -> None:
    h = handler()
    assert h.ws_url == "wss://ws.bitget.com/v2/ws/public" and not h.rest_snapshot
    assert h.ping == (30.0, "ping")
    cat = Catalog()
    insts = [cat.provisional("bitget", f"C{i}/USDT", f"C{i}USDT") for i in range(30)]
    insts.append(cat.provisional("bitget", "BTC/USDT:USDT", "BTCUSDT_UMCBL"))
    insts.append(cat.provisional("bitget", "BTC/USD:BTC", "BTCUSD_DMCBL"))
    msgs = [json.loads(m) for m in h.subscribe_messages(insts)]
    assert [len(m["args"]) for m in msgs] == [48, 16]
    assert all(len(json.dumps(m)) < 4096 for m in msgs)
    assert msgs[0]["args"][:2] == [{"instType": "SPOT", "channel": "books", "instId": "C0USDT"},
                                   {"instType": "SPOT", "channel": "trade", "instId": "C0USDT"}]
    assert msgs[1]["args"][-4::2] == [{"instType": "USDT-FUTURES", "channel": "books", "instId": "BTCUSDT"},
                                      {"instType": "COIN-FUTURES", "channel": "books", "instId": "BTCUSD"}]
    with pytest.raises(ValueError, match="not a Bitget venue"):
        BitgetHandler("okx", cat, lambda b, n: None)


def test_coin_margined_contracts_are_base_sized_and_accepted_for_live_runs() -> None:
    """ccxt describes Bitget's COIN-FUTURES as inverse with contractSize 1, but their sizes are in
    the base coin (ccxt's own position parsing reads the size as the base amount): a Bitget inverse
    instrument is base-sized by the venue's rule and a live run takes it; one explicitly modelled
    as quote-valued contracts would be misstated by a factor of the price and is refused."""
    from cryptoarb.core.instruments import Fees, Instrument

    spot = Instrument("bitget", "BTC/USDT", "BTC", "USDT", Kind.SPOT, 0.01, 1e-6, 0.0, 1.0, Fees(0.001), "BTCUSDT")
    perp = Instrument("bitget", "BTC/USDT:USDT", "BTC", "USDT", Kind.LINEAR, 0.1, 0.001, 0.0, 1.0, Fees(0.0006),
                      "BTCUSDT")
    coin = Instrument("bitget", "BTC/USD:BTC", "BTC", "USD", Kind.INVERSE, 0.1, 0.001, 0.0, 1.0, Fees(0.0006),
                      "BTCUSD")
    assert coin.base_sized and not coin.quote_contracts and not perp.base_sized
    assert coin.base_qty(0.25, 60_000.0) == 0.25  # 0.25 BTC at any price, not 0.25 USD / price
    BitgetHandler.check_instruments([spot, perp, coin])
    misread = Instrument("bitget", "BTC/USD:BTC", "BTC", "USD", Kind.INVERSE, 0.1, 0.001, 0.0, 1.0, Fees(0.0006),
                         "BTCUSD", base_sized=False)
    with pytest.raises(ValueError, match=r"BTC/USD:BTC\) are sized in the base coin"):
        BitgetHandler.check_instruments([spot, misread])
