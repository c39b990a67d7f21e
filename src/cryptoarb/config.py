"""Settings: defaults < TOML file < environment (``ARB_`` prefix, ``__`` for nesting).

Every entry point loads settings through :func:`load_settings`, which turns a missing file, bad
TOML or an invalid value into one :class:`ConfigError` line naming the file and the field.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from cryptoarb.config_alerts import AlertsSettings as AlertsSettings  # re-exported: the [alerts] section
from cryptoarb.config_api import ApiSettings
from cryptoarb.config_bus import BusSettings
from cryptoarb.config_check import ConfigError as ConfigError  # re-exported: callers import it from here
from cryptoarb.config_check import check_env_names, describe, env_parse_error
from cryptoarb.config_legrisk import LegRiskSettings as LegRiskSettings  # the [legrisk] section
from cryptoarb.config_ml import MlSettings as MlSettings  # re-exported: the [ml] section
from cryptoarb.config_risk import RiskSettings as RiskSettings  # re-exported: the [risk] section
from cryptoarb.config_trading import TradingSettings as TradingSettings  # the [trading] section
from cryptoarb.config_tri import TriSettings as TriSettings  # re-exported: the [tri] section
from cryptoarb.core.instruments import Fees, Instrument, Kind


class _Strict(BaseModel):
    """A settings section: a key it does not know is an error (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid")


class InstrumentSpec(_Strict):
    """An instrument added to (or overriding) the built-in catalog."""

    venue: str
    symbol: str
    exchange_symbol: str = ""
    kind: Kind = Kind.SPOT
    tick_size: float = Field(0.01, gt=0)
    lot_size: float = Field(0.00001, gt=0)
    min_notional: float = Field(0.0, ge=0)
    contract_size: float = Field(1.0, gt=0)
    taker_fee: float = Field(0.001, ge=0, le=0.05)
    maker_fee: float = Field(0.001, ge=-0.01, le=0.05)
    # spot fee currency (ccxt's feeSide): "get" the asset received, "give", "quote", "base";
    # "" = the venue's rule (most venues: "get")
    fee_side: Literal["", "get", "give", "quote", "base"] = ""

    def build(self) -> Instrument:
        pair = self.symbol.split(":", 1)[0]
        if "/" not in pair:
            raise ConfigError(f"instrument {self.venue} {self.symbol}: symbol must look like BASE/QUOTE[:SETTLE]")
        base, quote = pair.split("/", 1)
        native = self.exchange_symbol or (base + quote)
        try:
            return Instrument(
                self.venue, self.symbol, base, quote, self.kind, self.tick_size, self.lot_size,
                self.min_notional, self.contract_size, Fees(self.taker_fee, self.maker_fee), native,
                self.fee_side,
            )
        except ValueError as e:
            raise ConfigError(f"instrument {self.venue} {self.symbol}: {e}") from None


class GroupSpec(_Strict):
    name: str
    label: str = ""
    members: list[str] = Field(min_length=2)


class DetectorSettings(_Strict):
    min_profit_bps: float = Field(1.0, ge=0)
    min_profit_quote: float = Field(0.0, ge=0)
    max_notional_quote: float = Field(10_000.0, gt=0)
    max_quote_age_ms: float = Field(5_000.0, gt=0)
    basis: bool = True  # also compare spot with linear perpetuals of the same pair ("basis" groups)
    quote_equivalents: list[list[str]] = Field(default_factory=list)  # e.g. [["USD", "USDT"]]
    groups: list[GroupSpec] = Field(default_factory=list)  # explicit groups replace the automatic ones


def _default_balances() -> dict[str, dict[str, Decimal]]:
    return {
        "binance": {"USDT": Decimal(100_000), "BTC": Decimal(2), "ETH": Decimal(30)},
        "binanceusdm": {"USDT": Decimal(100_000)},
        "binancecoinm": {"BTC": Decimal(2), "ETH": Decimal(30)},
    }


class PaperSettings(_Strict):
    default_latency_ms: float = Field(5.0, ge=0)
    latency_ms: dict[str, float] = Field(default_factory=dict)
    fail_rate: float = Field(0.0, ge=0, le=1)
    cooldown_ms: float = Field(0.0, ge=0)
    max_open_trades: int = Field(4, ge=1)
    seed: int = 7
    balances: dict[str, dict[str, Decimal]] = Field(default_factory=_default_balances)

    @field_validator("latency_ms")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        for venue, ms in v.items():
            if ms < 0:
                raise ValueError(f"latency for {venue} must not be negative")
        return v

    @field_validator("balances")
    @classmethod
    def _no_debt(cls, v: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
        for venue, coins in v.items():
            for coin, amount in coins.items():
                if not amount.is_finite() or amount < 0:
                    raise ValueError(f"{venue}.{coin} = {amount}: a paper balance must be a number >= 0")
        return v

class StorageSettings(_Strict):
    url: str = "sqlite:///cryptoarb.db"
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _supported(cls, v: str) -> str:
        from cryptoarb.storage.urls import check_storage_url

        check_storage_url(v)
        return v


class VenueLiveSettings(_Strict):
    ws_url: str = ""  # override the venue's public endpoint (a proxy, a testnet, a local server)
    ccxt: dict[str, Any] = Field(default_factory=dict)  # ccxt constructor config (urls, timeout, ...)
    stale_after_s: float | None = Field(None, gt=0)  # overrides live.stale_after_s for this venue


class LiveSettings(_Strict):
    #: a connection silent this long is stale: resync; None: each venue's default (above its
    #: heartbeat cadence, see cryptoarb.venues.connection)
    stale_after_s: float | None = Field(None, gt=0)
    venues: dict[str, VenueLiveSettings] = Field(default_factory=dict)
    #: the WebSocket client of the native feeds (live/transport.py): picows costs less CPU per
    #: frame (0.76x per book message on the load harness, with uvloop); websockets offers
    #: permessage-deflate (docs/scale.md, "Transport")
    transport: Literal["picows", "websockets"] = "picows"
    #: the event loop of a live run: uvloop (libuv) or the standard library's asyncio loop
    loop: Literal["uvloop", "asyncio"] = "uvloop"
    #: a burst a connection has already received is one batch: every book update, then detection
    #: once per touched book, books with cross-venue peers first (engine/batch.py). Off by
    #: default: measured, it costs CPU and delays the median without a p99 gain (docs/benchmarks.md)
    batch_bursts: bool = False


_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _address(v: str) -> str:
    if not _ADDRESS.match(v):
        raise ValueError(f"{v!r} is not a 0x-prefixed 20-byte hex address")
    return v


def _redact_rpc(url: str) -> str:
    """``scheme://host[:port]/...``: RPC URLs often carry an API key, never stored in a run's config."""
    parts = urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{host}" + ("/..." if parts.path.strip("/") or parts.query else "")


class DexChainSettings(_Strict):
    """One chain: its RPC endpoint, how pool state is followed, and how gas is priced."""

    chain_id: int = Field(gt=0)
    rpc_url: str  # http(s):// or ws(s)://; may carry an API key: redacted in stored configs
    poll_interval_s: float = Field(1.0, gt=0)
    timeout_s: float = Field(10.0, gt=0)  # per RPC call
    max_block_lag: int = Field(1, ge=0)  # pool state this many blocks behind the head is stale
    max_age_s: float = Field(30.0, gt=0)  # ... or confirmed this long ago
    receipt_timeout_s: float = Field(120.0, gt=0)  # no receipt by then: a dropped (failed) leg
    priority_fee_gwei: float = Field(1.0, ge=0)
    gas_price_gwei: float | None = Field(None, ge=0)  # fixed gas price for sizing; None: base fee + tip
    native_symbol: str = "ETH"
    native_price_from: str = ""  # "binance ETH/USDT" (a CEX book) or "uniswap_v2 WETH/USDC" (a pool)
    native_price: float = Field(0.0, ge=0)  # fixed fallback, in native_price_from's quote currency
    native_prices: dict[str, float] = Field(default_factory=dict)  # fixed prices by quote: {USDT = 3000}
    wrapped_native: str = ""  # the wrapped native token's address (WETH); "": the token named W<native_symbol>

    @field_validator("rpc_url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith(("http://", "https://", "ws://", "wss://")) or not urlsplit(v).hostname:
            raise ValueError(f"{_redact_rpc(v)!r} is not an http(s):// or ws(s):// URL")
        return v

    @field_serializer("rpc_url", when_used="json")
    def _hide_key(self, v: str) -> str:
        return _redact_rpc(v)

    @field_validator("wrapped_native")
    @classmethod
    def _wrapped(cls, v: str) -> str:
        return _address(v) if v else v

    @field_validator("native_prices")
    @classmethod
    def _prices(cls, v: dict[str, float]) -> dict[str, float]:
        for ccy, price in v.items():
            if not price > 0:
                raise ValueError(f"native_prices.{ccy} must be a positive price, got {price}")
        return v

    @model_validator(mode="after")
    def _native(self) -> DexChainSettings:
        # gas is converted into each pair's quote currency (cryptoarb.dex.gas): a fixed price
        # must say which currency it is in
        if self.native_price and not self.native_price_from:
            raise ValueError(
                f"chain {self.chain_id}: native_price is in the currency of native_price_from, which is not set; "
                f"give fixed prices by quote currency instead, e.g. native_prices = {{ USDT = 3000 }}"
            )
        if self.native_price_from and (len(self.native_price_from.split()) != 2 or "/" not in self.native_price_from):
            raise ValueError(f"native_price_from {self.native_price_from!r} must be 'VENUE BASE/QUOTE'")
        return self


class DexVenueSettings(_Strict):
    """One DEX deployment (``cryptoarb.dex.pools.DexSpec``)."""

    name: str = Field(min_length=1)
    kind: Literal["v2", "v3"]
    chain_id: int = Field(gt=0)
    factory: str
    router: str  # Router02 (v2) or SwapRouter (v3)
    fee_bps: int = Field(30, ge=0, lt=10_000)  # v2 family only; v3 fees are per pool
    quoter: str = ""  # v3 QuoterV2 (optional)
    swap_gas: int = Field(0, ge=0)  # gas one swap costs; 0: the kind's default

    _addr = field_validator("factory", "router")(_address)

    @field_validator("quoter")
    @classmethod
    def _quoter(cls, v: str) -> str:
        return _address(v) if v else v


class DexPoolSettings(_Strict):
    """A pool to follow: found with the venue's factory from its two tokens (and v3 fee tier)."""

    venue: str
    base: str  # token addresses
    quote: str
    fee: int = Field(0, ge=0)  # v3 fee tier in hundredths of a bip (500, 3000, 10000); 0 for v2
    compare_with: list[str] = Field(default_factory=list)  # CEX books, "binance ETH/USDT"

    _addr = field_validator("base", "quote")(_address)

    @field_validator("compare_with")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        for key in v:
            if len(key.split()) != 2 or "/" not in key:
                raise ValueError(f"{key!r} must be 'VENUE BASE/QUOTE', e.g. 'binance ETH/USDT'")
        return v


class DexSettings(_Strict):
    """DEX venues run by ``arb run --live`` beside the CEX feeds (see docs/dex.md)."""

    chains: list[DexChainSettings] = Field(default_factory=list)
    venues: list[DexVenueSettings] = Field(default_factory=list)
    pools: list[DexPoolSettings] = Field(default_factory=list)
    max_notional_quote: float = Field(10_000.0, gt=0)  # per opportunity, in each pair's quote currency
    min_profit_bps: float = Field(5.0, ge=0)  # net of pool fee, CEX fee and gas
    min_profit_quote: float = Field(0.0, ge=0)
    slippage_bps: float = Field(10.0, ge=0, lt=10_000)  # amountOutMin / amountInMax bound of each swap
    evaluate_interval_ms: float = Field(25.0, gt=0)  # pairs are also evaluated right after pool updates
    approve_on_start: bool = True  # approve the routers once at start, not inside a trade

    @model_validator(mode="after")
    def _references(self) -> DexSettings:
        chains = [c.chain_id for c in self.chains]
        if len(set(chains)) != len(chains):
            raise ValueError("chains: a chain_id is configured twice")
        names = [v.name for v in self.venues]
        if len(set(names)) != len(names):
            raise ValueError("venues: a venue name is configured twice")
        for i, v in enumerate(self.venues):
            if v.chain_id not in chains:
                raise ValueError(f"venues.{i}.chain_id: no [[dex.chains]] entry for chain {v.chain_id}")
        kinds = {v.name: v.kind for v in self.venues}
        seen: set[tuple[str, frozenset[str], int]] = set()
        for i, p in enumerate(self.pools):
            key = (p.venue, frozenset((p.base.lower(), p.quote.lower())), p.fee)
            if key in seen:
                raise ValueError(f"pools.{i}: the same pool is configured twice")
            seen.add(key)
            if p.venue not in kinds:
                raise ValueError(f"pools.{i}.venue: {p.venue!r} is not a dex venue (configured: {names})")
            if (kinds[p.venue] == "v3") != bool(p.fee):
                raise ValueError(f"pools.{i}.fee: a fee tier is required for v3 pools and not allowed for v2")
            if p.base.lower() == p.quote.lower():
                raise ValueError(f"pools.{i}.quote: base and quote are the same token")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARB_", env_nested_delimiter="__", extra="forbid")

    detector: DetectorSettings = Field(default_factory=lambda: DetectorSettings())
    paper: PaperSettings = Field(default_factory=lambda: PaperSettings())
    storage: StorageSettings = Field(default_factory=lambda: StorageSettings())
    live: LiveSettings = Field(default_factory=lambda: LiveSettings())
    dex: DexSettings = Field(default_factory=lambda: DexSettings())
    risk: RiskSettings = Field(default_factory=lambda: RiskSettings())
    ml: MlSettings = Field(default_factory=lambda: MlSettings())
    alerts: AlertsSettings = Field(default_factory=lambda: AlertsSettings())
    legrisk: LegRiskSettings = Field(default_factory=lambda: LegRiskSettings())  # legs, inventory, fee currency
    trading: TradingSettings = Field(default_factory=lambda: TradingSettings())
    api: ApiSettings = Field(default_factory=lambda: ApiSettings())
    tri: TriSettings = Field(default_factory=lambda: TriSettings())
    bus: BusSettings = Field(default_factory=lambda: BusSettings())
    instruments: list[InstrumentSpec] = Field(default_factory=list)


class _FileSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Defaults, then the TOML file, then ``ARB_*`` environment, then ``overrides``."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = tomllib.loads(p.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: not valid TOML: {e}") from None

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _FileSource(settings_cls, data))

    check_env_names(Settings)
    try:
        return Settings.model_validate(_Loaded(**overrides).model_dump())
    except SettingsError as e:  # a list/dict ARB_* variable that is not JSON
        raise ConfigError(env_parse_error(e)) from None
    except ValidationError as e:
        where = f"{path}: " if path else ""
        errs = "; ".join(describe(Settings, err) for err in e.errors()[:5])
        raise ConfigError(f"{where}invalid settings: {errs}") from None
