"""The ``[trading]`` settings section: paper (the default) or live order execution.

Live mode sends real orders through ccxt (``cryptoarb.execution.live``); it is chosen explicitly,
by ``mode = "live"`` here or ``arb run --live --trade``. API keys are never settings: they come
from the environment or a secrets file (``cryptoarb.execution.keys``), so that a stored run
config can never hold one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TradingVenueSettings(BaseModel):
    """``[trading.venues.<id>]``: how orders are sent to one venue."""

    model_config = ConfigDict(extra="forbid")

    #: ``auto``: IOC limit where the venue has it (ccxt ``has`` / market info), else limit at the touch
    order_type: Literal["auto", "ioc", "limit", "market"] = "auto"
    #: Binance-family ``recvWindow`` (ms): a request older than this on arrival is refused by the
    #: venue, so an order not found by its client id this long after it was sent never existed
    recv_window_ms: int = Field(5_000, ge=100, le=60_000)
    #: venues without a recvWindow: an order not found this long after its send is declared never placed
    unknown_after_s: float = Field(60.0, gt=0)
    poll_interval_ms: float = Field(200.0, gt=0)  # REST polling of an order that is still open
    timeout_ms: int = Field(10_000, ge=100)  # ccxt request timeout


class TradingSettings(BaseModel):
    """``[trading]``: ``mode = "live"`` sends real orders; ``secrets_file`` holds the API keys
    (TOML, one table per venue, permissions 600 or stricter)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["paper", "live"] = "paper"
    secrets_file: str = ""
    venues: dict[str, TradingVenueSettings] = Field(default_factory=dict)

    def venue(self, name: str) -> TradingVenueSettings:
        return self.venues.get(name) or TradingVenueSettings()
