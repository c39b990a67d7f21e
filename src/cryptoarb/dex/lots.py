"""Exact lot and tick arithmetic for the CEX leg of a DEX trade, and the venue's funds rule.

Why exact: a venue accepts an order only when its quantity is a whole number of lots and its
price a whole number of ticks; ``int(q / lot) * lot`` in floats gives 22900.100000000002 for
22900.1 at lot 0.1, and a tolerance (``+ 1e-9`` lots) rounds a float sum of the book's levels
(0.9999999999999999 for ten levels of 0.1) up *past* the book's depth, so the order cannot fill.
Here every step is a :class:`~decimal.Decimal` of the step as it prints, quantities are floored
to the grid exactly, and hard limits (depth, balances) are applied as exact decimals, never past.

The same module holds the funds rule a venue applies to an IOC limit buy (``qty x limit x
(1 + fee)`` of free quote when the fee is taken in quote), so the detector sizes with the rule
the executor checks before the on-chain leg is sent: one rule, not two.

The lead may unify these helpers with ``core.instruments`` once its lot rounding is exact; they
live in ``dex/`` so this package does not depend on that rewrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from functools import lru_cache
from math import lcm

from cryptoarb.core.instruments import Instrument, dec

ZERO = Decimal(0)
ONE = Decimal(1)
# an optimiser's float output within this many lots under a grid point is that grid point
# (float noise, e.g. a level boundary summed in floats); hard limits never get this allowance
NOISE_LOTS = Decimal("1e-9")


def as_cap(x: float) -> Decimal:
    """A float limit (a balance, a cap) as an exact decimal; infinity (no limit) stays infinite."""
    return Decimal("Infinity") if x == float("inf") else dec(x)


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` not above ``value`` (exact)."""
    if value <= 0:
        return ZERO
    if value.is_infinite():
        return value
    return (value // step) * step  # divide-integer is exact (no rounding at the context precision)


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of ``step`` not below ``value`` (exact; ``value`` > 0)."""
    n, rest = divmod(value, step)
    return (n + (1 if rest else 0)) * step


@lru_cache(maxsize=256)
def grid_step(inst: Instrument, token_decimals: int | None = None) -> Decimal:
    """The quantity step of the CEX leg: the lot, made coarse enough to also be a whole number of
    the token's raw units (a lot finer than the token cannot be moved on chain exactly)."""
    lot = dec(inst.lot_size)
    if token_decimals is None:
        return lot
    unit = Decimal(1).scaleb(-token_decimals)
    if (lot / unit) == (lot / unit).to_integral_value():
        return lot
    # the least common multiple of two decimal steps: scale both to integers first
    scale = max(-int(lot.as_tuple().exponent), token_decimals, 0)
    a, b = int(lot.scaleb(scale)), int(unit.scaleb(scale))
    return Decimal(lcm(a, b)).scaleb(-scale)


def floor_estimate(qty: float, step: Decimal) -> Decimal:
    """Round an optimiser's float size down to the grid, forgiving float noise just under a point."""
    if not qty > 0:
        return ZERO
    return ((dec(qty) + NOISE_LOTS * step) // step) * step


def nearest(qty: float, step: Decimal) -> Decimal:
    """The grid point nearest an optimiser's float size (half-way goes down). For a concave profit
    the best grid point is next to the continuous optimum, so this one is within one lot of it;
    hard limits are applied after, exactly, by the caller."""
    if not qty > 0:
        return ZERO
    lo = floor_estimate(qty, step)
    return lo + step if qty - float(lo) > float(step) * 0.5 else lo


def depth(levels: Iterable[tuple[float, float]]) -> Decimal:
    """The exact total quantity of book levels (each level's quantity as it prints)."""
    return sum((dec(q) for _, q in levels), ZERO)


class Taken:
    """A book side read lazily and remembered: a sizing walk reads only the levels it needs, the
    re-price walks them again from memory, and ``exhausted`` says the walk reached the book's end
    (only then can a size touch the displayed depth, and only then is the exact depth summed)."""

    __slots__ = ("_it", "exhausted", "levels")

    def __init__(self, levels: Iterable[tuple[float, float]]) -> None:
        self._it = iter(levels)
        self.levels: list[tuple[float, float]] = []
        self.exhausted = False

    def __iter__(self) -> Iterator[tuple[float, float]]:
        yield from self.levels
        for level in self._it:
            self.levels.append(level)
            yield level
        self.exhausted = True

    def all(self) -> list[tuple[float, float]]:
        """Every level (reads the rest of the book)."""
        for _ in self:
            pass
        return self.levels


def within_depth(qty: Decimal, side: Taken, step: Decimal) -> Decimal:
    """``qty`` capped at the book's exact depth floored to the grid: never past what is displayed.

    A size strictly inside the levels read so far is returned as is (one float sum); one that
    reaches them reads the rest of the side and is capped at its exact (decimal) depth.
    """
    total = 0.0
    for _, q in side.levels:
        total += q
    if float(qty) < total * (1.0 - 1e-9):
        return qty
    levels = side.all()
    total = 0.0
    for _, q in levels:
        total += q
    if float(qty) < total * (1.0 - 1e-9):
        return qty
    return min(qty, floor_to(depth(levels), step))


def on_tick(price: float, inst: Instrument, side: str) -> Decimal:
    """A limit price on the venue's tick grid: a buy's limit rounded up, a sell's down (a book's own
    level prices are already on it and come back unchanged): ``Instrument.round_price``, exactly."""
    return dec(inst.round_price(price, up=side == "buy"))


def buy_funds_needed(qty: Decimal, limit: Decimal, taker_fee: float) -> Decimal:
    """Free quote a venue requires for an IOC limit buy: ``qty x limit x (1 + fee)``.

    The fee is counted in quote (the paper venue charges it so; where a venue takes it in the
    received base, requiring it in quote too is the safe side).
    """
    return qty * limit * (ONE + dec(taker_fee))


def max_buy_qty(
    asks: Iterable[tuple[float, float]],
    funds: Decimal,
    taker_fee: float,
    step: Decimal,
    tick: Decimal,
    upto: Decimal,
) -> Decimal:
    """The largest grid quantity ``x <= upto`` with ``x x limit(x) x (1 + fee) <= funds``, where
    ``limit(x)`` is the worst ask level an IOC buy of ``x`` needs (on the tick grid): exactly what
    a venue's funds check lets the order through with. Walks only the levels up to ``upto``."""
    if funds <= 0 or upto <= 0:
        return ZERO
    if funds.is_infinite():
        return upto
    fee = ONE + dec(taker_fee)
    cum = ZERO
    for p, q in asks:
        cap = (funds // (step * ceil_to(dec(p), tick) * fee)) * step  # exact: no rounded quotient
        level_end = cum + dec(q)
        if cap < level_end or level_end >= upto:
            # inside this level (its price is the limit), or at the previous boundary (a grid
            # point there needs only the previous, cheaper limit, which all fitted)
            return min(upto, max(cap, floor_to(cum, step)))
        cum = level_end
    return min(upto, floor_to(cum, step))
