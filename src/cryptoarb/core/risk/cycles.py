"""Pre-trade limits for a cycle within one venue: the two-legged rule of ``limits.py`` for N legs.

A cycle (``USDT > BTC > ETH > USDT``) trades about the same value on each leg: its notional ``n``
is what its first leg spends, valued in the account currency. The limits of docs/risk.md apply
with the same trip points (``value >= limit`` refuses), in the same order:

* kill switch, then breakers -- an open breaker refuses, and a *half-open* one too: the one probe
  a half-open breaker lets through is an arbitrage trade, whose outcome resets or re-trips it
  (a cycle does not stand in for it: ``half_open``);
* ``max_trade_notional``: ``n``;
* ``max_venue_notional``: the venue's notional in flight + ``n x legs at once`` (every leg in a
  concurrent cycle, one in a sequential one: a leg leaves when the previous one is done);
* ``max_asset_notional``: for each base asset of the legs, its notional in flight + ``n``;
* ``max_open_exposure``: everything in flight + the one-legged exposure + ``n x legs at once``;
* ``min_edge_bps``: the cycle's net edge (on what the first leg pays) less ``extra_cost_bps``;
* ``max_book_age_ns``: the oldest of the legs' books; ``max_decision_latency_ns``;
* ``max_open_orders``: open orders + legs at once; an unhealthy venue refuses.

A cycle accepted is in flight (``cycle_opened``) until it settles (``cycle_closed``): its
notional counts against the next intents, arbitrage trades and cycles alike, and its realised
PnL feeds the loss streak and the win rate like a trade's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cryptoarb.core.risk.breakers import LOSS_STREAK, WIN_RATE
from cryptoarb.core.risk.events import (
    ASSET_NOTIONAL,
    BOOK_AGE,
    DECISION_LATENCY,
    KILLED,
    MIN_EDGE,
    OPEN_EXPOSURE,
    OPEN_ORDERS,
    TRADE_NOTIONAL,
    VENUE_HEALTH,
    VENUE_NOTIONAL,
)
from cryptoarb.core.risk.limits import PreTradeLimits

HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CycleIntent:
    """What the risk manager needs of a sized cycle (built by the engine from the opportunity)."""

    id: int
    venue: str
    assets: tuple[str, ...]  # the base asset of each leg's market
    notional: float  # what the first leg spends, in the account currency
    profit_bps: float  # net of fees, on what the first leg spends
    local_ns: int  # the book event that produced it
    at_once: int  # legs in flight at once: all of them (concurrent) or 1 (sequential)


class CycleLimits(PreTradeLimits):
    """The per-intent check and the in-flight book-keeping of cycles (a mixin of the manager)."""

    loss_streak: int

    def check_cycle(self, c: CycleIntent, now_ns: int, oldest_book_ns: int) -> str | None:
        """None when the cycle may be sent now, else why it is refused (counted, as ``check``)."""
        if now_ns > self.clock_ns:
            self.clock_ns = now_ns
        if self.killed:
            return self._refuse(KILLED)
        if self._not_closed:
            why = self._gate(now_ns)
            return self._refuse(why if why is not None else HALF_OPEN)
        cfg = self.config
        n = c.notional
        k = n * c.at_once
        if cfg.max_trade_notional and n >= cfg.max_trade_notional:
            return self._refuse(TRADE_NOTIONAL)
        ex = self.exposure
        if cfg.max_venue_notional and ex.venue_open.get(c.venue, 0.0) + k >= cfg.max_venue_notional:
            return self._refuse(VENUE_NOTIONAL)
        if cfg.max_asset_notional:
            for a in c.assets:
                if ex.asset_open.get(a, 0.0) + n >= cfg.max_asset_notional:
                    return self._refuse(ASSET_NOTIONAL)
        if cfg.max_open_exposure and ex.open_notional + ex.one_legged_quote + k >= cfg.max_open_exposure:
            return self._refuse(OPEN_EXPOSURE)
        if c.profit_bps - cfg.extra_cost_bps <= cfg.min_edge_bps:
            return self._refuse(MIN_EDGE)
        if cfg.max_book_age_ns and now_ns - oldest_book_ns >= cfg.max_book_age_ns:
            return self._refuse(BOOK_AGE)
        if cfg.max_decision_latency_ns and now_ns - c.local_ns >= cfg.max_decision_latency_ns:
            return self._refuse(DECISION_LATENCY)
        if cfg.max_open_orders and len(ex.open_orders) + c.at_once > cfg.max_open_orders:
            return self._refuse(OPEN_ORDERS)
        if now_ns < self._venue_down.get(c.venue, 0):
            return self._refuse(VENUE_HEALTH)
        return None

    def cycle_opened(self, c: CycleIntent) -> None:
        """A cycle accepted and sent: its notional is in flight until :meth:`cycle_closed`."""
        self.exposure.open_cycle(c.id, c.venue, c.assets, c.notional, c.at_once)

    def cycle_closed(self, cycle_id: int, pnl: Decimal, now_ns: int) -> None:
        """A cycle settled (repairs included): its notional is released, its realised PnL
        counts in the loss streak and the win rate (equity follows the account)."""
        if not self.exposure.close_cycle(cycle_id):
            return
        if now_ns > self.clock_ns:
            self.clock_ns = now_ns
        cfg = self.config
        if pnl < 0:
            self.loss_streak += 1
        elif pnl > 0:
            self.loss_streak = 0
        if cfg.max_loss_streak and self.loss_streak >= cfg.max_loss_streak:
            self._trip(LOSS_STREAK, now_ns, f"{self.loss_streak} losing trades in a row", {
                "streak": self.loss_streak, "limit": cfg.max_loss_streak, "last_pnl": pnl, "cycle_id": cycle_id})
        w = self._wins
        w.add(pnl > 0)
        if w.full and cfg.min_win_rate and w.hits / w.size <= cfg.min_win_rate:
            self._trip(WIN_RATE, now_ns, f"win rate {w.hits}/{w.size}", {
                "wins": w.hits, "window": w.size, "rate": w.hits / w.size, "limit": cfg.min_win_rate})
