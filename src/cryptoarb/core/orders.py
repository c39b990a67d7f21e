"""Orders, fills and arbitrage trades, with the order state machine.

Quantities and prices here are exact decimals: these records are what balances and PnL are
computed from, and what a user reconciles against the venue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)


class OrderStatus(StrEnum):
    NEW = "new"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"  # the unfilled rest of an IOC order, or a user cancel
    REJECTED = "rejected"  # the venue refused it (balance, min notional, ...)
    FAILED = "failed"  # lost, timed out or errored: outcome unknown to the venue's API

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.FAILED}

_ALLOWED: dict[OrderStatus, set[OrderStatus]] = {
    OrderStatus.NEW: {OrderStatus.SUBMITTED, OrderStatus.REJECTED, OrderStatus.FAILED},
    OrderStatus.SUBMITTED: {
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.FAILED,
    },
    OrderStatus.PARTIALLY_FILLED: {
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.FAILED,
    },
}


class InvalidTransition(Exception):
    pass


@dataclass(slots=True)
class Fill:
    order_id: str
    venue: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal  # native units (contracts for inverse instruments)
    fee: Decimal
    fee_currency: str
    ts_ns: int
    liquidity: str = "taker"
    # set by the portfolio when the fill is booked, in the run's valuation currency
    pnl: Decimal = ZERO  # PnL this fill realised (closed inventory, fees)
    fee_quote: Decimal = ZERO  # the fee's value


@dataclass(slots=True)
class Order:
    id: str
    venue: str
    symbol: str
    side: str
    qty: Decimal
    limit_price: Decimal
    expected_price: Decimal
    created_ns: int
    type: str = "limit_ioc"
    status: OrderStatus = OrderStatus.NEW
    filled_qty: Decimal = ZERO
    notional: Decimal = ZERO  # sum of price x qty over fills
    fee: Decimal = ZERO
    fee_currency: str = ""
    updated_ns: int = 0
    reason: str = ""
    arb_id: int | None = None
    fills: list[Fill] = field(default_factory=list)

    @property
    def avg_price(self) -> Decimal:
        return self.notional / self.filled_qty if self.filled_qty else ZERO

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    def transition(self, status: OrderStatus, ts_ns: int, reason: str = "") -> None:
        if status not in _ALLOWED.get(self.status, set()):
            raise InvalidTransition(f"order {self.id}: {self.status.value} -> {status.value} is not allowed")
        self.status = status
        self.updated_ns = ts_ns
        if reason:
            self.reason = reason

    def add_fill(self, fill: Fill) -> None:
        if fill.qty <= 0:
            raise ValueError(f"order {self.id}: fill quantity must be positive, got {fill.qty}")
        if self.filled_qty + fill.qty > self.qty:
            raise ValueError(f"order {self.id}: fill of {fill.qty} overfills {self.filled_qty}/{self.qty}")
        self.fills.append(fill)
        self.filled_qty += fill.qty
        self.notional += fill.price * fill.qty
        self.fee += fill.fee
        self.fee_currency = fill.fee_currency
        done = self.filled_qty == self.qty
        self.transition(OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED, fill.ts_ns)


class ArbStatus(StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"  # both legs fully filled
    PARTIAL = "partial"  # both legs filled, not fully or not equally: residual recorded
    FAILED_LEG = "failed_leg"  # one leg filled, the other did not: unhedged exposure
    FAILED = "failed"  # neither leg filled


@dataclass(slots=True)
class ArbTrade:
    """One attempt to capture an opportunity; expected and realised PnL side by side (quote)."""

    id: int
    opportunity_id: int
    group: str
    buy_order: Order
    sell_order: Order
    expected_pnl: Decimal
    expected_qty_base: Decimal
    created_ns: int
    status: ArbStatus = ArbStatus.PENDING
    realized_pnl: Decimal = ZERO
    fees_quote: Decimal = ZERO
    matched_qty_base: Decimal = ZERO
    unhedged_qty_base: Decimal = ZERO  # >0: long left over, <0: short left over
    closed_ns: int = 0
