"""Realised and unrealised PnL, and exposure, in one valuation currency (see docs/pnl.md).

The ledger follows every asset the run holds *relative to its starting inventory*, pooled
across venues (BTC bought on one venue and sold on another is closed), at average cost in the
valuation currency. A movement that reduces the open quantity realises ``qty x (price - average
cost)``; fees and derivative PnL paid into a wallet are realised when paid, and when paid in a
non-cash asset (BTC on a coin-margined account) that asset is also inventory from then on.
Derivative positions are kept by the portfolio (margin-style) and marked to their own book.

Hence, with every amount valued at the final marks: equity change = realised + unrealised,
where unrealised = open inventory x mark - its cost + positions' open PnL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptoarb.core.accounting import Portfolio

PREC = 60  # digits for ledger arithmetic: rounding stays far below any money amount
ZERO = Decimal(0)
ONE = Decimal(1)


class Lot:
    """Open quantity of one asset (signed, relative to the start) and its cost."""

    __slots__ = ("cost", "qty")

    def __init__(self) -> None:
        self.qty = ZERO
        self.cost = ZERO


class PnlLedger:
    """Average-cost inventory of every non-cash asset, and the PnL realised so far."""

    def __init__(self, currency: str, equivalents: frozenset[str] = frozenset()) -> None:
        self.currency = currency
        self.cash = frozenset({currency, *equivalents})
        self.realised = ZERO
        self.lots: dict[str, Lot] = {}
        self.unpriced: set[str] = set()  # assets nothing priced when they moved (valued at 0)

    def is_cash(self, asset: str) -> bool:
        return asset in self.cash

    def flow(self, asset: str, amount: Decimal, price: Decimal) -> Decimal:
        """``amount`` of ``asset`` in (+) or out (-) at ``price`` per unit; returns what it realised.

        Cash moves realise nothing by themselves: what a trade earned shows when the asset
        bought or sold comes back to where it started.
        """
        if not amount or asset in self.cash:
            return ZERO
        lot = self.lots.get(asset)
        if lot is None:
            lot = self.lots[asset] = Lot()
        with localcontext() as ctx:
            ctx.prec = PREC
            qty = lot.qty
            if not qty or (qty > 0) == (amount > 0):
                lot.qty = qty + amount
                lot.cost += amount * price
                return ZERO
            closing = -amount if abs(amount) <= abs(qty) else qty  # same sign as qty
            released = lot.cost if closing == qty else lot.cost * closing / qty
            realised = closing * price - released
            lot.qty = qty - closing
            lot.cost -= released
            rest = amount + closing
            if rest:
                lot.qty += rest
                lot.cost += rest * price
            self.realised += realised
            return realised

    def income(self, asset: str, amount: Decimal, price: Decimal) -> Decimal:
        """Value received (+) or paid (-) outright: a fee, a derivative's realised PnL."""
        with localcontext() as ctx:
            ctx.prec = PREC
            value = amount * price
            self.realised += value
            return value + self.flow(asset, amount, price)

    def unrealised(self, price: Callable[[str], Decimal | None]) -> Decimal:
        """Open inventory marked at ``price(asset)`` less its cost."""
        total = ZERO
        with localcontext() as ctx:
            ctx.prec = PREC
            for asset, lot in self.lots.items():
                if lot.qty or lot.cost:
                    total += lot.qty * (price(asset) or ZERO) - lot.cost
        return total


@dataclass(slots=True)
class ExposureRow:
    """One venue's change in one asset since the start, or one open derivative position."""

    venue: str
    asset: str  # a currency, or an instrument symbol for a position
    kind: str  # "balance" or "position"
    qty: float  # balance change since the start, or the position's native quantity
    mark: float  # price of the asset (valuation currency) or the position's book mid
    value_quote: float  # the change's value at the mark; a position's base-equivalent value
    unrealised_quote: float  # a position's open PnL (0 for balances: see PnlSnapshot.unrealised)


