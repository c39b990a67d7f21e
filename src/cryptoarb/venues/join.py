"""A REST snapshot joined to buffered diffs that carry update-id ranges: Gate's and KuCoin's procedure.

Each diff covers the update ids ``first..last`` (Gate ``U``/``u``, KuCoin ``sequenceStart``/
``sequenceEnd``). Diffs are buffered until a REST snapshot with id ``S`` arrives:

- buffered diffs with ``last <= S`` are in it (dropped); if the next one starts after ``S + 1``
  the snapshot is older than every buffered diff, the updates in between are in neither: it is
  asked for again (``snapshot_retries``), no gap;
- from then on every diff must start at or before ``previous last + 1`` (after it: a gap); one
  with ``last <= previous last`` is old, skipped.

A REST side of ``CUT_OFF`` levels or more may be truncated: its last price is a horizon, the book
is exact only on the near side of it, so when the best price of that side moves past it the
book is resynced (the levels behind it are unknown).
"""

from __future__ import annotations

from typing import Any

from cryptoarb.core.book import VALID
from cryptoarb.venues._decode import Levels
from cryptoarb.venues.base import BookSync, Handler

CUT_OFF = 100  # a REST side this long may be truncated
_INF = float("inf")
_BEYOND = "best price moved past the snapshot's depth"


class RangeJoinHandler(Handler):
    """Buffering, chaining and snapshot joining of range-numbered diffs; a venue says how to read
    a diff's range (``_span``) and apply it (``_apply``)."""

    rest_snapshot = True
    #: the reason of a gap, with ``{first}`` (the diff's) and ``{last}`` (the book's) filled in
    gap_reason = "update {first} > last {last} + 1"
    #: the reason a joined snapshot makes its book valid, ``{}`` its id
    snapshot_reason = "snapshot {}"

    def _setup(self) -> None:
        self._horizon: dict[str, tuple[float, float]] = {}  # symbol -> (lowest bid, highest ask) known
        self.snapshot_retries = 0

    @staticmethod
    def _span(d: Any) -> tuple[int, int]:
        """The first and last update id of a diff."""
        raise NotImplementedError

    def _apply(self, sync: BookSync, d: Any, after: int) -> None:
        """Apply a diff that follows update ``after`` (``_apply_diff``, unpublished)."""
        raise NotImplementedError

    def _on_depth(self, sync: BookSync, d: Any, local_ns: int) -> None:
        book = sync.book
        if book.state != VALID:
            self._buffer(sync, d)
            return
        first, end = self._span(d)
        last = sync.last_id
        if end <= last:
            self._stale(sync, first, d, local_ns)
            return
        if first > last + 1 or first > end:
            self._gap(sync, self.gap_reason.format(first=first, last=last), d if first <= end else None, local_ns)
            return
        sync.first_id = first
        self._apply(sync, d, last)
        if self._beyond_horizon(sync):
            self._resync(sync, _BEYOND, local_ns)
            return
        book.local_ns = local_ns
        if book.valid:
            self.on_book(book, local_ns)

    def _beyond_horizon(self, sync: BookSync) -> bool:
        hz = self._horizon.get(sync.instrument.symbol)
        if hz is None:
            return False
        book = sync.book
        return book.bid < hz[0] or book.ask > hz[1] or (hz[1] != _INF and book.ask == 0.0)

    def _join(self, sync: BookSync, sid: int, bids: Levels, asks: Levels, exchange_ns: int, local_ns: int) -> None:
        """A REST snapshot with update id ``sid`` for ``sync``'s book."""
        book = sync.book
        if book.state == VALID:  # not asked for: the chained book is at least as new
            return
        buffered = sync.buffer
        start = 0
        while start < len(buffered) and self._span(buffered[start])[1] <= sid:
            start += 1
        if start < len(buffered) and self._span(buffered[start])[0] > sid + 1:
            # Older than every buffered diff: the updates in between are in neither. Ask again.
            sync.buffer = buffered[start:]
            self.snapshot_retries += 1
            if self.request_snapshot is not None:
                self.request_snapshot(sync.instrument)
            return
        sync.dropped_before_snapshot += start
        book.load_snapshot(bids, asks)
        symbol = sync.instrument.symbol
        self._horizon.pop(symbol, None)
        lo = min(p for p, _ in bids) if len(bids) >= CUT_OFF else -_INF
        hi = max(p for p, _ in asks) if len(asks) >= CUT_OFF else _INF
        if lo != -_INF or hi != _INF:
            self._horizon[symbol] = (lo, hi)
        self._stamp(sync, sid, exchange_ns, local_ns)
        sync.buffer = []
        for i in range(start, len(buffered)):
            d = buffered[i]
            first, end = self._span(d)
            last = sync.last_id
            if end <= last and first <= sync.first_id:  # buffered twice: already applied
                sync.stale_skipped += 1
                continue
            if first > last + 1 or first > end or end <= last:  # the last: an implausible id before
                self._gap(sync, "buffered " + self.gap_reason.format(first=first, last=last), None, local_ns)
                sync.buffer = buffered[i:]
                return
            sync.first_id = first
            self._apply(sync, d, last)
        if self._beyond_horizon(sync):
            self._resync(sync, _BEYOND, local_ns)
            return
        self._now_valid(sync, self.snapshot_reason.format(sid), local_ns)


__all__ = ["CUT_OFF", "RangeJoinHandler"]
