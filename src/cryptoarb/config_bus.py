"""The ``[bus]`` settings section: the distributed roles (docs/distributed.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ShardSettings(BaseModel):
    """``[bus.shards.NAME]``: the markets one engine follows (several engines split the market)."""

    model_config = ConfigDict(extra="forbid")

    venues: list[str] = Field(min_length=1)
    symbols: list[str] = Field(default_factory=lambda: ["BTC/USDT"])


class BusSettings(BaseModel):
    """``[bus]``: where the roles meet and how long streams are kept.

    ``url``: ``redis://HOST:PORT/DB`` (``memory://`` only inside one process). ``required_groups``
    are the consumer groups a publisher keeps every event for until they acknowledged it (so a
    Redis restarted without persistence loses nothing); a group listed here that never runs makes
    engines keep everything (bounded by ``retain_max``)."""

    model_config = ConfigDict(extra="forbid")

    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = Field("arb:", min_length=1, max_length=64)
    maxlen: int = Field(100_000, ge=1_000)
    required_groups: list[str] = Field(default_factory=lambda: ["recorder"])
    claim_idle_ms: int = Field(5_000, ge=100)
    metrics_host: str = "127.0.0.1"
    book_top_interval_s: float = Field(1.0, gt=0)
    outbox: str = "recorder-outbox.sqlite"
    shards: dict[str, ShardSettings] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://", "memory://")):
            raise ValueError(f"{v!r}: use redis://HOST:PORT/DB (or memory:// in one process)")
        return v
