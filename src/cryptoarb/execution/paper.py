"""A simulated venue: fills taker IOC orders against the live book, as it stands on arrival.

Orders arrive after a configurable latency, so the book they meet is not the book that
produced the opportunity: partial fills, worse prices and rejections happen the way they do
on a real venue. Fees are charged at the instrument's taker rate, in the currency the venue takes
them in (``core.accounting.fee_asset``). An optional failure rate
(seeded) models a venue that errors or times out.
"""

from __future__ import annotations

import random
from decimal import Decimal

from cryptoarb.core.accounting import Portfolio, fill_fee, spot_need
from cryptoarb.core.book import OrderBook
from cryptoarb.core.footprint import Footprints
from cryptoarb.core.instruments import Instrument, Kind, dec
from cryptoarb.core.orders import Fill, Order, OrderStatus


class PaperVenue:
    """Fills orders for one venue against the books it is handed."""

    def __init__(
        self,
        venue: str,
        portfolio: Portfolio,
        fail_rate: float = 0.0,
        seed: int = 7,
        footprints: Footprints | None = None,
    ) -> None:
        if not 0.0 <= fail_rate <= 1.0:
            raise ValueError(f"{venue}: fail_rate must be within [0, 1], got {fail_rate}")
        self.venue = venue
        self.portfolio = portfolio
        self.fail_rate = fail_rate
        self._rng = random.Random(f"{venue}:{seed}")
        # Liquidity our own fills took, per book, until that book next changes: two orders
        # meeting the same displayed level between two updates must not both get it. Shared
        # with the detector, which must not size a trade on it either.
        self.footprints = footprints if footprints is not None else Footprints()

    def execute(self, order: Order, book: OrderBook, now_ns: int) -> list[Fill]:
        """Submit and fill ``order`` (IOC) on ``book``; the rest is canceled."""
        inst = book.instrument
        order.transition(OrderStatus.SUBMITTED, now_ns)
        if self.fail_rate and self._rng.random() < self.fail_rate:
            order.transition(OrderStatus.FAILED, now_ns, "simulated venue error")
            return []
        if not book.valid:
            order.transition(OrderStatus.REJECTED, now_ns, "book unavailable (invalid or resyncing)")
            return []
        why = self._check_balance(inst, order, book)
        if why:
            order.transition(OrderStatus.REJECTED, now_ns, why)
            return []
        fills = self._match(inst, order, book, now_ns)
        if order.status is OrderStatus.SUBMITTED:
            order.transition(OrderStatus.CANCELED, now_ns, "no liquidity within limit price")
        elif order.status is OrderStatus.PARTIALLY_FILLED:
            order.transition(OrderStatus.CANCELED, now_ns, "IOC remainder canceled")
        return fills

    def _check_balance(self, inst: Instrument, order: Order, book: OrderBook) -> str:
        """The venue's own check: the currency spent, with the fee when it is charged in it."""
        if inst.kind is not Kind.SPOT:
            return ""
        ccy, need = spot_need(inst, order.side, order.qty, order.limit_price, dec(inst.fees.taker))
        have = self.portfolio.balance(self.venue, ccy)
        if have < need:
            return f"insufficient {ccy}: need {need:.8f}, have {have:.8f}"
        return ""

    def _fee(self, inst: Instrument, side: str, qty: Decimal, price: Decimal, rate: Decimal) -> tuple[Decimal, str]:
        """The venue's fee rule; a fee currency (BNB) is used while it is priced and the
        account holds enough of it, else the full rate by the ``fee_side`` rule."""
        if not inst.fee_currency:
            return fill_fee(inst, side, qty, price, rate)
        px = self.portfolio.price_in(inst.fee_currency, inst.quote)
        fee, ccy = fill_fee(inst, side, qty, price, rate, px)
        if ccy == inst.fee_currency and self.portfolio.balance(self.venue, ccy) < fee:
            return fill_fee(inst, side, qty, price, rate, None)
        return fee, ccy

    def _match(self, inst: Instrument, order: Order, book: OrderBook, now_ns: int) -> list[Fill]:
        buying = order.side == "buy"
        limit = float(order.limit_price)
        levels = book.asks() if buying else book.bids()
        fee_rate = dec(inst.fees.taker)
        fills: list[Fill] = []
        remaining = order.qty
        stamp = (book.update_id, book.local_ns)
        fp = self.footprints[book.key]
        side = "asks" if buying else "bids"
        for p, q in levels:
            if (p > limit) if buying else (p < limit):
                break
            left = dec(q) - fp.taken_at(side, p, stamp)
            if left <= 0:
                continue
            take = min(remaining, left)
            fp.take(side, p, take)
            price = dec(p)
            fee, fee_ccy = self._fee(inst, order.side, take, price, fee_rate)
            fill = Fill(order.id, self.venue, inst.symbol, order.side, price, take, fee, fee_ccy, now_ns)
            order.add_fill(fill)
            self.portfolio.apply_fill(inst, fill)
            fills.append(fill)
            remaining -= take
            if remaining <= 0:
                break
        return fills

