"""A constant-product pool seen as an order book, so book-walking detectors size against it.

``CrossVenueDetector`` reads ``bid``/``ask``, ``valid``, ``local_ns``, ``update_id``, ``key``, ``instrument`` and
walks ``bids()``/``asks()`` best first. :class:`AmmDepth` provides exactly that from a V2
pool's reserves: level boundaries are where the pool's marginal price (fee included) has moved by
``step_bps``, and each level's price is the exact average price of that chunk on the continuous
curve, so a walk over the levels reproduces the curve's cost to within float rounding at level
boundaries. The pool fee is inside the prices: the instrument must carry a zero taker fee.

The size a detector picks from these levels is then re-priced with the contract's integer math
(:meth:`AmmDepth.exact_buy` / :meth:`AmmDepth.exact_sell`), which is what goes into the order.
"""

from __future__ import annotations

from collections.abc import Iterator

from cryptoarb.core.book import EMPTY, INVALID, VALID
from cryptoarb.core.instruments import Instrument, dec
from cryptoarb.dex.uniswap_v2 import BPS, get_amount_in, get_amount_out

Level = tuple[float, float]


class AmmDepth:
    """Order-book view of a V2 pool (base/quote orientation given by the caller)."""

    def __init__(
        self,
        instrument: Instrument,
        base_decimals: int,
        quote_decimals: int,
        fee_bps: int = 30,
        step_bps: float = 1.0,
        max_levels: int = 400,
    ) -> None:
        if instrument.fees.taker != 0.0:
            raise ValueError(
                f"{instrument.key}: the pool fee is inside AmmDepth prices; use an instrument with taker=0"
            )
        if step_bps <= 0 or max_levels <= 0:
            raise ValueError("step_bps and max_levels must be positive")
        self.instrument = instrument
        self.key = instrument.key
        self.base_decimals = base_decimals
        self.quote_decimals = quote_decimals
        self.fee_bps = fee_bps
        self.step = step_bps / 1e4
        self.max_levels = max_levels
        self.reserve_base = 0
        self.reserve_quote = 0
        self.bid = self.bid_qty = self.ask = self.ask_qty = 0.0
        self.state = EMPTY
        self.valid = False
        self.crossed = False
        self.local_ns = 0
        self.exchange_ns = 0
        self.block = 0
        self.update_id = 0  # the book-state stamp our footprint keys on (core/footprint.py)

    # -- state ------------------------------------------------------------------------
    def update(self, reserve_base: int, reserve_quote: int, local_ns: int, block: int = 0) -> None:
        """New reserves (from a Sync event or getReserves); recomputes the top of book."""
        self.reserve_base = reserve_base
        self.reserve_quote = reserve_quote
        self.local_ns = local_ns
        self.exchange_ns = local_ns
        self.block = block
        self.update_id += 1
        if reserve_base <= 0 or reserve_quote <= 0:
            self.invalidate()
            return
        self.state = VALID
        self.valid = True
        self.ask, self.ask_qty = next(self.asks())
        self.bid, self.bid_qty = next(self.bids())

    def invalidate(self) -> None:
        """Stale or unhealthy pool: a detector must not see it."""
        self.state = INVALID
        self.valid = False

    def _human(self) -> tuple[float, float, float]:
        rb = self.reserve_base / 10**self.base_decimals
        rq = self.reserve_quote / 10**self.quote_decimals
        return rb, rq, (BPS - self.fee_bps) / BPS

    # -- levels -----------------------------------------------------------------------
    def asks(self) -> Iterator[Level]:
        """Buying base from the pool: (average price, base qty), cheapest first.

        Cost of ``q`` base is ``Rq q / (g (Rb - q))``; its marginal price grows by ``(1+s)`` per
        level when ``Rb - q_k = Rb (1+s)**(-k/2)``.
        """
        if not self.valid:
            return
        rb, rq, g = self._human()
        f = (1.0 + self.step) ** -0.5
        prev_q = prev_cost = 0.0
        rem = rb
        for _ in range(self.max_levels):
            rem *= f
            q = rb - rem
            cost = rq * q / (g * rem)
            dq = q - prev_q
            if dq <= 0.0:
                return
            yield (cost - prev_cost) / dq, dq
            prev_q, prev_cost = q, cost

    def bids(self) -> Iterator[Level]:
        """Selling base into the pool: (average price, base qty), best first.

        Proceeds of ``x`` base are ``g x Rq / (Rb + g x)``; the marginal price falls by ``(1+s)``
        per level when ``Rb + g x_k = Rb (1+s)**(k/2)``.
        """
        if not self.valid:
            return
        rb, rq, g = self._human()
        f = (1.0 + self.step) ** 0.5
        prev_x = prev_out = 0.0
        tot = rb
        for _ in range(self.max_levels):
            tot *= f
            x = (tot - rb) / g
            out = g * x * rq / tot
            dx = x - prev_x
            yield (out - prev_out) / dx, dx
            prev_x, prev_out = x, out

    def walk(self, side: str, qty: float) -> tuple[float, float, float]:
        """Same contract as :meth:`OrderBook.walk`, on the continuous curve."""
        filled = notional = worst = 0.0
        for p, q in self.asks() if side == "asks" else self.bids():
            take = min(q, qty - filled)
            filled += take
            notional += take * p
            worst = p
            if filled >= qty:
                break
        return filled, notional, worst

    def mid(self) -> float:
        rb, rq, _ = self._human()
        return rq / rb if rb else 0.0

    # -- exact re-pricing ---------------------------------------------------------------
    def exact_buy(self, base_qty: float) -> tuple[int, int]:
        """(base out, quote in) in raw units for buying ``base_qty`` (rounded down to a raw unit).

        The raw amount is the exact decimal of the quantity as it prints (``0.57`` is 57 x 10**16
        raw units, not the float product 569999999999999936): the chain moves what the order says.
        """
        out = int(dec(base_qty).scaleb(self.base_decimals))
        return out, get_amount_in(out, self.reserve_quote, self.reserve_base, self.fee_bps)

    def exact_sell(self, base_qty: float) -> tuple[int, int]:
        """(base in, quote out) in raw units for selling ``base_qty``."""
        inp = int(dec(base_qty).scaleb(self.base_decimals))
        return inp, get_amount_out(inp, self.reserve_base, self.reserve_quote, self.fee_bps)

    def __repr__(self) -> str:
        return (
            f"AmmDepth({self.key} bid={self.bid:.8g} ask={self.ask:.8g} R=({self.reserve_base}, {self.reserve_quote}))"
        )
