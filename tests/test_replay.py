"""Replay of the real Binance captures through the Engine, and the capture reader's errors.

The full replay runs once per module (all five files, three venues merged by local time); an
independent reference rebuild (``tests/refbook.py``) is fed the very frames the replay reads,
so each file is read only once.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.config import Settings, load_settings
from cryptoarb.engine.engine import Engine
from cryptoarb.replay.reader import BadLine, CaptureError, LineStats, parse_sources, read_lines
from cryptoarb.replay.run import ReplayError, ReplayResult, replay
from cryptoarb.venues.binance import VENUES
from tests.accounting import assert_pnl_invariant
from tests.refbook import RefBook, split_line

SPOT = ("spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz")
USDM = ("usdm_btcusdt_20240808.gz",)
COINM = ("cm_btcusd_perp_20240808.gz", "cm_btcusd_perp_20240809.gz")
FILES = {"binance": SPOT, "binanceusdm": USDM, "binancecoinm": COINM}
KEYS = {"binance": "binance BTC/USDT", "binanceusdm": "binanceusdm BTC/USDT:USDT",
        "binancecoinm": "binancecoinm BTC/USD:BTC"}
FUTURES = {"binance": False, "binanceusdm": True, "binancecoinm": True}
# from ../shared/data/README.md
LINES = 41_249 + 58_325 + 93_954 + 48_270 + 50_116
DIFFS = {"binance": 6493, "binanceusdm": 6547, "binancecoinm": 44772}


def settings() -> Settings:
    return load_settings(storage={"enabled": False})


def specs(data: Path) -> list[str]:
    return [f"{venue}:{data / f}" for venue, files in FILES.items() for f in files]


@dataclass
class Replayed:
    engine: Engine
    result: ReplayResult
    summary: dict[str, Any]
    refs: dict[str, RefBook]
    times_sorted: bool
    progress: list[int]


@pytest.fixture(scope="module")
def replayed(shared_data: Path) -> Replayed:
    sources = parse_sources(specs(shared_data), list(VENUES))
    assert [s.venue for s in sources] == list(FILES)
    engine = Engine(settings(), [s.venue for s in sources])
    refs = {venue: RefBook(FUTURES[venue]) for venue in FILES}
    by_handler: dict[int, RefBook] = {}
    original = engine.on_message
    last_ns = [0]
    unsorted = [0]

    def tee(handler: Any, raw: bytes, local_ns: int) -> int:
        ref = by_handler.get(id(handler))
        if ref is None:
            ref = by_handler[id(handler)] = refs[handler.venue]
        ref.feed(raw)
        if local_ns < last_ns[0]:
            unsorted[0] += 1
        last_ns[0] = local_ns
        return original(handler, raw, local_ns)

    engine.on_message = tee  # type: ignore[method-assign]  # replay() looks it up once, on the instance
    progress: list[int] = []
    result = replay(engine, sources, progress=progress.append)
    return Replayed(engine, result, engine.summary(), refs, unsorted[0] == 0, progress)


# -- the whole real captures ------------------------------------------------------------------
@pytest.mark.realdata
def test_summary_contract(replayed: Replayed) -> None:
    s = replayed.summary
    assert set(s) == {"messages", "books", "opportunities", "trades", "pnl_quote", "pnl", "max_unhedged_quote",
                      "latency_us", "risk", "legrisk", "inventory", "cycles"}
    assert set(s["pnl"]) == {"realised", "unrealised", "total"} and all(type(v) is float for v in s["pnl"].values())
    assert type(s["max_unhedged_quote"]) is float and s["pnl"]["realised"] == s["pnl_quote"]
    assert type(s["messages"]) is int
    assert type(s["opportunities"]) is int and s["opportunities"] >= 0
    assert type(s["trades"]) is int and 0 <= s["trades"] <= s["opportunities"]
    assert type(s["pnl_quote"]) is float
    assert set(s["latency_us"]) == {"p50", "p99", "p999"}
    lat = s["latency_us"]
    assert all(type(v) is float for v in lat.values())
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p999"]
    assert set(s["books"]) == set(KEYS.values())
    for key, b in s["books"].items():
        assert set(b) == {"bids", "asks", "diffs_applied", "dropped_before_snapshot", "gaps", "resyncs",
                          "checked_levels"}, key
        assert b["checked_levels"] == 0, key  # Binance sends no checksum
        for side in ("bids", "asks"):
            assert len(b[side]) == 5, key
            assert all(len(lv) == 2 and all(type(x) is float for x in lv) for lv in b[side]), key
        assert b["bids"][0][0] < b["asks"][0][0], key
        for c in ("diffs_applied", "dropped_before_snapshot", "gaps", "resyncs"):
            assert type(b[c]) is int, (key, c)
    assert json.loads(json.dumps(s, allow_nan=False)) == s  # what --summary-json writes


@pytest.mark.realdata
def test_equity_change_is_realised_plus_unrealised(replayed: Replayed) -> None:
    assert_pnl_invariant(replayed.engine, replayed.summary)


@pytest.mark.realdata
def test_every_line_is_a_message(replayed: Replayed) -> None:
    assert replayed.summary["messages"] == LINES
    assert replayed.result.messages == LINES
    assert replayed.result.stats.bad_count == 0 and replayed.result.stats.bad == []
    assert all(h.bad_messages == 0 and h.unknown_streams == 0 for h in replayed.engine.handlers.values())
    assert replayed.times_sorted  # the three venues were merged by local receive time
    assert replayed.progress[-1] == LINES
    assert sum(r.depth_events + r.other_events + 1 for r in replayed.refs.values()) == LINES


@pytest.mark.realdata
@pytest.mark.parametrize("venue", list(FILES))
def test_books_match_the_reference(replayed: Replayed, venue: str) -> None:
    ref = replayed.refs[venue]
    assert ref.applied == DIFFS[venue] and ref.gaps == 0
    b = replayed.summary["books"][KEYS[venue]]
    assert (b["bids"], b["asks"]) == ref.top(5)
    assert b["diffs_applied"] == DIFFS[venue]
    assert b["dropped_before_snapshot"] == ref.dropped
    assert b["gaps"] == 0 and b["resyncs"] == 0
    book = replayed.engine.books[KEYS[venue]]
    assert book.valid
    assert list(book.bids()) == ref.float_bids()
    assert list(book.asks()) == ref.float_asks()


@pytest.mark.realdata
def test_no_state_changes_but_the_three_snapshots(replayed: Replayed) -> None:
    changes = replayed.engine.state_changes
    assert sorted(c.key for c in changes) == sorted(KEYS.values())
    assert all("snapshot" in c.reason for c in changes)


# -- reader errors -----------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gz"
    with pytest.raises(CaptureError, match=r"nope\.gz: no such file"):
        parse_sources([f"binance:{missing}"], list(VENUES))
    with pytest.raises(CaptureError, match="no such file"):
        parse_sources([f"binance:{tmp_path}"], list(VENUES))  # a folder is not a capture


@pytest.mark.parametrize("spec", ["spot_btcusdt.gz", "binance", "binance:", ":spot_btcusdt.gz", ""])
def test_spec_without_venue_or_path(spec: str) -> None:
    with pytest.raises(CaptureError, match="expected VENUE:PATH"):
        parse_sources([spec], list(VENUES))


def test_unknown_venue(tmp_path: Path) -> None:
    f = tmp_path / "x.gz"
    f.write_bytes(b"")
    with pytest.raises(CaptureError) as e:
        parse_sources([f"kraken:{f}"], list(VENUES))
    assert "'kraken'" in str(e.value)
    assert "binance, binanceusdm, binancecoinm" in str(e.value)


def test_paths_of_one_venue_keep_their_order(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    for p in (a, b, c):
        p.write_bytes(b"")
    srcs = parse_sources([f"binance:{b}", f"binanceusdm:{c}", f"binance:{a}"], list(VENUES))
    assert [(s.venue, s.paths) for s in srcs] == [("binance", [b, a]), ("binanceusdm", [c])]


# -- captures built from the first real lines -----------------------------------------------------
@pytest.fixture(scope="module")
def head_lines(shared_data: Path) -> Callable[[str, int], list[bytes]]:
    cache: dict[tuple[str, int], list[bytes]] = {}

    def first(name: str, n: int) -> list[bytes]:
        if (name, n) not in cache:
            out = []
            with gzip.open(shared_data / name, "rb") as g:
                for line in g:
                    out.append(line)
                    if len(out) == n:
                        break
            cache[(name, n)] = out
        return cache[(name, n)]

    return first


def run_one(venue: str, path: Path, strict: bool = False) -> tuple[Engine, ReplayResult]:
    engine = Engine(settings(), [venue])
    result = replay(engine, parse_sources([f"{venue}:{path}"], list(VENUES)), strict=strict)
    assert_pnl_invariant(engine)
    return engine, result


@pytest.mark.realdata
def test_truncated_gzip_names_the_file(tmp_path: Path, head_lines: Callable[[str, int], list[bytes]]) -> None:
    whole = gzip.compress(b"".join(head_lines(SPOT[0], 3000)))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CaptureError) as e:
        list(read_lines(cut, LineStats()))
    assert str(cut) in str(e.value) and "truncated" in str(e.value)
    with pytest.raises(CaptureError, match=r"cut\.gz"):
        run_one("binance", cut)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gz"
    data = bytearray(gzip.compress(b"1 {}\n" * 5000))
    data[20:60] = b"\x00" * 40
    bad.write_bytes(bytes(data))
    with pytest.raises(CaptureError, match=r"bad\.gz"):
        list(read_lines(bad, LineStats()))


@pytest.mark.realdata
def test_plain_text_capture(tmp_path: Path, head_lines: Callable[[str, int], list[bytes]]) -> None:
    lines = head_lines(SPOT[0], 200)
    plain = tmp_path / "spot.txt"
    plain.write_bytes(b"".join(lines))
    engine, result = run_one("binance", plain)
    assert result.messages == 200 and result.stats.bad_count == 0
    ref = RefBook(False)
    for line in lines:
        ref.feed(split_line(line)[1])
    assert engine.books["binance BTC/USDT"].top(5) == ref.top(5)


GARBAGE = {
    "no separator": b"garbage\n",
    "bad timestamp": b"12x45 {\"stream\":\"btcusdt@trade\",\"data\":{}}\n",
    "bad json": b"1723161254206652067 {\"stream\":\"btcusdt@depth@100ms\",\"data\":{\"U\":1,\"u\":\n",
}


@pytest.mark.realdata
@pytest.mark.parametrize(("venue", "name"), [("binance", SPOT[0]), ("binancecoinm", COINM[0])])
@pytest.mark.parametrize("kind", list(GARBAGE))
def test_malformed_line_is_counted_with_its_line_number(
    tmp_path: Path, head_lines: Callable[[str, int], list[bytes]], venue: str, name: str, kind: str
) -> None:
    lines = head_lines(name, 200)
    at = 120  # 1-based line number of the garbage, well after the snapshot line
    capture = tmp_path / "capture.gz"
    capture.write_bytes(gzip.compress(b"".join([*lines[: at - 1], GARBAGE[kind], *lines[at - 1:]])))
    engine, result = run_one(venue, capture)
    assert result.stats.bad_count == 1
    (bad,) = result.stats.bad
    assert isinstance(bad, BadLine)
    assert (bad.path, bad.line) == (str(capture), at)
    assert bad.reason
    # a line the reader cannot split never reaches the engine; bad JSON does, and is skipped
    assert result.messages == (201 if kind == "bad json" else 200)
    ref = RefBook(FUTURES[venue])
    for line in lines:
        ref.feed(split_line(line)[1])
    book = engine.books[KEYS[venue]]
    assert book.valid
    assert list(book.bids()) == ref.float_bids() and list(book.asks()) == ref.float_asks()
    assert engine.summary()["books"][KEYS[venue]]["gaps"] == 0


@pytest.mark.realdata
def test_strict_replay_stops_at_the_bad_line(tmp_path: Path, head_lines: Callable[[str, int], list[bytes]]) -> None:
    lines = head_lines(SPOT[0], 200)
    capture = tmp_path / "capture.gz"
    capture.write_bytes(gzip.compress(b"".join([*lines[:49], GARBAGE["bad json"], *lines[49:]])))
    with pytest.raises(ReplayError, match=re.escape(f"{capture}:50: ")):
        run_one("binance", capture, strict=True)


@pytest.mark.realdata
def test_unknown_market_is_counted_and_skipped(tmp_path: Path, head_lines: Callable[[str, int], list[bytes]]) -> None:
    """One unroutable line never ends a run; ``--strict`` stops at it, naming file and line."""
    lines = head_lines(SPOT[0], 30)
    doge = b'1723161254206652067 {"stream":"dogeusdt@depth@100ms","data":{"U":1,"u":2,"b":[],"a":[]}}\n'
    capture = tmp_path / "capture.gz"
    capture.write_bytes(gzip.compress(b"".join([*lines[:10], doge, *lines[10:]])))
    _, res = run_one("binance", capture)
    assert res.stats.bad_count == 1 and res.messages == 31
    first = res.stats.bad[0]
    assert first.line == 11 and "unknown market 'dogeusdt'" in first.reason and "BTCUSDT" in first.reason
    with pytest.raises(ReplayError, match=re.escape(f"{capture}:11: unroutable binance message: unknown market")):
        run_one("binance", capture, strict=True)
