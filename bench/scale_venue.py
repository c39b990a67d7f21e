"""A local venue of the load harness, in its own process: WebSocket + REST on 127.0.0.1.

Built to never be the bottleneck (issue #15): every frame of the run is built *before* the
schedule starts (renamed, renumbered, WebSocket-framed, with its stamp slot), so sending is:
write the scheduled time into the slot, append to the connection's batch, and one
``transport.write`` per connection for everything due at that instant. The WebSocket server is
a bare asyncio protocol speaking RFC 6455 (handshake, no extension, masked client frames, pong
for ping, close): after the handshake the frames go straight to the transport.

A venue process raises its priority (``SCHED_FIFO`` when permitted, else ``nice -10``) and, in burst mode, spins the
last 0.5 ms before a boundary, so a timer waking late on a busy machine does not make it late.
Lateness is measured, not hidden: after each batch is written, every frame written more than
``LATE_NS`` after its due time is counted (``late``), and the worst is kept (``max_late_ms``).
A run whose venues were late on more than ``scale_report.LATE_SHARE`` (1 %) of their frames is invalid (the report
says so): its latency would be the venue's, not the engine's.

Control (a multiprocessing queue each way): the venue reports its ports, then the number of
books subscribed; it is told the schedule's start ``t0`` (absolute, ns: every venue's bursts
fall on the same 100 ms boundaries); at the end it reports what it sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import os
import resource
import struct
import time
from bisect import bisect_right
from typing import Any

from scale_frames import STAMP_DIGITS, markets, protocol
from scale_schedule import Schedule

LATE_NS = 5_000_000
SPIN_NS = 500_000
RT_PRIORITY = 10
NICE = -10  # the venue stands for the network: it gets the CPU first when it has a frame due
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    """An unmasked server frame (FIN set)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class WsConn(asyncio.Protocol):
    """One client connection: handshake, then client frames parsed for subscriptions."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.buf = b""
        self.open = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.venue.closed += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.open:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            key = b""
            for line in head.split(b"\r\n"):
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"sec-websocket-key":
                    key = v.strip()
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            self.open, self.buf = True, rest
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, at = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
            mask = b""
            if b1 & 0x80:
                mask, at = self.buf[at : at + 4], at + 4
            if len(self.buf) < at + n:
                return
            payload = self.buf[at : at + n]
            self.buf = self.buf[at + n :]
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            op = b0 & 0x0F
            if op == 9:
                self.transport.write(ws_frame(payload, 10))
            elif op == 8:
                self.transport.write(ws_frame(payload[:2], 8))
                self.transport.close()
            elif op in (1, 2):
                self.venue.on_client_message(self, payload)


class Venue:
    """One protocol's local venue: subscriptions, pre-built frames, the open-loop sender."""

    def __init__(self, venue: str, n_markets: int, schedule: Schedule) -> None:
        self.proto = protocol(venue)
        self.bases = markets(n_markets)
        self.index = {self.proto.native(b): i for i, b in enumerate(self.bases)}
        self.conn_of: list[WsConn | None] = [None] * n_markets
        self.subscribed = 0
        self.closed = 0
        self.schedule = schedule
        self.frames: list[bytearray] = []
        self.market_of: list[int] = []
        self.slots: list[int] = []  # the schedule slot of each frame
        self.used_up = 0
        self._build()

    def _build(self) -> None:
        """Every frame of the schedule, WebSocket-framed, in send order (the market of slot k
        is k mod markets, its frame index k div markets)."""
        n = len(self.bases)
        for k in range(self.schedule.total):
            m, i = k % n, k // n
            raw = self.proto.frame(self.bases[m], i)
            if raw is None:  # the recording is used up for this market: nothing more is sent
                self.used_up += 1
                continue
            self.frames.append(bytearray(ws_frame(raw)))
            self.market_of.append(m)
            self.slots.append(k)

    def on_client_message(self, conn: WsConn, msg: bytes) -> None:
        names, replies = self.proto.subscriptions(msg)
        for r in replies:
            conn.transport.write(ws_frame(r))
        for name in names:
            m = self.index.get(name)
            if m is not None and self.conn_of[m] is None:
                self.conn_of[m] = conn
                self.subscribed += 1

    async def send(self, t0: int, counted_from: int = 0) -> dict[str, Any]:
        """Send every frame at its scheduled time (open loop: the schedule never waits);
        lateness is counted for frames due from ``counted_from`` on (the measured window)."""
        due = [self.schedule.at(k, t0) for k in self.slots]
        frames, market_of, conn_of = self.frames, self.market_of, self.conn_of
        off = -1 - STAMP_DIGITS
        late = sent = 0
        max_late = 0
        time_ns = time.time_ns
        n = len(frames)
        spin = SPIN_NS if self.schedule.mode == "burst" else 0  # smooth: frames are < 1 ms apart
        k = 0
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        w0 = time.monotonic()
        while k < n:
            now = time_ns()
            if due[k] > now + spin:
                await asyncio.sleep((due[k] - now - spin) / 1e9)
                continue
            while due[k] > now:  # the last stretch spun: a timer wakes late on a busy machine
                now = time_ns()
            j = bisect_right(due, now, k)
            batches: dict[int, tuple[Any, list[bytearray]]] = {}
            for x in range(k, j):
                buf = frames[x]
                buf[off:-1] = b"%019d" % due[x]
                c = conn_of[market_of[x]]
                if c is None or not c.open:
                    continue
                b = batches.get(id(c))
                if b is None:
                    batches[id(c)] = (c.transport, [buf])
                else:
                    b[1].append(buf)
            for transport, bufs in batches.values():
                transport.write(b"".join(bufs))
                sent += len(bufs)
            done = time_ns()
            lag = done - due[k]
            if due[k] >= counted_from:
                max_late = max(max_late, lag)
            if lag > LATE_NS and due[k] >= counted_from:
                late += bisect_right(due, done - LATE_NS, k, j) - k
            k = j
            await asyncio.sleep(0)  # let the loop flush and read
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
        return {"cpu_pct": round(100 * cpu / max(1e-9, time.monotonic() - w0), 1), "venue": self.proto.venue,
                "sent": sent, "late": late, "max_late_ms": round(max_late / 1e6, 3),
                "used_up": self.used_up, "frames": n, "closed": self.closed}


