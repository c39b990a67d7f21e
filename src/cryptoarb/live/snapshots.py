"""REST order-book snapshots within each venue's documented request-weight limit (issue #15).

ccxt's own throttler (``enableRateLimit``) sends one request at a time, spaced by the venue's
``rateLimit`` times the call's cost: a cold start of 2,000 Binance books at ``limit=1000``
(cost 10 x 50 ms) took 1,000 s. A venue's limit is a *budget per window*, not a spacing:
Binance spot grants 6,000 request weight per minute per IP, so a cold start may spend it at
once, with as many requests in flight as it allows, and wait only when it is used up.

:class:`PacedRest` wraps the venue's :class:`~cryptoarb.live.rest.CcxtRest` (its ccxt throttler
off): each request waits in a :class:`WeightPacer` until its weight fits in the sliding window
(a sliding window never exceeds a fixed-window counter either), at most ``in_flight`` at once.
Each venue has its own pacer and all venues run in parallel (their limits are separate).

The depth asked for is the cheapest weight tier holding ``depth`` levels (100 on Binance:
weight 5 instead of 50 for 1,000 on spot, 5 instead of 20 on futures). The stream's diffs
carry absolute quantities, so every level updated after the snapshot is exact; a level deeper
than 100 that was never updated since is absent: the book looks thinner, never better.

Sources (venues' REST documentation; ccxt 4.5.90 ``binance.py``/``binanceus.py`` cost tables
say the same in their own units):

- Binance spot ``GET /api/v3/depth``: weight 5 (limit 1-100), 25 (101-500), 50 (501-1000),
  250 (1001-5000); ``REQUEST_WEIGHT`` 6,000 per minute.
- Binance USDⓈ-M ``/fapi/v1/depth`` and COIN-M ``/dapi/v1/depth``: weight 2 (5-50), 5 (100),
  10 (500), 20 (1000); 2,400 per minute.
- Binance.US ``/api/v3/depth``: weight 1 (1-100), 5 (101-500), 10 (501-1000), 50 (1001-5000);
  1,200 per minute.
- Bitstamp: 10,000 requests per 10 minutes (and at most 400 per second); an order book costs 1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

#: snapshots may spend this share of a venue's budget: the rest is left to the run's other REST
#: calls from the same IP (balances, orders, metadata)
SHARE = 0.9
#: the window is stretched by this many seconds (clock drift, the venue's own rounding)
WINDOW_MARGIN = 1.0


def _tiers(*tiers: tuple[int, int]) -> Callable[[int], int]:
    def weight(limit: int) -> int:
        for top, w in tiers:
            if limit <= top:
                return w
        return tiers[-1][1]
    return weight


@dataclass(frozen=True)
class RestBudget:
    """A venue's documented REST limit: ``weight`` units per ``window`` seconds (per IP)."""

    weight: int
    window: float
    depth_weight: Callable[[int], int]  # weight of one snapshot of ``limit`` levels
    depth: int | None = None  # levels asked for (None: what the handler asks)
    in_flight: int = 64
    source: str = ""
    #: a second, shorter limit the same requests must also keep: (weight, window seconds)
    also: tuple[int, float] | None = None

    def cost(self, params: dict[str, Any]) -> int:
        return self.depth_weight(int(params.get("limit") or 100))


_SPOT = _tiers((100, 5), (500, 25), (1000, 50), (5000, 250))
_FUT = _tiers((50, 2), (100, 5), (500, 10), (1000, 20))
_US = _tiers((100, 1), (500, 5), (1000, 10), (5000, 50))

BUDGETS: dict[str, RestBudget] = {
    "binance": RestBudget(6000, 60.0, _SPOT, 100, source="Binance spot REST: depth weights, REQUEST_WEIGHT 6000/min"),
    "binanceusdm": RestBudget(2400, 60.0, _FUT, 100, source="Binance USDⓈ-M: depth weights, 2400/min"),
    "binancecoinm": RestBudget(2400, 60.0, _FUT, 100, source="Binance COIN-M: depth weights, 2400/min"),
    "binanceus": RestBudget(1200, 60.0, _US, 100, source="Binance.US REST: depth weights, 1200/min"),
    "bitstamp": RestBudget(10_000, 600.0, lambda _limit: 1, in_flight=32, also=(400, 1.0),
                           source="Bitstamp: 10000 requests / 10 min, 400/s"),
}


