"""KrakenHandler (spot) and KrakenFuturesHandler on real Kraken data.

The cryptofeed capture ``KRAKEN.ws.50.0`` (2021) is WebSocket v1 ``book-1000`` for 10 pairs:
10 snapshots and 4,269 updates, each update carrying Kraken's CRC32 of the top 10 levels.

Independent checks: verifying Kraken's checksum on every update is itself the independent
check of the top of each book, and it is done twice, by the handler and by ``RefKraken``
below (plain ``json``, string prices, no cryptoarb code). ``RefKraken`` also rebuilds the full
depth (truncated to the subscribed depth, as Kraken documents), compared level by level with
the handler's books. The v2 fixtures (``exchange-fixtures/kraken__ws_book_*``) are the current
format; their shipped checksums are synthetic (they match no reading of their levels, see
``test_v2_fixture_checksums_as_shipped_are_rejected``), so the tests re-stamp them with the
CRC32 computed here from the raw JSON numbers.
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
from cryptoarb.core.events import BookStateChange
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, MessageError
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from cryptoarb.venues.kraken import KrakenHandler, parse_rest_depth
from cryptoarb.venues.krakenfutures import KrakenFuturesHandler, parse_rest_orderbook
from tests.venuekit import assert_all_rejected, capture_frames, levels

pytestmark = pytest.mark.realdata

CAPTURE = "KRAKEN.ws.50.0"
PAIRS = ["WAVES/EUR", "XMR/USD", "KSM/XBT", "GRT/ETH", "SC/EUR", "ETH/CHF", "OCEAN/XBT", "OMG/USD", "XBT/CHF",
         "ADA/XBT"]
UPDATES = 4269  # book updates in the capture, each with a checksum


def fixture(root: Path, name: str) -> bytes:
    return (root / "exchange-fixtures" / name).read_bytes()


# -- the independent reference ------------------------------------------------------------
def tok(s: str) -> str:
    return s.replace(".", "").lstrip("0")


def crc(asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> int:
    """Kraken's documented checksum over level strings, asks low->high then bids high->low."""
    return zlib.crc32("".join(tok(p) + tok(q) for p, q in asks[:10] + bids[:10]).encode())


class RefKraken:
    """v1 books from the documented rules, with strings as sent: plainly, not fast."""

    def __init__(self) -> None:
        self.books: dict[str, dict[str, dict[str, str]]] = {}
        self.checked = 0
        self.failed = 0
        self.updates = 0

    def feed(self, raw: bytes) -> None:
        msg = json.loads(raw)
        if not isinstance(msg, list) or not str(msg[-2]).startswith("book-"):
            return
        pair, depth, parts = msg[-1], int(msg[-2][5:]), msg[1:-2]
        if "as" in parts[0] or "bs" in parts[0]:
            self.books[pair] = {"a": {lv[0]: lv[1] for lv in parts[0].get("as", [])},
                                "b": {lv[0]: lv[1] for lv in parts[0].get("bs", [])}}
            return
        self.updates += 1
        book = self.books[pair]
        c = None
        for part in parts:
            for side in ("a", "b"):
                for lv in part.get(side, []):
                    if Decimal(lv[1]) == 0:
                        book[side].pop(lv[0], None)
                    else:
                        book[side][lv[0]] = lv[1]
            c = part.get("c", c)
        for side, worst in (("a", max), ("b", min)):
            while len(book[side]) > depth:
                del book[side][worst(book[side], key=Decimal)]
        if c is not None:
            self.checked += 1
            if str(self.crc(pair)) != c:
                self.failed += 1

    def strings(self, pair: str, side: str) -> list[tuple[str, str]]:
        levels = self.books[pair][side]
        return [(p, levels[p]) for p in sorted(levels, key=Decimal, reverse=side == "b")]

    def levels(self, pair: str, side: str) -> list[tuple[float, float]]:
        return [(float(p), float(q)) for p, q in self.strings(pair, side)]

    def crc(self, pair: str) -> int:
        return crc(self.strings(pair, "a"), self.strings(pair, "b"))

    def snapshot_frame(self, pair: str, chan: int = 464) -> bytes:
        """A v1 snapshot of the current reference book, as Kraken would send it."""
        def side(s: str) -> list[list[str]]:
            return [[p, q, "1618678140.000000"] for p, q in self.strings(pair, s)]
        return json.dumps([chan, {"as": side("a"), "bs": side("b")}, "book-1000", pair]).encode()


