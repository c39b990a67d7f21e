"""The venues alone (issue #15): how fast the local venues send on schedule, with a null client.

The client (its own process) opens one WebSocket per protocol, subscribes every market with the
protocol's own subscribe message, and throws away what it reads (a raw asyncio protocol: no
frame parsing), so what is measured is the venues' own cost and lateness: frames sent more
than 5 ms after they were due, the worst lateness, and each venue's CPU.

    python bench/scale_bench.py --venue-max --books 1000 --rate 60000 --mode burst
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import multiprocessing as mp
import os
import struct
import time
from typing import Any

from scale_frames import markets, protocol
from scale_report import venue_valid
from scale_schedule import Schedule
from scale_venue import venue_main


def _masked(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0xFE, n)
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def _subscribe(venue: str, natives: list[str]) -> list[bytes]:
    out = []
    for i in range(0, len(natives), 50):
        chunk = natives[i : i + 50]
        if venue == "binance":
            msg: dict[str, Any] = {"method": "SUBSCRIBE", "id": i,
                                   "params": [f"{n.lower()}@depth@100ms" for n in chunk]}
        elif venue == "okx":
            msg = {"op": "subscribe", "args": [{"channel": "books", "instId": n} for n in chunk]}
        else:
            msg = {"op": "subscribe", "args": [{"instType": "SPOT", "channel": "books", "instId": n} for n in chunk]}
        out.append(json.dumps(msg).encode())
    return out


class _Sink(asyncio.Protocol):
    received = 0

    def data_received(self, data: bytes) -> None:
        _Sink.received += len(data)


async def _client(ports: dict[str, int], n_markets: int) -> None:
    loop = asyncio.get_running_loop()
    keep = []
    for venue, port in ports.items():
        proto = protocol(venue)
        transport, _ = await loop.create_connection(_Sink, "127.0.0.1", port)
        key = base64.b64encode(os.urandom(16))
        transport.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        for msg in _subscribe(venue, [proto.native(b) for b in markets(n_markets)]):
            transport.write(_masked(msg))
        keep.append(transport)
    await asyncio.sleep(3600)


def _client_main(ports: dict[str, int], n_markets: int) -> None:
    asyncio.run(_client(ports, n_markets))


def venue_max(books: int, rate: float, mode: str, seconds: float, protocols: list[str]) -> dict[str, Any]:
    """One run of the venues at ``rate`` (all together) to a null client; prints and returns
    what they sent, how late, and their CPU."""
    ctx = mp.get_context("spawn")
    n = max(1, math.ceil(books / len(protocols)))
    out = ctx.Queue()
    ins = {p: ctx.Queue() for p in protocols}
    sched = Schedule(rate / len(protocols), mode, seconds)
    procs = [ctx.Process(target=venue_main, args=(p, n, sched, ins[p], out), daemon=True) for p in protocols]
    for p in procs:
        p.start()
    ports: dict[str, int] = {}
    subscribed: dict[str, int] = {}
    done: dict[str, Any] = {}
    client = None
    try:
        while len(subscribed) < len(protocols) or min(subscribed.values()) < n:
            m = out.get(timeout=300)
            if m[0] == "ports":
                ports[m[1]] = m[2]
                if len(ports) == len(protocols):
                    client = ctx.Process(target=_client_main, args=(ports, n), daemon=True)
                    client.start()
            elif m[0] == "subscribed" and client is not None:
                subscribed[m[1]] = m[2]
        t0 = time.time_ns() + 300_000_000
        for q in ins.values():
            q.put(("t0", t0, t0 + 500_000_000))  # the first half second: warm-up, as in engine runs
        while len(done) < len(protocols):
            m = out.get(timeout=seconds + 60)
            if m[0] == "done":
                done[m[1]] = m[2]
    finally:
        for p in procs + ([client] if client is not None else []):
            p.terminate()
            p.join(5)
    sent = sum(v["sent"] for v in done.values())
    late = sum(v["late"] for v in done.values())
    row = {"venue_max": True, "mode": mode, "books": n * len(protocols), "offered_per_s": rate, "sent": sent,
           "late": late, "max_late_ms": max(v["max_late_ms"] for v in done.values()),
           "venue_cpu_pct": round(sum(v["cpu_pct"] for v in done.values()), 1), "valid": venue_valid(late, sent),
           "per_venue": done}
    print(json.dumps(row), flush=True)
    return row
