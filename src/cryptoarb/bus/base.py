"""The bus interface the roles use; ``memory.py`` and ``redis_bus.py`` implement it.

A *transport* moves opaque bytes: ``publish(stream, data)`` appends to a stream, and a
``Subscription`` (a consumer group member) reads, acknowledges and claims entries other members
left pending. Encoding, identities, dead-lettering and de-duplication live above it
(:mod:`cryptoarb.bus.events`), so the roles never know which transport they run on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

DLQ = "dlq"  # the dead-letter stream: malformed messages, with where they came from


class BusError(Exception):
    """The bus cannot be used (unreachable at start, bad URL): one line for the user."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry handed to a consumer; ``id`` is what ``ack`` takes."""

    stream: str
    id: str
    data: bytes


class Subscription(Protocol):
    def read(self, count: int, block_ms: int) -> list[Delivery]:
        """New entries (and, first, entries this consumer had read but not acknowledged)."""
        ...

    def ack(self, deliveries: list[Delivery]) -> None: ...

    def rewind(self) -> None:
        """The next read starts again with this consumer's unacknowledged entries."""
        ...

    def claim(self, min_idle_ms: int, count: int) -> list[Delivery]:
        """Entries another member read and left unacknowledged for ``min_idle_ms``: a dead
        consumer's work, taken over (XAUTOCLAIM)."""
        ...

    def pending(self) -> int:
        """Entries read by the group and not yet acknowledged (all members)."""
        ...

    def lag(self) -> int:
        """Entries in the streams not yet delivered to the group."""
        ...


class Transport(Protocol):
    def publish(self, stream: str, data: bytes) -> None:
        """Queue ``data`` for ``stream``; never blocks the caller on the network."""
        ...

    def flush(self, timeout: float) -> bool:
        """Wait until everything published so far is on the bus; False on timeout."""
        ...

    def subscribe(self, group: str, consumer: str, streams: list[str]) -> Subscription: ...

    def dead_letter(self, delivery: Delivery, reason: str) -> None: ...

    def backlog(self) -> int:
        """Published here, not yet confirmed by every required group (kept for a republish)."""
        ...

    def close(self) -> None: ...