# -- driving the handler ------------------------------------------------------------------
@dataclass
class Recorder:
    calls: list[tuple[str, bool, int]] = field(default_factory=list)
    states: list[BookStateChange] = field(default_factory=list)
    requests: list[Instrument] = field(default_factory=list)

    def on_book(self, book: OrderBook, local_ns: int) -> None:
        self.calls.append((book.instrument.symbol, book.valid, book.state))


def new_kraken(discover: bool = True, catalog: Catalog | None = None) -> tuple[KrakenHandler, Recorder]:
    rec = Recorder()
    h = KrakenHandler("kraken", catalog or Catalog(), rec.on_book, request_snapshot=rec.requests.append,
                      on_state=rec.states.append, discover=discover)
    return h, rec


def unified(pair: str) -> str:
    return pair.replace("XBT", "BTC")


@dataclass
class Replay:
    frames: list[tuple[int, bytes]]
    handler: KrakenHandler
    rec: Recorder
    ref: RefKraken
    kinds: dict[int, int]
    mismatches: list[str]
    checkpoints: int


@pytest.fixture(scope="module")
def frames(shared_data_root: Path) -> list[tuple[int, bytes]]:
    return capture_frames(shared_data_root, CAPTURE)


@pytest.fixture(scope="module")
def replay(frames: list[tuple[int, bytes]]) -> Replay:
    h, rec = new_kraken()
    ref = RefKraken()
    kinds: dict[int, int] = {}
    mismatches: list[str] = []
    checkpoints = 0
    for i, (ns, raw) in enumerate(frames):
        ref.feed(raw)
        kind = h.on_message(raw, ns)
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == DEPTH and (ref.updates % 400 == 0 or i == len(frames) - 1):
            checkpoints += 1
            for pair in ref.books:
                got = levels(h.syncs[unified(pair)].book)
                if got != (ref.levels(pair, "b"), ref.levels(pair, "a")) and len(mismatches) < 5:
                    mismatches.append(f"frame {i} {pair}")
    return Replay(frames, h, rec, ref, kinds, mismatches, checkpoints)


# -- the whole real capture ------------------------------------------------------------------
def test_capture_every_book_valid_every_checksum_verified(replay: Replay) -> None:
    h = replay.handler
    assert sorted(h.syncs) == sorted(unified(p) for p in PAIRS)
    for symbol, sync in h.syncs.items():
        assert sync.book.state == VALID and sync.book.valid, symbol
        assert sync.counters()["gaps"] == 0 and sync.resyncs == 0
        assert sync.dropped_before_snapshot == 0
    assert h.checksums_ok == UPDATES and h.checksum_failures == 0
    assert replay.ref.checked == UPDATES and replay.ref.failed == 0  # the reference agrees
    assert sum(s.diffs_applied for s in h.syncs.values()) == UPDATES
    assert h.bad_messages == 0 and h.unknown_streams == 0 and h.outbox == []
    assert set(h.catalog.provisional_keys) == {f"kraken {unified(p)}" for p in PAIRS}
    assert all(h.syncs[unified(p)].instrument.exchange_symbol == p for p in PAIRS)


def test_capture_full_books_equal_the_reference(replay: Replay) -> None:
    assert replay.mismatches == []
    assert replay.checkpoints >= UPDATES // 400
    for pair in PAIRS:
        book = replay.handler.syncs[unified(pair)].book
        assert levels(book) == (replay.ref.levels(pair, "b"), replay.ref.levels(pair, "a")), pair
        assert book.depth() == (len(replay.ref.books[pair]["b"]), len(replay.ref.books[pair]["a"]))


def test_capture_kinds_and_callbacks(replay: Replay) -> None:
    assert replay.kinds == {SNAPSHOT: 10, DEPTH: UPDATES, OTHER: len(replay.frames) - 10 - UPDATES}
    calls = replay.rec.calls
    assert len(calls) == 10 + UPDATES  # the snapshots, then every verified update
    assert all(valid and state == VALID for _, valid, state in calls)
    assert [s.state for s in replay.rec.states] == [VALID] * 10
    assert replay.rec.requests == []
    book = replay.handler.syncs["BTC/CHF"].book
    last = json.loads(next(raw for _, raw in reversed(replay.frames) if raw.endswith(b'"XBT/CHF"]')))
    newest = max(Decimal(lv[2]) for part in last[1:-2] for side in ("a", "b") for lv in part.get(side, []))
    assert book.exchange_ns == int(newest * 10**9)  # the update's newest level time
    assert book.update_id == 289  # no sequence on Kraken: updates applied


