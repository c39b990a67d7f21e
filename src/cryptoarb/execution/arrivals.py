"""Orders on their way to a venue: one min-heap on the event-time clock, shared by every executor.

An order sent at ``t`` reaches its venue at ``t + latency``; :meth:`Arrivals.due` hands over, in
arrival order (ties in send order), every order whose time has come. The heap list itself is
public (``heap``) because the engine's hot path looks at its head (``heap[0][0]``) before it calls
anything: one comparison per message when nothing is due.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from cryptoarb.core.orders import Order


class Arrivals:
    """(arrival_ns, seq, order) entries; ``seq`` keeps orders of one nanosecond in send order."""

    __slots__ = ("_seq", "heap")

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, Order]] = []
        self._seq = 0

    def push(self, order: Order, arrival_ns: int) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (arrival_ns, self._seq, order))

    def due(self, now_ns: int) -> Iterator[tuple[Order, int]]:
        """(order, its arrival time) for every order arrived by ``now_ns``; an order pushed while
        iterating is handed over too when it is already due."""
        q = self.heap
        while q and q[0][0] <= now_ns:
            arrival, _, order = heapq.heappop(q)
            yield order, arrival

    def all(self) -> Iterator[tuple[Order, int]]:
        """Every order still on its way, each at its own arrival time (end of a replay)."""
        q = self.heap
        while q:
            arrival, _, order = heapq.heappop(q)
            yield order, arrival

    def __len__(self) -> int:
        return len(self.heap)
