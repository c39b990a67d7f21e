"""Load harness (issue #15): how many book messages per second the live path keeps up with.

A local Binance-protocol venue (WebSocket combined streams + REST ``/api/v3/depth``) on
127.0.0.1, in its own process, replays the real BTCUSDT depth diffs of
``../shared/data/binance-2024-08-08`` for ``--symbols`` renamed markets (``S0001USDT``...; each
keeps the recorded update-id chain, which starts right after the recorded REST snapshot it
serves, so no chain ever breaks). The send schedule is open-loop and fixed in advance:

- ``smooth``: frame k is due at ``t0 + k / rate`` (markets round-robin);
- ``burst``: every market's frames are due together at each 100 ms boundary (as Binance sends
  ``@depth@100ms``), ``rate / 10`` frames per boundary.

Each frame carries its scheduled send time (``"ts"``, ns, ignored by the handler); a venue
that falls behind still stamps the schedule, so its lateness counts (no coordinated omission).

The engine side is the real live path in this process: ``Engine`` + one ``VenueFeed`` per venue
(``binance`` and ``binanceus``: two venues of one protocol, so every market is a cross-venue
group and detection runs), REST snapshots through ccxt. Tick-to-decision is measured from the
scheduled send time to the return of ``Engine.on_message`` (book updated, detection done).

Reports, over the measurement window after the books are valid: offered and processed msgs/s,
CPU % of this process (and CPU µs per message), tick-to-decision p50/p99/p99.9, RSS. With
``--knee`` it doubles the rate until p99 >= 10 ms or processing falls behind, bounded by
``--max-steps`` and ``--max-seconds``.

    .venv/bin/python bench/scale_bench.py --symbols 100 --rate 2000 --mode smooth --seconds 5
    .venv/bin/python bench/scale_bench.py --symbols 100 --knee --mode burst
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance-2024-08-08" / "spot_btcusdt_20240808.gz"
VENUES = ("binance", "binanceus")
KNEE_P99_MS = 10.0
#: extra VenueFeed keywords (``--transport``) and the engine-side loop (``--loop``); empty: defaults
FEED_KW: dict[str, Any] = {}
LOOP = {"name": ""}


def load_frames(path: Path = DATA) -> tuple[bytes, list[bytes], list[list[bytes]]]:
    """The recorded REST snapshot, the depth diffs chaining onto it, and after each diff the
    bookTicker/trade frames recorded before the next one (sent only to who subscribes them)."""
    snapshot, seq, last = b"", [], -1
    with gzip.open(path, "rb") as f:  # diffs recorded before the snapshot's line may follow it
        for line in f:
            raw = line.rstrip(b"\n").partition(b" ")[2]
            if raw.startswith(b'{"lastUpdateId"'):
                if not snapshot:
                    snapshot, last = raw, json.loads(raw)["lastUpdateId"]
            elif raw.startswith(b'{"stream":"btcusdt@'):
                seq.append(raw)
    frames: list[bytes] = []
    extras: list[list[bytes]] = []
    for raw in seq:
        if raw.startswith(b'{"stream":"btcusdt@depth'):
            if json.loads(raw)["data"]["u"] > last:
                frames.append(raw)
                extras.append([])
        elif extras:
            extras[-1].append(raw)
    if not snapshot or not frames:
        raise SystemExit(f"{path}: no snapshot with depth diffs after it")
    return snapshot, frames, extras


def symbols(n: int) -> list[str]:
    return [f"S{i:04d}USDT" for i in range(n)]


# -- the venue (its own process) ---------------------------------------------------------
def _venue_main(port_q: Any, n_symbols: int, rate: float, mode: str, start_at: float, seconds: float,
                extras: bool) -> None:
    asyncio.run(_venue(port_q, n_symbols, rate, mode, start_at, seconds, extras))


async def _venue(port_q: Any, n_symbols: int, rate: float, mode: str, start_at: float, seconds: float,
                 send_extras: bool) -> None:
    from aiohttp import web
    from websockets.asyncio.server import serve

    snapshot, frames, extras = load_frames()
    names = {s.lower(): s for s in symbols(n_symbols)}
    books: list[tuple[Any, bytes]] = []  # (connection, stream prefix), one per subscribed market
    everything: set[tuple[int, bytes]] = set()  # (connection, prefix) subscribed to trades/tickers too
    ready = asyncio.Event()
    expected = n_symbols * len(VENUES)

    async def on_ws(ws: Any) -> None:
        async for msg in ws:
            m = json.loads(msg)
            if m.get("method") == "SUBSCRIBE":
                for stream in m["params"]:
                    name = stream.split("@")[0]
                    if stream.endswith("@depth@100ms") and name in names:
                        books.append((ws, name.encode()))
                    elif name in names and send_extras:
                        everything.add((id(ws), name.encode()))
                await ws.send(json.dumps({"result": None, "id": m.get("id")}))
                if len(books) >= expected:
                    ready.set()

    async def depth(_request: web.Request) -> web.Response:
        return web.Response(body=snapshot, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v3/depth", depth)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with serve(on_ws, "127.0.0.1", 0, compression=None, max_queue=None) as server:
        ws_port = next(iter(server.sockets)).getsockname()[1]
        port_q.put((ws_port, http_port))
        await ready.wait()
        books.sort(key=lambda b: b[1])
        t0 = time.time_ns() + int(start_at * 1e9)
        port_q.put(("t0", t0))
        cursor = [0] * len(books)
        total = int(rate * seconds)
        per_boundary = max(1, int(rate / 10))
        step = 1e9 / rate
        late = 0
        for k in range(total):
            due = t0 + (int(k * step) if mode == "smooth" else (k // per_boundary) * 100_000_000)
            now = time.time_ns()
            if due > now:
                await asyncio.sleep((due - now) / 1e9)
            elif now - due > 5_000_000:
                late += 1
            b = k % len(books)
            ws, prefix = books[b]
            i = cursor[b]
            cursor[b] = i + 1
            if i >= len(frames):
                break  # the recording is used up for this market
            raw = frames[i].replace(b"btcusdt@", prefix + b"@", 1)
            try:
                await ws.send(raw[:-1] + b',"ts":%d}' % due)
                if (id(ws), prefix) in everything:  # what a subscriber of every stream also gets
                    for x in extras[i]:
                        await ws.send(x.replace(b"btcusdt@", prefix + b"@", 1))
            except Exception:
                break
        port_q.put(("done", late, k + 1))
        await asyncio.sleep(3600)  # until terminated


# -- the engine side (this process) -------------------------------------------------------
def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run_once(n_symbols: int, rate: float, mode: str, seconds: float, warmup: float,
                   extras: bool = True) -> dict[str, Any]:
    from cryptoarb.config import load_settings
    from cryptoarb.engine import Engine
    from cryptoarb.engine.latency import LatencyRecorder
    from cryptoarb.live.backoff import Backoff
    from cryptoarb.live.feed import VenueFeed
    from cryptoarb.live.rest import CcxtRest

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_venue_main, args=(q, n_symbols, rate, mode, warmup, seconds, extras), daemon=True)
    proc.start()
    try:
        ws_port, http_port = q.get(timeout=60)
        settings = load_settings(storage={"enabled": False})
        engine = Engine(settings, list(VENUES))
        feeds = []
        for v in VENUES:
            btc = engine.catalog.get(v, "BTC/USDT")
            insts = []
            for name in symbols(n_symbols):
                inst = replace(btc, symbol=f"{name[:-4]}/USDT", base=name[:-4], exchange_symbol=name)
                engine.catalog.add(inst)
                insts.append(inst)
            rest = CcxtRest(v, {"urls": {"api": {"public": f"http://127.0.0.1:{http_port}/api/v3"}},
                                "enableRateLimit": False})
            feeds.append(VenueFeed(engine, v, insts, url=f"ws://127.0.0.1:{ws_port}/stream", rest=rest,
                                   stale_after=30.0, backoff=Backoff(0.05, 0.2), **FEED_KW))
        lat = LatencyRecorder()
        window = {"start": 0, "n": 0, "all": 0}  # book frames measured, all frames
        inner = engine.on_message
        time_ns = time.time_ns
        # a burst handled as a batch (engine/batch.py): a frame is decided when its book's
        # detection has run, after on_message returned
        batch = getattr(engine, "burst_batch", None)
        pend: dict[str, list[int]] = {}

        def on_message(handler: Any, raw: bytes, local_ns: int) -> int:
            kind = inner(handler, raw, local_ns)
            if local_ns >= window["start"]:
                window["all"] += 1
                at = raw.rfind(b'"ts":')
                if at > 0:
                    key = batch.last_key if batch is not None and batch.active else None
                    if key is None:
                        lat.append(time_ns() - int(raw[at + 5 : -1]))
                    else:
                        pend.setdefault(key, []).append(int(raw[at + 5 : -1]))
                    window["n"] += 1
            return kind

        def decided(key: str) -> None:
            now = time_ns()
            for ts in pend.pop(key, ()):
                lat.append(now - ts)

        if batch is not None:
            batch.on_decided = decided

        engine.on_message = on_message  # type: ignore[method-assign]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(f.run(stop)) for f in feeds]
        m = await asyncio.get_running_loop().run_in_executor(None, q.get, True, 120)
        window["start"] = m[1] + 500_000_000  # the first half second of the schedule: warm-up
        await asyncio.sleep((window["start"] - time.time_ns()) / 1e9)
        cpu0, wall0 = _cpu_s(), time.monotonic()
        rss0 = _rss_mb()
        await asyncio.sleep(max(0.5, seconds - 0.5))
        cpu, wall = _cpu_s() - cpu0, time.monotonic() - wall0
        n = window["n"]
        valid = sum(b.valid for b in engine.books.values())
        if os.environ.get("SCALE_DEBUG"):
            for f in feeds:
                print(f.venue, f.stats, file=sys.stderr)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        late = -1
        while not q.empty():
            m = q.get()
            if m[0] == "done":
                late = m[1]
        pct = lat.summary_us()
        return {"mode": mode, "books": n_symbols * len(VENUES), "offered_per_s": rate,
                "processed_per_s": round(n / wall, 1),
                "frames_per_s": round(window["all"] / wall, 1), "cpu_pct": round(100 * cpu / wall, 1),
                "cpu_us_per_book_msg": round(1e6 * cpu / n, 2) if n else None,
                "p50_ms": round(pct["p50"] / 1e3, 3), "p99_ms": round(pct["p99"] / 1e3, 3),
                "p999_ms": round(pct["p999"] / 1e3, 3), "rss_mb": round(_rss_mb(), 1), "rss_start_mb": round(rss0, 1),
                "valid_books": valid, "venue_late_frames": late}
    finally:
        proc.terminate()
        proc.join(5)


def knee(n_symbols: int, mode: str, seconds: float, warmup: float, start: float, max_steps: int,
         max_seconds: float, extras: bool = True) -> list[dict[str, Any]]:
    """Double the rate until p99 >= 10 ms or the process falls behind (bounded in steps and time)."""
    rows, rate, t0 = [], start, time.monotonic()
    for _ in range(max_steps):
        if time.monotonic() - t0 > max_seconds:
            break
        r = _run(run_once(n_symbols, rate, mode, seconds, warmup, extras))
        rows.append(r)
        print(json.dumps(r), flush=True)
        if r["p99_ms"] >= KNEE_P99_MS or r["processed_per_s"] < 0.9 * rate:
            break
        rate *= 2
    return rows


def _run(main: Any) -> Any:
    if not LOOP["name"]:
        return asyncio.run(main)
    from cryptoarb.live.loop import run_in_loop

    return run_in_loop(LOOP["name"], main)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", type=int, default=50, help="markets per venue (2 venues)")
    ap.add_argument("--rate", type=float, default=1000.0, help="depth frames/s offered (all books)")
    ap.add_argument("--mode", choices=("smooth", "burst"), default="smooth")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds for connections and snapshots")
    ap.add_argument("--repeat", type=int, default=1, help="runs; the median of each figure is printed last")
    ap.add_argument("--knee", action="store_true", help="double --rate until p99 >= 10 ms")
    ap.add_argument("--max-steps", type=int, default=6)
    ap.add_argument("--no-extras", action="store_true",
                    help="never send bookTicker/trade frames, even to a client subscribing them")
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--transport", choices=("picows", "websockets"), help="the feeds' WebSocket client")
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), help="the engine side's event loop")
    ap.add_argument("--no-batch", action="store_true", help="message by message, no burst batch (engine/batch.py)")
    a = ap.parse_args(argv)
    if a.transport:
        FEED_KW["transport"] = a.transport
    if a.no_batch:
        FEED_KW["batch"] = False
    LOOP["name"] = a.loop or ""
    if a.symbols < 1 or a.rate <= 0 or a.seconds <= 0 or a.repeat < 1:
        ap.error("--symbols, --rate, --seconds and --repeat must be positive")
    if not DATA.is_file():
        print(f"error: {DATA} is missing (real captures in ../shared/data)", file=sys.stderr)
        return 2
    if a.knee:
        knee(a.symbols, a.mode, a.seconds, a.warmup, a.rate, a.max_steps, a.max_seconds, not a.no_extras)
        return 0
    rows = []
    for _ in range(a.repeat):
        rows.append(_run(run_once(a.symbols, a.rate, a.mode, a.seconds, a.warmup, not a.no_extras)))
        print(json.dumps(rows[-1]), flush=True)
    if a.repeat > 1:
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if isinstance(rows[0][k], (int, float))}
        print(json.dumps({"median": med, "mode": a.mode}), flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.environ.get("SCALE_SRC", str(ROOT / "src")))
    raise SystemExit(main())
