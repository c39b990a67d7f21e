"""De-duplication and rate limiting, decided in the caller's thread before anything is queued.

Why before the queue: a flapping breaker or a venue failing every order can raise hundreds of
alerts a second. Deciding here keeps the queue (and the people reading the channel) from
drowning, and costs the caller a dict lookup and a few comparisons under a lock.

* **De-duplication**: the first alert of a key is sent; the same key again within
  ``window_s`` is only counted. When the window has passed, the count goes out -- with the next
  alert of that key, or on its own from :meth:`Throttle.due` (the worker polls it) -- so nothing
  is lost silently: "one alert + a count".
* **Rate limit**: a token bucket over all keys (``rate_per_min``, ``burst``). An alert over the
  limit is dropped and counted; the next one sent says how many were dropped.

The clock is injected (monotonic seconds) so tests drive time without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Alert:
    """One notification. ``repeats``: how many alerts of this key were folded into it;
    ``dropped``: how many alerts (any key) the rate limit dropped before it."""

    kind: str
    key: str
    title: str
    body: str
    detail: dict[str, Any] = field(default_factory=dict)
    level: str = "warning"  # info / success / warning / failure (apprise's notify types)
    repeats: int = 0
    dropped: int = 0
    first_ts: float = 0.0  # monotonic, first alert of the folded window


@dataclass(slots=True)
class _Window:
    until: float
    count: int = 0  # alerts of this key suppressed since the last one sent
    last: Alert | None = None
    first_ts: float = 0.0


class Throttle:
    """Decides, per alert, send now / fold into a count / drop for the rate limit."""

    def __init__(self, window_s: float, rate_per_min: int, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.rate = rate_per_min / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._tokens = float(burst)
        self._t = clock()
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self.suppressed = 0  # folded into a later count
        self.rate_limited = 0  # dropped by the rate limit
        self._dropped_since = 0  # rate-limited since the last alert sent

    def admit(self, alert: Alert, urgent: bool = False) -> Alert | None:
        """The alert to send now (with counts folded in), or None (counted, not sent).
        ``urgent`` (kill, resume) skips the rate limit, never the de-duplication."""
        with self._lock:
            now = self.clock()
            w = self._windows.get(alert.key)
            if w is not None and now < w.until:
                w.count += 1
                w.last = alert
                self.suppressed += 1
                return None
            if not self._take(now) and not urgent:
                self.rate_limited += 1
                self._dropped_since += 1
                return None
            if w is not None and w.count:
                alert.repeats = w.count
                alert.first_ts = w.first_ts
            self._windows[alert.key] = _Window(now + self.window_s, first_ts=now)
            alert.dropped, self._dropped_since = self._dropped_since, 0
            return alert

    def due(self) -> list[Alert]:
        """Counts whose window has ended with no new alert of their key to carry them: one
        summary alert each (the latest alert's text, its count). Expired windows are forgotten."""
        out: list[Alert] = []
        with self._lock:
            now = self.clock()
            for key in [k for k, w in self._windows.items() if now >= w.until]:
                w = self._windows.pop(key)
                if w.count and w.last is not None:
                    if not self._take(now):
                        self._windows[key] = _Window(now + self.window_s, w.count, w.last, w.first_ts)
                        continue  # keep the count for later; the bucket is empty
                    a = w.last
                    a.repeats, a.first_ts = w.count, w.first_ts
                    a.dropped, self._dropped_since = self._dropped_since, 0
                    out.append(a)
        return out

    def pending(self) -> list[Alert]:
        """Every count not yet sent, regardless of windows (the end of a run)."""
        with self._lock:
            out = []
            for w in self._windows.values():
                if w.count and w.last is not None:
                    a = w.last
                    a.repeats, a.first_ts = w.count, w.first_ts
                    out.append(a)
            self._windows.clear()
            return out

    def _take(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
        self._t = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
