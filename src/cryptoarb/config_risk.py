"""The ``[risk]`` settings section (its own module: config.py stays one screenful per concern)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cryptoarb.core.risk import BREAKERS, RiskConfig


class RiskSettings(BaseModel):
    """``[risk]``: pre-trade limits, circuit breakers and the kill file (docs/risk.md).

    Every threshold is a trip point: reaching it refuses the intent or trips the breaker
    (max-type: value >= limit; min_edge_bps / min_win_rate: value <= limit). 0 switches a check
    off (except min_edge_bps). Money in the pair's quote currency; times in event time. The
    defaults are wide: they stop a runaway, not the demo's normal trading."""

    model_config = ConfigDict(extra="forbid")  # a typo must not be ignored

    max_trade_notional: float = Field(50_000.0, ge=0)
    max_venue_notional: float = Field(200_000.0, ge=0)
    max_asset_notional: float = Field(200_000.0, ge=0)
    max_open_exposure: float = Field(500_000.0, ge=0)
    min_edge_bps: float = 0.0
    extra_cost_bps: float = Field(0.0, ge=0)
    max_book_age_ms: float = Field(5_000.0, ge=0)
    max_decision_latency_ms: float = Field(1_000.0, ge=0)
    max_open_orders: int = Field(20, ge=0)
    venue_error_limit: int = Field(5, ge=0)
    venue_cooldown_s: float = Field(60.0, ge=0)
    max_daily_loss: Decimal = Field(Decimal(5_000), ge=0)
    max_drawdown: Decimal = Field(Decimal(10_000), ge=0)
    max_loss_streak: int = Field(25, ge=0)
    win_rate_window: int = Field(100, ge=0)
    min_win_rate: float = Field(0.05, ge=0, le=1)
    error_window: int = Field(100, ge=0)
    max_error_rate: float = Field(0.5, ge=0, le=1)
    stale_feed_s: float = Field(60.0, ge=0)
    max_stale_feeds: int = Field(1, ge=0)
    max_one_legged: float = Field(100_000.0, ge=0)
    max_order_latency_ms: float = Field(5_000.0, ge=0)
    latency_breaches: int = Field(5, ge=0)
    cooldown_s: float = Field(60.0, ge=0)
    kill_file: str = ""  # this file existing kills trading (checked once per second of event time)
    disabled: list[str] = Field(default_factory=list)  # breaker names switched off

    @field_validator("disabled")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in BREAKERS:
                raise ValueError(f"unknown breaker {name!r} (breakers: {', '.join(BREAKERS)})")
        return v

    def build(self) -> RiskConfig:
        """The domain object's plain values (ms/s become event-time nanoseconds)."""
        ms, s = 1_000_000, 1_000_000_000
        return RiskConfig(
            max_trade_notional=self.max_trade_notional,
            max_venue_notional=self.max_venue_notional,
            max_asset_notional=self.max_asset_notional,
            max_open_exposure=self.max_open_exposure,
            min_edge_bps=self.min_edge_bps,
            extra_cost_bps=self.extra_cost_bps,
            max_book_age_ns=int(self.max_book_age_ms * ms),
            max_decision_latency_ns=int(self.max_decision_latency_ms * ms),
            max_open_orders=self.max_open_orders,
            venue_error_limit=self.venue_error_limit,
            venue_cooldown_ns=int(self.venue_cooldown_s * s),
            max_daily_loss=self.max_daily_loss,
            max_drawdown=self.max_drawdown,
            max_loss_streak=self.max_loss_streak,
            win_rate_window=self.win_rate_window,
            min_win_rate=self.min_win_rate,
            error_window=self.error_window,
            max_error_rate=self.max_error_rate,
            stale_feed_ns=int(self.stale_feed_s * s),
            max_stale_feeds=self.max_stale_feeds,
            max_one_legged=self.max_one_legged,
            max_order_latency_ns=int(self.max_order_latency_ms * ms),
            latency_breaches=self.latency_breaches,
            cooldown_ns=int(self.cooldown_s * s),
            kill_file=self.kill_file,
            disabled=frozenset(self.disabled),
        )
