"""Pre-trade limits: the per-intent check, O(1) (docs/risk.md, Pre-trade limits).

A mixin of :class:`~cryptoarb.core.risk.manager.RiskManager`: the kill switch, then the
breakers (only looked at when one is not closed), then each limit in the documented order; the
first that fails is the reason. Every threshold is a trip point (``value >= limit`` refuses).
"""

from __future__ import annotations

from cryptoarb.core.opportunity import Opportunity
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
from cryptoarb.core.risk.tripping import BreakerLogic


class PreTradeLimits(BreakerLogic):
    killed: bool
    refused: dict[str, int]
    _venue_down: dict[str, int]

    def check(self, opp: Opportunity, now_ns: int, buy_book_ns: int, sell_book_ns: int) -> str | None:
        """None when ``opp`` may be sent now, else the reason it is refused (also counted).

        ``buy_book_ns``/``sell_book_ns``: local receive time of each book's latest update.
        Changes no state but the breakers' own clock (open -> half-open after the cool-down).
        """
        if now_ns > self.clock_ns:
            self.clock_ns = now_ns
        if self.killed:
            return self._refuse(KILLED)
        if self._not_closed:
            why = self._gate(now_ns)
            if why is not None:
                return self._refuse(why)
        c = self.config
        price = opp.buy_vwap if opp.buy_vwap > opp.sell_vwap else opp.sell_vwap
        n = opp.qty_base * price
        if c.max_trade_notional and n >= c.max_trade_notional:
            return self._refuse(TRADE_NOTIONAL)
        bv = opp.buy.venue
        sv = opp.sell.venue
        ex = self.exposure
        if c.max_venue_notional:
            vo = ex.venue_open
            if bv == sv:
                if vo.get(bv, 0.0) + 2 * n >= c.max_venue_notional:
                    return self._refuse(VENUE_NOTIONAL)
            elif vo.get(bv, 0.0) + n >= c.max_venue_notional or vo.get(sv, 0.0) + n >= c.max_venue_notional:
                return self._refuse(VENUE_NOTIONAL)
        if c.max_asset_notional and ex.asset_open.get(ex.asset(opp.buy.symbol), 0.0) + n >= c.max_asset_notional:
            return self._refuse(ASSET_NOTIONAL)
        if c.max_open_exposure and ex.open_notional + ex.one_legged_quote + n >= c.max_open_exposure:
            return self._refuse(OPEN_EXPOSURE)
        if opp.profit_bps - c.extra_cost_bps <= c.min_edge_bps:
            return self._refuse(MIN_EDGE)
        oldest = buy_book_ns if buy_book_ns < sell_book_ns else sell_book_ns
        if c.max_book_age_ns and now_ns - oldest >= c.max_book_age_ns:
            return self._refuse(BOOK_AGE)
        if c.max_decision_latency_ns and now_ns - opp.local_ns >= c.max_decision_latency_ns:
            return self._refuse(DECISION_LATENCY)
        if c.max_open_orders and len(ex.open_orders) + 2 > c.max_open_orders:
            return self._refuse(OPEN_ORDERS)
        down = self._venue_down
        if down and (now_ns < down.get(bv, 0) or now_ns < down.get(sv, 0)):
            return self._refuse(VENUE_HEALTH)
        return None

    def _refuse(self, why: str) -> str:
        self.refused[why] = self.refused.get(why, 0) + 1
        return why

