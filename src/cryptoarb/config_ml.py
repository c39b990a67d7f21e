"""The ``[ml]`` settings section: feature logging, the model registry, inference in the engine,
shadow testing and the retrain schedule (docs/ml.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MlSettings(BaseModel):
    """``[ml]``. Feature logging is on whenever storage is (it costs the engine thread a few
    dict reads per opportunity and per sample, outside the measured hot path); scoring needs a
    live model in the registry and ``use`` other than ``"off"``."""

    model_config = ConfigDict(extra="forbid")  # a typo must not be ignored

    features: bool = True  # write training_features and spread_samples while a run stores
    sample_interval_ms: float = Field(100.0, gt=0)  # the per-group spread time series' step
    label_latency_ms: float = Field(0.0, ge=0)  # survival horizon; 0 = the paper venues' latency
    models_dir: str = "models"  # archive: <models_dir>/archive/<sha256>.pt
    # inference: "filter" drops an opportunity whose survival score is below min_survival,
    # "size" scales max_notional_quote by the score; "off" = no model in the engine
    use: Literal["off", "filter", "size"] = "off"
    min_survival: float = Field(0.5, ge=0, le=1)
    score_max_age_ms: float = Field(2_000.0, gt=0)  # an older score is not used
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    # shadow test: the candidate must beat the live model on `shadow_metric` over the last
    # `shadow_window` scored steps
    shadow_metric: Literal["rmse", "auc", "sharpe"] = "rmse"
    shadow_window: int = Field(2_000, ge=10)
    # a registered candidate (sha256 or prefix) to shadow-test on the live stream of `arb run`
    shadow_candidate: str = ""
    # weekly retrain (APScheduler, inside `arb run` when true; or `arb retrain --schedule`)
    retrain_in_run: bool = False
    retrain_cron: str = "0 2 * * sun"  # minute hour day month day-of-week, UTC
    retrain_epochs: int = Field(10, ge=1)
    retrain_days: float = Field(28.0, gt=0)  # how much history the scheduled retrain exports