# -- faults on the real stream ---------------------------------------------------------------
def _pair_updates(frames: list[tuple[int, bytes]], pair: str) -> list[int]:
    return [i for i, (_, raw) in enumerate(frames) if raw.endswith(f'"{pair}"]'.encode()) and b'"c":' in raw]


def _lost_update(frames: list[tuple[int, bytes]], pair: str) -> int:
    """The index of an update of ``pair`` whose loss the next update's checksum exposes."""
    updates = _pair_updates(frames, pair)
    for k in updates[len(updates) // 3 :]:
        ref = RefKraken()
        for i, (_, raw) in enumerate(frames[: updates[updates.index(k) + 1] + 1]):
            if i != k:
                ref.feed(raw)
        if ref.failed:
            return k
    raise AssertionError("no update of {pair} changes the top 10")


def test_lost_update_is_a_gap_then_a_fresh_snapshot_resyncs(frames: list[tuple[int, bytes]]) -> None:
    pair = "XBT/CHF"
    lost = _lost_update(frames, pair)
    updates = _pair_updates(frames, pair)
    expose = updates[updates.index(lost) + 1]
    resnap_at = updates[updates.index(lost) + 20]
    h, rec = new_kraken()
    ref = RefKraken()
    sync = None
    for i, (ns, raw) in enumerate(frames):
        ref.feed(raw)
        if i == lost:
            continue
        if i == resnap_at:  # the re-subscription's snapshot, built from the true book
            assert h.on_message(ref.snapshot_frame(pair), ns) == SNAPSHOT
            assert sync is not None and sync.book.valid
            assert levels(sync.book) == (ref.levels(pair, "b"), ref.levels(pair, "a"))
        h.on_message(raw, ns)
        sync = h.syncs.get("BTC/CHF", sync)
        if i == expose:
            assert sync is not None
            assert (h.checksum_failures, sync.gaps, sync.resyncs) == (1, 1, 1)
            assert sync.book.state == SYNCING and not sync.book.valid
            assert [s.state for s in rec.states if s.key == "kraken BTC/CHF"] == [VALID, INVALID]
            assert "checksum" in rec.states[-1].reason
            assert [json.loads(m) for m in h.outbox] == [
                {"event": e, "pair": ["XBT/CHF"], "subscription": {"name": "book", "depth": 1000}}
                for e in ("unsubscribe", "subscribe")
            ]
            assert rec.requests == [sync.instrument]
            calls_at_gap = len(rec.calls)
        if expose < i < resnap_at:
            assert [c for c in rec.calls[calls_at_gap:] if c[0] == "BTC/CHF"] == [], "on_book while invalid"
    assert sync is not None and sync.book.valid and sync.gaps == 1
    assert sync.dropped_before_snapshot == 18  # the updates between the gap and the snapshot
    assert h.checksum_failures == 1 and h.checksums_ok == UPDATES - 1 - 1 - 18
    assert levels(sync.book) == (ref.levels(pair, "b"), ref.levels(pair, "a"))
    assert all(s.book.valid and s.gaps == 0 for k, s in h.syncs.items() if k != "BTC/CHF")
    assert all(valid for _, valid, _ in rec.calls)


def test_corrupted_checksum_invalidates_the_book(frames: list[tuple[int, bytes]]) -> None:
    updates = _pair_updates(frames, "OMG/USD")
    h, rec = new_kraken()
    for ns, raw in frames[: updates[100]]:
        h.on_message(raw, ns)
    sync = h.syncs["OMG/USD"]
    assert sync.book.valid
    msg = json.loads(frames[updates[100]][1])
    part = next(p for p in msg[1:-2] if "c" in p)
    part["c"] = str((int(part["c"]) + 1) % 2**32)
    calls = len(rec.calls)
    assert h.on_message(json.dumps(msg).encode(), 1) == DEPTH
    assert (h.checksum_failures, sync.gaps) == (1, 1)
    assert not sync.book.valid and sync.book.state == SYNCING and len(rec.calls) == calls
    assert len(h.outbox) == 2 and '"pair":["OMG/USD"]' in h.outbox[1]


def _warm(frames: list[tuple[int, bytes]], upto: int) -> KrakenHandler:
    h, _ = new_kraken()
    for ns, raw in frames[:upto]:
        h.on_message(raw, ns)
    return h


def _state(h: KrakenHandler) -> list[Any]:
    return [(k, levels(s.book), s.book.state, s.diffs_applied, s.gaps) for k, s in sorted(h.syncs.items())] + [
        h.checksums_ok, h.checksum_failures, list(h.outbox)]


def test_malformed_frames_raise_and_leave_books_unchanged(frames: list[tuple[int, bytes]]) -> None:
    updates = _pair_updates(frames, "XMR/USD")
    h = _warm(frames, updates[50])
    raw = frames[updates[50]][1]
    msg = json.loads(raw)
    side = "a" if "a" in msg[1] else "b"
    cases = {
        "truncated": raw[: len(raw) // 2],
        "not JSON": b"hello",
        "empty": b"",
        "too short": b'[992,{"a":[]},"book-1000"]',
        "price is a number": json.dumps([992, {side: [[354.8, "1.0", "1.0"]], "c": "1"}, *msg[-2:]]).encode(),
        "price not numeric": json.dumps([992, {side: [["abc", "1.0", "1.0"]], "c": "1"}, *msg[-2:]]).encode(),
        "level of one string": json.dumps([992, {side: [["354.8"]], "c": "1"}, *msg[-2:]]).encode(),
        "checksum not a number": json.dumps([992, {side: msg[1][side], "c": "x"}, *msg[-2:]]).encode(),
        "bad timestamp": json.dumps([992, {side: [["354.8", "1.0", "x.y"]], "c": "1"}, *msg[-2:]]).encode(),
        "depth not a number": json.dumps([992, msg[1], "book-x", "XMR/USD"]).encode(),
        "object without type": b'{"foo":1}',
        "v2 price is a string": b'{"channel":"book","type":"update","data":[{"symbol":"XMR/USD",'
                                b'"bids":[{"price":"354.8","qty":1.0}],"asks":[],"checksum":1}]}',
        "v2 qty missing": b'{"channel":"book","type":"update","data":[{"symbol":"XMR/USD",'
                          b'"bids":[{"price":354.8}],"asks":[],"checksum":1}]}',
        "v2 data not a list": b'{"channel":"book","type":"update","data":{"symbol":"XMR/USD"}}',
        "v2 unknown type": b'{"channel":"book","type":"delta","data":[{"symbol":"XMR/USD"}]}',
        "v2 bad timestamp": b'{"channel":"book","type":"update","data":[{"symbol":"XMR/USD",'
                            b'"bids":[],"asks":[],"checksum":1,"timestamp":"yesterday"}]}',
    }
    before = _state(h)
    assert_all_rejected(h, cases, _state)
    assert h.on_message(raw, 2) == DEPTH  # the genuine frame still applies and verifies
    assert h.checksums_ok == before[-3] + 1 and h.checksum_failures == 0


def test_unknown_channels_are_counted_and_skipped(frames: list[tuple[int, bytes]]) -> None:
    h = _warm(frames, 200)
    before = _state(h)
    trade = b'[337,[["5541.20000","0.15850568","1534614057.321597","s","l",""]],"trade","XBT/USD"]'
    assert h.on_message(trade, 1) == OTHER
    assert h.on_message(b'[1,{"a":"1"},"spread","XBT/USD"]', 1) == OTHER
    assert h.on_message(b'{"channel":"ohlc","type":"update","data":[]}', 1) == OTHER
    assert h.unknown_streams == 3
    for known in (b'{"event":"heartbeat"}', b'{"channel":"heartbeat"}', b'{"method":"pong","req_id":1}',
                  b'{"channel":"status","type":"update","data":[{"system":"online"}]}'):
        assert h.on_message(known, 1) == OTHER
    assert h.unknown_streams == 3 and h.bad_messages == 0
    assert _state(h) == before


def test_unknown_pair_without_discover_raises(frames: list[tuple[int, bytes]]) -> None:
    h, _ = new_kraken(discover=False)
    snap = next(raw for _, raw in frames if raw.startswith(b"[464,"))
    with pytest.raises(UnknownInstrument, match="XBT/CHF"):
        h.on_message(snap, 1)
    assert h.syncs == {}


# -- the current format (v2) -----------------------------------------------------------------
def _v2_levels(raw: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[str, Any]]:
    item = json.loads(raw, parse_float=str, parse_int=str)["data"][0]
    return ([(lv["price"], lv["qty"]) for lv in item["bids"]], [(lv["price"], lv["qty"]) for lv in item["asks"]],
            item)


def _restamp(raw: bytes, checksum: int) -> bytes:
    return re.sub(rb'"checksum":\s*\d+', b'"checksum": %d' % checksum, raw)


def test_v2_fixture_checksums_as_shipped_are_rejected(shared_data_root: Path) -> None:
    snap = fixture(shared_data_root, "kraken__ws_book_snapshot.json")
    bids, asks, item = _v2_levels(snap)
    shipped = int(item["checksum"])
    assert shipped != crc(asks, bids)
    for pp in range(9):  # nor with the levels re-formatted to any fixed precision: synthetic
        for qp in range(11):
            def fmt(levels: list[tuple[str, str]]) -> list[tuple[str, str]]:
                return [(f"{Decimal(p):.{pp}f}", f"{Decimal(q):.{qp}f}") for p, q in levels]  # noqa: B023
            assert shipped != crc(fmt(asks), fmt(bids))
    h, rec = new_kraken()
    assert h.on_message(snap, 1) == SNAPSHOT
    sync = h.syncs["BTC/USD"]
    assert (h.checksum_failures, h.checksums_ok, sync.gaps) == (1, 0, 1)
    assert not sync.book.valid and rec.calls == []
    assert [json.loads(m) for m in h.outbox] == [
        {"method": "unsubscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 100}},
        {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 100,
                                           "snapshot": True}},
    ]


def test_v2_fixtures_build_the_expected_book(shared_data_root: Path) -> None:
    snap = fixture(shared_data_root, "kraken__ws_book_snapshot.json")
    upd = fixture(shared_data_root, "kraken__ws_book_update.json")
    bids, asks, _ = _v2_levels(snap)
    assert bids[0] == ("105944.20", "0.136")  # raw JSON text, trailing zero kept
    h, rec = new_kraken()
    assert h.on_message(_restamp(snap, crc(asks, bids)), 1) == SNAPSHOT
    book = h.syncs["BTC/USD"].book
    assert book.valid and h.checksums_ok == 1
    assert levels(book) == ([(105944.2, 0.136), (105935.4, 0.024), (105920.1, 0.052)],
                          [(105944.3, 0.136), (105946.9, 0.095), (105955.8, 0.003)])
    assert book.exchange_ns == 1696613755440295000
    ubids, _, _ = _v2_levels(upd)
    bids = [ubids[0], *bids[1:]]
    assert h.on_message(_restamp(upd, crc(asks, bids)), 2) == DEPTH
    assert h.checksums_ok == 2 and h.checksum_failures == 0 and book.valid
    assert book.top(1) == ([[105944.2, 0.25]], [[105944.3, 0.136]])
    assert len(rec.calls) == 2 and book.update_id == 1


def _v2(kind: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]], checksum: int,
        symbol: str = "BTC/USD") -> bytes:
    def side(levels: list[tuple[str, str]]) -> str:
        return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels) + "]"
    return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":{side(bids)},'
            f'"asks":{side(asks)},"checksum":{checksum},"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}').encode()


