"""One venue's live market data: connections, subscriptions, snapshots, staleness, reconnects.

Every frame goes through ``Engine.on_message`` (the hot path, exactly as in replay) with its
local receive time. Around it, this module keeps the guarantees a live book needs:

- a (re)connection resyncs every book of that connection (``Handler.on_connect``);
- a connection silent for ``stale_after`` seconds is stale: its books are invalidated and it
  reconnects (so no detector ever uses a frozen book);
- a lost connection invalidates its books at once, then reconnects with jittered exponential
  backoff;
- REST snapshots asked by the handler are fetched through ccxt (deduplicated, retried);
- replies the venue demands (pongs, resubscriptions) are sent from ``handler.outbox``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptoarb.core.instruments import Instrument
from cryptoarb.engine.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.rest import CcxtRest, RestError
from cryptoarb.venues.base import MessageError

log = logging.getLogger(__name__)


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
    errors_seen: set[str] = field(default_factory=set)


class VenueFeed:
    """Streams ``insts`` of one venue into the engine until ``stop`` is set."""

    def __init__(
        self,
        engine: Engine,
        venue: str,
        insts: list[Instrument],
        *,
        url: str | None = None,
        rest: SnapshotSource | None = None,
        stale_after: float = 10.0,
        backoff: Backoff | None = None,
        sink: Sink | None = None,
        open_timeout: float = 10.0,
        ws_ping_interval: float | None = 20.0,
        snapshot_retries: int = 5,
    ) -> None:
        self.engine = engine
        self.venue = venue
        self.insts = insts
        self.handler = engine.handler(venue)
        self.handler.request_snapshot = self._request_snapshot
        self.url = url  # an override for every connection; None: the handler's endpoint(s)
        self.rest: SnapshotSource | None = rest
        if rest is None and self.handler.rest_snapshot:
            self.rest = CcxtRest(venue)
        self.stale_after = stale_after
        self.backoff = backoff or Backoff()
        self.sink = sink
        self.open_timeout = open_timeout
        self.ws_ping_interval = ws_ping_interval
        self.snapshot_retries = snapshot_retries
        self.stats = FeedStats()
        self._pending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ws: Any = None
        #: test hook: awaited after each frame (a slow consumer is simulated with it)
        self.after_frame: Callable[[], Awaitable[None]] | None = None

    # -- running -----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        per = self.handler.max_symbols_per_connection
        by_url: dict[str, list[Instrument]] = {}
        for inst in self.insts:
            by_url.setdefault(self.url or self.handler.url_for(inst), []).append(inst)
        conns = [(url, insts[i : i + per]) for url, insts in by_url.items() for i in range(0, len(insts), per)]
        try:
            await asyncio.gather(*(self._connection(url, chunk, stop) for url, chunk in conns))
        finally:
            for t in list(self._tasks):
                t.cancel()
            close = getattr(self.rest, "close", None)
            if close is not None:
                await close()

    async def _connection(self, url: str, insts: list[Instrument], stop: asyncio.Event) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

        while not stop.is_set():
            reason = ""
            try:
                pre = self.handler.connect_request()
                if pre is not None:  # e.g. a fresh KuCoin token (and endpoint) per connection
                    rest = self.rest if self.rest is not None else CcxtRest(self.venue)
                    self.handler.on_connect_response(await rest.native(*pre))
                    url = self.url or self.handler.ws_url
                async with connect(
                    url, open_timeout=self.open_timeout, ping_interval=self.ws_ping_interval,
                    max_size=2**25, compression="deflate",
                ) as ws:
                    self._ws = ws
                    self.stats.connects += 1
                    self.backoff.reset()
                    self.handler.on_connect(insts, time.time_ns())
                    for msg in self.handler.subscribe_messages(insts):
                        await ws.send(msg)
                    reason = await self._pump(ws, insts, stop)
            except InvalidURI as e:
                raise FeedError(f"{self.venue}: bad WebSocket URL {url!r}: {e}") from None
            except (TimeoutError, OSError, InvalidHandshake, WebSocketException, RestError) as e:
                reason = f"connection lost: {type(e).__name__}: {e}"
            finally:
                self._ws = None
            if stop.is_set():
                break
            self.stats.disconnects += 1
            self.stats.last_error = reason
            now = time.time_ns()
            for inst in insts:
                self.handler.reset(inst, now, reason)
            self._log_once(reason.split(":")[0], f"{self.venue}: {reason}; reconnecting")
            delay = self.backoff.next()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _pump(self, ws: Any, insts: list[Instrument], stop: asyncio.Event) -> str:
        """Receive until stop, staleness or disconnection; returns why it ended."""
        from websockets.exceptions import ConnectionClosed

        handler = self.handler
        on_message = self.engine.on_message
        sink = self.sink
        stats = self.stats
        ping = handler.ping
        next_ping = time.monotonic() + ping[0] if ping else float("inf")

        async def close_on_stop() -> None:
            await stop.wait()
            await ws.close()

        closer = asyncio.ensure_future(close_on_stop())
        try:
            while True:
                wait = min(self.stale_after, max(0.0, next_ping - time.monotonic()))
                try:
                    async with asyncio.timeout(wait):
                        frame = await ws.recv()
                except TimeoutError:
                    if ping and time.monotonic() >= next_ping:
                        await ws.send(self._ping_payload())
                        next_ping = time.monotonic() + ping[0]
                        continue
                    stats.stale += 1
                    await ws.close()
                    return f"stale feed: no message for {self.stale_after:g} s"
                except ConnectionClosed:
                    if stop.is_set():
                        return "stopped"
                    raise
                local_ns = time.time_ns()
                raw = frame.encode() if isinstance(frame, str) else frame
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
                    self._log_once(type(e).__name__, f"{self.venue}: frame broke the handler: {type(e).__name__}: {e}")
                    for inst in insts:  # whatever it half-did, these books cannot be trusted
                        handler.reset(inst, local_ns, f"handler error: {type(e).__name__}")
                if handler.outbox:
                    out = handler.outbox
                    handler.outbox = []
                    for msg in out:
                        await ws.send(msg)
                if handler.reconnect_requested:
                    handler.reconnect_requested = False
                    await ws.close()
                    return "the venue asked us to reconnect"
                if ping and time.monotonic() >= next_ping:
                    await ws.send(self._ping_payload())
                    next_ping = time.monotonic() + ping[0]
                if self.after_frame is not None:
                    await self.after_frame()
        finally:
            closer.cancel()

    def _ping_payload(self) -> str:
        ping = self.handler.ping  # read each time: some venues stamp their pings (Gate)
        return ping[1] if ping else ""

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
                    self.handler.on_snapshot(inst, body, local_ns)
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
