"""A local venue for the live-layer tests: recorded frames served over a real WebSocket on
127.0.0.1, plus a REST ``/depth`` endpoint answering with the book as it stands after the
frames sent so far (rebuilt by the independent reference in ``refbook.py``).

Faults are injected per scenario: a disconnect after N frames, a dropped frame (a gap), a
stall (a stale feed), a slow consumer cut off when its send buffer grows, a corrupted frame.
It runs in a thread with its own event loop so that tests can drive it from both the test
process (asyncio) and a ``arb`` subprocess.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve

from refbook import RefBook


@dataclass
class Scenario:
    disconnect_after: int | None = None  # close the first connection after this many frames
    drop: set[int] = field(default_factory=set)  # frame indices never sent (gaps)
    stall_after: int | None = None  # first connection: send nothing more after this many frames
    lag_check_every: int | None = None  # ping after this many frames; no pong in time: "slow consumer"
    lag_timeout_s: float = 0.05
    corrupt: dict[int, bytes] = field(default_factory=dict)  # frame index -> what to send instead
    pace_s: float = 0.0005  # between frames
    resend_from_start: bool = False  # every connection starts the frames over (in-stream snapshot venues)
    restart_on_resubscribe: bool = False  # a later subscribe on the connection starts the frames over


class LocalVenue:
    def __init__(self, frames: list[bytes], snapshot: bytes, futures: bool = False,
                 scenario: Scenario | None = None, prelude: list[bytes] | None = None) -> None:
        self.frames = frames
        self.scenario = scenario or Scenario()
        self.cursor = 0  # frames consumed so far (sent or dropped)
        self.connections = 0
        self.subscriptions: list[str] = []
        self.snapshots_served = 0
        self.slow_cutoffs = 0
        self.resubscriptions = 0
        self._snapshot = snapshot
        self._prelude = prelude or []  # frames received before the snapshot (buffered by the reference)
        self._futures = futures
        self._ref: RefBook | None = None
        self._ref_at = 0
        self.ws_url = ""
        self.http_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.done = threading.Event()  # every frame has been sent

    # -- REST ---------------------------------------------------------------------------
    def book_now(self) -> bytes:
        """The REST body for the current cursor: the reference rebuilt up to it."""
        if self._ref is None:
            self._ref = RefBook(self._futures)
            for raw in self._prelude:
                self._ref.feed(raw)
            self._ref.feed(self._snapshot)
            self._ref_at = 0
        while self._ref_at < self.cursor:
            # a dropped frame is lost by us, not by the venue: its book still moved
            self._ref.feed(self.frames[self._ref_at])
            self._ref_at += 1
        return self._ref.snapshot_json()

    async def _depth(self, request: web.Request) -> web.Response:
        self.snapshots_served += 1
        return web.Response(body=self.book_now(), content_type="application/json")

    # -- WebSocket ----------------------------------------------------------------------
    async def _serve(self, ws: ServerConnection) -> None:
        self.connections += 1
        first = self.connections == 1
        sc = self.scenario
        restart = asyncio.Event()

        async def listen() -> None:
            async for m in ws:
                self.subscriptions.append(str(m))
                if sc.restart_on_resubscribe and '"subscribe"' in str(m):
                    restart.set()

        listener: asyncio.Task[None] | None = None
        try:
            msg = await ws.recv()
            self.subscriptions.append(str(msg))
            await ws.send('{"result":null,"id":1}')
            listener = asyncio.ensure_future(listen())
            sent = 0
            if sc.resend_from_start:
                self.cursor = 0
            while self.cursor < len(self.frames):
                if restart.is_set():  # the venue answers a resubscription with a fresh snapshot
                    restart.clear()
                    self.cursor = 0
                    self.resubscriptions += 1
                i = self.cursor
                if first and sc.disconnect_after is not None and sent >= sc.disconnect_after:
                    await ws.close()
                    return
                if first and sc.stall_after is not None and sent >= sc.stall_after:
                    await ws.wait_closed()  # silent until the client gives up on us
                    return
                self.cursor += 1
                if i in sc.drop:
                    continue
                await ws.send(sc.corrupt.get(i, self.frames[i]) if not self.resubscriptions else self.frames[i])
                sent += 1
                if sc.lag_check_every and sent % sc.lag_check_every == 0:
                    # A pong comes back only once the client has read every frame before the
                    # ping: a client that reads too slowly is cut off, as venues do.
                    pong = await ws.ping()
                    try:
                        await asyncio.wait_for(pong, sc.lag_timeout_s)
                    except TimeoutError:
                        self.slow_cutoffs += 1
                        await ws.close(code=1008, reason="slow consumer")
                        return
                if sc.pace_s:
                    await asyncio.sleep(sc.pace_s)
            self.done.set()
            await ws.wait_closed()  # keep the connection open, like a quiet market
        except Exception:  # the client went away
            return
        finally:
            if listener is not None:
                listener.cancel()

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> LocalVenue:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("local venue did not start")
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/fapi/v1/depth", self._depth)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.http_url = f"http://127.0.0.1:{port}"
        async with serve(self._serve, "127.0.0.1", 0, max_size=2**24, write_limit=2**14) as server:
            ws_port = next(iter(server.sockets)).getsockname()[1]
            self.ws_url = f"ws://127.0.0.1:{ws_port}/stream"
            self._ready.set()
            await self._stop.wait()
            server.close(close_connections=True)
        await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