def test_v2_book_is_truncated_to_the_acknowledged_depth() -> None:
    h, rec = new_kraken()
    ack = (b'{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},'
           b'"success":true,"time_in":"2023-10-06T17:35:55.000000Z","time_out":"2023-10-06T17:35:55.000100Z"}')
    assert h.on_message(ack, 1) == OTHER
    bids = [(f"{105940 - i}.0", "0.10000000") for i in range(10)]
    asks = [(f"{105950 + i}.5", "1.50000000") for i in range(10)]
    assert h.on_message(_v2("snapshot", bids, asks, crc(asks, bids)), 2) == SNAPSHOT
    book = h.syncs["BTC/USD"].book
    assert book.valid and book.depth() == (10, 10)
    # a new best bid: 11 bids, Kraken sends no delete for the one pushed out of scope
    new = ("105945.0", "0.00100000")
    bids2 = [new, *bids[:9]]
    assert h.on_message(_v2("update", [new], [], crc(asks, bids2)), 3) == DEPTH
    assert book.valid and h.checksums_ok == 2 and book.depth() == (10, 10)
    assert list(book.bids())[-1] == (105932.0, 0.1) and 105931.0 not in dict(book.bids())
    # a deletion, then Kraken republishes the level now back in scope
    bids3 = [*bids2[1:], ("105931.0", "0.20000000")]
    assert h.on_message(_v2("update", [(new[0], "0.00000000"), bids3[-1]], [], crc(asks, bids3)), 4) == DEPTH
    assert book.valid and h.checksums_ok == 3 and h.checksum_failures == 0
    assert list(book.bids()) == [(float(p), float(q)) for p, q in bids3]
    assert len(rec.calls) == 3


