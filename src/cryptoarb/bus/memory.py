"""The in-process bus: the embedded default, and the reference the Redis bus is tested against.

Streams are lists, a group is a read position per stream plus its pending entries; a lock makes
it safe for the few threads of one process. Entries are bounded like Redis's ``MAXLEN``: the
oldest ones go once a stream holds ``maxlen``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from cryptoarb.bus.base import DLQ, Delivery


@dataclass
class _Group:
    pos: dict[str, int] = field(default_factory=dict)  # stream -> next entry number to deliver
    pending: dict[tuple[str, int], tuple[str, float, bytes]] = field(default_factory=dict)


class MemoryTransport:
    def __init__(self, maxlen: int = 100_000) -> None:
        self.maxlen = maxlen
        self._streams: dict[str, deque[tuple[int, bytes]]] = {}
        self._next: dict[str, int] = {}
        self._groups: dict[str, _Group] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)

    def publish(self, stream: str, data: bytes) -> None:
        with self._cond:
            q = self._streams.get(stream)
            if q is None:
                q = self._streams[stream] = deque(maxlen=self.maxlen)
            n = self._next.get(stream, 1)
            self._next[stream] = n + 1
            q.append((n, data))
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        return True

    def backlog(self) -> int:
        return 0

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self.publish(DLQ, f"{delivery.stream} {delivery.id} {reason}".encode() + b"\n" + delivery.data)

    def subscribe(self, group: str, consumer: str, streams: list[str]) -> MemorySubscription:
        with self._lock:
            g = self._groups.setdefault(group, _Group())
        return MemorySubscription(self, g, consumer, list(streams))

    def entries(self, stream: str) -> list[bytes]:
        with self._lock:
            return [d for _, d in self._streams.get(stream, ())]

    def close(self) -> None:
        pass


class MemorySubscription:
    def __init__(self, bus: MemoryTransport, group: _Group, consumer: str, streams: list[str]) -> None:
        self.bus = bus
        self.group = group
        self.consumer = consumer
        self.streams = streams
        self._replay_own = True  # the first read re-delivers what this consumer left pending

    def read(self, count: int, block_ms: int) -> list[Delivery]:
        deadline = time.monotonic() + block_ms / 1000
        with self.bus._cond:
            while True:
                out = self._take(count)
                left = deadline - time.monotonic()
                if out or left <= 0:
                    return out
                self.bus._cond.wait(left)

    def _take(self, count: int) -> list[Delivery]:
        g = self.group
        out: list[Delivery] = []
        if self._replay_own:
            self._replay_own = False
            for (s, n), (c, _, data) in sorted(g.pending.items()):
                if c == self.consumer and len(out) < count:
                    out.append(Delivery(s, str(n), data))
            if out:
                return out
        now = time.monotonic()
        for s in self.streams:
            q = self.bus._streams.get(s)
            if not q:
                continue
            pos = g.pos.get(s, 1)
            for n, data in q:
                if n < pos:
                    continue
                if len(out) >= count:
                    break
                out.append(Delivery(s, str(n), data))
                g.pending[(s, n)] = (self.consumer, now, data)
                pos = n + 1
            g.pos[s] = pos
        return out

    def rewind(self) -> None:
        self._replay_own = True

    def ack(self, deliveries: list[Delivery]) -> None:
        with self.bus._lock:
            for d in deliveries:
                self.group.pending.pop((d.stream, int(d.id)), None)

    def claim(self, min_idle_ms: int, count: int) -> list[Delivery]:
        now = time.monotonic()
        out: list[Delivery] = []
        with self.bus._lock:
            for (s, n), (c, since, data) in sorted(self.group.pending.items()):
                if c != self.consumer and now - since >= min_idle_ms / 1000 and len(out) < count:
                    self.group.pending[(s, n)] = (self.consumer, now, data)
                    out.append(Delivery(s, str(n), data))
        return out

    def pending(self) -> int:
        with self.bus._lock:
            return len(self.group.pending)

    def lag(self) -> int:
        with self.bus._lock:
            total = 0
            for s in self.streams:
                q = self.bus._streams.get(s)
                if q:
                    total += sum(1 for n, _ in q if n >= self.group.pos.get(s, 1))
            return total
