"""Pacing of what we send to a venue: at most ``limit`` messages in any ``window`` seconds.

Venues count the messages a client sends in a sliding window (Binance: 5 per second per
connection; Coinbase: 8 per second per IP; KuCoin: 100 per 10 seconds; OKX: 480 subscription
requests per hour), and answer an excess by closing the connection or banning the address for
a while. A :class:`Pacer` lets a message go when fewer than ``limit`` were sent in the last
``window`` seconds, and otherwise waits until the oldest of them leaves the window: bursts up
to the limit go out at once (a connection's subscriptions), anything more is spread out.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable


class Pacer:
    __slots__ = ("_clock", "_lock", "_sent", "_sleep", "limit", "waited", "window")

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"a pace needs a positive limit and window, not {limit} per {window} s")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()  # senders queue in order
        self.waited = 0  # messages that had to wait (for the feed's statistics)

    async def acquire(self) -> None:
        """Wait until one more message may be sent now, and count it as sent."""
        async with self._lock:
            sent = self._sent
            while True:
                now = self._clock()
                while sent and sent[0] <= now - self.window:
                    sent.popleft()
                if len(sent) < self.limit:
                    sent.append(now)
                    return
                self.waited += 1
                await self._sleep(sent[0] + self.window - now)
