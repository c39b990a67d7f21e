"""Login rate limiting: failed attempts per user name, all attempts per client address.

A sliding window of attempt times per key, in memory (one API process; behind several
processes each one limits on its own, so the effective limit is multiplied by their number).
Keys are pruned as their windows empty, and the table is bounded, so a flood of made-up user
names cannot grow it without limit.
"""

from __future__ import annotations

import time
from collections import deque

MAX_KEYS = 100_000


class Window:
    """At most ``limit`` events per ``window_s`` seconds per key."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def _live(self, key: str, now: float) -> deque[float] | None:
        q = self._hits.get(key)
        if q is None:
            return None
        cutoff = now - self.window_s
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            del self._hits[key]
            return None
        return q

    def retry_after(self, key: str, now: float | None = None) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        now = time.monotonic() if now is None else now
        q = self._live(key, now)
        if q is None or len(q) < self.limit:
            return 0.0
        return max(0.0, q[0] + self.window_s - now)

    def hit(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        q = self._live(key, now)
        if q is None:
            if len(self._hits) >= MAX_KEYS:
                self._prune(now)
            q = self._hits[key] = deque(maxlen=self.limit)
        q.append(now)

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in list(self._hits):
            self._live(key, now)
        while len(self._hits) >= MAX_KEYS:  # still full of live keys: forget the oldest
            self._hits.pop(next(iter(self._hits)))
