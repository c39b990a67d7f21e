"""What a ``VenueFeed`` exposes besides itself: its counters, its error, the sources and sinks
it talks to (``live/feed.py`` re-exports them; callers import them from there)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class FeedError(Exception):
    """A feed that cannot run at all (bad URL): not retried."""


class SnapshotSource(Protocol):
    async def native(self, method: str, params: dict[str, Any]) -> bytes: ...


class Sink(Protocol):
    """Where raw traffic is copied (the recorder)."""

    def frame(self, venue: str, local_ns: int, raw: bytes) -> None: ...
    def rest(self, venue: str, symbol: str, local_ns: int, body: bytes) -> None: ...


@dataclass
class FeedStats:
    path: str = "native"
    connects: int = 0
    disconnects: int = 0
    stale: int = 0
    messages: int = 0
    bad_messages: int = 0
    snapshots: int = 0
    snapshot_failures: int = 0
    last_message_ns: int = 0
    last_error: str = ""
    paced: int = 0  # sends that waited for the venue's rate limit
    errors_seen: set[str] = field(default_factory=set)
    #: what could not be streamed and will not be retried (market or subscription -> reason)
    failures: dict[str, str] = field(default_factory=dict)
