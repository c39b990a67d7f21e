"""The pieces of a venue handler that are not the handler: message kinds, message errors, the
guard every handler's entry points get, and one book's synchronisation state (``BookSync``).
:mod:`.base` re-exports them; handlers import them from there."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cryptoarb.core.book import OrderBook
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues.catalog import UnknownInstrument

if TYPE_CHECKING:
    from cryptoarb.venues.base import Handler

# Message kinds returned by ``on_message`` so callers can attribute latency.
OTHER = 0
DEPTH = 1
SNAPSHOT = 2
QUOTE = 3
TRADE = 4
BAD = 5


class MessageError(ValueError):
    """A message that cannot be understood. Counted and skipped by the feed, never applied."""


class UnroutableMessage(MessageError, UnknownInstrument):
    """A message for a market that is unknown or cannot be named: counted and skipped (a
    ``MessageError``), and still the ``UnknownInstrument`` it was for callers asking by name."""

    __str__ = MessageError.__str__  # the plain message, not KeyError's quoted repr


_F = TypeVar("_F", bound=Callable[..., Any])

#: what a malformed message can make decoding code raise (beyond msgspec's own errors)
MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, ZeroDivisionError)


def guarded(fn: _F) -> _F:
    """Wrap a handler's ``on_message(raw, local_ns)`` or ``on_snapshot(inst, raw, local_ns)`` so
    that whatever one message holds, the caller sees at worst a ``MessageError``:

    - ``BadBook`` (an impossible level, a crossed book): that book is invalidated and resynced;
    - an unknown or unnameable market: ``UnroutableMessage``, counted in ``unroutable``;
    - any other error of a malformed message: counted in ``errors``; the books the handler
      was touching cannot be trusted, so every book of the handler resyncs.

    A ``try`` costs nothing until something raises: the hot path pays one plain call (no
    ``*args``: the two signatures get their own wrapper)."""
    if fn.__name__ == "on_message":

        @functools.wraps(fn)
        def on_message(self: Handler, raw: bytes, local_ns: int) -> int:
            try:
                return fn(self, raw, local_ns)  # type: ignore[no-any-return]
            except Exception as e:  # sorted out in _message_error, off the hot path
                raise self._message_error(e, local_ns) from None

        wrapped: Any = on_message
    else:

        @functools.wraps(fn)
        def on_snapshot(self: Handler, inst: Instrument, raw: bytes, local_ns: int) -> None:
            try:
                fn(self, inst, raw, local_ns)
            except Exception as e:
                raise self._message_error(e, local_ns) from None

        wrapped = on_snapshot
    wrapped._guarded = True
    return wrapped  # type: ignore[no-any-return]


class BookSync:
    """One book plus the bookkeeping of its snapshot/diff synchronisation."""

    __slots__ = (
        "book",
        "buffer",
        "diffs_applied",
        "dropped_before_snapshot",
        "expect_first",
        "first_id",
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
        #: the first update id of the last applied diff (or the snapshot's id): see ``_stale``
        self.first_id = 0
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
