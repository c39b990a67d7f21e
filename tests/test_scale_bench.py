"""Smoke run of the load harness (bench/scale_bench.py): a local venue process replaying real
depth diffs on a schedule, the real Engine + VenueFeed path, every book valid and measured."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance-2024-08-08"


def _bench():  # type: ignore[no-untyped-def]
    """The harness as an importable module (its venue runs in a spawned process, which imports it)."""
    if str(ROOT / "bench") not in sys.path:
        sys.path.insert(0, str(ROOT / "bench"))
    return importlib.import_module("scale_bench")


@pytest.fixture
def bench():  # type: ignore[no-untyped-def]
    if not DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{DATA} is missing: CI must have ../shared/data")
        pytest.skip("../shared/data is absent")
    return _bench()


def test_frames_chain_onto_the_snapshot_they_are_served_with(bench) -> None:  # type: ignore[no-untyped-def]
    import orjson

    snapshot, frames, extras = bench.load_frames()
    assert len(extras) == len(frames) and sum(map(len, extras)) > 5 * len(frames)  # trades, tickers
    last = orjson.loads(snapshot)["lastUpdateId"]
    first = orjson.loads(frames[0])["data"]
    assert first["U"] <= last + 1 <= first["u"]
    for a, b in itertools.pairwise(frames):
        assert orjson.loads(b)["data"]["U"] == orjson.loads(a)["data"]["u"] + 1  # no gap to break a chain


@pytest.mark.parametrize("mode", ["smooth", "burst"])
def test_a_small_run_keeps_every_book_valid_and_measures_each_frame(bench, mode: str) -> None:  # type: ignore[no-untyped-def]
    r = asyncio.run(bench.run_once(3, 120.0, mode, 1.0, 0.3))
    assert r["books"] == 6 and r["valid_books"] == 6
    assert r["processed_per_s"] > 0 and r["p50_ms"] > 0 and r["p99_ms"] >= r["p50_ms"]
    assert r["venue_late_frames"] >= 0  # the venue finished its schedule


def test_the_receive_bench_gets_every_frame_each_way(bench, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    recv = importlib.import_module("recv_bench")  # beside scale_bench in bench/
    assert recv.main(["--frames", "200", "--runs", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == set(recv.MODES) and all(v["cpu_us_per_frame"] > 0 for v in out.values())
