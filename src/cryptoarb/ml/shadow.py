"""Shadow test: a candidate scores a stream beside the live model; it is promoted only if it
beats the live model on the configured metric over the configured window. Both sets of scores
are stored (``shadow_scores``) with the decision (``shadow_tests``).

The stream is a spread series: replayed (a file or an exported range) or the live one
recorded by the FeatureLogger. Both models score the same steps (the last ``window`` steps that
both can score). With no live model, the reference is the persistence forecast (the spread
stays where it is), so a first model is promoted only if it beats doing nothing clever.

Metrics: ``rmse`` of the predicted spread (lower wins), ``auc`` of the survival score on the
opportunity steps (higher wins), ``sharpe`` of the trading rule with the model (higher wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from cryptoarb.ml import metrics as M
from cryptoarb.ml import registry as R
from cryptoarb.ml.dataset import DatasetError, Series, windows
from cryptoarb.storage.models_ml import ShadowScore, ShadowTest

HIGHER_WINS = {"rmse": False, "auc": True, "sharpe": True}


@dataclass
class ShadowResult:
    test_id: int
    candidate: str
    live: str | None
    metric: str
    window: int
    candidate_value: float | None
    live_value: float | None
    promoted: bool
    note: str


@dataclass
class _Scores:
    key: list[tuple[str, int]]
    pred: np.ndarray
    prob: np.ndarray | None
    now: np.ndarray
    future: np.ndarray


def _score(model: Any, series: Series) -> _Scores:
    w = windows(series, model.window, model.horizon)
    pred, prob = model.predict(w.x, w.spread_now)
    return _Scores(list(zip(w.group.tolist(), w.ts_ns.tolist(), strict=True)), pred, prob, w.spread_now,
                   w.spread_future)


def _persistence(series: Series, window: int, horizon: int) -> _Scores:
    w = windows(series, window, horizon)
    return _Scores(list(zip(w.group.tolist(), w.ts_ns.tolist(), strict=True)), w.spread_now.copy(), None,
                   w.spread_now, w.spread_future)


def _value(metric: str, s: _Scores, idx: np.ndarray, edge: float) -> float | None:
    pred, now, fut = s.pred[idx], s.now[idx], s.future[idx]
    if metric == "rmse":
        return M.rmse(pred, fut)
    if metric == "auc":
        if s.prob is None:
            return 0.5  # the persistence forecast does not rank opportunities: chance
        opp = now > edge
        return M.auc(s.prob[idx][opp], (fut > edge)[opp])
    rule = M.trading_rule(now, fut, edge, None if s.prob is None else pred)
    sharpe: float | None = rule["sharpe"]
    return sharpe


def _better(metric: str, cand: float | None, live: float | None) -> bool:
    if cand is None:
        return False
    if live is None:
        return True
    return cand > live if HIGHER_WINS[metric] else cand < live


def shadow_test(session: Session, models_dir: str | Path, candidate: str, series: Series, metric: str,
                window: int, actor: str = "shadow") -> ShadowResult:
    if metric not in HIGHER_WINS:
        raise DatasetError(f"shadow metric {metric!r}: use one of {', '.join(HIGHER_WINS)}")
    cand_info = R.get_model(session, candidate)
    cand = R.load_verified(models_dir, cand_info)
    live_info = R.live_model(session)
    if live_info is not None and live_info.sha256 == cand_info.sha256:
        raise R.RegistryError(f"model {cand_info.sha256[:12]} is already the live model")
    live = R.load_verified(models_dir, live_info) if live_info is not None else None
    cs = _score(cand, series)
    ls = _score(live, series) if live is not None else _persistence(series, cand.window, cand.horizon)
    # the steps both scored, the last `window` of them
    lpos = {k: i for i, k in enumerate(ls.key)}
    common = [(i, lpos[k]) for i, k in enumerate(cs.key) if k in lpos and ls.future[lpos[k]] == cs.future[i]]
    if not common:
        raise DatasetError(f"shadow test: the stream gives no step both models can score "
                           f"({len(series)} samples; the models need {cand.window + cand.horizon} per stream)")
    common = common[-window:]
    ci = np.array([c for c, _ in common])
    li = np.array([x for _, x in common])
    edge = cand.edge_bps
    cv = _value(metric, cs, ci, edge)
    lv = _value(metric, ls, li, edge)
    promoted = _better(metric, cv, lv)
    ref = live_info.sha256 if live_info is not None else "persistence"
    note = (f"{metric} over {len(common)} steps: candidate {_fmt(cv)} vs {ref[:12]} {_fmt(lv)}; "
            + ("promoted" if promoted else "not promoted"))
    test = ShadowTest(candidate=cand_info.sha256, live=live_info.sha256 if live_info else None, metric=metric,
                      window=len(common), candidate_value=_nan_none(cv), live_value=_nan_none(lv),
                      promoted=promoted, note=note)
    session.add(test)
    session.flush()
    rows = []
    for model, s, idx in ((cand_info.sha256, cs, ci), (ref, ls, li)):
        for j in idx:
            g, ts = s.key[j]
            rows.append({"test_id": test.id, "model": model, "ts_ns": ts, "group": g,
                         "predicted_bps": float(s.pred[j]),
                         "survival": None if s.prob is None else float(s.prob[j]),
                         "actual_bps": float(s.future[j])})
    session.execute(insert(ShadowScore), rows)
    session.commit()
    test_id = test.id
    if promoted:
        R.swap(session, models_dir, cand_info.sha256, f"shadow test {test_id}: {note}", actor)
    else:
        R.set_status(session, cand_info.sha256, "rejected", f"shadow test {test_id}: {note}")
    return ShadowResult(test_id, cand_info.sha256, live_info.sha256 if live_info else None, metric, len(common),
                        cv, lv, promoted, note)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _nan_none(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