def test_v2_subscribe_messages_and_live_settings() -> None:
    insts = [Catalog().provisional("kraken", f"C{i}/USD", f"C{i}USD") for i in range(60)]
    h, _ = new_kraken()
    msgs = [json.loads(m) for m in h.subscribe_messages(insts)]
    assert [len(m["params"]["symbol"]) for m in msgs] == [25, 25, 10]
    assert msgs[0]["method"] == "subscribe" and msgs[0]["params"]["channel"] == "book"
    assert msgs[0]["params"]["depth"] == 100 and msgs[0]["params"]["snapshot"] is True
    assert msgs[0]["params"]["symbol"][:2] == ["C0/USD", "C1/USD"]
    assert len({m["req_id"] for m in msgs}) == 3
    assert h.ws_url == "wss://ws.kraken.com/v2" and h.ping == (30.0, '{"method":"ping"}')
    assert h.rest_snapshot is False


def test_reset_resubscribes_and_a_new_connection_drops_stale_resubscriptions(shared_data_root: Path) -> None:
    snap = fixture(shared_data_root, "kraken__ws_book_snapshot.json")
    bids, asks, _ = _v2_levels(snap)
    h, _ = new_kraken()
    h.on_message(_restamp(snap, crc(asks, bids)), 1)
    inst = h.syncs["BTC/USD"].instrument
    h.reset(inst, 2, "stale feed")
    assert not h.syncs["BTC/USD"].book.valid and len(h.outbox) == 2
    h.reset(inst, 3, "stale feed")  # already resyncing: nothing more to send
    assert len(h.outbox) == 2
    h.on_connect([inst], 4)  # a new connection subscribes everything itself
    assert h.outbox == []


