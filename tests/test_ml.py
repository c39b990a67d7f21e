"""The model lifecycle end to end, on features the engine logged while replaying the real
Binance captures (spot vs USDⓈ-M: the basis group's spread series) and running the simulated
demo market (opportunities, trades and their labels): export -> retrain -> archive named by its
SHA256 -> shadow test -> promote -> swap -> roll back -> the registry reports the right version.

Model quality is reported by ``arb retrain`` (docs/ml.md), never asserted here: the assertions
are about the lifecycle and its data. Models are tiny (8 hidden units, 2 epochs): seconds."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cryptoarb.cli import app
from cryptoarb.config import load_settings
from cryptoarb.storage.db import connect
from cryptoarb.storage.models import AuditLog, TrainingFeature
from cryptoarb.storage.models_ml import ShadowScore, ShadowTest, SpreadSample
from cryptoarb.storage.writer import StorageWriter

TINY = ["--epochs", "2", "--hidden", "8", "--window", "16", "--horizon", "5"]


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    r = CliRunner().invoke(app, list(args), env=env)
    assert "Traceback" not in (r.output or ""), r.output
    return r


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[str, Engine, Path]:
    """A SQLite database holding one replay of the real captures and one demo run."""
    from cryptoarb.demo.run import build_demo
    from cryptoarb.engine.engine import Engine as ArbEngine
    from cryptoarb.replay.reader import parse_sources
    from cryptoarb.replay.run import replay

    tmp = tmp_path_factory.mktemp("ml")
    url = str(tmp / "ml.db")
    db = connect(url)
    settings = load_settings()
    w = StorageWriter(db, "real")
    srcs = parse_sources([f"binance:{shared_data / 'spot_btcusdt_20240808.gz'}",
                          f"binance:{shared_data / 'spot_btcusdt_20240809.gz'}",
                          f"binanceusdm:{shared_data / 'usdm_btcusdt_20240808.gz'}"])
    eng = ArbEngine(settings, [s.venue for s in srcs], sink=w, run_id="real")
    replay(eng, srcs)
    eng.finish()
    w.close()
    w = StorageWriter(db, "demo")
    demo = build_demo(settings, sink=w, seed=11)
    demo.run(90, live=False, speed=None, start_ns=1_800_000_000_000_000_000)
    w.close()
    return url, db, tmp


def test_feature_logger_rows_and_series(store: tuple[str, Engine, Path]) -> None:
    _, db, _ = store
    with Session(db) as s:
        real = s.execute(select(SpreadSample.group, func.count(), func.min(SpreadSample.ts_ns),
                                func.max(SpreadSample.ts_ns)).where(SpreadSample.run_id == "real")
                         .group_by(SpreadSample.group)).all()
        rows = s.scalars(select(TrainingFeature).where(TrainingFeature.run_id == "demo")).all()
    # the real captures: one basis group (spot vs perpetual) sampled every 100 ms over ~11 minutes
    assert [r[0] for r in real] == ["BTC/USDT basis"]
    _, n, t0, t1 = real[0]
    assert n > 5_000 and (t1 - t0) / 1e9 > 600
    # the demo: opportunities and trades, each labelled once its execution time passed
    kinds = {r.kind for r in rows}
    assert kinds == {"opportunity", "trade"}
    for r in rows:
        f = r.features
        for key in ("buy_venue", "sell_venue", "qty_base", "buy_imbalance", "buy_depth1_quote", "buy_depth5_quote",
                    "sell_depth10_quote", "volatility_bps", "spread_hist_bps", "buy_age_ms", "decision_latency_us",
                    "edge_after_bps"):
            assert key in f, key
        assert f["buy_depth1_quote"] <= f["buy_depth5_quote"] <= f["buy_depth10_quote"]
        assert r.label == (1.0 if f["edge_after_bps"] > 0 else 0.0)
        if r.kind == "trade":
            assert r.realised_pnl is not None
    assert any(len(r.features["spread_hist_bps"]) == 10 for r in rows)


def test_export_formats_hold_the_same_series(store: tuple[str, Engine, Path]) -> None:
    from cryptoarb.ml.dataset import load

    url, _, tmp = store
    loaded = []
    for fmt in ("csv", "parquet", "npz"):
        out = tmp / f"series.{fmt}"
        r = run("features", "export", "--db", url, "--format", fmt, "--out", str(out), "--group", "BTC/USDT basis")
        assert r.exit_code == 0, r.output
        loaded.append(load(out))
    a = loaded[0]
    assert len(a) > 5_000 and set(a.group.tolist()) == {"BTC/USDT basis"}
    for b in loaded[1:]:
        assert np.array_equal(a.ts_ns, b.ts_ns)
        for k, v in a.values.items():
            assert np.allclose(v, b.values[k], rtol=1e-12, atol=0), k
    r = run("features", "export", "--db", url, "--table", "opportunities", "--format", "csv",
            "--out", str(tmp / "opps.csv"))
    assert r.exit_code == 0, r.output
    header = (tmp / "opps.csv").read_text().splitlines()[0].split(",")
    for col in ("label", "realised_pnl", "kind", "volatility_bps", "buy_depth5_quote", "spread_hist_bps"):
        assert col in header
    # a range with nothing in it: exit 3, nothing written
    r = run("features", "export", "--db", url, "--out", str(tmp / "none.csv"), "--until", "2001-01-01")
    assert r.exit_code == 3 and not (tmp / "none.csv").exists()


def _archive_ok(models: Path, sha: str, db: Engine) -> None:
    blob = (models / "archive" / f"{sha}.pt").read_bytes()
    assert hashlib.sha256(blob).hexdigest() == sha
    with db.connect() as c:
        row = c.execute(text("select sha256, version, path from model_metadata where sha256 = :s"), {"s": sha}).one()
    assert row[0] == row[1] == sha and row[2].endswith(f"{sha}.pt")


def test_lifecycle_retrain_shadow_promote_swap_rollback(store: tuple[str, Engine, Path]) -> None:
    from cryptoarb.ml import registry as R

    url, db, tmp = store
    models = tmp / "models"
    series = tmp / "basis.parquet"
    assert run("features", "export", "--db", url, "--format", "parquet", "--out", str(series),
               "--group", "BTC/USDT basis").exit_code == 0
    assert R.model_version(db)["status"] == "no model"
    swaps: list[R.SwapEvent] = []
    R.add_swap_listener(swaps.append)
    try:
        # same data + seed -> same bytes -> same hash (run twice)
        shas = []
        for _ in range(2):
            out = tmp / "m.json"
            r = run("retrain", *TINY, "--from", str(series), "--db", url, "--models-dir", str(models),
                    "--json", str(out))
            assert r.exit_code == 0, r.output
            assert "RMSE model / persistence / linear" in r.output
            shas.append(json.loads(out.read_text())["sha256"])
        a = shas[0]
        assert shas[1] == a
        _archive_ok(models, a, db)
        metrics = json.loads(out.read_text())["metrics"]
        for k in ("val_loss", "rmse", "survival", "rule", "epoch_seconds"):
            assert k in metrics
        assert set(metrics["rmse"]) == {"model", "persistence", "linear"}

        # shadow test of the first model: the reference is the persistence forecast
        r = run("model", "shadow", "--version", a[:12], "--from", str(series), "--db", url,
                "--models-dir", str(models), "--window", "500")
        assert r.exit_code == 0, r.output
        with Session(db) as s:
            t = s.scalars(select(ShadowTest).order_by(ShadowTest.id.desc())).first()
            assert t is not None and t.candidate == a and t.live is None and t.window == 500
            assert t.promoted == (t.candidate_value < t.live_value)  # type: ignore[operator]
            per_model = dict(s.execute(select(ShadowScore.model, func.count()).where(ShadowScore.test_id == t.id)
                                       .group_by(ShadowScore.model)).all())
            assert per_model == {a: 500, "persistence": 500}
            if not t.promoted:
                assert R.get_model(s, a).status == "rejected" and R.live_model(s) is None
                assert R.model_version(db)["status"] == "no model"
        assert run("model", "swap", "--version", a, "--db", url, "--models-dir", str(models)).exit_code == 0
        with Session(db) as s:
            assert R.live_model(s).sha256 == a  # type: ignore[union-attr]

        # a second model (other seed) is trained with the first one live: that is its parent
        r = run("retrain", *TINY, "--seed", "8", "--from", str(series), "--db", url, "--models-dir", str(models),
                "--json", str(out))
        assert r.exit_code == 0, r.output
        b = json.loads(out.read_text())["sha256"]
        assert b != a
        _archive_ok(models, b, db)
        with Session(db) as s:
            assert R.get_model(s, b).parent == a and R.get_model(s, b).status == "candidate"
            res = __import__("cryptoarb.ml.shadow", fromlist=["x"]).shadow_test(
                s, models, b, __import__("cryptoarb.ml.dataset", fromlist=["x"]).load(series), "rmse", 300)
            assert res.live == a and res.window == 300
            assert res.promoted == (res.candidate_value < res.live_value)
            assert R.live_model(s).sha256 == (b if res.promoted else a)  # type: ignore[union-attr]
            n = s.scalar(select(func.count()).select_from(ShadowScore).where(ShadowScore.test_id == res.test_id))
            assert n == 600  # both score sets stored
        # forward to b, then roll back to a: the registry reports each, the audit log has both, and
        # each swap is an alert ([alerts] urls: a local webhook speaking apprise's json:// protocol)
        from tests.alertkit import Webhook, wait_for

        expected = []
        with Webhook() as hook:
            for target in (b, a):
                with Session(db) as s:
                    before = R.live_model(s).sha256  # type: ignore[union-attr]
                if before != target:  # b is already live when its shadow test promoted it
                    expected.append(f"model {target[:12]} is live (was {before[:12]})")
                r = run("model", "swap", "--version", target, "--reason", "test", "--db", url,
                        "--models-dir", str(models), env={"ARB_ALERTS__URLS": json.dumps([hook.url()])})
                assert r.exit_code == 0, r.output
                with Session(db) as s:
                    live = R.live_model(s)
                    assert live is not None and live.sha256 == target
                    assert [m.sha256 for m in R.list_models(s) if m.status == "live"] == [target]
            assert wait_for(lambda: len(hook.received) == len(expected))
        assert [t.split(": ", 1)[1] for t in hook.titles()] == expected and expected
        r = run("model", "show", "--db", url)
        assert r.exit_code == 0 and json.loads(r.output)["sha256"] == a
        api = R.model_version(db)  # what GET /api/model/version answers
        assert api["status"] == "ok" and api["version"] == api["sha256"] == a
        assert swaps[-2:] == [swaps[-2], swaps[-1]] and (swaps[-1].old, swaps[-1].new) == (b, a)
        with Session(db) as s:
            acts = s.scalars(select(AuditLog.detail).where(AuditLog.action == "model.swap")).all()
        assert {"old": b, "new": a, "reason": "test"} in acts
        r = run("model", "list", "--db", url)
        assert r.exit_code == 0 and a[:12] in r.output and b[:12] in r.output
    finally:
        R.swap_listeners.remove(swaps.append)


def test_bad_input_gives_clear_errors_and_keeps_the_live_model(store: tuple[str, Engine, Path]) -> None:
    from cryptoarb.ml import registry as R
    from cryptoarb.ml.dataset import DatasetError, from_columns, load

    url, db, tmp = store
    models = tmp / "models-bad"
    series = tmp / "bad-src.npz"
    assert run("features", "export", "--db", url, "--format", "npz", "--out", str(series),
               "--group", "BTC/USDT basis").exit_code == 0
    r = run("retrain", *TINY, "--from", str(series), "--db", url, "--models-dir", str(models), "--json",
            str(tmp / "bad.json"))
    assert r.exit_code == 0, r.output
    good = json.loads((tmp / "bad.json").read_text())["sha256"]
    assert run("model", "swap", "--version", good, "--db", url, "--models-dir", str(models)).exit_code == 0

    def live() -> str:
        with Session(db) as s:
            m = R.live_model(s)
            return m.sha256 if m else ""

    def fails(args: list[str], *words: str) -> None:
        r = run(*args)
        assert r.exit_code == 2, r.output
        out = " ".join(r.output.split())
        for w in words:
            assert w in out, (w, out)
        assert live() == good

    src = load(series)
    cols: dict[str, Any] = {"ts_ns": src.ts_ns, "group": src.group, **src.values}
    # empty, too small, a missing column, NaN features
    empty = tmp / "empty.csv"
    empty.write_text("ts_ns,group,spread_bps,mid,imbalance,depth_quote,book_spread_bps\n")
    fails(["retrain", *TINY, "--from", str(empty), "--db", url, "--models-dir", str(models)], "empty dataset")
    small = tmp / "small.npz"
    np.savez(small, **{k: np.asarray(v)[:40] for k, v in cols.items()})
    fails(["retrain", *TINY, "--from", str(small), "--db", url, "--models-dir", str(models)], "too small")
    missing = tmp / "missing.npz"
    np.savez(missing, **{k: np.asarray(v) for k, v in cols.items() if k != "imbalance"})
    fails(["retrain", *TINY, "--from", str(missing), "--db", url, "--models-dir", str(models)],
          "missing column(s) imbalance")
    nan = {k: np.array(v, copy=True) for k, v in cols.items()}
    nan["depth_quote"][123] = np.nan
    with pytest.raises(DatasetError, match="depth_quote has 1 NaN/infinite value"):
        from_columns(nan, "x")
    np.savez(tmp / "nan.npz", **nan)
    fails(["retrain", *TINY, "--from", str(tmp / "nan.npz"), "--db", url, "--models-dir", str(models)],
          "depth_quote", "first at row 123")
    # unknown version, not a hash
    fails(["model", "swap", "--version", "deadbeefdeadbeef", "--db", url, "--models-dir", str(models)],
          "unknown model version")
    fails(["model", "swap", "--version", "latest", "--db", url, "--models-dir", str(models)], "sha256")
    # a corrupted archive: hash mismatch, nothing changes
    r = run("retrain", *TINY, "--seed", "9", "--from", str(series), "--db", url, "--models-dir", str(models),
            "--json", str(tmp / "bad.json"))
    other = json.loads((tmp / "bad.json").read_text())["sha256"]
    path = models / "archive" / f"{other}.pt"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    fails(["model", "swap", "--version", other, "--db", url, "--models-dir", str(models)], "corrupt",
          "live model is unchanged")
    path.unlink()
    fails(["model", "swap", "--version", other, "--db", url, "--models-dir", str(models)], "cannot be read")
    # CUDA asked for, no GPU
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    fails(["retrain", *TINY, "--device", "cuda", "--from", str(series), "--db", url, "--models-dir", str(models)],
          "no CUDA GPU")


def test_scores_reach_the_detector_off_the_hot_path(store: tuple[str, Engine, Path]) -> None:
    """A demo run with the live model as a filter: the scorer thread scores every sample window,
    the detector reads the scores; a survival threshold of 1 filters every scored cross."""
    from cryptoarb.demo.run import build_demo
    from cryptoarb.ml import scorer as S
    from cryptoarb.ml.dataset import load
    from cryptoarb.ml.pipeline import retrain
    from cryptoarb.ml.train import TrainConfig

    url, db, tmp = store
    models = tmp / "models-demo"
    demo_series = tmp / "demo.npz"
    assert run("features", "export", "--db", url, "--format", "npz", "--out", str(demo_series),
               "--group", "BTC/USDT").exit_code == 0
    out = retrain(db, str(models), load(demo_series), TrainConfig(epochs=1, hidden=8, window=16), "test")
    from cryptoarb.ml import registry as R

    with Session(db) as s:
        R.swap(s, models, out.model.sha256, "test")
    settings = load_settings(ml={"use": "filter", "min_survival": 1.0, "models_dir": str(models),
                                 "score_max_age_ms": 1e9})
    base = build_demo(settings, seed=11)
    base_summary = base.run(20, live=False, speed=None, start_ns=1_800_000_000_000_000_000)
    demo = build_demo(settings, seed=11)
    scorer = S.attach(demo.engine, settings, db)
    assert scorer is not None and scorer.version == out.model.sha256
    try:
        summary = demo.run(20, live=False, speed=None, start_ns=1_800_000_000_000_000_000)
        scorer.drain()
    finally:
        scorer.close()
    assert scorer.scored > 0 and scorer.errors == 0
    assert set(scorer.latest) <= {"BTC/USDT", "ETH/USDT"} and all(0 <= p <= 1 for p in scorer.scores.values())
    assert demo.engine.detector.model_skipped > 0
    assert summary["opportunities"] < base_summary["opportunities"]


def test_shadow_on_the_live_stream(store: tuple[str, Engine, Path]) -> None:
    """``[ml] shadow_candidate``: during a run the candidate is judged on the stream the live
    model scores; both score sets are stored and the decision follows the metric."""
    from cryptoarb.demo.run import build_demo
    from cryptoarb.ml import registry as R
    from cryptoarb.ml import scorer as S
    from cryptoarb.ml.dataset import load
    from cryptoarb.ml.pipeline import retrain
    from cryptoarb.ml.shadow import ShadowResult
    from cryptoarb.ml.train import TrainConfig

    url, db, tmp = store
    models = tmp / "models-live-shadow"
    demo_series = tmp / "demo-shadow.npz"
    assert run("features", "export", "--db", url, "--format", "npz", "--out", str(demo_series),
               "--since", "2027-01-01").exit_code == 0  # the demo run only (its clock starts in 2027)
    series = load(demo_series)
    live = retrain(db, str(models), series, TrainConfig(epochs=1, hidden=8, window=16, seed=1), "live").model
    cand = retrain(db, str(models), series, TrainConfig(epochs=1, hidden=8, window=16, seed=2), "cand").model
    with Session(db) as s:
        R.swap(s, models, live.sha256, "test")
    settings = load_settings(ml={"use": "size", "models_dir": str(models), "score_max_age_ms": 1e9,
                                 "shadow_candidate": cand.sha256[:10], "shadow_window": 50})
    demo = build_demo(settings, seed=3)
    scorer = S.attach(demo.engine, settings, db)
    assert scorer is not None
    try:
        demo.run(20, live=False, speed=None, start_ns=1_900_000_000_000_000_000)
        scorer.drain(30)
    finally:
        scorer.close()
    res = scorer.shadow_result
    assert isinstance(res, ShadowResult), res
    assert res.live == live.sha256 and res.candidate == cand.sha256 and res.window == 50
    assert res.promoted == (res.candidate_value < res.live_value)  # type: ignore[operator]
    with Session(db) as s:
        per_model = dict(s.execute(select(ShadowScore.model, func.count()).where(ShadowScore.test_id == res.test_id)
                                   .group_by(ShadowScore.model)).all())
        assert per_model == {live.sha256: 50, cand.sha256: 50}
        assert R.live_model(s).sha256 == (cand.sha256 if res.promoted else live.sha256)  # type: ignore[union-attr]
    # an unknown candidate stops the start with a clear error
    bad = load_settings(ml={"use": "size", "models_dir": str(models), "shadow_candidate": "0123456789abcdef"})
    with pytest.raises(R.RegistryError, match="unknown model version"):
        S.attach(build_demo(bad, seed=3).engine, bad, db)


def test_engine_and_cli_do_not_import_torch() -> None:
    code = "import sys, cryptoarb.cli, cryptoarb.engine.engine, cryptoarb.ml.registry; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stdout + r.stderr


def test_weekly_schedule_is_sunday_0200_utc() -> None:
    from datetime import UTC, datetime

    from cryptoarb.config import ConfigError
    from cryptoarb.ml.schedule import trigger

    t = trigger(load_settings().ml.retrain_cron)
    nxt = t.get_next_fire_time(None, datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
    assert (nxt.weekday(), nxt.hour, nxt.minute, nxt.day) == (6, 2, 0, 6)
    with pytest.raises(ConfigError, match="retrain_cron"):
        trigger("every sunday")


def test_retrain_in_run_starts_the_weekly_job() -> None:
    from cryptoarb.ml.schedule import background

    sched = background(load_settings(ml={"retrain_in_run": True}))
    try:
        job = sched.get_job("weekly-retrain")
        nxt = job.next_run_time
        assert (nxt.weekday(), nxt.hour, nxt.minute, nxt.utcoffset().total_seconds()) == (6, 2, 0, 0)
    finally:
        sched.shutdown(wait=False)
