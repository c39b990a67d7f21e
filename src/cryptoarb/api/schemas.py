"""Request and response models: the OpenAPI schema the dashboard and scripts are written against.

Exact decimals are strings; detector output is floats; times are integer nanoseconds since the
epoch (``*_ns``) unless named ``*_at`` (ISO 8601, UTC).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Dec = str  # an exact decimal, e.g. "12.345"


class Error(BaseModel):
    detail: str = Field(description="What was wrong, in one line")


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=4096)


class LogoutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str | None = Field(None, min_length=1, max_length=4096)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="access token lifetime, seconds")


class Me(BaseModel):
    username: str
    role: Literal["viewer", "admin"]
    expires_at: int = Field(description="access token expiry, seconds since the epoch")


class Ok(BaseModel):
    ok: bool = True
    detail: str = ""


class RunItem(BaseModel):
    id: str
    mode: str
    started_ns: int
    ended_ns: int | None
    opportunities: int
    trades: int


class RunDetail(RunItem):
    config: dict[str, Any] = Field(description="the settings the run ran with, credentials as ***")


class OpportunityItem(BaseModel):
    run_id: str
    id: int
    group: str
    label: str
    buy_key: str
    sell_key: str
    qty_base: float | None
    buy_vwap: float | None
    sell_vwap: float | None
    cost_quote: float | None
    fees_quote: float | None
    profit_quote: float | None
    profit_bps: float | None
    exchange_ns: int
    local_ns: int


class OrderItem(BaseModel):
    id: str
    run_id: str
    arb_id: int | None
    venue: str
    symbol: str
    side: str
    type: str
    qty: Dec
    limit_price: Dec
    expected_price: Dec
    status: str
    filled_qty: Dec
    avg_price: Dec
    fee: Dec
    fee_currency: str
    reason: str
    created_ns: int
    updated_ns: int


class FillItem(BaseModel):
    id: int
    run_id: str
    order_id: str
    venue: str
    symbol: str
    side: str
    price: Dec
    qty: Dec
    fee: Dec
    fee_currency: str
    liquidity: str
    ts_ns: int


class TradeItem(BaseModel):
    run_id: str
    id: int
    opportunity_id: int
    group: str
    status: str
    expected_pnl: Dec
    realized_pnl: Dec
    fees_quote: Dec
    expected_qty_base: Dec
    matched_qty_base: Dec
    unhedged_qty_base: Dec
    created_ns: int
    closed_ns: int | None


class TradeDetail(TradeItem):
    legs: list[OrderItem]
    fills: list[FillItem]
    pnl_gap: Dec = Field(description="realised minus expected PnL")


class BalanceItem(BaseModel):
    venue: str
    asset: str
    amount: Dec
    start: Dec | None = Field(description="the run's starting amount (None: not held at the start)")
    change: Dec = Field(description="amount minus start")
    ts_ns: int


class Balances(BaseModel):
    run_id: str
    ts_ns: int | None
    items: list[BalanceItem]
    inventory: dict[str, Dec] = Field(description="per asset, the change summed over venues")


class PnlPoint(BaseModel):
    ts_ns: int
    currency: str
    realised: Dec
    unrealised: Dec
    total: Dec
    unhedged_quote: float | None
    max_unhedged_quote: float | None


class PnlSeries(BaseModel):
    run_id: str
    points: list[PnlPoint]
    total_points: int = Field(description="stored points before thinning to max_points")


class AlertItem(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


class VenueState(BaseModel):
    venue: str
    path: str = Field(description="native (our handler), ccxt (ccxt.pro fallback), simulated")
    state: Literal["up", "degraded", "down"]
    books: int
    books_valid: int
    book_age_ms: float | None
    messages: int
    messages_per_s: float
    resyncs: int
    gaps: int
    connects: int | None
    disconnects: int | None
    last_error: str


class Venues(BaseModel):
    engine: bool = Field(description="whether a running engine is attached to this API process")
    items: list[VenueState]


class Book(BaseModel):
    key: str
    venue: str
    symbol: str
    valid: bool
    local_ns: int
    age_ms: float | None
    bids: list[list[float | None]]
    asks: list[list[float | None]]


class Books(BaseModel):
    engine: bool
    items: list[Book]


class Breaker(BaseModel):
    name: str
    state: str
    enabled: bool
    trips: int


class Risk(BaseModel):
    engine: bool
    killed: bool | None = Field(description="None: no engine attached and no kill file to read")
    kill_reason: str
    kill_file: str
    breakers: list[Breaker]
    refused: dict[str, int]
    exposure: dict[str, Any]
    limits: dict[str, Any]


class KillBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("kill from the API", min_length=1, max_length=500)


class KillResult(BaseModel):
    killed: bool
    changed: bool = Field(description="False when the switch was already in that position")
    via: Literal["engine", "kill_file"]
    detail: str
    cancel: list[str] = Field(default_factory=list, description="open order ids the kill reported")


class SettingsView(BaseModel):
    settings: dict[str, Any] = Field(description="effective settings, credentials as ***")
    runtime: dict[str, list[str]] = Field(description="keys PUT /api/settings may change")
    engine: bool


class SettingsChanged(BaseModel):
    changed: dict[str, dict[str, Any]]
    settings: dict[str, Any]


class Status(BaseModel):
    version: str
    uptime_s: float
    engine: bool
    run_id: str | None
    mode: str | None
    messages: int | None
    opportunities: int | None
    trades: int | None
    latency_us: dict[str, float | None] | None
    database: str = Field(description="backend and database, password hidden")
    stream_clients: int
    stream: dict[str, Any]
    dev: bool


class ModelVersion(BaseModel):
    status: Literal["ok", "no model"]
    name: str | None
    version: str | None
    sha256: str | None
    promoted_at: datetime | None
    detail: str


class ModelItem(BaseModel):
    name: str
    version: str
    status: str
    sha256: str
    metrics: dict[str, Any]
    created_at: datetime
    promoted_at: datetime | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "error"]
    engine: Literal["running", "ended", "none"]
    detail: str = ""


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first; ``total`` counts every match of the filters."""

    items: list[T]
    total: int
    limit: int
    offset: int
