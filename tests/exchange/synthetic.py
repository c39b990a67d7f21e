"""SYNTHETIC order books for the local venue: extra symbols derived from the real capture.

The only real capture the venue replays is Binance spot BTC/USDT. A triangle needs three markets
of one venue (BTC/USDT, ETH/USDT, ETH/BTC), so the other two are *made up*: each level of the
captured BTC/USDT book becomes a level of the synthetic book at ``price x price_scale`` (bids
rounded down, asks up to the synthetic tick; levels landing on one tick merged) holding
``quantity x qty_scale`` (rounded down to the step). They move exactly when the real book moves,
and they are NOT market data: no price, spread or depth of a synthetic symbol says anything about
ETH. They exist so that a cycle can be traded end to end against a venue process speaking the
real protocol; the scales choose whether the triangle pays (docs/local-venue.md).

A synthetic book keeps its own overlay of our takes (what our orders took stays taken until the
captured level under it changes), like :class:`~tests.exchange.market.CaptureMarket`; it is
served over REST (``/depth``, ``/bookTicker``, orders) but not on the depth stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from cryptoarb.core.book import OrderBook
from tests.exchange.market import BookReads, CaptureMarket, dec

ZERO = Decimal(0)


class ScaledMarket(BookReads):
    """A synthetic symbol's book: the captured book scaled (see the module docstring)."""

    synthetic = True

    def __init__(self, base: CaptureMarket, price_scale: Decimal, qty_scale: Decimal, tick: Decimal,
                 step: Decimal) -> None:
        self.base = base
        self.price_scale = price_scale
        self.qty_scale = qty_scale
        self.tick = tick
        self.step = step
        self.on_move: Callable[[], None] | None = None  # set by the matcher; called by the venue
        self.taken: dict[tuple[str, Decimal], tuple[Decimal, Decimal]] = {}  # (side, price) -> (seen, taken)

    @property
    def book(self) -> OrderBook:
        return self.base.book  # update id and validity: the captured book's

    @property
    def pace(self) -> float:
        return self.base.pace

    def catch_up(self) -> None:
        self.base.catch_up()

    def _raw(self, side: str) -> Iterator[tuple[Decimal, Decimal]]:
        """Scaled and merged levels of the captured book, best first, before our takes."""
        rounding = ROUND_CEILING if side == "asks" else ROUND_FLOOR
        it = self.base.book.asks() if side == "asks" else self.base.book.bids()
        cur_p: Decimal | None = None
        cur_q = ZERO
        for p, q in it:
            sp = (dec(p) * self.price_scale / self.tick).to_integral_value(rounding) * self.tick
            sq = dec(q) * self.qty_scale
            if sp != cur_p:
                if cur_p is not None and cur_p > 0:
                    out = (cur_q / self.step).to_integral_value(ROUND_FLOOR) * self.step
                    if out > 0:
                        yield cur_p, out
                cur_p, cur_q = sp, ZERO
            cur_q += sq
        if cur_p is not None and cur_p > 0:
            out = (cur_q / self.step).to_integral_value(ROUND_FLOOR) * self.step
            if out > 0:
                yield cur_p, out

    def levels(self, side: str) -> Iterator[tuple[Decimal, Decimal]]:
        taken = self.taken
        for p, q in self._raw(side):
            t = taken.get((side, p))
            if t is None:
                yield p, q
                continue
            seen, amount = t
            if seen != q:  # the captured level(s) under it changed since we took from it
                del taken[(side, p)]
                yield p, q
                continue
            left = q - amount
            if left > 0:
                yield p, left

    def take(self, side: str, price: Decimal, qty: Decimal) -> None:
        q = next((lq for lp, lq in self._raw(side) if lp == price), None)
        if q is None:
            return
        seen, amount = self.taken.get((side, price), (q, ZERO))
        if seen != q:
            amount = ZERO
        self.taken[(side, price)] = (q, amount + qty)

    def position(self) -> dict[str, object]:
        b = next(self.levels("bids"), None)
        a = next(self.levels("asks"), None)
        return {**self.base.position(), "synthetic": True,
                "bid": str(b[0]) if b else None, "ask": str(a[0]) if a else None}
