"""GeminiHandler on real Gemini v2 market-data messages.

- ``exchange-captures/GEMINI.ws.1.0`` (cryptofeed, June 2021): the ``l2`` subscription of 10 symbols
  (first ``l2_updates`` = full book with ``trades``, then changes), ``trade`` and ``heartbeat``
  messages. That is the current v2 format. No ``.http`` file (Gemini books start from the stream).
- Independent check: Gemini ships no checksum, so a plain ``json`` + ``dict`` rebuild in this file
  (no cryptoarb code) is compared with the handler's full books after every message.
- l2 has no sequence numbers: a lost batch is only visible when it leaves the book crossed. The
  loss cases below are real: a batch dropped from the real stream, found (by the reference) to
  leave a crossed book later, is caught by the handler at that very message.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.core.book import INVALID, SYNCING, VALID
from cryptoarb.core.events import Trade
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, TRADE, MessageError
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from cryptoarb.venues.gemini import GeminiHandler
from tests.venuekit import BookRecorder, dumps, edit_frame, levels, stream_frames, warm_up

pytestmark = pytest.mark.realdata

SYMBOLS = {"BTCGBP": "BTC/GBP", "LINKETH": "LINK/ETH", "FILUSD": "FIL/USD", "ZECLTC": "ZEC/LTC",
           "BATBTC": "BAT/BTC", "ETHEUR": "ETH/EUR", "LTCETH": "LTC/ETH", "GRTUSD": "GRT/USD",
           "ANKRUSD": "ANKR/USD", "ALCXUSD": "ALCX/USD"}


# -- the independent reference ----------------------------------------------------------------
class Ref:
    def __init__(self) -> None:
        self.bids: dict[Decimal, str] = {}
        self.asks: dict[Decimal, str] = {}

    def feed(self, m: dict[str, Any]) -> None:
        if "trades" in m:
            self.bids, self.asks = {}, {}
        for side, price, qty in m["changes"]:
            levels = self.bids if side == "buy" else self.asks
            if Decimal(qty) == 0:
                levels.pop(Decimal(price), None)
            else:
                levels[Decimal(price)] = qty

    def crossed(self) -> bool:
        return bool(self.bids and self.asks and max(self.bids) >= min(self.asks))

    def floats(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return ([(float(p), float(self.bids[p])) for p in sorted(self.bids, reverse=True)],
                [(float(p), float(self.asks[p])) for p in sorted(self.asks)])

    def full_book(self, symbol: str) -> dict[str, Any]:
        """The book as Gemini's first l2_updates would send it."""
        changes = [["buy", str(p), q] for p, q in self.bids.items()]
        changes += [["sell", str(p), q] for p, q in self.asks.items()]
        return {"type": "l2_updates", "symbol": symbol, "changes": changes, "trades": [], "auction_events": []}


# -- capture ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames(shared_data_root: Path) -> list[tuple[int, bytes]]:
    return stream_frames(shared_data_root, "GEMINI", "Gemini")


def handler(rec: BookRecorder | None = None, discover: bool = True) -> GeminiHandler:
    rec = rec or BookRecorder()
    return GeminiHandler("gemini", Catalog(), rec.on_book, rec.events.append, rec.requests.append,
                         rec.states.append, discover=discover)


# -- the real capture ---------------------------------------------------------------------------
def test_capture_content(frames: list[tuple[int, bytes]]) -> None:
    kinds: Counter[tuple[str, bool]] = Counter(
        (m["type"], "trades" in m) for m in (json.loads(raw) for _, raw in frames))
    assert kinds == {("l2_updates", True): 10, ("l2_updates", False): 645, ("trade", False): 16,
                     ("heartbeat", False): 7}


def test_replay_every_book_valid(frames: list[tuple[int, bytes]]) -> None:
    rec = BookRecorder()
    h = handler(rec)
    kinds: Counter[int] = Counter()
    for ns, raw in frames:
        kinds[h.on_message(raw, ns)] += 1
    assert kinds == {SNAPSHOT: 10, DEPTH: 645, TRADE: 16, OTHER: 7}
    assert sorted(h.syncs) == sorted(SYMBOLS.values())
    for sync in h.syncs.values():
        assert sync.book.state == VALID and sync.book.valid and not sync.book.crossed
        assert sync.gaps == 0 and sync.resyncs == 0 and sync.dropped_before_snapshot == 0
    assert sum(s.diffs_applied for s in h.syncs.values()) == 645
    assert (h.checksums_ok, h.checksum_failures) == (0, 0)  # l2 carries no checksum
    assert (h.bad_messages, h.unknown_streams, h.outbox, rec.requests) == (0, 0, [], [])
    assert len(rec.calls) == 655 and all(valid and state == VALID for _, valid, state in rec.calls)
    assert [s.state for s in rec.states] == [VALID] * 10
    trades = [e for e in rec.events if isinstance(e, Trade)]
    assert len(trades) == 16 == len(rec.events)
    t = trades[0]
    assert (t.key, t.price, t.qty, t.side, t.trade_id, t.exchange_ns) == (
        "gemini ANKR/USD", 0.07946, 1020.482111, "buy", 45465818387, 1624493670759 * 1_000_000)


