"""Retrain -> register -> (optionally) shadow-test: what ``arb retrain`` and the weekly schedule
run. The shadow test scores the validation range (the held-back, later part of the data) so the
candidate is judged on samples it was not trained on."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cryptoarb.ml import registry as R
from cryptoarb.ml.dataset import Series


@dataclass
class RetrainOutcome:
    result: Any  # cryptoarb.ml.train.TrainResult
    model: R.ModelInfo
    shadow: Any | None  # cryptoarb.ml.shadow.ShadowResult


def held_back(series: Series, from_ns: int) -> Series:
    """The samples from ``from_ns`` on, with enough history before it for the first window."""
    keep = series.ts_ns >= from_ns
    return Series(series.ts_ns[keep], series.group[keep], series.stream[keep],
                  {k: v[keep] for k, v in series.values.items()})


def retrain(db: Engine, models_dir: str, series: Series, cfg: Any, reason: str, shadow_metric: str | None = None,
            shadow_window: int = 2_000, on_epoch: Any = None) -> RetrainOutcome:
    from cryptoarb.ml.train import train

    res = train(series, cfg, on_epoch)
    with Session(db) as s:
        info = R.register(s, models_dir, res.blob, res.metrics, res.schema, res.data_range, reason)
        outcome = RetrainOutcome(res, info, None)
        if shadow_metric is not None:
            from cryptoarb.ml.shadow import shadow_test

            start = res.metrics["val_range_ns"][0]
            # the first validation window needs `window` samples before its last one
            step = int(np.median(np.diff(np.unique(series.ts_ns)))) if len(series) > 1 else 0
            stream = held_back(series, start - step * (cfg.window + 1))
            outcome.shadow = shadow_test(s, models_dir, info.sha256, stream, shadow_metric, shadow_window,
                                         actor="retrain")
            outcome.model = R.get_model(s, info.sha256)
    return outcome


def scheduled_retrain(settings: Any) -> RetrainOutcome:
    """The weekly job: the last ``[ml] retrain_days`` of stored samples, trained, registered and
    shadow-tested on its held-back range (promoted only if it wins)."""
    from cryptoarb.ml.export import load_series
    from cryptoarb.ml.train import TrainConfig
    from cryptoarb.storage.db import connect

    ml = settings.ml
    db = connect(settings.storage.url)
    try:
        since = time.time_ns() - int(ml.retrain_days * 86_400e9)
        series = load_series(db, since=since)
        cfg = TrainConfig(epochs=ml.retrain_epochs, device=ml.device)
        return retrain(db, ml.models_dir, series, cfg, "scheduled weekly retrain", ml.shadow_metric,
                       ml.shadow_window)
    finally:
        db.dispose()
