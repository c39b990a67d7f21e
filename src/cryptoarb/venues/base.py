"""What every streaming venue handler shares: per-book sync state, counters, callbacks.

A handler turns raw bytes into book changes. It calls ``on_book(book, local_ns)`` only for a
VALID book that just changed, so an invalid book can never reach a detector; it reports
state changes through ``on_state`` and (optionally) trades/quotes through ``on_event``. When it needs a fresh
snapshot it calls ``request_snapshot(instrument)``: live feeds fetch one over REST, replay
waits for the next snapshot in the capture.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptoarb.core.book import EMPTY, INVALID, SYNCING, VALID, Level, OrderBook
from cryptoarb.core.events import BookStateChange
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from cryptoarb.venues.faults import Faults, RejectCallback
from cryptoarb.venues.sync import (
    BAD,
    DEPTH,
    OTHER,
    QUOTE,
    SNAPSHOT,
    TRADE,
    BookSync,
    MessageError,
    UnroutableMessage,
    guarded,
)

# kinds, errors and BookSync live in .sync; handlers and callers import them from here
__all__ = [
    "BAD",
    "DEPTH",
    "OTHER",
    "QUOTE",
    "SNAPSHOT",
    "TRADE",
    "BookSync",
    "Handler",
    "MessageError",
    "ResubscribingHandler",
    "UnroutableMessage",
]

BookCallback = Callable[[OrderBook, int], None]
EventCallback = Callable[[Any], None]
SnapshotRequest = Callable[[Instrument], None]


class Handler(Faults):
    """Base class of every streaming venue handler: the contract the engine and feeds rely on.

    A subclass is one module per exchange (``venues/<exchange>.py``). It must:

    - decode raw frames in ``on_message`` (bytes in, ``DEPTH``/``SNAPSHOT``/``QUOTE``/``TRADE``/
      ``OTHER`` out; ``MessageError`` for a frame it cannot understand, leaving books untouched);
    - keep each book exactly right by the venue's sequence/checksum rules, or mark it invalid
      (``_gap``/``_resync``) and keep it away from detectors (``on_book`` only for valid books);
    - for venues whose books start from a REST snapshot (``rest_snapshot = True``), accept the
      venue's native REST body in ``on_snapshot`` and say which ccxt implicit-API call fetches it
      (``snapshot_request``);
    - describe its live connection: ``ws_url``, ``subscribe_messages``, ``ping``, subscription
      limits; replies the venue demands (pongs) go to ``outbox`` for the feed to send.

    The constructor is shared: ``venues``/``refusal`` say which ids a subclass serves, ``_setup``
    makes its own state. So are the steps on a book (``_buffer``, ``_apply_diff``, ``_stamp``,
    ``_loaded``, ``_now_valid``), and the fault-handling steps of its base :class:`Faults`
    (``venues/faults.py``: ``_rejected``, ``_stale``, ``_checksum_ok``, what a bad message does);
    venues with in-stream snapshots re-subscribe through :class:`ResubscribingHandler`.
    """

    venue: str = ""
    #: the ccxt ids this handler serves (checked on construction; empty: any)
    venues: tuple[str, ...] = ()
    #: the error for any other id: ``{venue!r}`` and ``{expected}`` (the ids served) are filled in
    refusal = "not a venue of this handler: {venue!r} (expected one of {expected})"
    #: how many diffs to keep while waiting for a snapshot before giving up on the oldest
    max_buffer = 50_000
    #: public WebSocket endpoint (tests point it at 127.0.0.1)
    ws_url: str = ""
    #: symbols per subscribe message, and per connection (the venue's documented limits)
    max_symbols_per_message: int = 10
    max_symbols_per_connection: int = 100
    #: application-level keep-alive: (interval seconds, payload), None when WS ping frames suffice
    ping: tuple[float, str] | None = None
    #: True when a book starts from a REST snapshot fetched by the feed (through ccxt)
    rest_snapshot: bool = False
    #: levels per side that the venue's book checksum verifies (0: no checksum). Levels deeper
    #: than this rest on the sequence (or, without one, on in-order delivery) alone: reported
    #: per book as ``checked_levels`` in the summary
    checksum_depth: int = 0
    #: True when one frame can carry changes of several books (applied one after the other): a
    #: bad level in one leaves the books after it without their change, so all resync
    frames_span_books: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every handler's entry points are guarded (``_guarded``): one message never escapes
        as anything but a ``MessageError``, and a bad value never stays in a valid book."""
        super().__init_subclass__(**kwargs)
        for name in ("on_message", "on_snapshot"):
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "_guarded", False):
                setattr(cls, name, guarded(fn))

    def __init__(
        self,
        venue: str,
        catalog: Catalog,
        on_book: BookCallback,
        on_event: EventCallback | None = None,
        request_snapshot: SnapshotRequest | None = None,
        on_state: EventCallback | None = None,
        discover: bool = False,
    ) -> None:
        if self.venues and venue not in self.venues:
            raise ValueError(self.refusal.format(venue=venue, expected=", ".join(self.venues)))
        self.venue = venue
        self.catalog = catalog
        self.on_book = on_book
        self.on_event = on_event  # trades and quotes; None saves their allocation
        #: subscribe trades/quotes even with no ``on_event`` (``arb record``: a capture keeps
        #: every stream of its markets). Without either, only book channels are subscribed:
        #: on Binance the trade and bookTicker streams were 93.5 % of the frames (issue #15)
        self.all_streams = False
        self.on_state = on_state  # BookStateChange: always worth knowing
        self.request_snapshot = request_snapshot
        #: with ``discover``, markets missing from the catalog get a provisional instrument
        #: (replay of third-party captures); otherwise an unknown market is an error
        self.discover = discover
        self.on_new_book: BookCallback | None = None  # told once per book, when first seen
        self.syncs: dict[str, BookSync] = {}  # by ccxt symbol
        self.outbox: list[str] = []
        #: told of every subscription the venue refused (the feed reports or retries it)
        self.on_reject: RejectCallback | None = None
        self.rejections = 0
        #: set by a handler when the venue asks us to reconnect (the feed does it)
        self.reconnect_requested = False
        self.bad_messages = 0
        #: messages naming a market that is unknown or cannot be named (skipped)
        self.unroutable = 0
        #: books invalidated for an impossible level or a crossed book
        self.bad_books = 0
        #: malformed messages that raised inside the handler (every book resynced)
        self.errors = 0
        self.unknown_streams = 0
        self.checksums_ok = 0
        self.checksum_failures = 0
        self._setup()

    def _setup(self) -> None:
        """A subclass's own state, made at the end of ``__init__`` (its venue already checked).

        Whatever the venue keeps per connection (channel ids, sequence numbers, acknowledged
        flags, tokens) belongs here: :meth:`for_connection` makes it anew for each connection."""

    @property
    def wants_events(self) -> bool:
        """Whether :meth:`subscribe_messages` asks for trades/quotes besides the books."""
        return self.on_event is not None or self.all_streams

    def for_connection(self) -> Handler:
        """A sibling handler for another connection of this venue.

        Venues keep channel tables, sequence numbers and flags per connection, and what we send
        (resubscriptions, pongs) must go back on the connection it is about. So each connection
        has its own handler: same books (``syncs``: each market is streamed by one connection),
        catalog, callbacks and settings; its own ``outbox``, counters and ``_setup`` state."""
        twin = copy.copy(self)
        twin.outbox = []
        twin.reconnect_requested = False
        twin.bad_messages = twin.unknown_streams = twin.checksums_ok = twin.checksum_failures = 0
        twin._setup()
        return twin

    # -- to implement ------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        """Handle one raw frame; returns its kind (DEPTH, QUOTE, ...). Raises MessageError."""
        raise NotImplementedError

    def on_snapshot(self, inst: Instrument, raw: bytes, local_ns: int) -> None:
        """A native REST order-book body for ``inst`` (REST-snapshot venues only)."""
        raise MessageError(f"{self.venue} takes its snapshots from the stream, not REST")

    def snapshot_request(self, inst: Instrument) -> tuple[str, dict[str, Any]]:
        """The ccxt implicit-API method and params returning the native REST book of ``inst``."""
        raise NotImplementedError(f"{self.venue} has no REST snapshot")

    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        """What to send after connecting to stream the books (and trades) of ``insts``."""
        raise NotImplementedError

    def coalesce(self, outbox: list[str]) -> list[str]:
        """The messages to send for ``outbox``, merged where the venue takes several markets
        per message (fewer messages under its rate limit); as they are by default."""
        return outbox

    def connect_request(self) -> tuple[str, dict[str, Any]] | None:
        """A ccxt implicit-API call to make before each connection (e.g. KuCoin's token), whose
        JSON body goes to :meth:`on_connect_response`; None when the venue needs none."""
        return None

    def on_connect_response(self, body: bytes) -> None:
        raise NotImplementedError

    @classmethod
    def check_instruments(cls, insts: list[Instrument]) -> None:
        """Refuse (``ValueError`` with the reason) a set of instruments one handler cannot serve
        together in a live run; checked before anything connects."""

    def url_for(self, inst: Instrument) -> str:
        """The endpoint streaming ``inst`` (venues with one URL per market category override)."""
        return self.ws_url

    def serve(self, insts: list[Instrument]) -> None:
        """The markets of this handler's connection (all from one endpoint, ``url_for``), told by
        the live feed before it connects. A handler whose routing depends on the endpoint sets
        it here (Bybit: one market category per endpoint, with identical topic names)."""

    def unify(self, native: str) -> str:
        """The ccxt unified symbol of a venue market id (used with ``discover``)."""
        raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")

    def native_of_rest_url(self, url: str) -> str:
        """The market id a REST order-book request was for (replay of recorded REST traffic)."""
        parts = urlparse(url)
        query = parse_qs(parts.query)
        for key in ("symbol", "currency_pair", "instId", "pair", "product_id", "market"):
            if key in query:
                return query[key][0]
        return parts.path.rstrip("/").rsplit("/", 1)[-1]

    # -- shared ------------------------------------------------------------------------
    def instrument_for(self, native: str) -> Instrument:
        """Catalog lookup by the venue's market id; provisional instrument with ``discover``."""
        inst = self.catalog.find_native(self.venue, native)
        if inst is not None:
            return inst
        if not self.discover:
            self.catalog.by_native(self.venue, native)  # raises with the list of known markets
        return self.catalog.provisional(self.venue, self.unify(native), native)

    def sync_for(self, inst: Instrument) -> BookSync:
        sync = self.syncs.get(inst.symbol)
        if sync is None:
            sync = self.syncs[inst.symbol] = BookSync(inst)
            sync.book.set_state(SYNCING)
            if self.on_new_book is not None:
                self.on_new_book(sync.book, 0)
        return sync

    def on_connect(self, insts: list[Instrument], local_ns: int) -> None:
        """A (re)connection: every book starts over from a fresh snapshot."""
        for inst in insts:
            sync = self.sync_for(inst)
            if sync.book.state == VALID or sync.buffer:
                self._resync(sync, "reconnected", local_ns)
            elif self.rest_snapshot and self.request_snapshot is not None:
                self.request_snapshot(inst)

    def reset(self, inst: Instrument, local_ns: int, reason: str) -> None:
        """Invalidate a book from outside (stale feed, bad connection) and ask for a snapshot."""
        sync = self.sync_for(inst)
        if sync.book.state in (EMPTY, SYNCING) and not sync.buffer:
            return
        self._resync(sync, reason, local_ns)

    def books(self) -> list[OrderBook]:
        return [s.book for s in self.syncs.values()]

    def _set_state(self, sync: BookSync, state: int, reason: str, local_ns: int) -> None:
        sync.book.set_state(state)
        if self.on_state is not None:
            self.on_state(BookStateChange(sync.book.key, state, reason, local_ns))

    def _gap(self, sync: BookSync, reason: str, pending: Any, local_ns: int) -> None:
        """Mark the book invalid and start a resync; ``pending`` (the diff that exposed the
        gap) is kept, since it may chain onto the next snapshot."""
        sync.gaps += 1
        self._resync(sync, reason, local_ns)
        if pending is not None:
            sync.buffer.append(pending)

    def _resync(self, sync: BookSync, reason: str, local_ns: int) -> None:
        sync.resyncs += 1
        sync.buffer = []
        sync.expect_first = True
        self._set_state(sync, INVALID, reason, local_ns)
        sync.book.set_state(SYNCING)
        if self.request_snapshot is not None:
            self.request_snapshot(sync.instrument)

    # -- the steps every handler takes on a book ---------------------------------------
    def _buffer(self, sync: BookSync, pending: Any) -> None:
        """Keep a diff for the coming snapshot (the oldest goes beyond ``max_buffer``)."""
        buf = sync.buffer
        buf.append(pending)
        if len(buf) > self.max_buffer:
            del buf[0]
            sync.dropped_before_snapshot += 1

    @staticmethod
    def _stamp(sync: BookSync, update_id: int, exchange_ns: int, local_ns: int) -> None:
        """Date a book that was just loaded: its update id, the venue's time and ours."""
        book = sync.book
        sync.last_id = sync.first_id = book.update_id = update_id
        book.exchange_ns = exchange_ns
        book.local_ns = local_ns

    def _apply_diff(self, sync: BookSync, bids: Iterable[Level], asks: Iterable[Level], update_id: int,
                    exchange_ns: int, local_ns: int | None = None) -> None:
        """Apply a diff that follows the book, and count and date it. With ``local_ns`` (a diff
        just received) the book is published when valid; without (a buffered diff joined to a
        snapshot, or one the venue still checks) the caller publishes."""
        book = sync.book
        book.apply(bids, asks)
        sync.diffs_applied += 1
        sync.last_id = book.update_id = update_id
        book.exchange_ns = exchange_ns
        if local_ns is not None:
            book.local_ns = local_ns
            if book.valid:
                self.on_book(book, local_ns)

    def _now_valid(self, sync: BookSync, reason: str, local_ns: int) -> None:
        """A snapshot made the book right: say so (``reason``) and publish it."""
        self._set_state(sync, VALID, reason, local_ns)
        if sync.book.valid:
            self.on_book(sync.book, local_ns)

    def _loaded(self, sync: BookSync, update_id: int, exchange_ns: int, local_ns: int, reason: str) -> None:
        """A snapshot replaced the book: date it, make it valid (``reason``) unless it already
        was, and publish it."""
        self._stamp(sync, update_id, exchange_ns, local_ns)
        if sync.book.state != VALID:
            self._set_state(sync, VALID, reason, local_ns)
        if sync.book.valid:
            self.on_book(sync.book, local_ns)