def test_reference_rebuild_equals_the_books_after_every_message(frames: list[tuple[int, bytes]]) -> None:
    h = handler()
    refs: dict[str, Ref] = {}
    compared = 0
    for i, (ns, raw) in enumerate(frames):
        h.on_message(raw, ns)
        m = json.loads(raw)
        if m["type"] != "l2_updates":
            continue
        ref = refs.setdefault(m["symbol"], Ref())
        ref.feed(m)
        assert not ref.crossed()
        assert levels(h.syncs[SYMBOLS[m["symbol"]]].book) == ref.floats(), f"frame {i} {m['symbol']}"
        compared += 1
    assert compared == 655
    assert {s: len(r.bids) + len(r.asks) for s, r in refs.items()}["FILUSD"] == 179 + 474


# -- a lost batch ------------------------------------------------------------------------------
def first_crossing_drop(frames: list[tuple[int, bytes]], symbol: str) -> tuple[int, int]:
    """(dropped frame, frame where the reference book then crosses), for the first change batch
    of ``symbol`` whose loss is visible."""
    msgs = [(i, json.loads(raw)) for i, (_, raw) in enumerate(frames)]
    batches = [i for i, m in msgs if m.get("symbol") == symbol and m["type"] == "l2_updates" and "trades" not in m]
    for drop in batches:
        ref = Ref()
        for i, m in msgs:
            if i != drop and m.get("symbol") == symbol and m["type"] == "l2_updates":
                ref.feed(m)
                if ref.crossed():
                    return drop, i
    raise AssertionError(f"no visible loss for {symbol}")


@pytest.mark.parametrize("native", ["BTCGBP", "FILUSD", "ANKRUSD", "GRTUSD"])
def test_lost_batch_is_caught_when_the_book_crosses_then_a_new_full_book_resyncs(
        frames: list[tuple[int, bytes]], native: str) -> None:
    drop, crossed_at = first_crossing_drop(frames, native)
    mine = [i for i, (_, raw) in enumerate(frames) if json.loads(raw).get("symbol") == native
            and b'"l2_updates"' in raw]
    resub_at = mine[mine.index(crossed_at) + 5]  # the new subscription's full book comes after 4 more batches
    sym = SYMBOLS[native]
    rec = BookRecorder()
    h = handler(rec)
    ref = Ref()
    calls = 0
    for i, (ns, raw) in enumerate(frames):
        if i in mine:
            ref.feed(json.loads(raw))
        if i == drop:
            continue
        if i == resub_at:
            assert h.on_message(dumps(ref.full_book(native)), ns) == SNAPSHOT
            assert h.syncs[sym].book.valid and sum(c[0] == f"gemini {sym}" for c in rec.calls) == calls + 1
            continue
        if i == crossed_at:  # the crossed book is a bad message: invalidated, resubscribed
            with pytest.raises(MessageError, match="crossed"):
                h.on_message(raw, ns)
        else:
            h.on_message(raw, ns)
        sync = h.syncs.get(sym)
        if sync is None:
            continue
        if i < crossed_at:
            assert sync.gaps == 0 and sync.book.valid
        if i == crossed_at:
            assert sync.gaps == 1 and sync.book.state == SYNCING and not sync.book.valid
            assert "crossed" in rec.states[-1].reason and rec.states[-1].state == INVALID
            assert [json.loads(x) for x in h.outbox] == [
                {"type": op, "subscriptions": [{"name": "l2", "symbols": [native]}]}
                for op in ("unsubscribe", "subscribe")]
            assert rec.requests == [sync.instrument]
            calls = sum(c[0] == f"gemini {sym}" for c in rec.calls)
        if crossed_at < i < resub_at:
            assert sum(c[0] == f"gemini {sym}" for c in rec.calls) == calls  # nothing while invalid
    sync = h.syncs[sym]
    assert sync.book.valid and sync.gaps == 1 and sync.dropped_before_snapshot == 4
    assert levels(sync.book) == ref.floats()
    assert all(valid for _, valid, _ in rec.calls)
    assert [s.state for s in rec.states if s.key == f"gemini {sym}"] == [VALID, INVALID, VALID]


def test_changes_before_the_full_book_are_dropped(frames: list[tuple[int, bytes]]) -> None:
    h = handler()
    changes = [raw for _, raw in frames if b'"symbol":"FILUSD","changes"' in raw and b'"trades"' not in raw]
    for raw in changes[:3]:
        assert h.on_message(raw, 1) == DEPTH
    sync = h.syncs["FIL/USD"]
    assert sync.dropped_before_snapshot == 3 and sync.book.state == SYNCING and not sync.book.valid