async def _serve(venue: str, n_markets: int, schedule: Schedule, ctl_in: Any, ctl_out: Any) -> None:
    from aiohttp import web

    v = Venue(venue, n_markets, schedule)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: WsConn(v), "127.0.0.1", 0)
    ws_port = server.sockets[0].getsockname()[1]

    def route(path: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            body = v.proto.rest[path](dict(request.query), v.bases)
            return web.Response(body=body, content_type="application/json")
        return handler

    app = web.Application()
    for path in v.proto.rest:
        app.router.add_get(path, route(path))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    ctl_out.put(("ports", venue, ws_port, http_port, os.getpid()))
    reported = -1
    while True:  # report subscriptions until told when to start
        if v.subscribed != reported:
            reported = v.subscribed
            ctl_out.put(("subscribed", venue, reported))
        msg = await loop.run_in_executor(None, _get, ctl_in, 0.05)
        if msg is not None:
            break
    gc.collect()
    gc.freeze()  # the pre-built frames out of the collector's sight: no pause walks them mid-run
    result = await v.send(msg[1], msg[2])
    ctl_out.put(("done", venue, result))
    await asyncio.sleep(3600)  # until terminated: the engine keeps its connections meanwhile


def _get(q: Any, timeout: float) -> Any:
    import queue

    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        return None


def venue_main(venue: str, n_markets: int, schedule: Schedule, ctl_in: Any, ctl_out: Any) -> None:
    """Process entry point (spawned)."""
    try:  # real-time priority where permitted (root), else a lower nice value, else as it is
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
    except (OSError, AttributeError):
        with contextlib.suppress(OSError):  # not permitted: the lateness counters will tell
            os.nice(NICE)
    asyncio.run(_serve(venue, n_markets, schedule, ctl_in, ctl_out))
