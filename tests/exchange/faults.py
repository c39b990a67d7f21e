"""Faults the local venue injects on command, and Binance's request-weight rate limit.

A fault is armed by ``POST /admin/fault`` with a JSON body and applies to the next ``count``
matching requests (``count`` absent or null: until ``DELETE /admin/fault``). It matches every
non-admin request, or only those of ``path`` (e.g. ``/api/v3/order``) and ``method``.

Kinds (see docs/local-venue.md):
- ``drop_response``: the request is processed and committed, then the connection is closed
  without an answer (the client sees a reset: outcome unknown).
- ``http_error``: answer ``status`` (default 502) with a gateway's non-JSON body; with
  ``"commit": true`` the request is processed and committed first (Binance's "execution status
  unknown" 5xx).
- ``rate_limit``: 429 (or ``"status": 418``, an IP ban) with ``-1003`` and ``Retry-After``.
- ``maintenance``: 503 ``System is under maintenance.``.
- ``insufficient_balance``: a new order is rejected with ``-2010`` whatever the balance.
- ``latency``: ``delay_ms`` added before the request is processed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("drop_response", "http_error", "rate_limit", "maintenance", "insufficient_balance", "latency")


class FaultError(ValueError):
    """A fault command that cannot be armed (unknown kind, bad field)."""


@dataclass
class Fault:
    id: int
    kind: str
    count: int | None = 1
    path: str | None = None
    method: str | None = None
    status: int | None = None
    delay_ms: int = 0
    commit: bool = False
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.path is not None and path != self.path:
            return False
        return self.method is None or method == self.method.upper()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultBoard:
    """The armed faults, in the order they were armed."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self._next = 1

    def arm(self, spec: dict[str, Any]) -> Fault:
        kind = spec.get("kind")
        if kind not in KINDS:
            raise FaultError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        unknown = set(spec) - {"kind", "count", "path", "method", "status", "delay_ms", "commit"}
        if unknown:
            raise FaultError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        count = spec.get("count", 1)
        if count is not None and (not isinstance(count, int) or count < 1):
            raise FaultError("count must be a positive integer or null (until cleared)")
        status = spec.get("status")
        if kind == "rate_limit" and status not in (None, 429, 418):
            raise FaultError("a rate_limit fault answers 429 or 418")
        if kind == "http_error" and status is not None and not (500 <= int(status) <= 599):
            raise FaultError("an http_error fault answers a 5xx status")
        delay = spec.get("delay_ms", 0)
        if kind == "latency" and (not isinstance(delay, int) or delay <= 0):
            raise FaultError("a latency fault needs delay_ms > 0")
        f = Fault(self._next, kind, count, spec.get("path"), spec.get("method"), status, int(delay or 0),
                  bool(spec.get("commit", False)))
        self._next += 1
        self.faults.append(f)
        return f

    def clear(self) -> int:
        n = len(self.faults)
        self.faults.clear()
        return n

    def take(self, kinds: tuple[str, ...], method: str, path: str) -> Fault | None:
        """The first armed fault of one of ``kinds`` matching the request, used up once."""
        for f in self.faults:
            if f.kind in kinds and f.matches(method, path):
                f.hits += 1
                if f.count is not None:
                    f.count -= 1
                    if f.count == 0:
                        self.faults.remove(f)
                return f
        return None


# Binance spot request weights (REQUEST_WEIGHT, per IP per minute)
WEIGHTS = {
    ("GET", "/api/v3/ping"): 1, ("GET", "/api/v3/time"): 1, ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/account"): 20, ("POST", "/api/v3/order"): 1, ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1, ("GET", "/api/v3/openOrders"): 6, ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/api/v3/allOrders"): 20, ("GET", "/api/v3/myTrades"): 20,
}


def depth_weight(limit: int) -> int:
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


class WeightLimiter:
    """Used weight per clock minute; past ``limit`` a request is refused with 429, and after
    ``ban_after`` refusals in the same minute the client is banned (418) for ``ban_ms``."""

    def __init__(self, limit: int = 6000, ban_after: int = 20, ban_ms: int = 120_000) -> None:
        self.limit = limit
        self.ban_after = ban_after
        self.ban_ms = ban_ms
        self.minute = -1
        self.used = 0
        self.refused = 0
        self.banned_until = 0

    def charge(self, weight: int, now_ms: int) -> int | None:
        """Charge ``weight``; None when allowed, else the HTTP status to answer (429 or 418)."""
        if now_ms < self.banned_until:
            return 418
        minute = now_ms // 60_000
        if minute != self.minute:
            self.minute, self.used, self.refused = minute, 0, 0
        if self.used + weight > self.limit:
            self.refused += 1
            if self.refused > self.ban_after:
                self.banned_until = now_ms + self.ban_ms
                return 418
            return 429
        self.used += weight
        return None
