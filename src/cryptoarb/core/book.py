"""L2 order book built for the hot path.

Each side is a dict ``price -> qty`` holding every level (O(1) update) plus a short sorted
*head*: the keys of the best levels, ascending, best last (bids keyed by price, asks by
``-price``). Every dict key at or above the side's ``floor`` is in the head, so best
bid/ask is ``head[-1]`` in O(1), and an update deep in the book costs a dict operation only;
only levels near the top pay for a bisect, on a list of at most ``HEAD_MAX`` keys. When
deletions drain the head below ``HEAD_MIN`` it is refilled from the dict (O(n), rare).

Prices and quantities are floats parsed from the venue's decimal strings: two floats parsed
from the same string are equal, which is all a book needs. Money becomes exact decimals in
accounting, not here.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from heapq import nlargest, nsmallest

from cryptoarb.core.instruments import Instrument

HEAD_MAX = 128
HEAD_MIN = 16
_NEG_INF = float("-inf")
#: no venue sends a price or a quantity this large: above it a value is corrupt, not data
LIMIT = 1e15

# Book states. Only VALID books may reach a detector.
EMPTY = 0  # nothing received yet
SYNCING = 1  # diffs are being buffered until a snapshot arrives
VALID = 2
INVALID = 3  # a gap, a bad checksum or a stale feed: resync pending

STATE_NAMES = {EMPTY: "empty", SYNCING: "syncing", VALID: "valid", INVALID: "invalid"}

Level = tuple[float, float]


class BadBook(ValueError):
    """A level no venue can send (not a positive finite number below ``LIMIT``), or a book crossed
    after an update. The book that raised is left half-applied: its handler must invalidate it
    and resync (``venues.base`` does, for every handler)."""

    def __init__(self, book: OrderBook, why: str) -> None:
        super().__init__(f"{book.key}: {why}")
        self.book = book


def _bad(book: OrderBook, side: str, p: float, q: float) -> BadBook:
    return BadBook(book, f"impossible {side} level {p!r} x {q!r}")


class OrderBook:
    """Price-level book of one instrument on one venue."""

    __slots__ = (
        "_afloor",
        "_akeys",
        "_asks",
        "_bfloor",
        "_bids",
        "_bkeys",
        "ask",
        "ask_qty",
        "bid",
        "bid_qty",
        "crossed",
        "exchange_ns",
        "instrument",
        "key",
        "local_ns",
        "refills",
        "state",
        "update_id",
        "valid",
    )

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.key = instrument.key
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._bkeys: list[float] = []  # head: ascending prices, best bid last
        self._akeys: list[float] = []  # head: ascending -prices, best ask last
        self._bfloor = _NEG_INF  # every bid price >= this is in the head
        self._afloor = _NEG_INF  # every -ask price >= this is in the head
        self.refills = 0
        self.bid = 0.0  # best bid price, 0.0 when the side is empty
        self.bid_qty = 0.0
        self.ask = 0.0  # best ask price, 0.0 when the side is empty
        self.ask_qty = 0.0
        self.state = EMPTY
        self.valid = False
        self.crossed = False
        self.update_id = 0  # the venue's sequence number of the last applied update
        self.exchange_ns = 0
        self.local_ns = 0

    # -- state -------------------------------------------------------------------------
    def set_state(self, state: int) -> None:
        self.state = state
        self.valid = state == VALID and not self.crossed

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._bkeys.clear()
        self._akeys.clear()
        self._bfloor = self._afloor = _NEG_INF
        self.bid = self.bid_qty = self.ask = self.ask_qty = 0.0
        self.crossed = False
        self.valid = self.state == VALID

    # -- updates -----------------------------------------------------------------------
    def load_snapshot(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the whole book (absolute quantities; zero quantities are ignored).

        Raises ``BadBook`` for an impossible level (NaN, infinite, negative, zero price, absurd)
        or a crossed result."""
        self.clear()
        b = self._bids
        a = self._asks
        for p, q in bids:
            if 0.0 < p < LIMIT and 0.0 < q < LIMIT:  # false for NaN: one comparison chain per level
                b[p] = q
            elif q != 0.0 or p != p:
                raise _bad(self, "bid", p, q)
        for p, q in asks:
            if 0.0 < p < LIMIT and 0.0 < q < LIMIT:
                a[p] = q
            elif q != 0.0 or p != p:
                raise _bad(self, "ask", p, q)
        self._refill_bids()
        self._refill_asks()
        self._refresh_top()
        if self.crossed:
            raise BadBook(self, f"crossed snapshot: bid {self.bid} >= ask {self.ask}")

    def _refill_bids(self) -> None:
        d = self._bids
        if len(d) <= HEAD_MAX:
            self._bkeys = sorted(d)
            self._bfloor = _NEG_INF
        else:
            self._bkeys = sorted(nlargest(HEAD_MAX, d))
            self._bfloor = self._bkeys[0]
        self.refills += 1

    def _refill_asks(self) -> None:
        d = self._asks
        if len(d) <= HEAD_MAX:
            self._akeys = sorted(-p for p in d)
            self._afloor = _NEG_INF
        else:
            self._akeys = sorted(-p for p in nsmallest(HEAD_MAX, d))
            self._afloor = self._akeys[0]
        self.refills += 1

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Apply absolute level quantities; a zero quantity deletes the level.

        Raises ``BadBook`` for an impossible level (NaN, infinite, negative, zero price, absurd)
        or when the book ends crossed; the levels before it are applied (the book must resync)."""
        lim = LIMIT
        d = self._bids
        head = self._bkeys
        floor = self._bfloor
        for p, q in bids:
            if q == 0.0:
                if d.pop(p, None) is not None and p >= floor:
                    del head[bisect_left(head, p)]
            elif p in d:  # a known price was checked when it came in: only the quantity is new
                if not 0.0 < q < lim:  # false for NaN and infinities too
                    raise _bad(self, "bid", p, q)
                d[p] = q
            elif not (0.0 < q < lim and 0.0 < p < lim):
                raise _bad(self, "bid", p, q)
            else:
                d[p] = q
                if p >= floor:
                    insort(head, p)
                    if len(head) > HEAD_MAX:
                        del head[0]
                        floor = self._bfloor = head[0]
        if len(head) < HEAD_MIN and len(d) > len(head):
            self._refill_bids()
        d = self._asks
        head = self._akeys
        floor = self._afloor
        for p, q in asks:
            if q == 0.0:
                if d.pop(p, None) is not None and -p >= floor:
                    del head[bisect_left(head, -p)]
            elif p in d:
                if not 0.0 < q < lim:
                    raise _bad(self, "ask", p, q)
                d[p] = q
            elif not (0.0 < q < lim and 0.0 < p < lim):
                raise _bad(self, "ask", p, q)
            else:
                d[p] = q
                if -p >= floor:
                    insort(head, -p)
                    if len(head) > HEAD_MAX:
                        del head[0]
                        floor = self._afloor = head[0]
        if len(head) < HEAD_MIN and len(d) > len(head):
            self._refill_asks()
        self._refresh_top()
        if self.crossed:
            raise BadBook(self, f"crossed: bid {self.bid} >= ask {self.ask}")

    def _refresh_top(self) -> None:
        if self._bkeys:
            p = self._bkeys[-1]
            self.bid = p
            self.bid_qty = self._bids[p]
        else:
            self.bid = self.bid_qty = 0.0
        # crossed whenever asks exist and the best bid is not below the best ask (whatever the
        # ask's sign: no price <= 0 gets in, but the check does not rely on it)
        if self._akeys:
            p = -self._akeys[-1]
            self.ask = p
            self.ask_qty = self._asks[p]
            crossed = self.bid >= p
        else:
            self.ask = self.ask_qty = 0.0
            crossed = False
        if crossed is not self.crossed:
            self.crossed = crossed
            self.valid = self.state == VALID and not crossed

    # -- reads -------------------------------------------------------------------------
    def bids(self) -> Iterator[Level]:
        """Bid levels, best first: the head, then (rarely needed) the sorted rest."""
        d = self._bids
        for p in reversed(self._bkeys):
            yield p, d[p]
        if len(d) > len(self._bkeys):
            floor = self._bfloor
            for p in sorted((p for p in d if p < floor), reverse=True):
                yield p, d[p]

    def asks(self) -> Iterator[Level]:
        """Ask levels, best first: the head, then (rarely needed) the sorted rest."""
        d = self._asks
        for k in reversed(self._akeys):
            yield -k, d[-k]
        if len(d) > len(self._akeys):
            floor = -self._afloor
            for p in sorted(p for p in d if p > floor):
                yield p, d[p]

    def top(self, n: int = 5) -> tuple[list[list[float]], list[list[float]]]:
        """The best ``n`` levels of each side as ``[[price, qty], ...]``."""
        bids = [[p, q] for p, q in _take(self.bids(), n)]
        asks = [[p, q] for p, q in _take(self.asks(), n)]
        return bids, asks

    def depth(self) -> tuple[int, int]:
        return len(self._bids), len(self._asks)

    def mid(self) -> float:
        return (self.bid + self.ask) * 0.5 if self.bid and self.ask else 0.0

    def walk(self, side: str, qty: float) -> tuple[float, float, float]:
        """Take up to ``qty`` (native units) from ``side`` ('asks' to buy, 'bids' to sell).

        Returns ``(filled_qty, quote_notional, worst_price)``; for inverse instruments the
        notional is what linear quantity x price would be, callers convert.
        """
        levels = self.asks() if side == "asks" else self.bids()
        filled = 0.0
        notional = 0.0
        worst = 0.0
        for p, q in levels:
            left = qty - filled
            worst = p
            if q >= left:  # this level completes the quantity: no float residue carried on
                notional += left * p
                return qty, notional, worst
            filled += q
            notional += q * p
        return filled, notional, worst

    def vwap(self, side: str, qty: float) -> float:
        filled, notional, _ = self.walk(side, qty)
        return notional / filled if filled else 0.0

    def snapshot_levels(self) -> tuple[list[Level], list[Level]]:
        """Full copy of both sides, best first (for checks and persistence, not the hot path)."""
        return list(self.bids()), list(self.asks())

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.key} {STATE_NAMES[self.state]} bid={self.bid}x{self.bid_qty} "
            f"ask={self.ask}x{self.ask_qty} levels={self.depth()})"
        )


def _take(it: Iterator[Level], n: int) -> list[Level]:
    out: list[Level] = []
    for lv in it:
        if len(out) >= n:
            break
        out.append(lv)
    return out
