"""Settings an operator may change while a run trades (``PUT /api/settings``), and applying them.

Only thresholds are changeable at run time: the detector's profit and size limits and the risk
manager's limits. Anything that shapes the run (venues, balances, storage, windows of the
breakers' counters, the kill file) needs a restart and is refused with that reason. A change is
validated by the same pydantic models the settings file goes through (same bounds, same
messages), then applied on the engine's own thread between two messages.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, create_model

from cryptoarb.config import DetectorSettings, RiskSettings, Settings

DETECTOR_KEYS = ("min_profit_bps", "min_profit_quote", "max_notional_quote", "max_quote_age_ms")
RISK_KEYS = (
    "max_trade_notional", "max_venue_notional", "max_asset_notional", "max_open_exposure", "min_edge_bps",
    "extra_cost_bps", "max_book_age_ms", "max_decision_latency_ms", "max_open_orders", "venue_error_limit",
    "venue_cooldown_s", "max_daily_loss", "max_drawdown", "max_loss_streak", "min_win_rate", "max_error_rate",
    "stale_feed_s", "max_stale_feeds", "max_one_legged", "max_order_latency_ms", "latency_breaches", "cooldown_s",
)


def _partial(name: str, model: type[BaseModel], keys: tuple[str, ...]) -> type[BaseModel]:
    """A model of ``keys`` of ``model``, each optional, with the same types and bounds."""
    fields: dict[str, Any] = {}
    for k in keys:
        f = model.model_fields[k]
        ann: Any = Annotated[f.annotation, *f.metadata] if f.metadata else f.annotation
        fields[k] = (ann | None, None)
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


DetectorChange = _partial("DetectorChange", DetectorSettings, DETECTOR_KEYS)
RiskChange = _partial("RiskChange", RiskSettings, RISK_KEYS)


class SettingsChange(BaseModel):
    """``PUT /api/settings`` body: only the keys to change (others keep their values)."""

    model_config = ConfigDict(extra="forbid")
    detector: DetectorChange | None = None  # type: ignore[valid-type]
    risk: RiskChange | None = None  # type: ignore[valid-type]


def runtime_keys() -> dict[str, list[str]]:
    return {"detector": list(DETECTOR_KEYS), "risk": list(RISK_KEYS)}


def merged(settings: Settings, change: SettingsChange) -> tuple[Settings, dict[str, dict[str, Any]]]:
    """The settings with ``change`` applied (validated as a whole), and what actually changed."""
    det: dict[str, Any] = change.detector.model_dump(exclude_none=True) if change.detector is not None else {}
    risk: dict[str, Any] = change.risk.model_dump(exclude_none=True) if change.risk is not None else {}
    new_det = DetectorSettings.model_validate({**settings.detector.model_dump(), **det})
    new_risk = RiskSettings.model_validate({**settings.risk.model_dump(), **risk})
    new = settings.model_copy(update={"detector": new_det, "risk": new_risk})
    diff = {"detector": {k: v for k, v in det.items() if getattr(settings.detector, k) != v},
            "risk": {k: v for k, v in risk.items() if getattr(settings.risk, k) != v}}
    return new, {k: v for k, v in diff.items() if v}


def apply(engine: Any, new: Settings) -> None:
    """On the engine's thread: the detector's limits and the risk manager's config follow ``new``."""
    from cryptoarb.detect.sizing import Limits

    d = new.detector
    limits = Limits(min_profit_bps=d.min_profit_bps, min_profit_quote=d.min_profit_quote,
                    max_notional_quote=d.max_notional_quote, max_quote_age_ns=int(d.max_quote_age_ms * 1e6))
    engine.limits = limits
    det = engine.detector
    det.limits = limits
    det._thr = 1.0 + limits.min_profit_bps / 1e4  # the detector's precomputed threshold
    old = engine.risk.config
    built = new.risk.build()
    # the counters' windows, the kill file and the disabled set stay as the run started
    keep = {"win_rate_window": old.win_rate_window, "error_window": old.error_window,
            "kill_file": old.kill_file, "disabled": old.disabled}
    engine.risk.config = dataclasses.replace(built, **keep)
    engine.settings = new