@dataclass(slots=True)
class PnlSnapshot:
    """What a user sees of the money: realised, unrealised, their total, and exposure.

    Amounts are in ``currency`` (floats for display; ``exact`` keeps the decimals of
    realised, unrealised and total). ``unhedged_quote`` is the gross net exposure now,
    ``max_unhedged_quote`` the largest seen during the run (sampled at every settled trade
    and every snapshot).
    """

    currency: str
    realised: float
    unrealised: float
    total: float
    unhedged_quote: float
    max_unhedged_quote: float
    exact: tuple[Decimal, Decimal, Decimal]
    net: dict[str, float] = field(default_factory=dict)  # asset -> net base quantity vs the start
    exposures: list[ExposureRow] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)


def snapshot(
    pf: Portfolio,
    currency: str,
    cash: frozenset[str],
    asset_price: Callable[[str], Decimal | None],
    inst_mark: Callable[[str], Decimal | None],
    max_unhedged: float = 0.0,
) -> PnlSnapshot:
    """Value ``pf`` at the given marks (an asset's price in ``currency``; an instrument's mid)."""
    from cryptoarb.core.accounting import contract_value
    from cryptoarb.core.instruments import Kind

    unpriced: set[str] = set()

    def price(asset: str) -> Decimal:
        if asset in cash:
            return ONE
        px = asset_price(asset)
        if px is None:
            unpriced.add(asset)
            return ZERO
        return px

    with localcontext() as ctx:
        ctx.prec = PREC
        led = pf.ledger
        realised = led.realised if led is not None else ZERO
        unrealised = led.unrealised(price) if led is not None else ZERO
        rows: list[ExposureRow] = []
        net: dict[str, Decimal] = {}
        for venue in sorted(pf.balances):
            ccys = pf.balances[venue]
            start = pf.deposits.get(venue, {})
            for ccy in sorted(ccys):
                delta = ccys[ccy] - start.get(ccy, ZERO)
                if not delta:
                    continue
                px = price(ccy)
                rows.append(ExposureRow(venue, ccy, "balance", float(delta), float(px), float(delta * px), 0.0))
                if ccy not in cash:
                    net[ccy] = net.get(ccy, ZERO) + delta
        for key in sorted(pf.derivatives):
            pos = pf.derivatives[key]
            inst = pos.inst
            mark = inst_mark(key) or ZERO
            if not mark and pos.qty:
                unpriced.add(key)
            upnl = pos.unrealised(mark)
            s_px = price(inst.settle)
            unrealised += upnl * s_px
            if not pos.qty:
                continue
            if inst.quote_contracts:
                base = -pos.cost  # d(equity)/d(price) of an inverse position, in base units
                value = pos.qty * Decimal(repr(inst.contract_size))  # its quote notional
            else:
                # linear, and base-sized inverse: its PnL in base is (qty x cs x mark - cost) / mark,
                # worth qty x cs x mark - cost in quote: d(equity)/d(price) = qty x cs
                base = pos.qty * Decimal(repr(inst.contract_size))
                if inst.settle not in cash and inst.kind is not Kind.INVERSE:
                    net[inst.settle] = net.get(inst.settle, ZERO) + upnl
                value = contract_value(inst, pos.qty, mark)
            net[inst.base] = net.get(inst.base, ZERO) + base
            rows.append(ExposureRow(inst.venue, inst.symbol, "position", float(pos.qty), float(mark),
                                    float(value * (ONE if inst.kind is Kind.INVERSE else s_px)),
                                    float(upnl * s_px)))
        unhedged = sum((abs(q) * price(a) for a, q in net.items()), ZERO)
        total = realised + unrealised
    if led is not None:
        unpriced |= led.unpriced
    top = max(max_unhedged, float(unhedged))
    return PnlSnapshot(
        currency, float(realised), float(unrealised), float(total), float(unhedged), top,
        (realised, unrealised, total), {a: float(q) for a, q in sorted(net.items()) if q}, rows, sorted(unpriced),
    )
