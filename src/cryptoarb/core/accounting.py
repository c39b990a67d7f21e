"""Balances, positions and realised PnL in exact decimals.

Derivatives are booked cash-settled: buying moves the settlement currency by the notional
and the position carries the exposure, so equity = cash + position x mark at any time and an
arbitrage's realised PnL is the same number whether its legs are spot or perpetual.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from cryptoarb.core.instruments import Instrument, Kind
from cryptoarb.core.orders import ZERO, ArbStatus, ArbTrade, Fill


def base_qty(inst: Instrument, qty: Decimal, price: Decimal) -> Decimal:
    """A native fill quantity in base currency, exactly."""
    cs = Decimal(repr(inst.contract_size))
    if inst.kind is Kind.INVERSE:
        return qty * cs / price
    return qty * cs


def quote_value(inst: Instrument, qty: Decimal, price: Decimal) -> Decimal:
    """Quote-currency value of a native fill quantity at ``price``."""
    cs = Decimal(repr(inst.contract_size))
    if inst.kind is Kind.INVERSE:
        return qty * cs
    return qty * cs * price


class Portfolio:
    """Per-venue balances (by currency) and derivative positions (by symbol)."""

    def __init__(self) -> None:
        self.balances: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        self.positions: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))

    def deposit(self, venue: str, currency: str, amount: Decimal) -> None:
        self.balances[venue][currency] += amount

    def balance(self, venue: str, currency: str) -> Decimal:
        return self.balances[venue][currency]

    def apply_fill(self, inst: Instrument, fill: Fill) -> None:
        """Move balances for one fill. Spot fees are charged in the quote currency,
        derivative fees in the settlement currency."""
        venue = self.balances[inst.venue]
        sign = 1 if fill.side == "buy" else -1
        if inst.kind is Kind.SPOT:
            venue[inst.base] += sign * fill.qty
            venue[inst.quote] -= sign * fill.qty * fill.price
        elif inst.kind is Kind.LINEAR:
            self.positions[inst.venue][inst.symbol] += sign * fill.qty
            venue[inst.settle] -= sign * fill.qty * Decimal(repr(inst.contract_size)) * fill.price
        else:
            self.positions[inst.venue][inst.symbol] += sign * fill.qty
            venue[inst.settle] -= sign * base_qty(inst, fill.qty, fill.price)
        venue[fill.fee_currency] -= fill.fee

    def snapshot(self) -> list[tuple[str, str, Decimal]]:
        rows = [(v, c, amt) for v, ccys in self.balances.items() for c, amt in ccys.items()]
        rows += [(v, s, qty) for v, pos in self.positions.items() for s, qty in pos.items() if qty]
        return sorted(rows)


def settle_arb(trade: ArbTrade, buy_inst: Instrument, sell_inst: Instrument, ts_ns: int) -> None:
    """Compute realised PnL and status once both legs are terminal.

    Realised PnL = matched base quantity x (sell VWAP - buy VWAP) - every fee paid (in quote).
    Quantity filled on one leg beyond the other is unhedged exposure: recorded, not marked.
    """
    b, s = trade.buy_order, trade.sell_order
    bq = base_qty(buy_inst, b.filled_qty, b.avg_price) if b.filled_qty else ZERO
    sq = base_qty(sell_inst, s.filled_qty, s.avg_price) if s.filled_qty else ZERO
    matched = min(bq, sq)
    buy_px = quote_value(buy_inst, b.filled_qty, b.avg_price) / bq if bq else ZERO
    sell_px = quote_value(sell_inst, s.filled_qty, s.avg_price) / sq if sq else ZERO
    fees = _fee_in_quote(buy_inst, b.fee, b.fee_currency, buy_px) + _fee_in_quote(
        sell_inst, s.fee, s.fee_currency, sell_px
    )
    trade.matched_qty_base = matched
    trade.unhedged_qty_base = bq - sq
    trade.fees_quote = fees
    trade.realized_pnl = matched * (sell_px - buy_px) - fees
    trade.closed_ns = ts_ns
    if bq == 0 and sq == 0:
        trade.status = ArbStatus.FAILED
    elif bq == 0 or sq == 0:
        trade.status = ArbStatus.FAILED_LEG
    elif b.remaining == 0 and s.remaining == 0:
        trade.status = ArbStatus.COMPLETE
    else:
        trade.status = ArbStatus.PARTIAL


def _fee_in_quote(inst: Instrument, fee: Decimal, currency: str, price: Decimal) -> Decimal:
    if not fee:
        return ZERO
    if currency == inst.base:
        return fee * price
    return fee
