"""The quality figures ``arb retrain`` reports, on inputs whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from cryptoarb.ml import metrics as M
from cryptoarb.ml.dataset import DatasetError, from_columns, split_by_time, windows


def test_auc_counts_pairs_and_ties() -> None:
    # positives 0.9, 0.4; negatives 0.5, 0.4, 0.1: pairs won 3 + (0 + 0.5 + 1) = 4.5 of 6
    assert M.auc(np.array([0.9, 0.4, 0.5, 0.4, 0.1]), np.array([1, 1, 0, 0, 0])) == pytest.approx(4.5 / 6)
    assert M.auc(np.array([0.2, 0.3]), np.array([1, 1])) is None  # one class: undefined, not 0.5


def test_calibration_and_rule() -> None:
    cal = M.calibration(np.array([0.05, 0.05, 0.95, 0.95]), np.array([0, 1, 1, 1]))
    assert [(b["n"], b["rate"]) for b in cal["bins"]] == [(2, 0.5), (2, 1.0)]
    assert cal["brier"] == pytest.approx((0.05**2 + 0.95**2 + 2 * 0.05**2) / 4)
    assert cal["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    now = np.array([5.0, 1.0, 6.0, 7.0])
    fut = np.array([4.0, 9.0, 1.0, 8.0])
    base = M.trading_rule(now, fut, 3.0)  # trades steps 0, 2, 3: +1, -2, +5
    assert (base["trades"], base["pnl_bps"]) == (3, 4.0)
    with_model = M.trading_rule(now, fut, 3.0, np.array([4.0, 9.0, 2.0, 8.0]))  # drops step 2
    assert (with_model["trades"], with_model["pnl_bps"]) == (2, 6.0)
    pnl = np.array([1.0, 0.0, 0.0, 5.0])
    assert with_model["sharpe"] == pytest.approx(pnl.mean() / pnl.std())


def test_windows_do_not_span_gaps_or_runs_and_the_split_is_in_time() -> None:
    n = 100
    ts = np.arange(n, dtype=np.int64) * 100
    ts[50:] += 10_000  # a pause: two segments of 50
    cols = {"ts_ns": ts, "group": ["g"] * n, "spread_bps": np.arange(n, dtype=float), "mid": np.full(n, 100.0),
            "imbalance": np.zeros(n), "depth_quote": np.ones(n), "book_spread_bps": np.ones(n)}
    w = windows(from_columns(cols, "t"), window=10, horizon=5)
    assert len(w) == 2 * (50 - 15 + 1)
    assert np.all(w.spread_future - w.spread_now == 5)  # never across the pause
    tr, va = split_by_time(w, 0.25, 10, 10)
    assert tr.target_ns.max() < va.ts_ns.min()
    with pytest.raises(DatasetError, match="too small"):
        split_by_time(w, 0.25, 60, 20)
