"""An independent, exact reference for sizing a two-venue cross arbitrage (issue 7, "Tests").

Nothing here imports the detector: it is the specification the detector is tested against,
written in exact decimals and solved by brute force, so that it is obviously right rather
than fast. Every operation runs in a decimal context that TRAPS rounding: a result that is
not exact raises instead of being rounded (prices, sizes and fees are finite decimals, and
the reference only adds, subtracts and multiplies them). Buy on venue A's asks, sell on
venue B's bids, both as taker IOC limit orders.

* Quantities are in base units on a common grid: every multiple of the least common multiple
  of the two legs' lots (in base units, ``lot x contract_size``). Both legs then trade the
  same base quantity and each order is an exact multiple of its own venue's lot.
* Net profit = sell proceeds x (1 - fee_B) - buy notional x (1 + fee_A), fees in quote.
* The threshold applies to the WHOLE size: ``profit / cost x 1e4 >= min_profit_bps`` with
  ``cost`` = buy notional x (1 + fee_A), and ``profit >= min_profit_quote``, ``profit > 0``.
  There is no marginal cut-off: among all sizes meeting the thresholds and limits the one
  with the largest net profit wins (ties: the smallest size).
* Limits: the displayed depth of both books, min notional of each leg (:func:`order_notional`), the
  buy leg's cost <= ``max_notional`` and the balances (spot legs only: quote on A, base on
  B), where the buy leg's balance check is :func:`buy_reserve`, the venue's own rule.

Linear and spot legs are covered; inverse (coin-margined) legs are not (their base quantity
depends on the levels walked, so the two legs cannot match exactly on a grid): their
policy-free properties are in tests/test_detector_inverse_props.py.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded, localcontext
from fractions import Fraction
from functools import wraps
from math import lcm
from typing import ParamSpec, TypeVar

Number = Fraction | Decimal | int | float | str
P = ParamSpec("P")
R = TypeVar("R")
ZERO = Decimal(0)
ONE = Decimal(1)
# 200 significant digits is far beyond any product here; Rounded/Inexact make sure of it
EXACT = Context(prec=200, traps=[Inexact, Rounded, InvalidOperation])


@contextmanager
def exact() -> Iterator[None]:
    """Run the block in the trapping context (any rounding raises decimal.Inexact/Rounded)."""
    with localcontext(EXACT):
        yield


def _exact(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a computing function so that it runs in the trapping context."""

    @wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext(EXACT):
            return fn(*args, **kwargs)

    return run