class WeightPacer:
    """At most ``budget`` weight in any ``window`` seconds at the venue; requests go in order.

    A request counts from the moment it may go until ``window`` after its answer came back:
    the venue receives it somewhere in between (the way there may be slow: a first request
    also opens the HTTP session), so no delay on the way can crowd the venue's window."""

    def __init__(self, budget: int, window: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if budget < 1 or window <= 0:
            raise ValueError(f"a budget needs positive weight and window, not {budget} per {window} s")
        self.budget = budget
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._spent: list[list[float]] = []  # [answered at (inf while in flight), weight]
        self._lock = asyncio.Lock()
        self._answered = asyncio.Event()
        self.waited = 0

    async def acquire(self, weight: int) -> list[float]:
        """Wait until ``weight`` more fits; the returned token goes to :meth:`done` with the answer."""
        weight = min(weight, self.budget)  # one request heavier than the budget still goes, alone
        async with self._lock:
            while True:
                now = self._clock()
                self._spent = spent = [e for e in self._spent if e[0] > now - self.window]
                used = sum(e[1] for e in spent)
                if used + weight <= self.budget:
                    token = [float("inf"), float(weight)]
                    spent.append(token)
                    return token
                self.waited += 1
                # the earliest answered spending to leave the window, or the next answer
                done = sorted(e[0] for e in spent if e[0] != float("inf"))
                if done:
                    await self._sleep(done[0] + self.window - now)
                else:
                    self._answered.clear()
                    await self._answered.wait()

    def done(self, token: list[float]) -> None:
        """The request of ``token`` was answered (or failed): its window starts now."""
        token[0] = self._clock()
        self._answered.set()


class PacedRest:
    """A venue's REST source, its snapshots paced within the venue's budget."""

    def __init__(self, rest: Any, budget: RestBudget, share: float = SHARE, margin: float = WINDOW_MARGIN,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rest = rest
        self.budget = budget
        self.pacer = WeightPacer(max(1, int(budget.weight * share)), budget.window + margin, clock)
        #: the shorter limit, its window stretched by the same fraction as the main one's
        self.short = (WeightPacer(max(1, int(budget.also[0] * share)),
                                  budget.also[1] * (1 + margin / budget.window), clock)
                      if budget.also else None)
        self._slots = asyncio.Semaphore(budget.in_flight)
        self.requests = 0

    @property
    def exchange(self) -> Any:
        return self.rest.exchange

    async def native(self, method: str, params: dict[str, Any]) -> bytes:
        if self.budget.depth is not None and "limit" in params:
            params = {**params, "limit": self.budget.depth}
        cost = self.budget.cost(params)
        token = await self.pacer.acquire(cost)
        short = await self.short.acquire(cost) if self.short is not None else None
        try:
            async with self._slots:
                self.requests += 1
                body: bytes = await self.rest.native(method, params)
                return body
        finally:
            self.pacer.done(token)
            if self.short is not None and short is not None:
                self.short.done(short)

    async def close(self) -> None:
        close = getattr(self.rest, "close", None)
        if close is not None:
            await close()


def paced(venue: str, config: dict[str, Any] | None) -> Any:
    """The snapshot source of ``venue``: paced by its budget when documented (ccxt's serial
    throttler off), else a plain :class:`CcxtRest` with ccxt's throttler."""
    from cryptoarb.live.rest import CcxtRest

    budget = BUDGETS.get(venue)
    if budget is None:
        return CcxtRest(venue, config)
    return PacedRest(CcxtRest(venue, {**(config or {}), "enableRateLimit": False}), budget)