class ResubscribingHandler(Handler):
    """A venue whose books start from in-stream snapshots, sent on subscription: a book out of
    sync (``_gap``, ``reset``) is re-subscribed (``resubscribe_messages`` queued in ``outbox``)
    and the venue answers with a fresh snapshot. A new connection subscribes everything anew,
    so resubscriptions still queued for the old one are dropped."""

    rest_snapshot = False

    def resubscribe_messages(self, sync: BookSync) -> list[str]:
        """What to send for a fresh snapshot of ``sync``'s book (typically unsubscribe + subscribe)."""
        raise NotImplementedError

    def on_connect(self, insts: list[Instrument], local_ns: int) -> None:
        self.outbox.clear()  # resubscriptions meant for the old connection: all is subscribed anew
        super().on_connect(insts, local_ns)

    def reset(self, inst: Instrument, local_ns: int, reason: str) -> None:
        sync = self.sync_for(inst)
        before = sync.resyncs
        super().reset(inst, local_ns, reason)
        if sync.resyncs != before:
            self.outbox += self.resubscribe_messages(sync)

    def _gap(self, sync: BookSync, reason: str, pending: Any, local_ns: int) -> None:
        super()._gap(sync, reason, None, local_ns)  # nothing chains onto a fresh in-stream snapshot
        self.outbox += self.resubscribe_messages(sync)
