"""One venue's live market data: connections, subscriptions, snapshots, staleness, reconnects.

Every frame goes through ``Engine.on_message`` (the hot path, exactly as in replay) with its
local receive time. Around it, this module keeps the guarantees a live book needs:

- a (re)connection resyncs every book of that connection (``Handler.on_connect``);
- a connection silent for ``stale_after`` seconds is stale: its books are invalidated and it
  reconnects (so no detector ever uses a frozen book); the default is the venue's
  (``venues/connection.py``: above its heartbeat cadence), as is the keep-alive: WebSocket
  ping frames only where the venue has no keep-alive of its own (``Handler.ping``);
- every message we send (subscriptions, pings, pongs, resubscriptions) goes through a
  per-connection sender paced to the venue's documented limit (per connection, or per IP);
- a lost connection invalidates its books at once, then reconnects with jittered exponential
  backoff;
- REST snapshots asked by the handler are fetched through ccxt (deduplicated, retried);
- replies the venue demands (pongs, resubscriptions) are sent from ``handler.outbox``;
- each connection has its own handler (``Handler.for_connection``): what a venue keeps per
  connection (channel ids, sequence numbers, flags) is per connection here too, and a reply is
  sent on the connection it is about. The books are shared: each market is on one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from cryptoarb.core.instruments import Instrument
from cryptoarb.engine.batch import BurstBatch
from cryptoarb.engine.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.feed_types import FeedError as FeedError  # re-exported: callers import them from here
from cryptoarb.live.feed_types import FeedStats as FeedStats
from cryptoarb.live.feed_types import Sink as Sink
from cryptoarb.live.feed_types import SnapshotSource as SnapshotSource
from cryptoarb.live.pacing import Pacer
from cryptoarb.live.rest import CcxtRest, RestError
from cryptoarb.live.transport import BadURL, TransportClosed, TransportError, WsConnection, open_ws
from cryptoarb.venues.base import Handler, MessageError
from cryptoarb.venues.connection import PACING_MARGIN, spec_of

log = logging.getLogger(__name__)


#: ``ws_ping_interval`` default: the venue's (``venues/connection.py``)
VENUE_DEFAULT = -1.0
#: the WebSocket client when none is named (``[live] transport``; ``live/transport.py``)
DEFAULT_TRANSPORT = "picows"


class VenueFeed:
    """Streams ``insts`` of one venue into the engine until ``stop`` is set."""

    def __init__(
        self,
        engine: Engine,
        venue: str,
        insts: list[Instrument],
        *,
        url: str | Mapping[str, str] | None = None,
        rest: SnapshotSource | None = None,
        stale_after: float | None = None,
        backoff: Backoff | None = None,
        sink: Sink | None = None,
        open_timeout: float = 10.0,
        ws_ping_interval: float | None = VENUE_DEFAULT,
        snapshot_retries: int = 5,
        transport: str | None = None,
        batch: bool = False,
    ) -> None:
        self.engine = engine
        self.venue = venue
        self.insts = insts
        self.handler = engine.handler(venue)
        self.handler.request_snapshot = self._request_snapshot
        self.handler.on_reject = self._on_reject
        # an override of every connection's URL, or of each endpoint's (venue endpoint -> URL:
        # a local venue serving several endpoints); None: the handler's endpoint(s)
        self.url = url
        self.rest: SnapshotSource | None = rest
        if rest is None and self.handler.rest_snapshot:
            self.rest = CcxtRest(venue)
        self.spec = spec_of(venue)
        self.stale_after = self.spec.stale_after if stale_after is None else stale_after
        self.backoff = backoff or Backoff()
        self.sink = sink
        if sink is not None:  # a recording keeps every stream of its markets, not only the books
            self.handler.all_streams = True
        self.open_timeout = open_timeout
        self.transport = transport or DEFAULT_TRANSPORT
        #: a burst (what a connection has already received) is one batch: books first, then
        #: detection once per touched book, peers first (engine/batch.py); the engine's batch
        #: is shared by all its feeds
        self._batch = BurstBatch.of(engine) if batch else None
        self.ws_ping_interval = self.spec.ws_ping if ws_ping_interval == VENUE_DEFAULT else ws_ping_interval
        #: the venue's send window, stretched by a margin for jitter on the way
        self.send_window = self.spec.send_window * (1.0 + PACING_MARGIN)
        self._ip_pacer = Pacer(self.spec.send_limit, self.send_window) if self.spec.per_ip else None
        self.snapshot_retries = snapshot_retries
        self.stats = FeedStats()
        self._pending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ws: WsConnection | None = None
        #: the handler of each connection (the engine's for the first), and of each market
        self.handlers: list[Handler] = []
        self._owner: dict[str, Handler] = {}
        self._queues: dict[int, asyncio.Queue[str]] = {}  # id(handler) -> what its connection sends
        self._retries: dict[str, int] = {}
        #: subscriptions a venue refused with a reason worth retrying are sent again this many
        #: times, after ``retry_delay`` seconds doubling each time
        self.subscribe_retries = 3
        self.retry_delay = 0.5
        self._conn_insts: dict[int, list[Instrument]] = {}
        #: test hook: awaited after each frame (a slow consumer is simulated with it)
        self.after_frame: Callable[[], Awaitable[None]] | None = None

    # -- running -----------------------------------------------------------------------
    def connections(self) -> list[tuple[str, list[Instrument]]]:
        """The connections to open: markets grouped by endpoint (never two endpoints on one
        connection, even with a URL override), split by the venue's symbols-per-connection limit."""
        per = self.handler.max_symbols_per_connection
        by_url: dict[str, list[Instrument]] = {}
        for inst in self.insts:
            by_url.setdefault(self.handler.url_for(inst), []).append(inst)
        return [(self._target(url), insts[i : i + per]) for url, insts in by_url.items()
                for i in range(0, len(insts), per)]

    def _target(self, endpoint: str) -> str:
        if self.url is None:
            return endpoint
        if isinstance(self.url, str):
            return self.url
        try:
            return self.url[endpoint]
        except KeyError:
            raise FeedError(f"{self.venue}: no URL given for the endpoint {endpoint}") from None

    async def run(self, stop: asyncio.Event) -> None:
        conns = self.connections()
        self.handlers = [self.handler if n == 0 else self.handler.for_connection() for n in range(len(conns))]
        for h, (_, chunk) in zip(self.handlers, conns, strict=True):
            h.serve(chunk)
            if self._batch is not None:
                h.on_book = self._batch.on_book  # noted during a burst, straight through otherwise
        self._owner = {inst.symbol: h for h, (_, chunk) in zip(self.handlers, conns, strict=True) for inst in chunk}
        try:
            await asyncio.gather(*(self._connection(url, chunk, h, stop)
                                   for h, (url, chunk) in zip(self.handlers, conns, strict=True)))
        finally:
            for t in list(self._tasks):
                t.cancel()
            close = getattr(self.rest, "close", None)
            if close is not None:
                await close()

    async def _connection(self, url: str, insts: list[Instrument], handler: Handler, stop: asyncio.Event) -> None:
        while not stop.is_set():
            reason = ""
            try:
                pre = handler.connect_request()
                if pre is not None:  # e.g. a fresh KuCoin token (and endpoint) per connection
                    rest = self.rest if self.rest is not None else CcxtRest(self.venue)
                    handler.on_connect_response(await rest.native(*pre))
                    url = self._target(handler.ws_url) if self.url is not None else handler.ws_url
                ws = await open_ws(self.transport, url, open_timeout=self.open_timeout,
                                   ping_interval=self.ws_ping_interval)
                self._ws = ws
                try:
                    self.stats.connects += 1
                    self.backoff.reset()
                    handler.on_connect(insts, time.time_ns())
                    pacer = self._ip_pacer or Pacer(self.spec.send_limit, self.send_window)
                    queue: asyncio.Queue[str] = asyncio.Queue()
                    for msg in handler.subscribe_messages(insts):
                        queue.put_nowait(msg)
                    sender = asyncio.ensure_future(self._sender(ws, queue, pacer))
                    self._queues[id(handler)] = queue
                    self._conn_insts[id(handler)] = insts
                    try:
                        reason = await self._pump(ws, handler, queue, stop)
                    finally:
                        sender.cancel()
                        self._queues.pop(id(handler), None)
                finally:
                    await ws.close()
            except BadURL as e:
                raise FeedError(f"{self.venue}: bad WebSocket URL {url!r}: {e}") from None
            except (TimeoutError, OSError, TransportError, TransportClosed, RestError) as e:
                reason = f"connection lost: {type(e).__name__}: {e}"
            finally:
                self._ws = None
            if stop.is_set():
                break
            self.stats.disconnects += 1
            self.stats.last_error = reason
            now = time.time_ns()
            for inst in insts:
                handler.reset(inst, now, reason)
            self._log_once(reason.split(":")[0], f"{self.venue}: {reason}; reconnecting")
            delay = self.backoff.next()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _sender(self, ws: WsConnection, queue: asyncio.Queue[str], pacer: Pacer) -> None:
        """Send what is queued for one connection, in order, within the venue's rate limit."""
        with contextlib.suppress(TransportClosed):
            while True:
                msg = await queue.get()
                before = pacer.waited
                await pacer.acquire()
                self.stats.paced += pacer.waited != before
                await ws.send(msg)

    async def _pump(self, ws: WsConnection, handler: Handler, queue: asyncio.Queue[str], stop: asyncio.Event) -> str:
        """Receive until stop, staleness or disconnection; returns why it ended.

        Staleness and keep-alive pings are a watchdog task beside the receive loop, not a
        timeout around each receive: ``asyncio.timeout()`` per frame was 16-27 % of the CPU
        at saturation (issue #15). The loop only stamps when it last received; the watchdog
        wakes at the next deadline (ping due, or ``stale_after`` after that stamp), and closes
        a silent connection, which ends the receive."""

        on_message = self.engine.on_message
        sink = self.sink
        stats = self.stats
        seen = [time.monotonic()]  # when this connection last received (the watchdog reads it)
        stale = [False]

        async def close_on_stop() -> None:
            await stop.wait()
            await ws.close()

        closer = asyncio.ensure_future(close_on_stop())
        watchdog = asyncio.ensure_future(self._watchdog(ws, handler, queue, seen, stale))
        monotonic = time.monotonic
        time_ns = time.time_ns
        # a test's slow consumer awaits between frames: then no batch (it must not stay open
        # across an await, other connections share it)
        batch = self._batch if self.after_frame is None else None
        recv_nowait = ws.recv_nowait
        try:
            while True:
                try:
                    raw: bytes | None = await ws.recv()
                except TransportClosed:
                    if stale[0]:
                        return f"stale feed: no message for {self.stale_after:g} s"
                    if stop.is_set():
                        return "stopped"
                    raise
                # what has already arrived is handled without waiting again: with a batch,
                # detection runs once for the whole burst (engine/batch.py)
                if batch is not None:
                    batch.begin()
                try:
                    while raw is not None:
                        local_ns = time_ns()
                        seen[0] = monotonic()
                        stats.messages += 1
                        stats.last_message_ns = local_ns
                        if sink is not None:
                            sink.frame(self.venue, local_ns, raw)
                        try:
                            on_message(handler, raw, local_ns)
                        except MessageError as e:
                            stats.bad_messages += 1
                            self._log_once(str(e).split(":")[0], f"{self.venue}: bad message: {e}")
                        except Exception as e:
                            stats.bad_messages += 1
                            self._log_once(type(e).__name__,
                                           f"{self.venue}: frame broke the handler: {type(e).__name__}: {e}")
                            # whatever it half-did, the books of this connection cannot be trusted
                            for inst in self._conn_insts.get(id(handler), ()):
                                handler.reset(inst, local_ns, f"handler error: {type(e).__name__}")
                        if batch is not None and batch.current:
                            batch.current.clear()  # a message the engine does not time changed a book
                        if handler.outbox:
                            out = handler.coalesce(handler.outbox)
                            handler.outbox = []
                            for msg in out:
                                queue.put_nowait(msg)
                        if handler.reconnect_requested or self.after_frame is not None:
                            break
                        raw = recv_nowait()
                finally:
                    if batch is not None:
                        batch.end()
                if handler.reconnect_requested:
                    handler.reconnect_requested = False
                    await ws.close()
                    return "the venue asked us to reconnect"
                if self.after_frame is not None:
                    await self.after_frame()
        finally:
            closer.cancel()
            watchdog.cancel()

    async def _watchdog(self, ws: WsConnection, handler: Handler, queue: asyncio.Queue[str],
                        seen: list[float], stale: list[bool]) -> None:
        """One connection's keep-alive and staleness: queues the handler's ping when due, and
        closes the connection (``stale`` set) once it has been silent for ``stale_after``."""
        ping = handler.ping
        now = time.monotonic()
        next_ping = now + ping[0] if ping else float("inf")
        while True:
            now = time.monotonic()
            if ping and now >= next_ping:
                queue.put_nowait(self._ping_payload(handler))
                next_ping = now + ping[0]
            silent = now - seen[0]
            if silent >= self.stale_after:
                # a frame already waiting (the loop was busy, not the venue silent) goes first
                await asyncio.sleep(0)
                if time.monotonic() - seen[0] < self.stale_after:
                    continue
                stale[0] = True
                self.stats.stale += 1
                await ws.close()
                return
            await asyncio.sleep(max(0.0, min(self.stale_after - silent, next_ping - now)))

    @staticmethod
    def _ping_payload(handler: Handler) -> str:
        ping = handler.ping  # read each time: some venues stamp their pings (Gate)
        return ping[1] if ping else ""

    # -- refused subscriptions ---------------------------------------------------------
    def _on_reject(self, handler: Handler, inst: Instrument | None, native: str, reason: str, retry: bool) -> None:
        """A subscription the venue refused: subscribed again later when the reason is
        transient (a few times), else a failure of the run (``stats.failures``, logged)."""
        key = inst.symbol if inst is not None else native or "subscription"
        if retry and self._retries.get(key, 0) < self.subscribe_retries:
            self._retries[key] = n = self._retries.get(key, 0) + 1
            queue = self._queues.get(id(handler))
            if queue is not None:  # the market again, or (none named) the connection's markets
                loop = asyncio.get_running_loop()
                again = [inst] if inst is not None else self._conn_insts.get(id(handler), [])
                for msg in handler.subscribe_messages(again):
                    loop.call_later(self.retry_delay * 2 ** (n - 1), queue.put_nowait, msg)
                self._log_once(f"retry {key}", f"{self.venue} {key}: subscription refused ({reason}); retrying")
                return
        self.stats.failures[key] = reason
        if inst is not None and retry:  # retries exhausted: the book stays out of use
            handler.refused(inst, reason)
        self._log_once(f"rejected {key}", f"{self.venue} {key}: subscription rejected: {reason}")

    # -- snapshots ---------------------------------------------------------------------
    def _request_snapshot(self, inst: Instrument) -> None:
        if self.rest is None or inst.symbol in self._pending:
            return
        self._pending.add(inst.symbol)
        task = asyncio.get_running_loop().create_task(self._fetch(inst))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, inst: Instrument) -> None:
        assert self.rest is not None
        backoff = Backoff(base=0.25, cap=5.0)
        try:
            method, params = self.handler.snapshot_request(inst)
            for attempt in range(self.snapshot_retries):
                try:
                    body = await self.rest.native(method, params)
                except RestError as e:
                    self.stats.snapshot_failures += 1
                    self._log_once("rest", f"{self.venue} {inst.symbol}: snapshot failed: {e}")
                    await asyncio.sleep(backoff.next() if attempt else 0.05)
                    continue
                local_ns = time.time_ns()
                if self.sink is not None:
                    self.sink.rest(self.venue, inst.symbol, local_ns, body)
                self.stats.snapshots += 1
                self._pending.discard(inst.symbol)  # a gap found while applying may ask again
                try:
                    self._owner.get(inst.symbol, self.handler).on_snapshot(inst, body, local_ns)
                except MessageError as e:
                    self.stats.bad_messages += 1
                    self._log_once("snapshot", f"{self.venue} {inst.symbol}: bad snapshot: {e}")
                return
        finally:
            self._pending.discard(inst.symbol)

    def _log_once(self, kind: str, msg: str) -> None:
        """Malformed frames and errors: logged once per kind, counted always."""
        if kind not in self.stats.errors_seen:
            self.stats.errors_seen.add(kind)
            log.warning(msg)
