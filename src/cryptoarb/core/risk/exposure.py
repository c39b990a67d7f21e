"""What is at stake right now: notional in flight per venue / asset, open orders, and the
one-legged positions failed legs left behind. Book-keeping only; the manager judges it."""

from __future__ import annotations

from decimal import Decimal

from cryptoarb.core.orders import ArbTrade

ZERO = Decimal(0)


class Exposure:
    """Quote notionals are floats (limits, not money); one-legged quantities stay exact."""

    __slots__ = ("_asset_of", "_cycles", "_inflight", "asset_open", "one_legged_quote", "open_notional", "open_orders",
                 "unhedged", "venue_open")

    def __init__(self) -> None:
        # trade id -> (asset, notional, buy venue, sell venue): released exactly as added
        self._inflight: dict[int, tuple[str, float, str, str]] = {}
        # cycle id -> (venue, its legs' base assets, notional, legs at once): a separate id space
        self._cycles: dict[int, tuple[str, tuple[str, ...], float, int]] = {}
        self.venue_open: dict[str, float] = {}
        self.asset_open: dict[str, float] = {}
        self.open_notional = 0.0
        self.open_orders: dict[str, str] = {}  # order id -> venue
        self._asset_of: dict[str, str] = {}  # symbol -> base asset
        self.unhedged: dict[str, tuple[Decimal, Decimal]] = {}  # asset -> (signed qty, mark price)
        self.one_legged_quote = 0.0

    def asset(self, symbol: str) -> str:
        """The base asset of ``BASE/QUOTE[:SETTLE]`` (cached: called per intent)."""
        a = self._asset_of.get(symbol)
        if a is None:
            a = self._asset_of[symbol] = symbol.split("/", 1)[0]
        return a

    def open_trade(self, trade: ArbTrade) -> bool:
        """Count a trade in flight at qty_base x the worse expected price; False if known."""
        if trade.id in self._inflight:
            return False
        b = trade.buy_order
        s = trade.sell_order
        price = b.expected_price if b.expected_price > s.expected_price else s.expected_price
        n = float(trade.expected_qty_base) * float(price)
        asset = self.asset(b.symbol)
        self._inflight[trade.id] = (asset, n, b.venue, s.venue)
        self.open_notional += n
        self.asset_open[asset] = self.asset_open.get(asset, 0.0) + n
        self.venue_open[b.venue] = self.venue_open.get(b.venue, 0.0) + n
        self.venue_open[s.venue] = self.venue_open.get(s.venue, 0.0) + n
        return True

    def close_trade(self, trade_id: int) -> str | None:
        """Release a settled trade; its asset, or None when it was not in flight."""
        rec = self._inflight.pop(trade_id, None)
        if rec is None:
            return None
        asset, n, bv, sv = rec
        self.open_notional = max(0.0, self.open_notional - n)
        self.asset_open[asset] -= n
        self.venue_open[bv] -= n
        self.venue_open[sv] -= n
        return asset

    def open_cycle(self, cycle_id: int, venue: str, assets: tuple[str, ...], notional: float, at_once: int) -> bool:
        """Count a cycle in flight: ``notional x legs at once`` on its venue and in the total,
        ``notional`` in each distinct base asset of its legs; False if known."""
        if cycle_id in self._cycles:
            return False
        uniq = tuple(dict.fromkeys(assets))
        self._cycles[cycle_id] = (venue, uniq, notional, at_once)
        k = notional * at_once
        self.open_notional += k
        self.venue_open[venue] = self.venue_open.get(venue, 0.0) + k
        for a in uniq:
            self.asset_open[a] = self.asset_open.get(a, 0.0) + notional
        return True

    def close_cycle(self, cycle_id: int) -> bool:
        """Release a settled cycle exactly as it was added; False when it was not in flight."""
        rec = self._cycles.pop(cycle_id, None)
        if rec is None:
            return False
        venue, assets, notional, at_once = rec
        k = notional * at_once
        self.open_notional = max(0.0, self.open_notional - k)
        self.venue_open[venue] -= k
        for a in assets:
            self.asset_open[a] -= notional
        return True

    def set_unhedged(self, asset: str, qty: Decimal, mark: Decimal) -> None:
        self.unhedged[asset] = (qty, mark)
        self.one_legged_quote = float(sum((abs(q) * p for q, p in self.unhedged.values()), ZERO))

    def add_unhedged(self, asset: str, qty: Decimal, mark: Decimal) -> None:
        held = self.unhedged.get(asset, (ZERO, ZERO))[0]
        self.set_unhedged(asset, held + qty, mark)