# -- single hand-made frames on a real book -----------------------------------------------------------
@pytest.fixture
def warm(frames: list[tuple[int, bytes]]) -> tuple[GeminiHandler, BookRecorder, list[bytes]]:
    rec = BookRecorder()
    h = handler(rec)
    idx = [i for i, (_, raw) in enumerate(frames) if b'"symbol":"BTCGBP","changes"' in raw]
    return h, rec, warm_up(h, frames, idx, 20)


def state(h: GeminiHandler) -> tuple[Any, ...]:
    s = h.syncs["BTC/GBP"]
    return (*levels(s.book), s.book.state, s.book.update_id, s.diffs_applied, s.gaps)


@pytest.mark.parametrize(
    "bad",
    [
        lambda raw: raw[: len(raw) // 2],
        edit_frame("changes/0/0", "hold"),  # neither buy nor sell
        edit_frame("changes/0/1", "abc"),  # price not a number
        edit_frame("changes/0/2", "-1"),  # negative quantity
        edit_frame("changes/0", ["buy", "1.0"]),  # no quantity
        edit_frame("changes", {"buy": "1"}),  # changes not a list
        edit_frame("changes/0/0", 1),  # side not a string
        edit_frame("symbol", ""),  # no symbol
        lambda raw: b"[]",
    ],
    ids=["truncated", "side", "price", "negative", "short", "changes-object", "side-number", "no-symbol", "array"],
)
def test_malformed_frames_raise_and_leave_the_book_unchanged(warm: tuple[GeminiHandler, BookRecorder, list[bytes]],
                                                               bad: Any) -> None:
    h, rec, rest = warm
    before, calls = state(h), len(rec.calls)
    with pytest.raises(MessageError):
        h.on_message(bad(rest[0]), 1)
    assert h.bad_messages == 1 and state(h) == before and len(rec.calls) == calls
    assert h.on_message(rest[0], 2) == DEPTH and h.syncs["BTC/GBP"].book.valid


def test_heartbeats_and_unknown_types(warm: tuple[GeminiHandler, BookRecorder, list[bytes]]) -> None:
    h, _, _ = warm
    before = state(h)
    assert h.on_message(b'{"type":"heartbeat","timestamp":1624493666869}', 1) == OTHER
    assert h.unknown_streams == 0
    assert h.on_message(b'{"type":"candles_1m_updates","symbol":"BTCGBP","changes":[]}', 1) == OTHER
    assert h.unknown_streams == 1 and h.bad_messages == 0 and state(h) == before


def test_unknown_market_without_discover(frames: list[tuple[int, bytes]]) -> None:
    h = handler(discover=False)
    with pytest.raises(UnknownInstrument, match="BTCGBP"):
        h.on_message(next(raw for _, raw in frames if b'"BTCGBP"' in raw), 1)


# -- naming and the live side ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("native", "symbol"),
    [("BTCUSD", "BTC/USD"), ("btcusd", "BTC/USD"), ("LINKETH", "LINK/ETH"), ("ZECLTC", "ZEC/LTC"),
     ("BATBTC", "BAT/BTC"), ("ETHGUSD", "ETH/GUSD"), ("GUSDUSD", "GUSD/USD"), ("USDTUSD", "USDT/USD"),
     ("ETHUSDT", "ETH/USDT"), ("BTCSGD", "BTC/SGD"), ("BTCGUSDPERP", "BTC/GUSD:GUSD")],
)
def test_unify(native: str, symbol: str) -> None:
    assert handler().unify(native) == symbol


@pytest.mark.parametrize("native", ["USD", "BTCXYZ", "PERP"])
def test_unify_refuses(native: str) -> None:
    with pytest.raises(UnknownInstrument):
        handler().unify(native)


def test_live_description() -> None:
    h = handler()
    assert h.ws_url == "wss://api.gemini.com/v2/marketdata" and not h.rest_snapshot and h.ping is None
    cat = Catalog()
    insts = [cat.provisional("gemini", f"C{i}/USD", f"c{i}usd") for i in range(60)]
    msgs = [json.loads(m) for m in h.subscribe_messages(insts)]
    assert [len(m["subscriptions"][0]["symbols"]) for m in msgs] == [50, 10]
    assert msgs[0]["type"] == "subscribe" and msgs[0]["subscriptions"][0]["name"] == "l2"
    assert msgs[0]["subscriptions"][0]["symbols"][:2] == ["C0USD", "C1USD"]
    with pytest.raises(ValueError, match="not a Gemini venue"):
        GeminiHandler("okx", cat, lambda b, n: None)
