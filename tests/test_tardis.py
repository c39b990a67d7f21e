"""Tardis.dev incremental_book_L2 CSV, made from the real Binance spot capture: the replay
builds the same book as the independent reference."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from cryptoarb.config import load_settings
from cryptoarb.engine import Engine
from cryptoarb.replay.reader import CaptureError, parse_sources
from cryptoarb.replay.run import replay
from cryptoarb.venues.base import MessageError
from refbook import RefBook

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-2024-08-08"
HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"


def to_tardis(lines: list[bytes], out: Path, resnapshot_at: int | None = None) -> RefBook:
    """Write the capture the way Tardis publishes it (after its own sync: a snapshot, then the
    applied diffs) and return the reference book at the end."""
    ref = RefBook(futures=False)
    rows = [HEADER]
    applied_before = 0
    for line in lines:
        local_ns, _, raw = line.partition(b" ")
        kind = ref.feed(raw)
        us = int(local_ns) // 1000
        if not ref.synced:
            continue
        if kind == "snapshot" or (resnapshot_at is not None and ref.applied == resnapshot_at
                                  and applied_before != ref.applied):
            for side, levels in (("bid", ref.bids()), ("ask", ref.asks())):
                rows += [f"binance,BTCUSDT,{us},{us},true,{side},{p},{q}" for p, q in levels]
        elif kind == "depth" and ref.applied != applied_before:
            d = json.loads(raw)["data"]
            for side, key in (("bid", "b"), ("ask", "a")):
                rows += [f"binance,BTCUSDT,{d['E'] * 1000},{us},false,{side},{p},{q}" for p, q in d[key]]
        applied_before = ref.applied
    with gzip.open(out, "wt") as f:
        f.write("\n".join(rows) + "\n")
    return ref


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    if not DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{DATA} is missing: CI must have ../shared/data")
        pytest.skip("../shared/data is absent (real exchange captures); CI has it")
    with gzip.open(DATA / "spot_btcusdt_20240808.gz", "rb") as f:
        return [line.rstrip(b"\n") for _, line in zip(range(12_000), f, strict=False)]


def run(path: Path) -> Engine:
    engine = Engine(load_settings(storage={"enabled": False}), ["binance"])
    replay(engine, parse_sources([str(path)]))
    return engine


def test_tardis_file_replays_to_the_reference_book(lines: list[bytes], tmp_path: Path) -> None:
    path = tmp_path / "binance_incremental_book_L2_2024-08-08_BTCUSDT.csv.gz"
    ref = to_tardis(lines, path)
    e = run(path)
    book = e.books["binance BTC/USDT"]
    assert book.valid and book.snapshot_levels() == (ref.float_bids(), ref.float_asks())
    sync = e.handlers["binance"].syncs["BTC/USDT"]
    assert sync.diffs_applied == ref.applied - ref.applied_from_buffer


def test_a_later_snapshot_starts_the_book_over(lines: list[bytes], tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    ref = to_tardis(lines, path, resnapshot_at=300)
    e = run(path)
    sync = e.handlers["binance"].syncs["BTC/USDT"]
    assert sync.resyncs == 1
    assert sync.book.snapshot_levels() == (ref.float_bids(), ref.float_asks())


def test_bad_rows_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "\nbinance,BTCUSDT,1,1,true,bid,100,1\nbinance,BTCUSDT,2,2,false,middle,100,1\n")
    e = Engine(load_settings(storage={"enabled": False}), ["binance"])
    res = replay(e, parse_sources([str(path)]))
    assert res.stats.bad_count == 1 and "neither bid nor ask" in res.stats.bad[0].reason
    assert res.stats.bad[0].line == 3
    with pytest.raises(MessageError):
        e.handlers["binance"].on_message(b"binance,BTCUSDT,x", 1)
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER + "\n")
    with pytest.raises(CaptureError, match="no rows"):
        parse_sources([str(empty)])
