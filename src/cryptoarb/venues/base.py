"""What every streaming venue handler shares: per-book sync state, counters, callbacks.

A handler turns raw bytes into book changes. It calls ``on_book(book, local_ns)`` only for a
VALID book that just changed, so an invalid book can never reach a detector; it reports
state changes through ``on_state`` and (optionally) trades/quotes through ``on_event``. When it needs a fresh
snapshot it calls ``request_snapshot(instrument)``: live feeds fetch one over REST, replay
waits for the next snapshot in the capture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptoarb.core.book import INVALID, SYNCING, VALID, OrderBook
from cryptoarb.core.events import BookStateChange
from cryptoarb.core.instruments import Instrument

BookCallback = Callable[[OrderBook, int], None]
EventCallback = Callable[[Any], None]
SnapshotRequest = Callable[[Instrument], None]

# Message kinds returned by ``on_message`` so callers can attribute latency.
OTHER = 0
DEPTH = 1
SNAPSHOT = 2
QUOTE = 3
TRADE = 4
BAD = 5


class MessageError(ValueError):
    """A message that cannot be understood. Counted and skipped by the feed, never applied."""


class BookSync:
    """One book plus the bookkeeping of its snapshot/diff synchronisation."""

    __slots__ = (
        "book",
        "buffer",
        "diffs_applied",
        "dropped_before_snapshot",
        "expect_first",
        "gaps",
        "instrument",
        "last_id",
        "resyncs",
        "stale_skipped",
    )

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.book = OrderBook(instrument)
        self.buffer: list[Any] = []  # decoded diffs waiting for a snapshot
        self.last_id = 0
        self.expect_first = True
        self.diffs_applied = 0
        self.dropped_before_snapshot = 0
        self.gaps = 0
        self.resyncs = 0
        self.stale_skipped = 0

    def counters(self) -> dict[str, int]:
        return {
            "diffs_applied": self.diffs_applied,
            "dropped_before_snapshot": self.dropped_before_snapshot,
            "gaps": self.gaps,
            "resyncs": self.resyncs,
        }


class Handler:
    """Base class: owns the BookSync objects and the callbacks."""

    venue: str = ""
    #: how many diffs to keep while waiting for a snapshot before giving up on the oldest
    max_buffer = 50_000

    def __init__(
        self,
        on_book: BookCallback,
        on_event: EventCallback | None = None,
        request_snapshot: SnapshotRequest | None = None,
        on_state: EventCallback | None = None,
    ) -> None:
        self.on_book = on_book
        self.on_event = on_event  # trades and quotes; None saves their allocation
        self.on_state = on_state  # BookStateChange: always worth knowing
        self.request_snapshot = request_snapshot
        self.syncs: dict[str, BookSync] = {}  # by ccxt symbol
        self.bad_messages = 0
        self.unknown_streams = 0

    def on_message(self, raw: bytes, local_ns: int) -> int:
        """Handle one raw frame; returns its kind (DEPTH, QUOTE, ...). Raises MessageError."""
        raise NotImplementedError

    def books(self) -> list[OrderBook]:
        return [s.book for s in self.syncs.values()]

    def _set_state(self, sync: BookSync, state: int, reason: str, local_ns: int) -> None:
        sync.book.set_state(state)
        if self.on_state is not None:
            self.on_state(BookStateChange(sync.book.key, state, reason, local_ns))

    def _gap(self, sync: BookSync, reason: str, pending: Any, local_ns: int) -> None:
        """Mark the book invalid and start a resync; ``pending`` (the diff that exposed the
        gap) is kept, since it may chain onto the next snapshot."""
        sync.gaps += 1
        self._resync(sync, reason, local_ns)
        if pending is not None:
            sync.buffer.append(pending)

    def _resync(self, sync: BookSync, reason: str, local_ns: int) -> None:
        sync.resyncs += 1
        sync.buffer = []
        sync.expect_first = True
        self._set_state(sync, INVALID, reason, local_ns)
        sync.book.set_state(SYNCING)
        if self.request_snapshot is not None:
            self.request_snapshot(sync.instrument)

    @staticmethod
    def _valid(sync: BookSync) -> bool:
        return sync.book.state == VALID
