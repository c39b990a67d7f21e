"""The circuit breakers' logic: trip, half-open, probe, reset, and the levels they watch.

A mixin of :class:`~cryptoarb.core.risk.manager.RiskManager` (split out to keep each module one
concern): the manager owns the state and learns from orders and trades; this decides when a
breaker trips, cools down, lets its probe through and closes. Pure domain code, event time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cryptoarb.core.risk.breakers import (
    DAILY_LOSS,
    DRAWDOWN,
    ERROR_RATE,
    LATENCY,
    LOSS_STREAK,
    ONE_LEGGED,
    STALE_FEEDS,
    WIN_RATE,
    Breaker,
    BreakerState,
)
from cryptoarb.core.risk.config import SECOND_NS, RiskConfig
from cryptoarb.core.risk.events import PROBE_IN_FLIGHT, AuditEvent, Window
from cryptoarb.core.risk.exposure import Exposure

DAY_NS = 86_400 * SECOND_NS
CLOSED = BreakerState.CLOSED
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN


class BreakerLogic:
    """The breakers' state machine over the manager's measurements (see RiskManager.__init__)."""

    config: RiskConfig
    breakers: dict[str, Breaker]
    _not_closed: int
    _probe_id: int | None
    clock_ns: int
    exposure: Exposure
    equity: Decimal
    peak: Decimal
    _day: int
    _day_start: Decimal
    loss_streak: int
    _wins: Window
    _errors: Window
    _latency_run: int
    stale_feeds: list[str]
    on_audit: list[Callable[[AuditEvent], None]]
    events: deque[AuditEvent]

    def _gate(self, now_ns: int) -> str | None:
        """Some breaker is not closed: refuse while one is open; in half-open, one probe."""
        blocking: str | None = None
        for b in self.breakers.values():
            if b.state is OPEN and now_ns >= b.reopen_ns:
                self._cooled(b, now_ns)
            if b.state is OPEN and blocking is None:
                blocking = "breaker:" + b.name
        if blocking is not None:
            return blocking
        return PROBE_IN_FLIGHT if self._probe_id is not None else None

    # -- the breakers' clock ------------------------------------------------------------------
    def tick(self, now_ns: int) -> None:
        """Advance event time without an intent: cooled breakers go half-open (and say so)."""
        if now_ns > self.clock_ns:
            self.clock_ns = now_ns
        if self._not_closed:
            for b in self.breakers.values():
                if b.state is OPEN and now_ns >= b.reopen_ns:
                    self._cooled(b, now_ns)

    def _cooled(self, b: Breaker, now_ns: int) -> None:
        """The cool-down is over: a level still breached re-trips, anything else goes half-open."""
        if b.level:
            self._roll_day(now_ns)  # a new day starts a new daily-loss budget
            numbers = self._level(b.name)
            if numbers is not None:
                self._trip(b.name, now_ns, "still breached when the cool-down ended", numbers, again=True)
                return
        b.half_open()
        self._emit("risk", "half_open", b.name, now_ns, {"breaker": b.name, "trips": b.trips})

    def _level(self, name: str) -> dict[str, Any] | None:
        """The numbers of a level breaker when its level is breached now, else None."""
        c = self.config
        if name == DAILY_LOSS:
            loss = self._day_start - self.equity
            if not c.max_daily_loss or loss < c.max_daily_loss:
                return None
            return {"daily_loss": loss, "limit": c.max_daily_loss, "day_start_equity": self._day_start,
                    "equity": self.equity}
        if name == DRAWDOWN:
            dd = self.peak - self.equity
            if not c.max_drawdown or dd < c.max_drawdown:
                return None
            return {"drawdown": dd, "limit": c.max_drawdown, "peak": self.peak, "equity": self.equity}
        if name == STALE_FEEDS:
            if not c.max_stale_feeds or len(self.stale_feeds) < c.max_stale_feeds:
                return None
            return {"stale": list(self.stale_feeds), "count": len(self.stale_feeds),
                    "limit": c.max_stale_feeds, "stale_after_ns": c.stale_feed_ns}
        ex = self.exposure
        if name != ONE_LEGGED or not c.max_one_legged or ex.one_legged_quote < c.max_one_legged:
            return None
        return {"one_legged_quote": ex.one_legged_quote, "limit": c.max_one_legged,
                "by_asset": {a: str(q) for a, (q, _) in ex.unhedged.items() if q}}

    def _check_level(self, name: str, now_ns: int, reason: str) -> None:
        if self.breakers[name].state is not OPEN:
            numbers = self._level(name)
            if numbers is not None:
                self._trip(name, now_ns, reason, numbers)

    def _trip(self, name: str, now_ns: int, reason: str, numbers: dict[str, Any], again: bool = False) -> None:
        """Open breaker ``name`` (``again``: also when already open, restarting its cool-down)."""
        b = self.breakers[name]
        if not b.enabled or (b.state is OPEN and not again):
            return
        if b.state is CLOSED:
            self._not_closed += 1
        b.trip(now_ns, self.config.cooldown_ns)
        # event breakers judge a fresh run of outcomes after a trip
        if name == LOSS_STREAK:
            self.loss_streak = 0
        elif name == WIN_RATE:
            self._wins.clear()
        elif name == ERROR_RATE:
            self._errors.clear()
        elif name == LATENCY:
            self._latency_run = 0
        self._emit("risk", "trip", reason, now_ns,
                   {"breaker": name, "trips": b.trips, "half_open_at_ns": b.reopen_ns, **numbers})

    def _reset(self, b: Breaker, now_ns: int, actor: str, reason: str) -> None:
        if b.state is CLOSED:
            return
        b.reset()
        self._not_closed -= 1
        self._emit(actor, "reset", reason, now_ns, {"breaker": b.name})

    def reset(self, name: str | None = None, actor: str = "operator", now_ns: int | None = None) -> list[str]:
        """Close breaker ``name`` (all when None) by hand; the names actually reset."""
        now = self.clock_ns if now_ns is None else now_ns
        done = []
        for b in self.breakers.values():
            if (name is None or b.name == name) and b.state is not CLOSED:
                self._reset(b, now, actor, "reset by command")
                done.append(b.name)
        if not self._not_closed:
            self._probe_id = None
        return done

    def _set_equity(self, equity: Decimal) -> None:
        self.equity = equity
        if equity > self.peak:
            self.peak = equity

    def _roll_day(self, now_ns: int) -> None:
        day = now_ns // DAY_NS
        if day != self._day:
            self._day = day
            self._day_start = self.equity

    def _check_levels(self, now_ns: int, reason: str) -> None:
        for name in (DAILY_LOSS, DRAWDOWN, ONE_LEGGED):
            self._check_level(name, now_ns, reason)

    # -- reporting ------------------------------------------------------------------------------
    def _emit(self, actor: str, action: str, reason: str, now_ns: int, detail: dict[str, Any]) -> None:
        ev = AuditEvent(actor, action, reason, now_ns, detail)
        self.events.append(ev)
        for fn in self.on_audit:
            fn(ev)

