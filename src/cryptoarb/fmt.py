"""Numbers as a trader reads them: prices at the instrument's tick precision, never rounded to a
few significant digits (61602.01 and 61602.02 must not both read 61602) and never in scientific
notation (0.00001234, not 1.234e-05)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptoarb.core.instruments import Instrument

MAX_PLACES = 12  # a value needing more decimals than its step is shown to this many at most


@lru_cache(maxsize=1024)
def step_places(step: float) -> int:
    """Decimal places of a tick or lot size: 0.01 -> 2, 0.5 -> 1, 1e-08 -> 8, 10 -> 0."""
    try:
        exp = Decimal(repr(float(step))).normalize().as_tuple().exponent
    except (InvalidOperation, ValueError):
        return 2
    return max(0, -exp) if isinstance(exp, int) else 2


def _value_places(value: float) -> int:
    """Decimals the value itself needs (its shortest repr), capped at ``MAX_PLACES``."""
    try:
        exp = Decimal(repr(float(value))).normalize().as_tuple().exponent
    except (InvalidOperation, ValueError):
        return 0
    return min(MAX_PLACES, max(0, -exp)) if isinstance(exp, int) else 0


def places(value: float, step: float) -> int:
    """The step's precision, more if the value is finer than its step (an instrument catalogued
    with a coarser tick than its prices: showing fewer decimals would hide real differences)."""
    return max(step_places(step), _value_places(value))


def num(value: float | Decimal, step: float, sep: bool = True) -> str:
    """``value`` at ``step`` precision, fixed-point; with thousands separators if ``sep``."""
    p = places(float(value), step)
    return f"{value:,.{p}f}" if sep else f"{value:.{p}f}"


def level_text(levels: Sequence[Sequence[float]], inst: Instrument | None) -> str:
    """The best of ``levels`` as ``price x qty`` at the instrument's tick and lot precision
    (without one: cents and satoshis, more where the value needs it); ``-`` for none."""
    if not levels:
        return "-"
    price, qty = levels[0][0], levels[0][1]
    tick, lot = (inst.tick_size, inst.lot_size) if inst is not None else (0.01, 1e-8)
    return f"{num(price, tick)} x {num(qty, lot, sep=False)}"
