"""Model quality, reported honestly: errors against naive baselines, the survival classifier's
ranking and calibration, and what the trading rule earns with and without the model.

The trading rule (docs/ml.md): at a step whose spread is above the edge (an opportunity), trade;
the trade earns the spread ``horizon`` steps later (when the orders arrive) minus the edge (the
cost). With the model, trade only when the model also predicts the spread then to be above the
edge. Sharpe is the mean over the standard deviation of the per-step PnL series (0 on steps
without a trade), not annualised.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

FArray = npt.NDArray[np.float64]


def rmse(pred: FArray, actual: FArray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - actual) ** 2))) if len(actual) else math.nan


def auc(scores: FArray, labels: FArray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half); None with one class only."""
    labels = np.asarray(labels, bool)
    pos = int(labels.sum())
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(scores, kind="stable")
    s = np.asarray(scores)[order]
    ranks = np.empty(len(s), np.float64)
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    r = np.empty(len(s), np.float64)
    r[order] = ranks
    return float((r[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def calibration(prob: FArray, labels: FArray, bins: int = 10) -> dict[str, Any]:
    """Reliability table (per probability bin: mean prediction, observed rate, count), the
    Brier score and the expected calibration error."""
    prob = np.asarray(prob, np.float64)
    y = np.asarray(labels, np.float64)
    if not len(prob):
        return {"bins": [], "brier": None, "ece": None}
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    table = []
    ece = 0.0
    for b in range(bins):
        m = which == b
        n = int(m.sum())
        if n:
            mp, rate = float(prob[m].mean()), float(y[m].mean())
            ece += n / len(prob) * abs(mp - rate)
            table.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "mean_p": mp, "rate": rate, "n": n})
    return {"bins": table, "brier": float(np.mean((prob - y) ** 2)), "ece": ece}


def sharpe(pnl: FArray) -> float | None:
    """Mean / standard deviation of a per-step PnL series; None when it never moves."""
    if len(pnl) < 2:
        return None
    sd = float(np.std(pnl))
    return float(np.mean(pnl)) / sd if sd > 0 else None


def trading_rule(spread_now: FArray, spread_future: FArray, edge_bps: float,
                 predicted_future: FArray | None = None) -> dict[str, Any]:
    """PnL per step of the rule (see the module docstring), with or without the model."""
    trade = spread_now > edge_bps
    if predicted_future is not None:
        trade &= predicted_future > edge_bps
    pnl = np.where(trade, spread_future - edge_bps, 0.0)
    return {"trades": int(trade.sum()), "pnl_bps": float(pnl.sum()), "sharpe": sharpe(pnl),
            "hit_rate": float((pnl[trade] > 0).mean()) if trade.any() else None}


def finite(obj: Any) -> Any:
    """Metrics as strict JSON: NaN and infinities become None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    return obj
