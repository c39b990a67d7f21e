"""Smoke run of the load harness (bench/scale_*.py): local venues of every protocol replaying real
frames on a schedule, the real ``arb run --live`` in its own process with the probe, every book
valid and measured; and a venue that falls behind its schedule makes the run invalid."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _module(name: str) -> Any:
    """A harness module (its venues run in spawned processes, which import them by name)."""
    if str(ROOT / "bench") not in sys.path:
        sys.path.insert(0, str(ROOT / "bench"))
    return importlib.import_module(name)


@pytest.fixture(autouse=True)
def _data() -> None:
    if not (DATA / "binance-2024-08-08").is_dir() or not (DATA / "exchange-captures").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{DATA} is missing: CI must have ../shared/data")
        pytest.skip("../shared/data is absent")


def test_every_protocol_replays_renamed_markets_with_unbroken_chains() -> None:
    frames = _module("scale_frames")
    b = frames.protocol("binance")
    d = [json.loads(b.frame("S0007", i)) for i in range(50)]
    assert all(x["stream"] == "s0007usdt@depth@100ms" and x["data"]["s"] == "S0007USDT" for x in d)
    last = json.loads(b.rest["/api/v3/depth"]({}, [])).get("lastUpdateId")
    assert d[0]["data"]["U"] <= last + 1 <= d[0]["data"]["u"]
    assert all(y["data"]["U"] == x["data"]["u"] + 1 for x, y in itertools.pairwise(d))
    okx = frames.protocol("okx")
    n = len(okx.templates)
    laps = {}
    for m in ("S0000", "S0001", "S0002"):
        o = [json.loads(okx.frame(m, i)) for i in range(2 * n + 2)]  # across the ends of the recording
        assert o[0]["action"] == "snapshot" and o[0]["arg"]["instId"] == f"{m}-USDT"
        for x, y in itertools.pairwise(o):
            want = -1 if y["action"] == "snapshot" else x["data"][0]["seqId"]
            assert y["data"][0]["prevSeqId"] == want
        laps[m] = [i for i, x in enumerate(o) if x["action"] == "snapshot"]
        assert len(laps[m]) >= 3 and laps[m][2] - laps[m][1] == n  # full laps after the first
    assert len({v[1] for v in laps.values()}) == 3  # markets do not reach their snapshot together
    g = [json.loads(frames.protocol("bitget").frame("S0002", i)) for i in range(3)]
    assert g[0]["action"] == "snapshot" and g[0]["arg"] == {"instType": "SPOT", "channel": "books",
                                                            "instId": "S0002USDT"}
    assert all(x["_t"] == 10**18 for x in d + o + g)  # the stamp slot the venue writes into


def test_a_venue_behind_its_schedule_is_counted_late_and_invalidates_the_run() -> None:
    venue = _module("scale_venue")
    sched = _module("scale_schedule").Schedule(200.0, "smooth", 1.0)
    v = venue.Venue("okx", 2, sched)
    # the schedule started a second ago: every frame is sent > 5 ms after it was due
    r = asyncio.run(v.send(time.time_ns() - 1_000_000_000))
    assert r["late"] == len(v.frames) == 200 and r["max_late_ms"] > 5
    assert not _module("scale_report").venue_valid(r["late"], r["sent"] or len(v.frames))
    assert _module("scale_report").venue_valid(0, 200)


def test_a_small_run_of_every_protocol_keeps_every_book_valid_and_measures_each_frame() -> None:
    bench = _module("scale_bench")
    r = bench.run_once(6, 120.0, "burst", seconds=1.0, warmup=0.5)
    assert r["books"] == 6 and r["valid_books"] == 6 and r["engine_processes"] == 1
    assert r["processed_per_s"] > 0 and r["p50_ms"] is not None and r["p99_ms"] >= r["p50_ms"]
    assert r["venue_sent"] == 420 and r["cold_start_s"] is not None  # every frame left: 3 venues x 40/s x 3.5 s


def test_the_harness_drives_a_sharded_engine_that_discovers_its_markets() -> None:
    """``arb run --live --symbols all --shards 2`` against the local venues: the markets come from
    the venues' ccxt metadata, every book is valid and both shard processes are measured."""
    bench = _module("scale_bench")
    r = bench.run_once(6, 120.0, "smooth", seconds=1.0, warmup=0.5, extra=["--shards", "2"], symbols_all=True)
    assert r["books"] == 6 and r["valid_books"] == 6 and r["engine_processes"] == 3  # the parent and its two shards
    assert r["processed_per_s"] > 0 and r["p99_ms"] is not None


def test_the_receive_bench_gets_every_frame_each_way(capsys: pytest.CaptureFixture[str]) -> None:
    recv = _module("recv_bench")
    assert recv.main(["--frames", "200", "--runs", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == set(recv.MODES) and all(v["cpu_us_per_frame"] > 0 for v in out.values())
