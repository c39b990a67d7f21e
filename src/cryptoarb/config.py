"""Settings: defaults < TOML file < environment (``ARB_`` prefix, ``__`` for nesting).

Every entry point loads settings through :func:`load_settings`, which turns a missing file, bad
TOML or an invalid value into one :class:`ConfigError` line naming the file and the field.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from cryptoarb.core.instruments import Fees, Instrument, Kind


class ConfigError(ValueError):
    pass


class InstrumentSpec(BaseModel):
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
            )
        except ValueError as e:
            raise ConfigError(f"instrument {self.venue} {self.symbol}: {e}") from None


class GroupSpec(BaseModel):
    name: str
    label: str = ""
    members: list[str] = Field(min_length=2)


class DetectorSettings(BaseModel):
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


class PaperSettings(BaseModel):
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


class StorageSettings(BaseModel):
    url: str = "sqlite:///cryptoarb.db"
    enabled: bool = True


class VenueLiveSettings(BaseModel):
    ws_url: str = ""  # override the venue's public endpoint (a proxy, a testnet, a local server)
    ccxt: dict[str, Any] = Field(default_factory=dict)  # ccxt constructor config (urls, timeout, ...)


class LiveSettings(BaseModel):
    stale_after_s: float = Field(10.0, gt=0)  # a connection silent this long is stale: resync
    venues: dict[str, VenueLiveSettings] = Field(default_factory=dict)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARB_", env_nested_delimiter="__", extra="forbid")

    detector: DetectorSettings = Field(default_factory=lambda: DetectorSettings())
    paper: PaperSettings = Field(default_factory=lambda: PaperSettings())
    storage: StorageSettings = Field(default_factory=lambda: StorageSettings())
    live: LiveSettings = Field(default_factory=lambda: LiveSettings())
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

    try:
        return Settings.model_validate(_Loaded(**overrides).model_dump())
    except ValidationError as e:
        where = f"{path}: " if path else ""
        errs = "; ".join(
            f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:5]
        )
        raise ConfigError(f"{where}invalid settings: {errs}") from None
