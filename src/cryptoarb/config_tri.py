"""The ``[tri]`` settings section: triangular / cyclic arbitrage within a venue (docs/triangular.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TriSettings(BaseModel):
    """``[tri]``: which venues and currencies take part, the start currency, the cycle limits.

    Off unless ``venues`` names at least one venue. Money (``max_in``, ``min_profit``) is in the
    start currency. ``mode``: ``sequential`` sends each leg when the previous one is done (sized by
    what it delivered); ``concurrent`` sends all legs at once, each spending the balance of its
    currency already at the venue."""

    model_config = ConfigDict(extra="forbid")

    venues: list[str] = Field(default_factory=list)
    currencies: list[str] = Field(default_factory=list)  # empty: every currency the venue lists
    start: str = Field("USDT", min_length=1)
    max_legs: int = Field(4, ge=3, le=8)  # Bellman-Ford scans; the hot path checks 3-leg cycles
    min_profit_bps: float = Field(1.0, ge=0)
    min_profit: float = Field(0.0, ge=0)
    max_in: float = Field(1_000.0, gt=0)
    mode: Literal["sequential", "concurrent"] = "sequential"
    max_open: int = Field(2, ge=1)
    scan_interval_s: float = Field(10.0, ge=0)  # Bellman-Ford over the whole graph, event time; 0: off

    @field_validator("venues", "currencies")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if any(not x.strip() for x in v):
            raise ValueError("empty name")
        return list(dict.fromkeys(v))
