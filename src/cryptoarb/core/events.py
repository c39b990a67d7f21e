"""Normalized market events.

Every event carries two integer-nanosecond timestamps: ``exchange_ns`` (the venue's own
clock, as precise as the venue gives it) and ``local_ns`` (when our process received the
bytes). Latency, staleness and replay ordering are all computed from these two.
"""

from __future__ import annotations


class Trade:
    __slots__ = ("exchange_ns", "key", "local_ns", "price", "qty", "side", "trade_id")

    def __init__(
        self, key: str, price: float, qty: float, side: str, trade_id: int, exchange_ns: int, local_ns: int
    ) -> None:
        self.key = key
        self.price = price
        self.qty = qty
        self.side = side  # aggressor side: "buy" or "sell"
        self.trade_id = trade_id
        self.exchange_ns = exchange_ns
        self.local_ns = local_ns

    def __repr__(self) -> str:
        return f"Trade({self.key} {self.side} {self.qty}@{self.price} id={self.trade_id})"


class Quote:
    """Best bid/offer as pushed by a venue's ticker stream (not derived from our book)."""

    __slots__ = ("ask", "ask_qty", "bid", "bid_qty", "exchange_ns", "key", "local_ns", "update_id")

    def __init__(
        self,
        key: str,
        bid: float,
        bid_qty: float,
        ask: float,
        ask_qty: float,
        update_id: int,
        exchange_ns: int,
        local_ns: int,
    ) -> None:
        self.key = key
        self.bid = bid
        self.bid_qty = bid_qty
        self.ask = ask
        self.ask_qty = ask_qty
        self.update_id = update_id
        self.exchange_ns = exchange_ns
        self.local_ns = local_ns


class BookStateChange:
    """A book became valid or invalid, with the reason (for metrics, alerts and logs)."""

    __slots__ = ("key", "local_ns", "reason", "state")

    def __init__(self, key: str, state: int, reason: str, local_ns: int) -> None:
        self.key = key
        self.state = state
        self.reason = reason
        self.local_ns = local_ns

    def __repr__(self) -> str:
        return f"BookStateChange({self.key} -> {self.state}: {self.reason})"
