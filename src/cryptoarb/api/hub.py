"""The live stream's fan-out: ``publish(kind, payload)`` from anywhere, bounded queues per client.

Who publishes: the engine (through :class:`cryptoarb.api.link.EngineLink`, off its hot path), or
in a distributed deployment whatever reads the bus in the ``arb api`` role. Either calls::

    hub.publish("trade", payload)      # any thread; O(1); never blocks, never raises

``payload`` is a JSON-able mapping, or an object a converter is registered for under ``kind``
(:mod:`cryptoarb.api.payloads`: opportunities, trades, audit events), converted later on the API's
own thread. The hub's task (:meth:`run`, on the API's event loop) drains the inbox, encodes each
message once as ``{"kind", "ts", "data"}`` (``ts``: publish time, ns since the epoch) and puts it
on every subscribed client's queue. A client whose queue is full is *dropped* (its connection
closed with code 1008): a slow browser never slows anyone else, and the publisher never waits.
The inbox itself is bounded too; if the API's loop falls that far behind, the oldest messages
are lost and counted (``dropped_inbox``).

The hub also remembers the last message per (kind, key) for kinds that describe state
(``book`` per group, ``venue`` per venue, ``risk``, ``pnl``), sent to each new client first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

#: kinds a client gets when it names none; publishing another kind is allowed (future publishers)
KINDS = ("opportunity", "trade", "book", "breaker", "venue", "risk", "pnl")
#: kinds a client may name: also every order state change and every fill, which the bus feeds in
#: the distributed mode (``arb api --bus``); only on request (a dashboard needs none of them)
ALL_KINDS = (*KINDS, "order", "fill")
#: state kinds: the latest message per key is kept and replayed to new clients
STATE_KEYS: dict[str, str] = {"book": "group", "venue": "venue", "risk": "", "pnl": ""}

Converter = Callable[[Any], Mapping[str, Any]]


class TooManyClients(Exception):
    pass


def _default(o: Any) -> Any:
    from decimal import Decimal
    from enum import Enum

    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, Enum):
        return o.value
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    raise TypeError(f"not JSON-able: {type(o).__name__}")


def dumps(obj: Any) -> str:
    """Strict JSON (a non-finite float is an error upstream, never a ``NaN`` token)."""
    return orjson.dumps(obj, default=_default).decode()


@dataclass(eq=False)
class Client:
    """One stream subscriber: its bounded queue and what it wants."""

    kinds: frozenset[str]
    queue: asyncio.Queue[tuple[int, str]]  # (publish time ns, encoded message)
    dropped: bool = False
    sent: int = 0
    name: str = ""


@dataclass
class HubStats:
    published: int = 0
    delivered: int = 0
    dropped_clients: int = 0
    dropped_inbox: int = 0
    bad_payloads: int = 0
    clients: int = 0
    peak_clients: int = 0
    last_error: str = ""
    by_kind: dict[str, int] = field(default_factory=dict)


class StreamHub:
    def __init__(self, max_clients: int = 200, queue_size: int = 1_000, inbox_size: int = 100_000) -> None:
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.stats = HubStats()
        self.converters: dict[str, Converter] = {}
        self._inbox: deque[tuple[str, Any, int]] = deque()
        self._inbox_size = inbox_size
        self._clients: set[Client] = set()
        self._latest: dict[tuple[str, str], tuple[int, str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._wake_pending = False

    # -- publishing (any thread) ------------------------------------------------------------------
    def publish(self, kind: str, payload: Any) -> None:
        """Queue ``payload`` for every client subscribed to ``kind``. Never blocks or raises."""
        inbox = self._inbox
        if len(inbox) >= self._inbox_size:
            inbox.popleft()
            self.stats.dropped_inbox += 1
        inbox.append((kind, payload, time.time_ns()))
        if not self._wake_pending and self._loop is not None:
            self._wake_pending = True
            loop, wake = self._loop, self._wake
            if wake is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closing: nothing will be delivered
                    loop.call_soon_threadsafe(wake.set)

    def register(self, kind: str, converter: Converter) -> None:
        """How to turn a ``kind`` payload that is not a mapping into one (called on the API's thread)."""
        self.converters[kind] = converter

    # -- subscribing (the API's loop) -------------------------------------------------------------
    def subscribe(self, kinds: Iterable[str] = KINDS, name: str = "") -> Client:
        if len(self._clients) >= self.max_clients:
            raise TooManyClients(f"too many stream clients (at most {self.max_clients}); try again later")
        c = Client(frozenset(kinds), asyncio.Queue(self.queue_size), name=name)
        for (kind, _key), (ts, msg) in self._latest.items():
            if kind in c.kinds:
                c.queue.put_nowait((ts, msg))
        self._clients.add(c)
        self.stats.clients = len(self._clients)
        self.stats.peak_clients = max(self.stats.peak_clients, self.stats.clients)
        return c

    def unsubscribe(self, c: Client) -> None:
        self._clients.discard(c)
        self.stats.clients = len(self._clients)

    def backlog(self) -> int:
        """Messages published and not yet handed to the clients' queues."""
        return len(self._inbox)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def latest(self, kind: str) -> dict[str, Any]:
        """The last ``data`` per key of a state kind (``book`` per group, ...), decoded."""
        return {key: orjson.loads(msg)["data"] for (k, key), (_ts, msg) in list(self._latest.items()) if k == kind}

    # -- the fan-out task ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a :meth:`run` task delivers (one at a time: the first app lifespan's)."""
        return self._loop is not None and not self._loop.is_closed()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver published messages until cancelled (or ``stop`` is set). A second call while
        one runs (a second lifespan of the same app, in tests) returns at once."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            while stop is None or not stop.is_set():
                self._wake_pending = False
                self.drain()
                if self._inbox:
                    await asyncio.sleep(0)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=0.5)
                self._wake.clear()
        finally:
            self._loop = None
            self._wake = None

    def drain(self, budget: int = 5_000) -> int:
        """Fan out up to ``budget`` queued messages now (the API's loop); how many."""
        inbox = self._inbox
        n = 0
        while inbox and n < budget:
            kind, payload, ts = inbox.popleft()
            n += 1
            try:
                data = payload if isinstance(payload, Mapping) else self.converters[kind](payload)
                msg = dumps({"kind": kind, "ts": ts, "data": data})
            except Exception as e:  # a publisher's bad payload must not stop the stream
                self.stats.bad_payloads += 1
                self.stats.last_error = f"{kind}: {type(e).__name__}: {e}"[:300]
                continue
            self.stats.published += 1
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
            key_field = STATE_KEYS.get(kind)
            if key_field is not None:
                self._latest[(kind, str(data.get(key_field, "")) if key_field else "")] = (ts, msg)
            for c in self._clients:
                if c.dropped or kind not in c.kinds:
                    continue
                try:
                    c.queue.put_nowait((ts, msg))
                    self.stats.delivered += 1
                except asyncio.QueueFull:
                    c.dropped = True
                    self.stats.dropped_clients += 1
                    with contextlib.suppress(asyncio.QueueEmpty):  # room for the reader to notice
                        c.queue.get_nowait()
        return n
