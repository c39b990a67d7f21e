"""Cold start of N Binance books (issue #15): the time from starting the feed to every book valid.

A local Binance-protocol venue (combined-stream WebSocket + REST ``/api/v3/depth``) runs on
127.0.0.1 in its own process: each subscribed market gets one depth diff at once (chaining onto
the REST snapshot's ``lastUpdateId``) and a keep-alive diff every 5 s. The engine side is the real
``VenueFeed`` with its snapshots fetched

- ``ccxt``: through ccxt's own throttler (``enableRateLimit``: one request at a time, Binance's
  ``rateLimit`` 50 ms x the call's cost, 10 for ``limit=1000``): the path before issue #15;
- ``paced``: through ``live.snapshots.paced("binance")``: Binance's 6,000 weight/min (90 % of it),
  ``limit=100`` (weight 5), up to 64 in flight.

    python bench/cold_start_bench.py --books 200 --mode ccxt --mode paced --repeat 3
    python bench/cold_start_bench.py --books 1000 --venues binance,binanceus --mode paced --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import time
from dataclasses import replace
from typing import Any


def _venue_main(q: Any) -> None:
    asyncio.run(_venue(q))


async def _venue(q: Any) -> None:
    from aiohttp import web
    from websockets.asyncio.server import serve

    requests = [0]

    async def depth(_r: web.Request) -> web.Response:
        requests[0] += 1
        body = {"lastUpdateId": 100, "bids": [["99.00", "1.00000"]], "asks": [["101.00", "1.00000"]]}
        return web.json_response(body)

    async def on_ws(ws: Any) -> None:
        streams: list[str] = []

        async def keepalive() -> None:
            u = 102
            while True:
                await asyncio.sleep(5)
                for s in list(streams):
                    await ws.send(json.dumps({"stream": s, "data": {"e": "depthUpdate", "E": 0, "s": s.split("@")[0]
                                              .upper(), "U": u, "u": u, "b": [], "a": [["101.00", "2.0"]]}}))
                u += 1

        task = asyncio.ensure_future(keepalive())
        try:
            async for raw in ws:
                msg = json.loads(raw)
                await ws.send(json.dumps({"result": None, "id": msg.get("id")}))
                for s in msg.get("params", []):
                    streams.append(s)
                    await ws.send(json.dumps({"stream": s, "data": {"e": "depthUpdate", "E": 0,
                                              "s": s.split("@")[0].upper(), "U": 101, "u": 101,
                                              "b": [["99.00", "2.0"]], "a": []}}))
        finally:
            task.cancel()

    app = web.Application()
    app.router.add_get("/api/v3/depth", depth)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    http_port = runner.addresses[0][1]
    async with serve(on_ws, "127.0.0.1", 0, max_size=2**24) as server:
        q.put((next(iter(server.sockets)).getsockname()[1], http_port))
        await asyncio.Future()


async def run_once(books: int, mode: str, ws_port: int, http_port: int, timeout: float,
                   venues: tuple[str, ...] = ("binance",)) -> dict[str, Any]:
    """``books`` per venue; every venue its own feed and snapshot source, all started together."""
    from cryptoarb.config import load_settings
    from cryptoarb.engine import Engine
    from cryptoarb.live.feed import VenueFeed
    from cryptoarb.live.rest import CcxtRest
    from cryptoarb.live.snapshots import BUDGETS, PacedRest

    engine = Engine(load_settings(storage={"enabled": False}), list(venues))
    urls = {"urls": {"api": {"public": f"http://127.0.0.1:{http_port}/api/v3"}}}
    feeds = []
    for v in venues:
        btc = engine.catalog.get(v, "BTC/USDT")
        insts = []
        for k in range(books):
            inst = replace(btc, symbol=f"S{k:04d}/USDT", base=f"S{k:04d}", exchange_symbol=f"S{k:04d}USDT")
            engine.catalog.add(inst)
            insts.append(inst)
        rest: Any
        if mode == "ccxt":
            rest = CcxtRest(v, {**urls, "enableRateLimit": True})
        else:
            rest = PacedRest(CcxtRest(v, {**urls, "enableRateLimit": False}), BUDGETS[v])
        rest.exchange  # noqa: B018 -- ccxt imported before the clock starts, as build_feeds does
        feeds.append(VenueFeed(engine, v, insts, url=f"ws://127.0.0.1:{ws_port}/stream", rest=rest,
                               stale_after=60.0))
    total = books * len(venues)
    stop = asyncio.Event()
    t0 = time.monotonic()
    tasks = [asyncio.create_task(f.run(stop)) for f in feeds]
    first = None
    while time.monotonic() - t0 < timeout:
        valid = sum(b.valid for b in engine.books.values())
        if valid and first is None:
            first = time.monotonic() - t0
        if valid == total:
            break
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - t0
    valid = sum(b.valid for b in engine.books.values())
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"mode": mode, "venues": ",".join(venues), "books": total,
            "all_valid_s": round(elapsed, 2) if valid == total else None,
            "first_valid_s": round(first or 0.0, 3), "valid": valid, "snapshots": sum(f.stats.snapshots for f in feeds)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--books", type=int, action="append", help="books per run (repeatable)")
    ap.add_argument("--mode", action="append", choices=["ccxt", "paced"], help="snapshot path (repeatable)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--venues", default="binance", help="binance and/or binanceus, comma-separated: "
                                                       "--books each, all started together")
    ap.add_argument("--timeout", type=float, default=300.0, help="give up on a run after SECONDS")
    a = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_venue_main, args=(q,), daemon=True)
    proc.start()
    try:
        ws_port, http_port = q.get(timeout=60)
        for books in a.books or [200]:
            for mode in a.mode or ["ccxt", "paced"]:
                vs = tuple(a.venues.split(","))
                runs = [asyncio.run(run_once(books, mode, ws_port, http_port, a.timeout, vs)) for _ in range(a.repeat)]
                for r in runs:
                    print(json.dumps(r), file=sys.stderr)
                done = [r["all_valid_s"] for r in runs if r["all_valid_s"] is not None]
                print(json.dumps({"mode": mode, "venues": a.venues, "books": books * len(vs), "runs": len(runs),
                                  "median_all_valid_s": statistics.median(done) if done else None,
                                  "median_first_valid_s": statistics.median(r["first_valid_s"] for r in runs)}))
    finally:
        proc.terminate()
        proc.join(5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
