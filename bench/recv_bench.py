"""Receive path alone (issue #15): client CPU µs per WebSocket frame, real Binance depth frames.

A local server process on 127.0.0.1 sends ``--frames`` recorded BTCUSDT depth frames as fast as it
can; the client (this process) receives them four ways and its CPU time (user + system) per frame
is reported, best of ``--runs``:

- ``websockets+timeout``: ``websockets`` ``recv()`` inside ``asyncio.timeout()`` per frame (the
  live feed before issue #15);
- ``websockets``: plain ``recv()`` (the feed now: staleness is one watchdog per connection);
- ``picows``: picows' callback listener, payload copied to ``bytes``;
- ``picows+uvloop``: the same on uvloop;
- ``aiohttp``: aiohttp's client ``receive()`` (installed with ccxt), for comparison;
- ``feed:<transport>+<loop>``: the live feed's transports (``live/transport.py``) as the feed
  drives them (``recv``, then ``recv_nowait`` until empty), on asyncio and on uvloop.

    .venv/bin/python bench/recv_bench.py --frames 20000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing as mp
import resource
import sys
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-2024-08-08" / "spot_btcusdt_20240808.gz"
MODES = ("websockets+timeout", "websockets", "picows", "picows+uvloop", "aiohttp",
         "feed:websockets+asyncio", "feed:websockets+uvloop", "feed:picows+asyncio", "feed:picows+uvloop")


def _frames(n: int) -> list[bytes]:
    out: list[bytes] = []
    with gzip.open(DATA, "rb") as f:
        for line in f:
            raw = line.rstrip(b"\n").partition(b" ")[2]
            if raw.startswith(b'{"stream":"btcusdt@depth'):
                out.append(raw)
    return [out[i % len(out)] for i in range(n)]


def _server_main(q: Any, n: int) -> None:
    from websockets.asyncio.server import serve

    frames = _frames(n)

    async def handler(ws: Any) -> None:
        for raw in frames:
            await ws.send(raw.decode())
        await ws.close()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, max_queue=None) as server:
            q.put(next(iter(server.sockets)).getsockname()[1])
            await asyncio.Future()

    asyncio.run(main())


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _websockets(url: str, timeout: bool) -> int:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    n = 0
    async with connect(url, max_size=2**25, compression=None) as ws:
        try:
            while True:
                if timeout:
                    async with asyncio.timeout(10.0):
                        frame = await ws.recv()
                else:
                    frame = await ws.recv()
                raw = frame.encode() if isinstance(frame, str) else frame
                n += len(raw) > 0
        except ConnectionClosed:
            pass
    return n


async def _picows(url: str) -> int:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    class Listener(WSListener):
        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()
                return
            raw = frame.get_payload_as_bytes()
            self.n += len(raw) > 0

    transport, listener = await ws_connect(Listener, url)
    await transport.wait_disconnected()
    assert isinstance(listener, Listener)
    return listener.n


async def _aiohttp(url: str) -> int:
    import aiohttp

    n = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=2**25) as ws:
        while True:
            msg = await ws.receive()
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                break
            raw = msg.data.encode() if isinstance(msg.data, str) else msg.data
            n += len(raw) > 0
    return n


async def _feed(url: str, transport: str) -> int:
    from cryptoarb.live.transport import TransportClosed, open_ws

    n = 0
    ws = await open_ws(transport, url, open_timeout=10, ping_interval=None)
    try:
        while True:
            raw: bytes | None = await ws.recv()
            while raw is not None:
                n += len(raw) > 0
                raw = ws.recv_nowait()
    except TransportClosed:
        pass
    await ws.close()
    return n


def measure(mode: str, url: str) -> tuple[int, float]:
    t0 = _cpu()
    if mode.startswith("feed:"):
        transport, _, loop = mode[5:].partition("+")
        from cryptoarb.live.loop import run_in_loop

        n = run_in_loop(loop, _feed(url, transport))
    elif mode == "aiohttp":
        n = asyncio.run(_aiohttp(url))
    elif mode == "picows+uvloop":
        import uvloop

        n = uvloop.run(_picows(url))
    elif mode == "picows":
        n = asyncio.run(_picows(url))
    else:
        n = asyncio.run(_websockets(url, mode == "websockets+timeout"))
    return n, _cpu() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args(argv)
    if a.frames < 1 or a.runs < 1:
        ap.error("--frames and --runs must be positive")
    if not DATA.is_file():
        print(f"error: {DATA} is missing", file=sys.stderr)
        return 2
    import aiohttp  # noqa: F401 -- imported before any timing: import cost is not per frame
    import picows  # noqa: F401
    import uvloop  # noqa: F401
    import websockets.asyncio.client  # noqa: F401

    import cryptoarb.live.ws_picows  # noqa: F401

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_server_main, args=(q, a.frames), daemon=True)
    proc.start()
    try:
        url = f"ws://127.0.0.1:{q.get(timeout=60)}/"
        best: dict[str, float] = {}
        for _ in range(a.runs):
            for mode in MODES:
                n, cpu = measure(mode, url)
                if n != a.frames:
                    print(f"error: {mode} received {n} of {a.frames} frames", file=sys.stderr)
                    return 3
                best[mode] = min(best.get(mode, float("inf")), 1e6 * cpu / n)
        base = best["websockets+timeout"]
        print(json.dumps({m: {"cpu_us_per_frame": round(v, 2), "vs_before": round(v / base, 2)}
                          for m, v in best.items()}))
    finally:
        proc.terminate()
        proc.join(5)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    raise SystemExit(main())