@pytest.mark.parametrize(
    ("native", "symbol"),
    [("XBT/CHF", "BTC/CHF"), ("ADA/XBT", "ADA/BTC"), ("XDG/USD", "DOGE/USD"), ("BTC/USD", "BTC/USD"),
     ("XXBTZUSD", "BTC/USD"), ("XETHZEUR", "ETH/EUR"), ("XBTUSDT", "BTC/USDT"), ("ADAXBT", "ADA/BTC"),
     ("XXDGZUSD", "DOGE/USD"), ("xbt/usd", "BTC/USD")],
)
def test_unify(native: str, symbol: str) -> None:
    assert new_kraken()[0].unify(native) == symbol


def test_unify_rejects_what_it_cannot_name() -> None:
    for bad in ("FOO", "/USD", "BTC/"):
        with pytest.raises(UnknownInstrument):
            new_kraken()[0].unify(bad)


def test_catalog_instruments_are_found_by_ccxt_symbol() -> None:
    from cryptoarb.core.instruments import Kind
    inst = Instrument("kraken", "BTC/USD", "BTC", "USD", Kind.SPOT, 0.1, 1e-8, 0.0, 1.0,
                      exchange_symbol="XXBTZUSD")
    h, _ = new_kraken(discover=False, catalog=Catalog([inst]))
    assert h.instrument_for("BTC/USD") is inst and h.instrument_for("XBT/USD") is inst
    assert h.snapshot_request(inst) == ("public_get_depth", {"pair": "XXBTZUSD", "count": 500})


