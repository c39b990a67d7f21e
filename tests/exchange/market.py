"""The local venue's order book: a real Binance spot capture replayed through the project's own
``BinanceHandler`` into its ``OrderBook``, held at a chosen line or moving forward in capture time
at a chosen pace.

Our own fills take liquidity: a level we took from shows what is left of it until the capture
updates that level again (a later diff sets its quantity anew), as on a real venue where the
next update already reflects our trade. That overlay, and the book position, are market state,
not account state: they are not kept across a restart of the server.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

from cryptoarb.core.book import OrderBook
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues.binance import BinanceHandler
from cryptoarb.venues.catalog import Catalog

BUY = "BUY"
SELL = "SELL"


class CaptureError(Exception):
    """The capture cannot give the book asked for (missing file, position past its end...)."""


def _lines(paths: list[Path]) -> Iterator[tuple[int, bytes]]:
    """``(local_ns, raw frame)`` of every non-empty line of the files, in order (one stream)."""
    for p in paths:
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rb") as f:
            for line in f:
                line = line.strip()
                if line:
                    ts, _, raw = line.partition(b" ")
                    yield int(ts), raw


def dec(x: float) -> Decimal:
    """The exact decimal a venue sent for a float parsed from its string (shortest repr)."""
    return Decimal(repr(x))


class BookReads:
    """Reads every served book answers from its ``levels`` (a captured or a synthetic one)."""

    def levels(self, side: str) -> Iterator[tuple[Decimal, Decimal]]:
        raise NotImplementedError

    def depth(self, limit: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids: list[tuple[Decimal, Decimal]] = []
        for lv in self.levels("bids"):
            if len(bids) >= limit:
                break
            bids.append(lv)
        asks: list[tuple[Decimal, Decimal]] = []
        for lv in self.levels("asks"):
            if len(asks) >= limit:
                break
            asks.append(lv)
        return bids, asks

    def mid(self) -> Decimal:
        bid = next(self.levels("bids"), None)
        ask = next(self.levels("asks"), None)
        if bid is None or ask is None:
            return Decimal(0)
        return (bid[0] + ask[0]) / 2


class CaptureMarket(BookReads):
    """One symbol's book from a capture, with a position that moves only when asked to or with time."""

    def __init__(self, paths: list[Path], start_line: int = 0, pace: float = 0.0,
                 venue: str = "binance", symbol: str = "BTC/USDT") -> None:
        for p in paths:
            if not p.is_file():
                raise CaptureError(f"capture file not found: {p}")
        if not paths:
            raise CaptureError("no capture file given")
        self.paths = paths
        self.instrument: Instrument = Catalog().get(venue, symbol)
        self._venue = venue
        self.pace = pace
        #: called after each line that leaves a valid book (the venue fills resting orders it crosses)
        self.on_move: Callable[[], None] | None = None
        #: called with each raw line fed after start-up (the depth stream, ``stream.py``)
        self.on_line: Callable[[bytes], None] | None = None
        self._reset()
        self.seek(start_line)
        self._anchor()

    # -- position -----------------------------------------------------------------------
    def _reset(self) -> None:
        self.handler = BinanceHandler(self._venue, Catalog(), lambda b, ns: None,
                                      request_snapshot=lambda inst: None)
        self.book: OrderBook = self.handler.sync_for(self.instrument).book
        self._it = _lines(self.paths)
        self._next: tuple[int, bytes] | None = next(self._it, None)
        self.line = 0  # lines fed so far
        self.capture_ns = 0  # local receive time of the last line fed
        self.taken: dict[tuple[str, float], tuple[float, Decimal]] = {}  # (side, price) -> (level qty seen, taken)

    def _feed_one(self) -> bool:
        if self._next is None:
            return False
        ns, raw = self._next
        self.handler.on_message(raw, ns)
        self.capture_ns = ns
        self.line += 1
        self._next = next(self._it, None)
        if self.on_line is not None:
            self.on_line(raw)
        if self.on_move is not None and self.book.valid:
            self.on_move()
        return True

    def _anchor(self) -> None:
        """Capture time now corresponds to the wall clock now (pace counts from here)."""
        self._wall0 = time.monotonic()
        self._cap0 = self.capture_ns

    def seek(self, line: int) -> None:
        """Hold the book as it stands after the first ``line`` lines of the capture."""
        if line < self.line:
            self._reset()
        while self.line < line:
            if not self._feed_one():
                raise CaptureError(f"the capture has only {self.line} lines, cannot reach line {line}")
        while not self.book.valid:  # a position before the REST snapshot: go on to the first valid book
            if not self._feed_one():
                raise CaptureError("the capture never gives a valid book")
        self._anchor()

    def set_pace(self, pace: float) -> None:
        """``pace`` x real time from now on (0 holds the book where it is)."""
        self.catch_up()
        self.pace = pace
        self._anchor()

    def advance(self, lines: int) -> None:
        self.seek(self.line + lines)

    def catch_up(self) -> None:
        """Feed every line whose capture time the paced clock has reached."""
        if self.pace <= 0.0:
            return
        target = self._cap0 + int((time.monotonic() - self._wall0) * self.pace * 1e9)
        while self._next is not None and self._next[0] <= target:
            self._feed_one()

    # -- reading, with our own takes -----------------------------------------------------
    def levels(self, side: str) -> Iterator[tuple[Decimal, Decimal]]:
        """``(price, quantity left)`` of ``side`` ('asks' or 'bids'), best first, net of our takes
        that the capture has not overwritten since."""
        it = self.book.asks() if side == "asks" else self.book.bids()
        taken = self.taken
        for p, q in it:
            t = taken.get((side, p))
            if t is None:
                yield dec(p), dec(q)
                continue
            seen, amount = t
            if seen != q:  # the capture set this level anew since we took from it
                del taken[(side, p)]
                yield dec(p), dec(q)
                continue
            left = dec(q) - amount
            if left > 0:
                yield dec(p), left

    def take(self, side: str, price: Decimal, qty: Decimal) -> None:
        """Record that ``qty`` was taken at ``price`` of ``side``."""
        p = float(price)
        q = self.book._asks.get(p) if side == "asks" else self.book._bids.get(p)
        if q is None:
            return
        seen, amount = self.taken.get((side, p), (q, Decimal(0)))
        if seen != q:
            amount = Decimal(0)
        self.taken[(side, p)] = (q, amount + qty)

    def position(self) -> dict[str, object]:
        b = next(self.levels("bids"), None)
        a = next(self.levels("asks"), None)
        return {"line": self.line, "capture_ns": self.capture_ns, "update_id": self.book.update_id,
                "pace": self.pace, "valid": self.book.valid,
                "bid": str(b[0]) if b else None, "ask": str(a[0]) if a else None}
