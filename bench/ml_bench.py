"""ML benchmark: training time per epoch (CPU), inference latency per score, and the engine's
decision latency with model scoring enabled vs disabled.

    python bench/ml_bench.py [--runs 5] [--epochs 3] [--demo-seconds 60]

- training: the real Binance captures (spot + USDⓈ-M BTC/USDT, ~11 minutes) replayed into a
  scratch SQLite database, the basis group's spread series (100 ms steps) trained with the
  default ``arb retrain`` shape (window 32, horizon 5, 32 hidden units), one thread; the median
  epoch time;
- inference: the scorer thread's time per score (window -> inputs -> model -> dict), p50/p99
  over every window of the demo runs below;
- engine: the simulated demo market for ``--demo-seconds`` simulated seconds, run alternately
  without and with the scorer attached (``[ml] use = "size"``) with the same seed; the median
  over ``--runs`` pairs of the per-book decision latency p50 / p99 and of the per-message
  latency p50, and the with/without ratio of each (same process, interleaved runs).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance-2024-08-08"
T0 = 1_800_000_000 * 1_000_000_000


def replay_real(db: Any) -> None:
    from cryptoarb.config import load_settings
    from cryptoarb.engine.engine import Engine
    from cryptoarb.replay.reader import parse_sources
    from cryptoarb.replay.run import replay
    from cryptoarb.storage.writer import StorageWriter

    w = StorageWriter(db, "bench")
    srcs = parse_sources([f"binance:{DATA / 'spot_btcusdt_20240808.gz'}",
                          f"binance:{DATA / 'spot_btcusdt_20240809.gz'}",
                          f"binanceusdm:{DATA / 'usdm_btcusdt_20240808.gz'}"])
    eng = Engine(load_settings(), [s.venue for s in srcs], sink=w, run_id="bench")
    replay(eng, srcs)
    eng.finish()
    w.close()


def demo_run(settings: Any, seconds: float, db: Any | None) -> tuple[dict[str, float], Any]:
    from cryptoarb.demo.run import build_demo
    from cryptoarb.ml.scorer import attach

    demo = build_demo(settings, seed=5)
    scorer = attach(demo.engine, settings, db) if db is not None else None
    demo.run(seconds, live=False, speed=None, start_ns=T0)
    if scorer is not None:
        scorer.drain()
        scorer.close()
    e = demo.engine
    d = e.decision.percentiles_us(50, 99)
    m = e.latency.percentiles_us(50)
    return {"decision_p50": d["p50"], "decision_p99": d["p99"], "message_p50": m["p50"]}, scorer


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--demo-seconds", type=float, default=60.0)
    a = ap.parse_args(argv)

    from sqlalchemy.orm import Session

    from cryptoarb.config import load_settings
    from cryptoarb.engine.latency import LatencyRecorder
    from cryptoarb.ml import registry as R
    from cryptoarb.ml.export import load_series
    from cryptoarb.ml.train import TrainConfig, train
    from cryptoarb.storage.db import connect

    with tempfile.TemporaryDirectory() as tmp:
        db = connect(str(Path(tmp) / "bench.db"))
        replay_real(db)
        series = load_series(db, group="BTC/USDT basis")
        res = train(series, TrainConfig(epochs=a.epochs))
        epoch_s = statistics.median(res.epoch_seconds)
        n = res.metrics["train_windows"]
        print(f"training (CPU, 1 thread): {len(series):,} samples, {n:,} training windows, "
              f"{statistics.median(res.epoch_seconds):.3f} s/epoch (median of {a.epochs}; "
              f"{epoch_s / n * 1e6:.1f} µs per window)")
        with Session(db) as s:
            info = R.register(s, tmp, res.blob, res.metrics, res.schema, res.data_range, "bench")
            R.swap(s, tmp, info.sha256, "bench")
        on = load_settings(ml={"use": "size", "models_dir": tmp, "score_max_age_ms": 1e9})
        off = load_settings()
        without: list[dict[str, float]] = []
        with_: list[dict[str, float]] = []
        lat = LatencyRecorder()
        scored = 0
        for _ in range(a.runs):
            without.append(demo_run(off, a.demo_seconds, None)[0])
            r, scorer = demo_run(on, a.demo_seconds, db)
            with_.append(r)
            lat.merge(scorer.latency)
            scored += scorer.scored
        if lat.n:
            p = lat.percentiles_us(50, 99)
            print(f"inference per score (scorer thread): p50 {p['p50']:.0f} µs, "
                  f"p99 {p['p99']:.0f} µs over {scored:,} scores")
        else:
            print("inference per score: no window filled (--demo-seconds shorter than the model's window)")
        print(f"engine, demo {a.demo_seconds:g} s x {a.runs} interleaved pairs (median of runs):")
        print(f"{'':22}{'scoring off':>14}{'scoring on':>14}{'ratio':>8}")
        for k in ("decision_p50", "decision_p99", "message_p50"):
            x = statistics.median(r[k] for r in without)
            y = statistics.median(r[k] for r in with_)
            print(f"{k + ' (µs)':22}{x:>14.2f}{y:>14.2f}{y / x if x else float('nan'):>8.2f}")
        db.dispose()


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t:.0f} s)")
