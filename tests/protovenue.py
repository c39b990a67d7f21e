"""A local venue speaking any protocol: each WebSocket connection to 127.0.0.1 runs a session
coroutine written by the test (the venue's real message formats), and everything the client
sends is recorded per connection with the *venue's* clock (``time.monotonic`` in the venue's
own thread and event loop), the clock a venue measures its rate limits with.

It runs in a thread with its own event loop, like ``wsserver.LocalVenue``, so that the client
under test (``VenueFeed``) runs in the test's loop exactly as it does live. ``rest`` adds HTTP GET
routes (path -> a function of the query parameters returning the JSON body) at ``http_url``, for
venues whose books start from a REST snapshot (fetched by ccxt pointed at it).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve


@dataclass
class Conn:
    """One client connection as the venue sees it."""

    index: int
    ws: ServerConnection
    received: list[tuple[float, str]] = field(default_factory=list)  # (venue clock s, text)
    closed: bool = False

    async def recv(self) -> str:
        msg = await self.ws.recv()
        text = msg if isinstance(msg, str) else msg.decode()
        self.received.append((time.monotonic(), text))
        return text

    async def recv_json(self) -> Any:
        return json.loads(await self.recv())

    async def send(self, obj: Any) -> None:
        await self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))


Session = Callable[[Conn], Awaitable[None]]
Route = Callable[[dict[str, str]], bytes]


class ProtoVenue:
    def __init__(self, session: Session, rest: dict[str, Route] | None = None) -> None:
        self.session = session
        self.rest = rest or {}
        self.requests: list[tuple[str, dict[str, str]]] = []  # REST requests received (path, query)
        self.http_url = ""
        self.conns: list[Conn] = []
        self.errors: list[str] = []  # protocol violations the session found
        self.ws_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    async def _serve(self, ws: ServerConnection) -> None:
        conn = Conn(len(self.conns), ws)
        self.conns.append(conn)
        try:
            await self.session(conn)
        except Exception as e:  # the client went away, or the session failed: recorded
            if type(e).__name__ not in ("ConnectionClosedOK", "ConnectionClosedError", "ConnectionClosed"):
                self.errors.append(f"session {conn.index}: {type(e).__name__}: {e}")
        finally:
            conn.closed = True

    def start(self) -> ProtoVenue:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("local venue did not start")
        return self

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = None
        if self.rest:
            from aiohttp import web

            async def answer(request: web.Request) -> web.Response:
                query = dict(request.query)
                self.requests.append((request.path, query))
                return web.Response(body=self.rest[request.path](query), content_type="application/json")

            app = web.Application()
            for path in self.rest:
                app.router.add_get(path, answer)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.http_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with serve(self._serve, "127.0.0.1", 0, max_size=2**24) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            self.ws_url = f"ws://127.0.0.1:{port}/ws"
            self._ready.set()
            await self._stop.wait()
            server.close(close_connections=True)
        if runner is not None:
            await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ProtoVenue:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def max_in_window(times: list[float], window: float) -> int:
    """The most messages received in any half-open window ``[t, t + window)`` of the venue's clock."""
    times = sorted(times)
    best = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def run_feed_until(feed: Any, done: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Run ``feed`` (``VenueFeed.run``) in this thread's event loop until ``done()`` or the
    timeout, then stop it; a feed that ends by itself with an error raises it here."""

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(feed.run(stop))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not done():
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(go())
