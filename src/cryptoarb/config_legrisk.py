"""The ``[legrisk]`` settings section: leg-risk policy, inventory targets, fee currencies.

Its own module (config.py keeps one field for it). Three concerns of money that is already on
the venues: what closes a failed leg (``[legrisk]``), where inventory should sit
(``[legrisk.inventory]``) and which venues charge fees in a third asset such as BNB
(``[legrisk.fee_currency.<venue>]``). See docs/risk.md and docs/pnl.md.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cryptoarb.core.inventory import InventoryConfig
from cryptoarb.core.legrisk import STEPS, LegRiskConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo must not be ignored


class InventorySettings(_Strict):
    """``[legrisk.inventory]``: target share of each asset per venue, and the drift tolerance."""

    # venue -> asset -> share of that asset's total held on the venue (each asset's shares sum to 1)
    targets: dict[str, dict[str, float]] = Field(default_factory=dict)
    band: float = Field(0.1, ge=0, le=1)  # suggest a move only when a share is off its target by more
    min_move: dict[str, Decimal] = Field(default_factory=dict)  # asset -> smallest transfer worth suggesting
    drift_tolerance: Decimal = Field(Decimal("0.00000001"), ge=0)  # venue vs ledger, absolute, per asset

    @field_validator("targets")
    @classmethod
    def _shares(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        by_asset: dict[str, float] = {}
        for venue, assets in v.items():
            for asset, share in assets.items():
                if not 0.0 <= share <= 1.0:
                    raise ValueError(f"{venue}.{asset} = {share}: a target share must be within [0, 1]")
                by_asset[asset] = by_asset.get(asset, 0.0) + share
        for asset, total in by_asset.items():
            if abs(total - 1.0) > 1e-9:
                raise ValueError(f"targets for {asset} add up to {total:g}, not 1")
        return v

    def build(self) -> InventoryConfig:
        return InventoryConfig(
            targets={v: {a: Decimal(repr(s)) for a, s in assets.items()} for v, assets in self.targets.items()},
            band=Decimal(repr(self.band)),
            min_move=dict(self.min_move),
            drift_tolerance=self.drift_tolerance,
        )


class FeeCurrencySettings(_Strict):
    """``[legrisk.fee_currency.<venue>]``: the venue charges spot fees in ``asset`` (BNB on
    Binance) at ``discount`` off its rate, converted at the asset's mark (``price``, in the
    run's valuation currency, when no book of the run prices it)."""

    asset: str = Field(min_length=1)
    discount: float = Field(0.0, ge=0, lt=1)
    price: Decimal | None = Field(None, gt=0)


class LegRiskSettings(_Strict):
    """``[legrisk]``: how a failed or partial leg is closed (docs/risk.md, Leg risk)."""

    steps: list[str] = Field(default_factory=lambda: ["retry", "hedge", "unwind"])
    retry_bps: float = Field(20.0, ge=0)
    hedge_bps: float = Field(50.0, ge=0)
    unwind_bps: float = Field(100.0, ge=0)
    step_time_ms: float = Field(5_000.0, gt=0)
    step_attempts: int = Field(3, ge=1)
    residual_quote: float = Field(1.0, ge=0)
    inventory: InventorySettings = Field(default_factory=lambda: InventorySettings())
    fee_currency: dict[str, FeeCurrencySettings] = Field(default_factory=dict)

    @field_validator("steps")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        for s in v:
            if s not in STEPS:
                raise ValueError(f"unknown step {s!r} (steps: {', '.join(STEPS)})")
        if len(set(v)) != len(v):
            raise ValueError(f"a step is listed twice: {v}")
        return v

    def build(self) -> LegRiskConfig:
        return LegRiskConfig(
            steps=tuple(self.steps), retry_bps=self.retry_bps, hedge_bps=self.hedge_bps,
            unwind_bps=self.unwind_bps, step_time_ns=int(self.step_time_ms * 1_000_000),
            step_attempts=self.step_attempts, residual_quote=self.residual_quote,
        )