def test_rest_depth_fixture(shared_data_root: Path) -> None:
    books = parse_rest_depth(fixture(shared_data_root, "kraken__http_order_book.json"))
    assert list(books) == ["XBTUSDT"]
    bids, asks = books["XBTUSDT"]
    assert bids == [(105944.2, 0.002), (105935.4, 0.024), (105918.8, 0.095), (105916.8, 0.016), (105916.7, 0.005)]
    assert asks == [(105944.3, 0.136), (105946.9, 0.095), (105955.8, 0.003), (105955.9, 0.103), (105963.6, 0.024)]
    book = OrderBook(KrakenHandler("kraken", Catalog(), print, discover=True).instrument_for("XBTUSDT"))
    book.load_snapshot(bids, asks)
    assert book.instrument.symbol == "BTC/USDT" and levels(book) == (bids, asks)
    assert (book.bid, book.ask) == (105944.2, 105944.3) and not book.crossed
    with pytest.raises(MessageError, match="EQuery"):
        parse_rest_depth(b'{"error":["EQuery:Unknown asset pair"],"result":{}}')
    with pytest.raises(MessageError):
        parse_rest_depth(b'{"error":[],"result":{"X":{"asks":[["a"]]')


def test_ccxt_methods_exist() -> None:
    ccxt = pytest.importorskip("ccxt")
    assert hasattr(ccxt.kraken(), "public_get_depth")
    assert hasattr(ccxt.krakenfutures(), "public_get_orderbook")


# -- Kraken Futures ----------------------------------------------------------------------------
def new_futures() -> tuple[KrakenFuturesHandler, Recorder]:
    rec = Recorder()
    h = KrakenFuturesHandler("krakenfutures", Catalog(), rec.on_book, request_snapshot=rec.requests.append,
                             on_state=rec.states.append, discover=True)
    return h, rec


def _delta(seq: int, side: str, price: float, qty: float) -> bytes:
    return json.dumps({"feed": "book", "product_id": "PI_XBTUSD", "side": side, "seq": seq, "price": price,
                       "qty": qty, "timestamp": 1612269953629}).encode()


def test_futures_fixtures_snapshot_and_zero_quantities(shared_data_root: Path) -> None:
    h, rec = new_futures()
    assert h.on_message(fixture(shared_data_root, "kraken__ws_futures_book_snapshot.json"), 1) == SNAPSHOT
    book = h.syncs["BTC/USD:BTC"].book
    assert book.valid and book.update_id == 326072249 and book.exchange_ns == 1612269825817 * 10**6
    assert levels(book) == ([(34892.5, 6385.0), (34892.0, 10924.0)], [(34911.5, 20598.0), (34912.0, 2300.0)])
    h.on_message(fixture(shared_data_root, "kraken__ws_futures_book_snapshot_with_zero_qty.json"), 2)
    assert levels(book) == ([(34892.5, 6385.0), (34891.5, 100.0)], [(34912.0, 2300.0)])
    assert len(rec.calls) == 2 and all(v for _, v, _ in rec.calls)
    assert h.syncs["BTC/USD:BTC"].instrument.kind.value == "inverse"


def test_futures_delta_fixture_after_its_snapshot_is_a_real_gap(shared_data_root: Path) -> None:
    """The fixtures come from different moments (seq 326072249, then 326094134): a gap."""
    h, rec = new_futures()
    snap = fixture(shared_data_root, "kraken__ws_futures_book_snapshot.json")
    h.on_message(snap, 1)
    sync = h.syncs["BTC/USD:BTC"]
    assert h.on_message(fixture(shared_data_root, "kraken__ws_futures_book_delta.json"), 2) == DEPTH
    assert sync.gaps == 1 and not sync.book.valid and sync.book.state == SYNCING and len(rec.calls) == 1
    assert [json.loads(m) for m in h.outbox] == [
        {"event": e, "feed": "book", "product_ids": ["PI_XBTUSD"]} for e in ("unsubscribe", "subscribe")]
    assert rec.requests == [sync.instrument]
    assert h.on_message(_delta(326072251, "sell", 34911.5, 0), 3) == DEPTH  # dropped: no snapshot yet
    assert sync.dropped_before_snapshot == 1 and len(rec.calls) == 1
    h.on_message(snap, 4)  # the re-subscription's snapshot
    assert sync.book.valid and len(rec.calls) == 2
    for seq, side, price, qty in ((326072250, "sell", 34911.5, 0), (326072251, "buy", 34893.0, 7.0)):
        h.on_message(_delta(seq, side, price, qty), 5)
    assert levels(sync.book) == ([(34893.0, 7.0), (34892.5, 6385.0), (34892.0, 10924.0)], [(34912.0, 2300.0)])
    h.on_message(_delta(326072250, "buy", 1.0, 1.0), 6)  # a duplicate: skipped
    assert sync.stale_skipped == 1 and sync.gaps == 1 and sync.book.update_id == 326072251
    assert len(rec.calls) == 4 and all(v for _, v, _ in rec.calls)


