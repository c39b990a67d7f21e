"""The risk manager: asked about every opportunity before anything is sent.

Pure domain code on the event-time clock: no I/O, no wall clock, no asyncio. ``check`` is O(1)
per intent (a handful of dict lookups and comparisons; the eight breakers are only looked at
when one of them is not closed). Everything the manager learns arrives through plain method
calls -- orders and trades from the executor's listeners, equity from the accounting, feed ages
and the kill switch from the engine -- so the same object runs in paper and live mode and in
scripted tests.

Every trip, half-open, reset, kill, resume and venue quarantine becomes an :class:`AuditEvent`
(reason plus the numbers that caused it), handed to the ``on_audit`` listeners (the engine writes
them as ``audit_log`` rows).

Split by concern: ``limits.py`` (the per-intent check), ``cycles.py`` (the same for a cycle),
``tripping.py`` (the breakers' state machine and the levels they watch), this module (state, what the
manager learns, kill switch).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from cryptoarb.core.orders import ArbStatus, ArbTrade, Order, OrderStatus
from cryptoarb.core.risk.breakers import (
    BREAKERS,
    ERROR_RATE,
    LATENCY,
    LOSS_STREAK,
    ONE_LEGGED,
    STALE_FEEDS,
    WIN_RATE,
    Breaker,
    BreakerState,
)
from cryptoarb.core.risk.config import RiskConfig
from cryptoarb.core.risk.cycles import CycleLimits
from cryptoarb.core.risk.events import AuditEvent, Window
from cryptoarb.core.risk.exposure import Exposure

ZERO = Decimal(0)
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN
_ERRORS = frozenset({OrderStatus.REJECTED, OrderStatus.FAILED})
_GOOD = frozenset({ArbStatus.COMPLETE, ArbStatus.PARTIAL})


class RiskManager(CycleLimits):
    """Pre-trade limits, circuit breakers and the kill switch of one engine."""

    def __init__(self, config: RiskConfig | None = None) -> None:
        c = self.config = config or RiskConfig()
        self.breakers: dict[str, Breaker] = {n: Breaker(n, n not in c.disabled) for n in BREAKERS}
        self._not_closed = 0  # breakers not CLOSED: check() skips them all while 0
        self.killed = False
        self.kill_reason = ""
        self.refused: dict[str, int] = {}
        self.on_audit: list[Callable[[AuditEvent], None]] = []
        self.events: deque[AuditEvent] = deque(maxlen=1_000)  # the latest, for views and tests
        self.clock_ns = 0  # latest event time seen
        self.exposure = Exposure()
        self._venue_errors: dict[str, int] = {}
        self._venue_down: dict[str, int] = {}  # venue -> unhealthy until (event time)
        self.equity = ZERO  # realised PnL, or the total PnL fed through on_equity
        self.peak = ZERO
        self._external_equity = False
        self._day = -1
        self._day_start = ZERO
        self.loss_streak = 0
        self._wins = Window(c.win_rate_window)
        self._errors = Window(c.error_window)
        self._latency_run = 0
        self.stale_feeds: list[str] = []
        self._probe_id: int | None = None

    # -- what the manager learns --------------------------------------------------------------
    def on_order(self, order: Order) -> None:
        """Every order state change (executor ``on_order``): open orders, errors, latency."""
        if not order.status.terminal:
            self.exposure.open_orders[order.id] = order.venue
            return
        if self.exposure.open_orders.pop(order.id, None) is None:
            return  # unknown, or its outcome was already counted
        now = order.updated_ns
        if now > self.clock_ns:
            self.clock_ns = now
        c = self.config
        error = order.status in _ERRORS
        venue = order.venue
        if error:
            n = self._venue_errors[venue] = self._venue_errors.get(venue, 0) + 1
            if c.venue_error_limit and n >= c.venue_error_limit:
                self._venue_errors[venue] = 0
                self._venue_down[venue] = now + c.venue_cooldown_ns
                self._emit("risk", "venue_down", f"{n} consecutive order errors on {venue}", now, {
                    "venue": venue, "errors": n, "limit": c.venue_error_limit,
                    "until_ns": now + c.venue_cooldown_ns, "last_error": order.reason})
        else:
            self._venue_errors[venue] = 0
        w = self._errors
        w.add(error)
        if w.full and c.max_error_rate and w.hits / w.size >= c.max_error_rate:
            self._trip(ERROR_RATE, now, f"order error rate {w.hits}/{w.size}", {
                "errors": w.hits, "window": w.size, "rate": w.hits / w.size, "limit": c.max_error_rate,
                "last_error": order.reason})
        if c.max_order_latency_ns and c.latency_breaches:
            latency = order.updated_ns - order.created_ns
            if latency >= c.max_order_latency_ns:
                self._latency_run += 1
                if self._latency_run >= c.latency_breaches:
                    self._trip(LATENCY, now, f"{self._latency_run} orders in a row at or over the latency limit", {
                        "latency_ns": latency, "limit_ns": c.max_order_latency_ns,
                        "consecutive": self._latency_run, "limit_count": c.latency_breaches, "venue": venue})
            else:
                self._latency_run = 0

    def on_trade(self, trade: ArbTrade) -> None:
        """Every trade event (executor ``on_trade``): in flight when pending, learnt when settled."""
        if trade.status is ArbStatus.PENDING:
            self._open_trade(trade)
            return
        asset = self.exposure.close_trade(trade.id)
        if asset is None:
            return  # never seen in flight, or already learnt
        now = trade.closed_ns
        if now > self.clock_ns:
            self.clock_ns = now
        self._roll_day(now)
        pnl = trade.realized_pnl
        if not self._external_equity:
            self._set_equity(self.equity + pnl)
        c = self.config
        if pnl < 0:
            self.loss_streak += 1
        elif pnl > 0:
            self.loss_streak = 0
        if c.max_loss_streak and self.loss_streak >= c.max_loss_streak:
            self._trip(LOSS_STREAK, now, f"{self.loss_streak} losing trades in a row", {
                "streak": self.loss_streak, "limit": c.max_loss_streak, "last_pnl": pnl, "trade_id": trade.id})
        w = self._wins
        w.add(pnl > 0)
        if w.full and c.min_win_rate and w.hits / w.size <= c.min_win_rate:
            self._trip(WIN_RATE, now, f"win rate {w.hits}/{w.size}", {
                "wins": w.hits, "window": w.size, "rate": w.hits / w.size, "limit": c.min_win_rate})
        if trade.unhedged_qty_base:
            leg = trade.buy_order if trade.unhedged_qty_base > 0 else trade.sell_order
            self.exposure.add_unhedged(asset, trade.unhedged_qty_base, leg.avg_price or leg.expected_price)
        self._check_levels(now, f"trade {trade.id} settled ({trade.status.value}, pnl {pnl})")
        if trade.id == self._probe_id:
            self._probe_id = None
            ok = trade.status in _GOOD and pnl >= 0 and not trade.unhedged_qty_base
            for b in self.breakers.values():
                if b.state is HALF_OPEN:
                    if ok:
                        self._reset(b, now, "risk", f"probe trade {trade.id} succeeded (pnl {pnl})")
                    else:
                        self._trip(b.name, now, f"probe trade {trade.id} failed", {
                            "trade_id": trade.id, "status": trade.status.value, "pnl": pnl,
                            "unhedged_qty_base": trade.unhedged_qty_base})

    def _open_trade(self, trade: ArbTrade) -> None:
        if not self.exposure.open_trade(trade):
            return
        if self._not_closed and self._probe_id is None and all(x.state is not OPEN for x in self.breakers.values()):
            self._probe_id = trade.id  # the one trade half-open breakers let through

    def on_equity(self, total_pnl: Decimal, now_ns: int) -> None:
        """Hook for the accounting: total (realised + marked) PnL of the run, in quote.

        Once called, daily loss and drawdown follow this figure instead of the sum of settled
        trades' realised PnL."""
        self._external_equity = True
        if now_ns > self.clock_ns:
            self.clock_ns = now_ns
        self._roll_day(now_ns)
        self._set_equity(total_pnl)
        self._check_levels(now_ns, f"equity {total_pnl}")

    def set_unhedged(self, asset: str, qty_base: Decimal, mark_price: Decimal, now_ns: int) -> None:
        """Hook for leg-risk handling: the one-legged position left in ``asset`` (signed) and
        the price it is marked at (replaces what settled trades accumulated)."""
        self.exposure.set_unhedged(asset, qty_base, mark_price)
        self._check_level(ONE_LEGGED, now_ns, f"one-legged exposure in {asset} set to {qty_base}")

    def on_feeds(self, now_ns: int, freshest_ns: Mapping[str, int]) -> None:
        """Feed ages (engine, about once per second): venue -> local time of its freshest
        valid book. Venues without any book yet are left out by the caller."""
        c = self.config
        if c.stale_feed_ns:
            self.stale_feeds = sorted(v for v, ns in freshest_ns.items() if now_ns - ns >= c.stale_feed_ns)
        self.tick(now_ns)
        self._check_level(STALE_FEEDS, now_ns, f"{len(self.stale_feeds)} stale feed(s)")

    # -- kill switch ----------------------------------------------------------------------------
    def kill(self, reason: str, actor: str = "operator", now_ns: int | None = None) -> list[str]:
        """Stop everything: every new intent is refused until :meth:`resume`. Returns the ids
        of the open orders the caller must cancel (all of them, also when already killed)."""
        now = self.clock_ns if now_ns is None else now_ns
        orders = sorted(self.exposure.open_orders)
        if not self.killed:
            self.killed = True
            self.kill_reason = reason
            self._emit(actor, "kill", reason, now, {
                "cancel_orders": orders, "open_notional": self.exposure.open_notional,
                "one_legged_quote": self.exposure.one_legged_quote, "equity": self.equity})
        return orders

    def resume(self, actor: str = "operator", reason: str = "resume by command", now_ns: int | None = None) -> bool:
        """Lift the kill switch (the only way: nothing resumes by itself). False if not killed.
        Breakers keep their own state."""
        if not self.killed:
            return False
        now = self.clock_ns if now_ns is None else now_ns
        self.killed = False
        self._emit(actor, "resume", reason, now, {"killed_for": self.kill_reason})
        self.kill_reason = ""
        return True

    @property
    def open_orders(self) -> list[str]:
        return sorted(self.exposure.open_orders)

    def summary(self) -> dict[str, Any]:
        """The ``risk`` section of the run summary."""
        return {
            "refused": dict(sorted(self.refused.items())),
            "breakers": {n: b.state.value for n, b in self.breakers.items()},
            "killed": self.killed,
        }
