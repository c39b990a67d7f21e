"""Sharding under load (issue #15, "use every core"): one process against N shard processes,
side by side in one sitting, on the load harness's venue (``bench/scale_bench.py``).

The venue is scale_bench's (its own process, 127.0.0.1, Binance combined streams + REST depth,
the real BTCUSDT diffs of ``../shared/data/binance-2024-08-08`` renamed into ``--symbols``
markets on ``binance`` and ``binanceus``: every market a cross-venue group). The engine side
runs in child processes either way, so both are measured alike:

- ``1 process``: one child follows every market (the single-process live path);
- ``N shards``: the markets are partitioned by ``cryptoarb.shard.partition`` (whole groups) and
  each child follows its part, with its own connections, books and detection -- what a shard
  process of ``arb run --live --shards N`` runs.

Each child builds ``Engine`` + one ``VenueFeed`` per venue (detection included: the engine is
given the markets, so every update is compared across venues) and measures tick-to-decision
from each frame's scheduled send time to the return of ``Engine.on_message``, over the window
after warm-up; the parent merges the children's histograms (percentiles of all samples, not an
average of percentiles) and adds their CPU.

    python bench/shard_bench.py --symbols 100 --rates 2000,4000,8000 --shards 2 --repeat 3

The machine's cores are shared by the venue process too: on 2 cores, 2 shards + the venue is
three busy processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
KNEE_P99_MS = 10.0


def _child(names: list[str], ports: tuple[int, int], start_q: Any, out_q: Any, seconds: float) -> None:
    asyncio.run(_engine_side(names, ports, start_q, out_q, seconds))


async def _engine_side(names: list[str], ports: tuple[int, int], start_q: Any, out_q: Any, seconds: float) -> None:
    from cryptoarb.config import load_settings
    from cryptoarb.engine import Engine
    from cryptoarb.engine.engine import build_catalog
    from cryptoarb.engine.latency import LatencyRecorder
    from cryptoarb.live.backoff import Backoff
    from cryptoarb.live.feed import VenueFeed
    from cryptoarb.live.rest import CcxtRest
    from scale_bench import VENUES, _cpu_s, _rss_mb

    ws_port, http_port = ports
    settings = load_settings(storage={"enabled": False})
    catalog = build_catalog(settings)
    per_venue = {}
    for v in VENUES:
        btc = catalog.get(v, "BTC/USDT")
        per_venue[v] = [replace(btc, symbol=f"{n[:-4]}/USDT", base=n[:-4], exchange_symbol=n) for n in names]
        for inst in per_venue[v]:
            catalog.add(inst)
    engine = Engine(settings, list(VENUES), catalog=catalog, instruments=[i for v in VENUES for i in per_venue[v]])
    feeds = [VenueFeed(engine, v, per_venue[v], url=f"ws://127.0.0.1:{ws_port}/stream",
                       rest=CcxtRest(v, {"urls": {"api": {"public": f"http://127.0.0.1:{http_port}/api/v3"}},
                                         "enableRateLimit": False}),
                       stale_after=30.0, backoff=Backoff(0.05, 0.2)) for v in VENUES]
    lat = LatencyRecorder()
    window = {"start": 1 << 62, "n": 0, "all": 0}
    inner = engine.on_message
    time_ns = time.time_ns

    def on_message(handler: Any, raw: bytes, local_ns: int) -> int:
        kind = inner(handler, raw, local_ns)
        if local_ns >= window["start"]:
            window["all"] += 1
            at = raw.rfind(b'"ts":')
            if at > 0:
                lat.append(time_ns() - int(raw[at + 5 : -1]))
                window["n"] += 1
        return kind

    engine.on_message = on_message  # type: ignore[method-assign]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(f.run(stop)) for f in feeds]
    t0 = await asyncio.get_running_loop().run_in_executor(None, start_q.get, True, 120)
    window["start"] = t0 + 500_000_000
    await asyncio.sleep(max(0.0, (window["start"] - time.time_ns()) / 1e9))
    cpu0, wall0 = _cpu_s(), time.monotonic()
    await asyncio.sleep(max(0.5, seconds - 0.5))
    cpu, wall = _cpu_s() - cpu0, time.monotonic() - wall0
    lat.fold()
    counts = lat.counts
    out_q.put({"n": window["n"], "all": window["all"], "cpu": cpu, "wall": wall, "rss": _rss_mb(),
               "valid": sum(b.valid for b in engine.books.values()), "books": len(engine.books),
               "opps": engine.opportunities, "evaluations": engine.detector.evaluations,
               "hist": {"n": lat.n, "total": lat.total_ns,
                        "buckets": [[int(i), int(counts[i])] for i in counts.nonzero()[0]]}})
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def split(names: list[str], n: int) -> list[list[str]]:
    """The markets of each shard, as ``arb run --shards`` partitions them (whole groups)."""
    from cryptoarb.detect.groups import Group
    from cryptoarb.shard.partition import partition
    from scale_bench import VENUES

    groups = [Group(s, "spot", tuple(f"{v} {s}" for v in VENUES)) for s in names]
    parts = partition([f"{v} {s}" for s in names for v in VENUES], groups, n)
    return [list(dict.fromkeys(k.split(" ", 1)[1] for k in p.keys)) for p in parts]


def run_once(n_symbols: int, rate: float, mode: str, seconds: float, warmup: float, shards: int) -> dict[str, Any]:
    from cryptoarb.shard.summary import merge_latency
    from scale_bench import _venue_main, symbols

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    venue = ctx.Process(target=_venue_main, args=(q, n_symbols, rate, mode, warmup, seconds, False), daemon=True)
    venue.start()
    kids: list[Any] = []
    try:
        ports = q.get(timeout=60)
        out_q = ctx.Queue()
        starts = []
        for names in split(symbols(n_symbols), shards):
            sq = ctx.Queue()
            starts.append(sq)
            kids.append(ctx.Process(target=_child, args=(names, ports, sq, out_q, seconds), daemon=True))
            kids[-1].start()
        m = q.get(timeout=120)
        assert m[0] == "t0", m
        for sq in starts:
            sq.put(m[1])
        res = [out_q.get(timeout=seconds + 120) for _ in kids]
        late = -1
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                m = q.get(timeout=0.5)
            except Exception:
                continue
            if m[0] == "done":
                late = m[1]
                break
        wall = max(r["wall"] for r in res)
        n = sum(r["n"] for r in res)
        cpu = sum(r["cpu"] for r in res)
        lat = merge_latency([{"latency_hist": r["hist"]} for r in res])
        pct = lat.summary_us()
        return {"shards": shards, "mode": mode, "books": 2 * n_symbols, "offered_per_s": rate,
                "processed_per_s": round(n / wall, 1), "cpu_pct": round(100 * cpu / wall, 1),
                "cpu_us_per_book_msg": round(1e6 * cpu / n, 2) if n else None,
                "p50_ms": round(pct["p50"] / 1e3, 3), "p99_ms": round(pct["p99"] / 1e3, 3),
                "p999_ms": round(pct["p999"] / 1e3, 3), "rss_mb": round(sum(r["rss"] for r in res), 1),
                "valid_books": sum(r["valid"] for r in res), "evaluations": sum(r["evaluations"] for r in res),
                "venue_late_frames": late}
    finally:
        for k in kids:
            k.join(10)
            if k.exitcode is None:
                k.terminate()
        venue.terminate()
        venue.join(5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", type=int, default=100, help="markets per venue (2 venues)")
    ap.add_argument("--rates", default="2000,4000,8000", help="depth frames/s offered, comma-separated")
    ap.add_argument("--mode", choices=("smooth", "burst"), default="smooth")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="runs per (rate, layout); medians printed")
    a = ap.parse_args(argv)
    rates = [float(x) for x in a.rates.split(",")]
    if a.symbols < a.shards or a.shards < 2 or a.repeat < 1 or any(r <= 0 for r in rates):
        ap.error("need --shards >= 2, --symbols >= --shards, positive rates and --repeat")
    table = []
    for rate in rates:
        rows: dict[int, list[dict[str, Any]]] = {1: [], a.shards: []}
        for _ in range(a.repeat):  # interleaved: both layouts see the same machine
            for n in (1, a.shards):
                r = run_once(a.symbols, rate, a.mode, a.seconds, a.warmup, n)
                rows[n].append(r)
                print(json.dumps(r), flush=True)
        med = {n: {k: statistics.median(r[k] for r in rs) for k in ("processed_per_s", "cpu_pct", "p50_ms",
                                                                     "p99_ms", "p999_ms", "rss_mb")}
               for n, rs in rows.items()}
        one, many = med[1], med[a.shards]
        line = {"rate": rate, "mode": a.mode, "one": one, f"shards{a.shards}": many,
                "p99_ratio": round(one["p99_ms"] / many["p99_ms"], 2) if many["p99_ms"] else None,
                "processed_ratio": round(many["processed_per_s"] / one["processed_per_s"], 2)
                if one["processed_per_s"] else None,
                "one_ok": one["p99_ms"] < KNEE_P99_MS and one["processed_per_s"] >= 0.9 * rate,
                "shards_ok": many["p99_ms"] < KNEE_P99_MS and many["processed_per_s"] >= 0.9 * rate}
        table.append(line)
        print(json.dumps({"median": line}), flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.environ.get("SCALE_SRC", str(ROOT / "src")))
    raise SystemExit(main())
