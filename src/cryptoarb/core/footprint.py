"""Our own footprint on a book: liquidity our orders hold (in flight) or took (filled).

A venue's displayed book does not know about our orders until it publishes its next update.
Until then the same ask we just bought is still on screen, and a detector that trusts the
screen trades into its own footprint: it sizes a second trade on liquidity that is gone, and
one leg of that trade fails. Both the detector and the paper venue therefore read a book
through its footprint:

- *held*: per (side, price), what orders decided but not yet arrived at the venue plan to
  take there. It lasts until the order arrives, whatever the book does meanwhile.
- *taken*: per (side, price), what fills took, stamped with the book's state at the fill;
  the book's next update supersedes it (the venue's next picture includes our fill).

Sides are the book's sides: ``"asks"`` (what a buy takes) and ``"bids"`` (what a sell takes).
Quantities are native book units, floats (sizing), and exact decimals for fills.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal

Stamp = tuple[int, int]


class Footprint:
    """Held and taken liquidity of one book."""

    __slots__ = ("_holds", "held", "stamp", "taken")

    def __init__(self) -> None:
        self.held: dict[tuple[str, float], float] = {}
        self._holds: dict[str, list[tuple[tuple[str, float], float]]] = {}  # order id -> its holds
        self.taken: dict[tuple[str, float], Decimal] = {}
        self.stamp: Stamp = (-1, -1)

    def empty(self, stamp: Stamp) -> bool:
        """Nothing to subtract from a book whose state is ``stamp`` (the hot check)."""
        return not self.held and (not self.taken or stamp != self.stamp)

    def used(self, side: str, price: float, stamp: Stamp) -> float:
        """Native quantity at ``price`` that is not ours to take any more."""
        key = (side, price)
        out = self.held.get(key, 0.0)
        if self.taken and stamp == self.stamp:
            t = self.taken.get(key)
            if t is not None:
                out += float(t)
        return out

    def taken_at(self, side: str, price: float, stamp: Stamp) -> Decimal:
        """Exact quantity our fills took at ``price`` since the book last changed."""
        if stamp != self.stamp:
            self.taken.clear()
            self.stamp = stamp
            return Decimal(0)
        return self.taken.get((side, price), Decimal(0))

    def take(self, side: str, price: float, qty: Decimal) -> None:
        """Record a fill (call after :meth:`taken_at` for the same stamp)."""
        key = (side, price)
        self.taken[key] = self.taken.get(key, Decimal(0)) + qty

    def hold(self, order_id: str, side: str, levels: list[tuple[float, float]]) -> None:
        """Reserve ``levels`` (price, native qty) for an order on its way to the venue."""
        rows = [((side, p), q) for p, q in levels if q > 0.0]
        held = self.held
        for key, q in rows:
            held[key] = held.get(key, 0.0) + q
        if rows:
            self._holds.setdefault(order_id, []).extend(rows)

    def release(self, order_id: str) -> None:
        """The order arrived (or was never sent): its holds end."""
        held = self.held
        for key, q in self._holds.pop(order_id, ()):
            left = held.get(key, 0.0) - q
            if left <= 1e-12:
                held.pop(key, None)
            else:
                held[key] = left


def visible(levels: Iterable[tuple[float, float]], fp: Footprint, side: str, stamp: Stamp) -> Iterator[
        tuple[float, float]]:
    """A book side (best first) as it is for us: what our orders hold or took subtracted, emptied
    levels left out. For readers outside the hot path (the DEX sizing); the cross-venue detector
    does the same inline."""
    if fp.empty(stamp):
        yield from levels
        return
    for p, q in levels:
        q -= fp.used(side, p, stamp)
        if q > 1e-12:
            yield p, q


class Footprints(dict[str, Footprint]):
    """Footprints by book key, created on first use."""

    def __missing__(self, key: str) -> Footprint:
        fp = self[key] = Footprint()
        return fp
