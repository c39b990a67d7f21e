"""Marks: what an asset or a position is worth now, from the run's own books (mids).

The valuation currency is the quote currency of the run's groups (the most common one);
currencies declared equivalent to it (``detector.quote_equivalents``) count 1:1. Any other asset
is priced at the mid of the books that price it directly in a cash currency (spot books first,
the mean when several venues quote it; perpetuals only when no spot book does), else through one
other priced asset (ETH via ETH/BTC x BTC). A derivative position is marked at its own book's mid.
A book that is not valid right now contributes its last valid mid. Off the hot path: read when a
fill is booked, a trade settles, and when the live view or the summary asks.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from cryptoarb.core.book import OrderBook
from cryptoarb.core.instruments import Instrument, Kind, dec
from cryptoarb.detect.groups import Group


def valuation_currency(groups: list[Group], instruments: list[Instrument], equivalents: list[set[str]]) -> str:
    """The most common quote currency of the grouped instruments (of all, when none is grouped),
    counting declared equivalents as one; spot quotes win over contract quotes (USD of BTC/USD:BTC)."""
    by_key = {i.key: i for i in instruments}
    grouped = [by_key[k] for g in groups for k in g.members if k in by_key] or instruments
    if not grouped:
        return "USDT"
    ordered = sorted(grouped, key=lambda i: i.kind is not Kind.SPOT)  # stable: spot first
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for n, inst in enumerate(ordered):
        ccy = inst.quote
        canon = next((min(eq) for eq in equivalents if ccy in eq), ccy)
        counts[canon] += 2 if inst.kind is Kind.SPOT else 1
        first.setdefault(canon, n)
    best = max(counts, key=lambda c: (counts[c], -first[c]))
    # name it as the grouped spot instruments do, not as the equivalence set's first member
    return next((i.quote for i in ordered if next((min(eq) for eq in equivalents if i.quote in eq), i.quote) == best),
                best)


def cash_set(currency: str, equivalents: list[set[str]]) -> frozenset[str]:
    out = {currency}
    for eq in equivalents:
        if currency in eq:
            out |= eq
    return frozenset(out)


class Marks:
    """Mid prices of the run's books as asset prices and position marks (exact decimals)."""

    def __init__(self, books: dict[str, OrderBook], currency: str, cash: frozenset[str]) -> None:
        self.books = books
        self.currency = currency
        self.cash = cash
        self._last: dict[str, Decimal] = {}
        self._indexed = -1
        self._by_base: dict[str, list[OrderBook]] = {}
        self._by_quote: dict[str, list[OrderBook]] = {}
        # configured prices for assets no book of the run prices (a fee currency such as BNB)
        self.fixed: dict[str, Decimal] = {}

    def _index(self) -> None:
        if self._indexed == len(self.books):
            return
        self._indexed = len(self.books)
        self._by_base = {}
        self._by_quote = {}
        for book in self.books.values():
            inst = book.instrument
            self._by_base.setdefault(inst.base, []).append(book)
            self._by_quote.setdefault(inst.quote, []).append(book)

    def mid(self, key: str) -> Decimal | None:
        """The book's mid now, or its last valid mid."""
        book = self.books.get(key)
        if book is None:
            return self._last.get(key)
        if book.valid and book.bid and book.ask and book.bid < book.ask:
            m = dec(book.mid())
            self._last[key] = m
            return m
        return self._last.get(key)

    def price(self, asset: str) -> Decimal | None:
        """``asset`` in the valuation currency; None when no book prices it."""
        px = self._price(asset, 1)
        return self.fixed.get(asset) if px is None else px

    def _price(self, asset: str, hops: int) -> Decimal | None:
        if asset in self.cash:
            return Decimal(1)
        self._index()
        direct = [b for b in self._by_base.get(asset, ()) if b.instrument.quote in self.cash]
        for kinds in ((Kind.SPOT,), (Kind.LINEAR, Kind.INVERSE)):
            mids = [m for b in direct if b.instrument.kind in kinds and (m := self.mid(b.key)) is not None]
            if mids:
                return sum(mids, Decimal(0)) / len(mids)
        if not hops:
            return None
        for b in self._by_base.get(asset, ()):  # asset/OTHER x OTHER's price
            other = b.instrument.quote
            if other != asset and (m := self.mid(b.key)) is not None and (px := self._price(other, hops - 1)):
                return m * px
        for b in self._by_quote.get(asset, ()):  # OTHER/asset: OTHER's price / mid
            other = b.instrument.base
            if other != asset and (m := self.mid(b.key)) and (px := self._price(other, hops - 1)):
                return px / m
        return None
