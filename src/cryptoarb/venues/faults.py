"""How a handler meets faults: refused subscriptions, implausible sequences, bad messages.

Split from ``venues/base.py`` (the handler contract); :class:`Faults` is the base of
:class:`~cryptoarb.venues.base.Handler`, so every handler has these steps:

- ``_rejected`` / ``refused``: a subscription the venue refused is never dropped silently: the
  book turns invalid with the reason and the feed is told (``on_reject``);
- ``_stale``: a diff the book claims to hold already is a duplicate only if it starts no later
  than the last applied one; otherwise the last id was implausible and the book resyncs;
- ``_message_error`` (called by the guarded entry points, ``venues/sync.guarded``),
  ``_bad_book``, ``_handler_error``: what one bad message does to the books (that book, or all
  of the handler's, resync) and what the caller sees (a ``MessageError``, or an
  ``UnroutableMessage`` counted and skipped);
- ``_checksum_ok``: a checksum mismatch is a gap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from cryptoarb.core.book import INVALID, VALID, BadBook
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from cryptoarb.venues.sync import MALFORMED, BookSync, MessageError, UnroutableMessage

if TYPE_CHECKING:
    from cryptoarb.venues.base import Handler

#: ``(handler, instrument or None, the venue's market id or "", reason, retry)``: a refused subscription
RejectCallback = Callable[["Handler", Instrument | None, str, str, bool], None]


class Faults:
    """The fault-handling steps of a handler (state and book steps are the handler's own)."""

    venue: str
    catalog: Catalog
    syncs: dict[str, BookSync]
    on_reject: RejectCallback | None
    frames_span_books: bool
    rejections: int
    bad_messages: int
    bad_books: int
    errors: int
    unroutable: int
    checksums_ok: int
    checksum_failures: int

    def _gap(self, sync: BookSync, reason: str, pending: Any, local_ns: int) -> None:
        raise NotImplementedError  # Handler's

    def _set_state(self, sync: BookSync, state: int, reason: str, local_ns: int) -> None:
        raise NotImplementedError  # Handler's

    def _rejected(self, native: str | None, reason: str, retry: bool = False, symbol: str = "") -> None:
        """A subscription the venue refused (parsed from its error or acknowledgement): never
        dropped silently. The market (``native`` id, or ccxt ``symbol``) is looked up; unless a
        retry may still get it, its book turns invalid with the reason; ``on_reject`` reports it
        (the live feed records it as a failure of the run, or subscribes again)."""
        self.rejections += 1
        inst = None
        if symbol:
            inst = next((i for i in self.catalog.all() if i.venue == self.venue and i.symbol == symbol), None)
        elif native:
            inst = self.catalog.find_native(self.venue, native)
        if inst is not None and not retry:
            self.refused(inst, reason)
        if self.on_reject is not None:
            self.on_reject(cast("Handler", self), inst, native or symbol or "", reason, retry)

    def refused(self, inst: Instrument, reason: str) -> None:
        """The venue will not stream ``inst``: its book is invalid (with the reason) for good."""
        sync = self.syncs.get(inst.symbol)
        if sync is not None:
            sync.buffer = []
            self._set_state(sync, INVALID, f"subscription rejected: {reason}", 0)

    def _stale(self, sync: BookSync, first: int, pending: Any, local_ns: int) -> None:
        """A diff whose updates the book claims to hold already (its last id <= the book's).
        A true duplicate starts no later than the last applied diff did; one that starts
        after it means the last id applied was implausible (a corrupt, too large id would
        otherwise freeze the book, every later diff skipped as old): a gap, and ``pending``
        (this diff, when it may chain onto the next snapshot) is kept."""
        if first > sync.first_id:
            self._gap(sync, f"update {first} after the book's last update {sync.last_id}: implausible sequence",
                      pending, local_ns)
        else:
            sync.stale_skipped += 1

    def _message_error(self, e: Exception, local_ns: int) -> Exception:
        """What a guarded entry point raises for ``e`` (see ``_guarded``), after resyncing the
        books ``e`` says cannot be trusted; anything but a message's fault is raised as it is."""
        if isinstance(e, MessageError):
            return e
        if isinstance(e, BadBook):
            self._bad_book(e, local_ns)
            return MessageError(str(e))
        if isinstance(e, UnknownInstrument):
            self.unroutable += 1
            return UnroutableMessage(f"unroutable {self.venue} message: {e.args[0] if e.args else e}")
        if isinstance(e, MALFORMED):
            self._handler_error(local_ns, f"{type(e).__name__}: {e}")
            return MessageError(f"malformed {self.venue} message ({type(e).__name__}: {e})")
        return e

    def _bad_book(self, e: BadBook, local_ns: int) -> None:
        """An impossible level or a crossed book: the message is bad and the book resyncs (with
        ``frames_span_books``, every book: the ones after it in the frame missed their change)."""
        self.bad_messages += 1
        self.bad_books += 1
        sync = self.syncs.get(e.book.instrument.symbol)
        if sync is not None and sync.book is e.book and not self.frames_span_books:
            targets = [sync]
        else:
            targets = [s for s in self.syncs.values() if s is sync or s.book.state == VALID or s.buffer]
        for s in targets:
            self._gap(s, str(e), None, local_ns)

    def _handler_error(self, local_ns: int, why: str) -> None:
        """A message broke the handler midway: any book may hold part of it, all resync."""
        self.errors += 1
        self.bad_messages += 1
        for sync in self.syncs.values():
            if sync.book.state == VALID or sync.buffer:
                self._gap(sync, f"malformed message: {why}", None, local_ns)

    def _checksum_ok(self, sync: BookSync, got: int, expected: int, local_ns: int) -> bool:
        """Count a checksum comparison; a mismatch means the book is wrong: a gap."""
        if got == expected:
            self.checksums_ok += 1
            return True
        self.checksum_failures += 1
        self._gap(sync, f"checksum {got} != {expected}", None, local_ns)
        return False
