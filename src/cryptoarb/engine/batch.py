"""A burst handled as one batch (issue #15, "Bursts"): every book update first, then detection
once per touched book, books with cross-venue peers first.

Binance-style venues deliver every market's ``@depth@100ms`` frame at the same 100 ms boundary;
message by message, the last frame of a burst waits for every detection before it. Here the live
feed drains what a connection has already received (``begin`` .. ``end``): while the batch is
open, a handler's ``on_book`` only notes the changed book (its latest state and time); ``end``
then runs detection for each touched book once, on its final state:

- **order**: books with cross-venue peers (the detector watches them) first, then books only a
  triangular cycle reads; within each, the book changed last first;
- **coalescing**: several updates of one book are one detection, and a pair of two touched books
  is evaluated once (``CrossVenueDetector.on_book(skip=...)``), by the one changed last, at its
  time. So every pair is evaluated exactly as message-by-message processing last evaluated it:
  the same final states, at the same event time. What only an intermediate state of a book
  would have shown is not looked at (the venue's next frame was already there), and
  opportunities reach execution newest first (they compete for balances in that order).
- each book's opportunities are handed to execution right after its detection (``Engine.flush``).

Latency stays per message: while a batch is open this object stands in for the engine's depth
recorder (``Engine.latency``), so the time of a message that changed a book is counted until
that book's detection has run (``end``), and a message that changed no valid book is counted at
once, as before. The batch holds no I/O and allocates per burst, not per message, beyond the
small per-book lists.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING

from cryptoarb.core.book import OrderBook

if TYPE_CHECKING:
    from cryptoarb.engine.engine import Engine
    from cryptoarb.engine.latency import LatencyRecorder


class BurstBatch:
    """One engine's batch; the live feeds of the engine share it (one loop, one thread)."""

    __slots__ = ("_books", "_engine", "_ns", "_real", "_t0", "active", "current", "last_key", "on_decided")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._real: LatencyRecorder = engine.latency
        self.active = False
        self._books: dict[str, OrderBook] = {}  # touched this burst
        self._ns: dict[str, int] = {}  # key -> event time of its last change, in last-change order
        self._t0: dict[str, list[int]] = {}  # key -> start (perf_counter_ns) of each message that changed it
        #: books the message being handled changed (read and cleared by ``append``; the feed
        #: clears it after a message the engine does not time, e.g. an in-stream snapshot)
        self.current: list[str] = []
        #: the book the last timed message is waiting on (None: it waits on nothing)
        self.last_key: str | None = None
        #: called with a book's key once its detection of the burst has run (a load harness
        #: measuring tick-to-decision per message hooks it; None in a live run)
        self.on_decided: Callable[[str], None] | None = None

    @classmethod
    def of(cls, engine: Engine) -> BurstBatch:
        """The engine's batch (created on first use: feeds of several venues share it)."""
        b: BurstBatch | None = getattr(engine, "burst_batch", None)
        if b is None:
            b = cls(engine)
            engine.burst_batch = b  # type: ignore[attr-defined]
        return b

    # -- during the burst ------------------------------------------------------------------
    def begin(self) -> None:
        self.active = True
        self._real = self._engine.latency
        self._engine.latency = self  # type: ignore[assignment]

    def on_book(self, book: OrderBook, local_ns: int) -> None:
        """The handlers' book callback: noted in a batch, straight to the engine outside one
        (a REST snapshot completing between bursts)."""
        if not self.active:
            self._engine.on_book(book, local_ns)
            return
        key = book.key
        self._books[key] = book
        ns = self._ns
        if key in ns:
            del ns[key]  # re-inserted: the dict stays in the order of the last change
        ns[key] = local_ns
        self.current.append(key)

    def append(self, dt: int) -> None:
        """The engine timing a depth message (``dt``: its handling so far): its start is kept
        with the book it changed, to be counted when that book's detection has run."""
        cur = self.current
        if not cur:
            self.last_key = None
            self._real.append(dt)  # no valid book changed: nothing to wait for
            return
        t0 = perf_counter_ns() - dt
        key = self.last_key = cur[-1]
        t0s = self._t0.get(key)
        if t0s is None:
            self._t0[key] = [t0]
        else:
            t0s.append(t0)
        cur.clear()

    # -- end of the burst ------------------------------------------------------------------
    def end(self) -> None:
        """Detection once per touched book, peers first; each message's latency counted."""
        eng = self._engine
        eng.latency = self._real
        self.active = False
        self.current.clear()
        books = self._books
        if not books:
            return
        det = eng.detector
        ns_of = self._ns
        watched = [k for k in reversed(ns_of) if det.watches(k)]
        order = watched if len(watched) == len(ns_of) else watched + [
            k for k in reversed(ns_of) if not det.watches(k)]
        real = self._real
        decision = eng.decision
        fresh = eng._fresh
        cycles = eng.cycles
        t0s_of = self._t0
        hook = self.on_decided
        done: set[str] = set()
        for key in order:
            book = books[key]
            now = ns_of[key]
            if book.valid:  # a later frame of the burst may have broken it: no detection then
                t = perf_counter_ns()
                found = det.on_book(book, now, done)
                if found is not None:
                    fresh.extend(found)
                if cycles is not None:
                    cyc = cycles.detector.on_book(book, now)
                    if cyc is not None:
                        eng._fresh_cycles.extend(cyc)
                decision.append(perf_counter_ns() - t)
                if fresh or eng._fresh_cycles:
                    eng.flush(now)
                    fresh = eng._fresh  # dispatch replaced the list
            done.add(key)
            t0s = t0s_of.pop(key, None)
            if t0s is not None:
                t1 = perf_counter_ns()
                for t0 in t0s:
                    real.append(t1 - t0)
            if hook is not None:
                hook(key)
        books.clear()
        ns_of.clear()
        t0s_of.clear()


__all__ = ["BurstBatch"]