def F(x: Number) -> Decimal:
    """Exact decimal of a number as it prints (floats by their shortest repr, like money in
    accounting); a Fraction must be a finite decimal."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, float):
        return Decimal(repr(x))
    if isinstance(x, Fraction):
        with exact():
            return Decimal(x.numerator) / Decimal(x.denominator)
    return Decimal(x)


@_exact
def buy_reserve(native_qty: Decimal, limit_price: Decimal, fee: Decimal, contract_size: Decimal = ONE
                ) -> Decimal:
    """Quote a venue reserves (and checks against the balance) for an IOC limit BUY.

    A real venue (Binance spot, and our paper venue) holds ``qty x limit price`` plus the taker
    fee when the fee is charged in quote, before matching: the order is rejected when the
    balance is short of it, whatever the VWAP would have been. This is the ONE rule sizing
    must follow; change it here if the venue model changes.
    """
    return native_qty * contract_size * limit_price * (1 + fee)


@_exact
def order_notional(native_qty: Decimal, limit_price: Decimal, contract_size: Decimal = ONE) -> Decimal:
    """The notional a venue compares with its min notional for a LIMIT order: qty x limit price
    (Binance's NOTIONAL filter; for a sell this is below the VWAP, for a buy above it)."""
    return native_qty * contract_size * limit_price


@dataclass(frozen=True)
class Market:
    """One side of one book as the reference sees it: levels best first, (price, native qty)."""

    levels: tuple[tuple[Decimal, Decimal], ...]
    lot: Decimal  # native units
    tick: Decimal
    fee: Decimal  # taker rate
    min_notional: Decimal = ZERO
    contract_size: Decimal = ONE
    spot: bool = True  # linear contract otherwise (no balance check, settles in quote)

    @property
    def base_lot(self) -> Decimal:
        return self.lot * self.contract_size

    @property
    def depth_base(self) -> Decimal:
        return sum((q for _, q in self.levels), ZERO) * self.contract_size


@dataclass(frozen=True)
class Walk:
    """Taking ``native`` from the best levels: quote notional, base qty, worst price touched."""

    native: Decimal
    notional: Decimal
    base: Decimal
    worst: Decimal


@_exact
def walk(m: Market, native: Decimal, limit: Decimal | None = None, buying: bool = True) -> Walk:
    """Take up to ``native`` from ``m``'s levels (not beyond ``limit``, IOC), best first."""
    got = notional = ZERO
    worst = ZERO
    for p, q in m.levels:
        if got >= native:
            break
        if limit is not None and ((p > limit) if buying else (p < limit)):
            break
        take = min(q, native - got)
        got += take
        notional += take * p * m.contract_size
        worst = p
    return Walk(got, notional, got * m.contract_size, worst)


class _Cum:
    """Cumulative depth of a side, so a walk of any size is one bisect (the brute force is long)."""

    @_exact
    def __init__(self, m: Market) -> None:
        self.m = m
        self.qty: list[Decimal] = []  # native qty strictly before level i
        self.notional: list[Decimal] = []
        q = n = ZERO
        for p, lq in m.levels:
            self.qty.append(q)
            self.notional.append(n)
            q += lq
            n += lq * p * m.contract_size
        self.total = q

    def take(self, native: Decimal) -> Walk:
        i = bisect_left(self.qty, native) - 1  # last level starting strictly below native
        p = self.m.levels[i][0]
        notional = self.notional[i] + (native - self.qty[i]) * p * self.m.contract_size
        return Walk(native, notional, native * self.m.contract_size, p)


@dataclass(frozen=True)
class Limits:
    min_profit_bps: Decimal = ZERO
    min_profit_quote: Decimal = ZERO
    max_notional: Decimal | None = None  # the buy leg's cost (notional + fee)
    quote_balance: Decimal | None = None  # on A, when A is spot (None: unlimited)
    base_balance: Decimal | None = None  # on B, when B is spot (None: unlimited)


@dataclass(frozen=True)
class Point:
    """One size on the grid, exactly priced."""

    base: Decimal
    buy: Walk
    sell: Walk
    cost: Decimal
    profit: Decimal

    @property
    def bps(self) -> Fraction:
        return Fraction(self.profit) / Fraction(self.cost) * 10_000


@dataclass(frozen=True)
class Result:
    step: Decimal  # the grid step in base units
    best: Point | None  # the optimum (None: no size meets the thresholds and limits)
    argmax_lo: Decimal  # smallest and largest sizes reaching the optimal profit
    argmax_hi: Decimal
    cap: Decimal  # largest grid size allowed by depth, balances and max notional (thresholds aside)


def grid_step(a: Market, b: Market) -> Decimal:
    """The smallest base quantity that is a whole number of lots on both venues."""
    x, y = Fraction(a.base_lot), Fraction(b.base_lot)
    den = lcm(x.denominator, y.denominator)
    return F(Fraction(lcm(int(x * den), int(y * den)), den))


class Reference:
    """Brute force over every grid size of buying on ``a`` and selling on ``b``."""

    def __init__(self, a: Market, b: Market) -> None:
        self.a, self.b = a, b
        self.step = grid_step(a, b)
        self._ca, self._cb = _Cum(a), _Cum(b)
        self._points: list[Point] | None = None

    @_exact
    def point(self, base: Decimal) -> Point | None:
        """The exact fills, cost and profit of ``base`` (None beyond either book's depth)."""
        a, b = self.a, self.b
        na, nb = base / a.contract_size, base / b.contract_size
        if base <= 0 or na > self._ca.total or nb > self._cb.total:
            return None
        buy, sell = self._ca.take(na), self._cb.take(nb)
        cost = buy.notional * (1 + a.fee)
        return Point(base, buy, sell, cost, sell.notional * (1 - b.fee) - cost)

    @_exact
    def within_limits(self, pt: Point, lim: Limits) -> bool:
        """Depth is implied by ``pt`` existing; the monotone caps (balances, max notional)."""
        a, b = self.a, self.b
        if lim.max_notional is not None and pt.cost > lim.max_notional:
            return False
        if a.spot and lim.quote_balance is not None and (
            buy_reserve(pt.buy.native, pt.buy.worst, a.fee, a.contract_size) > lim.quote_balance
        ):
            return False
        return not (b.spot and lim.base_balance is not None and pt.sell.native > lim.base_balance)

    @_exact
    def acceptable(self, pt: Point, lim: Limits) -> bool:
        """Min notionals and the whole-size thresholds."""
        a, b = self.a, self.b
        if order_notional(pt.buy.native, pt.buy.worst, a.contract_size) < a.min_notional or (
            order_notional(pt.sell.native, pt.sell.worst, b.contract_size) < b.min_notional
        ):
            return False
        return pt.profit > 0 and pt.profit >= lim.min_profit_quote and pt.profit * 10_000 >= (
            lim.min_profit_bps * pt.cost
        )

    @_exact
    def points(self) -> list[Point]:
        """Every grid size the two books can fill, smallest first (computed once)."""
        if self._points is None:
            self._points = []
            k = 1
            while (pt := self.point(k * self.step)) is not None:
                self._points.append(pt)
                k += 1
        return self._points

    @_exact
    def solve(self, lim: Limits) -> Result:
        best: Point | None = None
        lo = hi = cap = ZERO
        for pt in self.points():
            if not self.within_limits(pt, lim):
                break  # every cap is monotone in the size: nothing larger fits either
            cap = pt.base
            if self.acceptable(pt, lim):
                if best is None or pt.profit > best.profit:
                    best, lo, hi = pt, pt.base, pt.base
                elif pt.profit == best.profit:
                    hi = pt.base
        return Result(self.step, best, lo, hi, cap)


@_exact
def reprice(m: Market, native: Decimal, limit: Decimal, buying: bool) -> Walk:
    """What an IOC order of ``native`` at ``limit`` gets on ``m``'s displayed levels."""
    return walk(m, native, limit, buying)
