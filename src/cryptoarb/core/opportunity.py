"""Opportunities and the order intents that would capture them."""

from __future__ import annotations

BUY = "buy"
SELL = "sell"


class OrderIntent:
    """A taker order the detector wants: native quantity, a protective limit, the price it expects."""

    __slots__ = ("expected_price", "key", "limit_price", "qty", "side", "symbol", "venue")

    def __init__(
        self, venue: str, symbol: str, side: str, qty: float, limit_price: float, expected_price: float
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self.key = f"{venue} {symbol}"
        self.side = side
        self.qty = qty
        self.limit_price = limit_price
        self.expected_price = expected_price

    def __repr__(self) -> str:
        return f"OrderIntent({self.key} {self.side} {self.qty} lim={self.limit_price} exp={self.expected_price})"


class Opportunity:
    """Buy ``qty_base`` on one book and sell it on another, net of both taker fees.

    ``profit_quote`` and ``profit_bps`` are after fees and after walking both books for the
    whole size; ``cost_quote`` is what the buy leg pays including its fee.
    """

    __slots__ = (
        "buy",
        "buy_key",
        "buy_vwap",
        "cost_quote",
        "exchange_ns",
        "fees_quote",
        "group",
        "id",
        "label",
        "local_ns",
        "profit_bps",
        "profit_quote",
        "qty_base",
        "sell",
        "sell_key",
        "sell_vwap",
    )

    def __init__(
        self,
        id: int,
        group: str,
        label: str,
        buy: OrderIntent,
        sell: OrderIntent,
        qty_base: float,
        buy_vwap: float,
        sell_vwap: float,
        cost_quote: float,
        fees_quote: float,
        profit_quote: float,
        exchange_ns: int,
        local_ns: int,
    ) -> None:
        self.id = id
        self.group = group
        self.label = label
        self.buy = buy
        self.sell = sell
        self.buy_key = buy.key
        self.sell_key = sell.key
        self.qty_base = qty_base
        self.buy_vwap = buy_vwap
        self.sell_vwap = sell_vwap
        self.cost_quote = cost_quote
        self.fees_quote = fees_quote
        self.profit_quote = profit_quote
        self.profit_bps = profit_quote / cost_quote * 1e4 if cost_quote else 0.0
        self.exchange_ns = exchange_ns
        self.local_ns = local_ns

    def __repr__(self) -> str:
        return (
            f"Opportunity(#{self.id} {self.group}/{self.label} buy {self.buy_key}@{self.buy_vwap:.8g} "
            f"sell {self.sell_key}@{self.sell_vwap:.8g} qty={self.qty_base:.8g} "
            f"profit={self.profit_quote:.6g} ({self.profit_bps:.2f} bps))"
        )