def test_futures_malformed_unknown_and_events(shared_data_root: Path) -> None:
    h, _ = new_futures()
    h.on_message(fixture(shared_data_root, "kraken__ws_futures_book_snapshot.json"), 1)
    book = h.syncs["BTC/USD:BTC"].book
    before = levels(book)
    bad = [b'{"feed":"book","product_id":"PI_XBTUSD"', b'[1,2]', b'{"feed":"book","product_id":"PI_XBTUSD",'
           b'"side":"buy","seq":"x","price":1,"qty":1}', b'{"feed":"book","product_id":"PI_XBTUSD","side":"up",'
           b'"seq":326072250,"price":1,"qty":1}', b'{"feed":"book","seq":326072250,"side":"buy","price":1,"qty":1}',
           b'{"feed":"book_snapshot","product_id":"PI_XBTUSD","bids":[{"price":1}],"asks":[],"seq":1}', b"{}"]
    for raw in bad:
        with pytest.raises(MessageError):
            h.on_message(raw, 2)
    assert h.bad_messages == len(bad) and levels(book) == before and book.valid
    for raw in (b'{"event":"info","version":1}', b'{"feed":"heartbeat","time":1534262350627}',
                b'{"event":"subscribed","feed":"book","product_ids":["PI_XBTUSD"]}'):
        assert h.on_message(raw, 3) == OTHER
    assert h.on_message(b'{"feed":"ticker","product_id":"PI_XBTUSD"}', 3) == OTHER
    assert h.unknown_streams == 1


@pytest.mark.parametrize(
    ("native", "symbol"),
    [("PI_XBTUSD", "BTC/USD:BTC"), ("PF_XBTUSD", "BTC/USD:USD"), ("pf_ethusd", "ETH/USD:USD"),
     ("FI_XBTUSD_230929", "BTC/USD:BTC-230929"), ("FF_ETHUSD_230929", "ETH/USD:USD-230929")],
)
def test_futures_unify(native: str, symbol: str) -> None:
    assert new_futures()[0].unify(native) == symbol


def test_futures_unify_rejects_indices_and_junk() -> None:
    for bad in ("IN_XBTUSD", "PI_", "XBTUSD", "PI_XBTEUR"):
        with pytest.raises(UnknownInstrument):
            new_futures()[0].unify(bad)


def test_futures_rest_fixture_and_live_settings(shared_data_root: Path) -> None:
    bids, asks = parse_rest_orderbook(fixture(shared_data_root, "kraken__http_futures_orderbook.json"))
    assert bids == [(105900.0, 0.5), (105850.0, 1.2), (105800.0, 0.8)]
    assert asks == [(105950.0, 0.3), (106000.0, 0.7), (106050.0, 1.1)]
    book = OrderBook(new_futures()[0].instrument_for("PF_XBTUSD"))
    book.load_snapshot(bids, asks)
    assert levels(book) == (bids, asks) and book.instrument.symbol == "BTC/USD:USD"
    with pytest.raises(MessageError):
        parse_rest_orderbook(b'{"result":"error","error":"marketUnavailable"}')
    h, _ = new_futures()
    inst = h.instrument_for("PF_XBTUSD")
    msgs = [json.loads(m) for m in h.subscribe_messages([inst] * 30)]
    assert msgs[0] == {"event": "subscribe", "feed": "heartbeat"}
    assert [len(m["product_ids"]) for m in msgs[1:]] == [25, 5] and msgs[1]["product_ids"][0] == "PF_XBTUSD"
    assert h.snapshot_request(inst) == ("public_get_orderbook", {"symbol": "PF_XBTUSD"})
    assert h.ws_url == "wss://futures.kraken.com/ws/v1" and h.rest_snapshot is False
