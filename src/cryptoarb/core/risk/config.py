"""The risk manager's limits, as plain values (the pydantic ``[risk]`` settings build one).

Every threshold is a *trip point*: a value that reaches it is refused (or trips its breaker).
For maximum-type limits that means ``value >= limit``; for minimum-type limits (edge, win rate)
``value <= limit``. A limit of 0 switches that check off (except ``min_edge_bps``, where 0 is a
real floor: an opportunity must have a strictly positive edge after all costs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

SECOND_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RiskConfig:
    # -- pre-trade limits (per intent) ------------------------------------------------------
    max_trade_notional: float = 50_000.0  # quote, one arbitrage (qty_base x worse of both prices)
    max_venue_notional: float = 200_000.0  # quote in flight on one venue (both legs count)
    max_asset_notional: float = 200_000.0  # quote in flight in one base asset
    max_open_exposure: float = 500_000.0  # quote in flight + one-legged exposure, all assets
    min_edge_bps: float = 0.0  # net edge after fees and extra_cost_bps must be above this
    extra_cost_bps: float = 0.0  # costs the detector does not see (transfers, rebalancing)
    max_book_age_ns: int = 5 * SECOND_NS  # either book older than this (event time): refused
    max_decision_latency_ns: int = SECOND_NS  # book event -> intent, event time
    max_open_orders: int = 20
    venue_error_limit: int = 5  # consecutive order errors on one venue: venue unhealthy
    venue_cooldown_ns: int = 60 * SECOND_NS  # ... for this long (event time)
    # -- circuit breakers -------------------------------------------------------------------
    max_daily_loss: Decimal = Decimal(5_000)  # quote, since 00:00 UTC (event time)
    max_drawdown: Decimal = Decimal(10_000)  # quote, from the equity peak
    max_loss_streak: int = 25  # consecutive losing trades
    win_rate_window: int = 100  # settled trades
    min_win_rate: float = 0.05  # trips at or below, once the window is full
    error_window: int = 100  # terminal orders
    max_error_rate: float = 0.5  # rejected/failed share of the window; trips at or above
    stale_feed_ns: int = 60 * SECOND_NS  # a venue whose freshest book is this old is stale
    max_stale_feeds: int = 1  # this many stale venues trips the breaker
    max_one_legged: float = 100_000.0  # quote, unhedged exposure marked at its last price
    max_order_latency_ns: int = 5 * SECOND_NS  # order sent -> terminal, event time
    latency_breaches: int = 5  # consecutive orders at or over max_order_latency_ns
    cooldown_ns: int = 60 * SECOND_NS  # tripped -> half-open after this (event time)
    # -- kill switch ------------------------------------------------------------------------
    kill_file: str = ""  # engine side: this file existing kills (checked once per event second)
    disabled: frozenset[str] = field(default_factory=frozenset)  # breaker names switched off
