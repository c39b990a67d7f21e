"""Audit events, refusal reasons and the outcome window the breakers count over."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

# Refusal reasons of ``check`` (a tripped breaker refuses as "breaker:<name>").
KILLED = "killed"
TRADE_NOTIONAL = "trade_notional"
VENUE_NOTIONAL = "venue_notional"
ASSET_NOTIONAL = "asset_notional"
OPEN_EXPOSURE = "open_exposure"
MIN_EDGE = "min_edge"
BOOK_AGE = "book_age"
DECISION_LATENCY = "decision_latency"
OPEN_ORDERS = "open_orders"
VENUE_HEALTH = "venue_health"
PROBE_IN_FLIGHT = "probe_in_flight"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What the audit log records: who, what, why, and the numbers behind it."""

    actor: str  # "risk" for automatic decisions, else who asked (operator, file, api, ...)
    action: str  # trip / half_open / reset / kill / resume / venue_down
    reason: str
    ts_ns: int  # event time
    detail: dict[str, Any] = field(default_factory=dict)

    def as_detail(self) -> dict[str, Any]:
        return {"reason": self.reason, "ts_ns": self.ts_ns, **self.detail}


class Window:
    """A count of hits over the last ``size`` outcomes, O(1) per outcome."""

    __slots__ = ("hits", "items", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: deque[bool] = deque()
        self.hits = 0

    def add(self, hit: bool) -> None:
        self.items.append(hit)
        self.hits += hit
        if len(self.items) > self.size:
            self.hits -= self.items.popleft()

    @property
    def full(self) -> bool:
        return self.size > 0 and len(self.items) >= self.size

    def clear(self) -> None:
        self.items.clear()
        self.hits = 0
