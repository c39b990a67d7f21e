"""API benchmark: REST latency under load, stream fan-out latency, and what the API costs the engine.

    python bench/api_bench.py [--runs 3] [--duration 15] [--rate 300] [--clients 100]

Three parts, all on 127.0.0.1, bounded in time and count:

- **rest**: the API (its own thread, as beside a run) on a database holding a stored demo run;
  a load generator in *another process* sends ``--rate`` requests/s for ``--duration`` s, open
  loop (each request is due at its scheduled time; latency counts from then, so a server that
  falls behind is charged for the queue), a mix of ``/api/status``, ``/api/trades``,
  ``/api/opportunities``, ``/api/pnl``, ``/api/runs``. p50/p99/max, achieved rate, errors.
- **fanout + engine**: the demo engine at real speed (``speed=1``) with the API attached and
  ``--clients`` WebSocket clients (another process) reading every message, plus light REST
  polling (10 req/s): the stream's latency from ``publish`` (its ``ts``) to a client's receive,
  per kind; and the engine's raw->decision latency (``latency_us`` of the run summary), against
  runs of the same engine without the API, alternated (A B A B ...), medians over ``--runs``.

The clients' process is the load: what it measures includes its own scheduling (100 sockets in
one Python process on a 2-core machine), an upper bound of what a browser would see.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

SECRET = "bench-secret-" + uuid.uuid4().hex
CLIENT_PROCS = 4
USER, PASSWORD = "bench", "bench-password-123"


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


# -- the client process ----------------------------------------------------------------------------------

async def _rest_load(url: str, token: str, rate: float, duration: float, conns: int = 32) -> dict[str, Any]:
    """Open-loop load over ``conns`` keep-alive HTTP/1.1 connections (a minimal client on asyncio
    streams: httpx's own overhead would be most of what is measured at this rate)."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    paths = ["/api/status", "/api/trades?limit=20", "/api/opportunities?limit=20", "/api/pnl?max_points=200",
             "/api/runs"]
    reqs = [f"GET {p} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
            for p in paths]
    n = int(rate * duration)
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    lat: list[float] = []
    errors = 0
    t0 = time.perf_counter() + 0.3

    async def worker(closed: bool = False) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        try:
            while True:
                i, due = await queue.get()
                if i < 0:
                    return
                if closed:
                    due = time.perf_counter()
                writer.write(reqs[i % len(reqs)])
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                if status != 200:
                    errors += 1
                lat.append((time.perf_counter() - due) * 1e3)
        finally:
            writer.close()

    if rate <= 0:  # closed loop: one connection, one request after the other (the service time)
        queue = asyncio.Queue()
        n = int(duration)
        for i in range(n):
            queue.put_nowait((i, 0.0))
        queue.put_nowait((-1, 0.0))
        t0 = time.perf_counter()
        w = asyncio.ensure_future(worker(closed=True))
        await w
        took = time.perf_counter() - t0
        return {"requests": n, "errors": errors, "rate": n / took, "p50_ms": pct(lat, 0.5),
                "p99_ms": pct(lat, 0.99), "max_ms": max(lat) if lat else None}
    workers = [asyncio.ensure_future(worker()) for _ in range(conns)]
    for i in range(n):  # each request is put on the queue at its due time (open loop)
        due = t0 + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        queue.put_nowait((i, due))
    for _ in workers:
        queue.put_nowait((-1, 0.0))
    await asyncio.gather(*workers)
    took = time.perf_counter() - t0
    return {"requests": n, "errors": errors, "rate": n / took, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
            "max_ms": max(lat) if lat else None}


async def _ws_clients(url: str, token: str, n: int, duration: float, poll_rate: float) -> dict[str, Any]:
    import websockets

    ws_url = url.replace("http://", "ws://") + "api/stream"
    lat: dict[str, list[float]] = {}
    received = [0]
    closed = [0]
    end = time.time() + duration

    async def client() -> None:
        async with websockets.connect(ws_url, max_size=2**22) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            while time.time() < end:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=max(0.01, end - time.time()))
                except TimeoutError:
                    break
                except websockets.ConnectionClosed:
                    closed[0] += 1
                    return
                now = time.time_ns()
                msg = json.loads(raw)
                received[0] += 1
                if msg["kind"] != "hello":
                    lat.setdefault(msg["kind"], []).append((now - msg["ts"]) / 1e6)

    tasks = [client() for _ in range(n)]
    poll = _rest_load(url, token, poll_rate, duration - 1) if poll_rate else asyncio.sleep(0)
    results = await asyncio.gather(*tasks, poll, return_exceptions=True)
    failed = [r for r in results[:-1] if isinstance(r, Exception)]
    allv = [x for v in lat.values() for x in v]
    return {"clients": n, "failed": len(failed), "closed": closed[0], "received": received[0],
            "p50_ms": pct(allv, 0.5), "p99_ms": pct(allv, 0.99),
            "by_kind": {k: {"n": len(v), "p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99)}
                        for k, v in sorted(lat.items())},
            "poll": results[-1] if isinstance(results[-1], dict) else None, "samples": allv}


def client_main(argv: list[str]) -> None:
    mode, url, token = argv[0], argv[1], argv[2]
    if mode == "rest":
        out = asyncio.run(_rest_load(url, token, float(argv[3]), float(argv[4])))
    else:
        out = asyncio.run(_ws_clients(url, token, int(argv[3]), float(argv[4]), float(argv[5])))
    print(json.dumps(out))


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--client", *args], stdout=subprocess.PIPE, text=True)


# -- the server side -------------------------------------------------------------------------------------

def _settings(storage: dict[str, Any]) -> Any:
    from cryptoarb.config import load_settings

    return load_settings(api={"jwt_secret": SECRET, "max_stream_clients": 500, "login_per_ip": 10_000},
                         storage=storage)


def _serve(settings: Any, db: Any, link: Any = None) -> tuple[Any, str]:
    import httpx

    from cryptoarb.api import users
    from cryptoarb.api.server import ApiThread, bind, build_context

    if not users.exists(db, USER):
        users.add_user(db, USER, "admin", PASSWORD)
    srv = ApiThread(build_context(settings, db, link=link), bind("127.0.0.1", 0)).start()
    tok = httpx.post(srv.url + "api/login", json={"username": USER, "password": PASSWORD}).json()["access_token"]
    return srv, tok


def rest_part(duration: float, rate: float, tmp: Path) -> dict[str, Any]:
    """Open-loop load at ``rate`` for ``duration`` s, after a closed-loop pass (1,000 requests one
    after the other on one connection: the service time with nothing queued)."""
    from cryptoarb.demo.run import build_demo
    from cryptoarb.storage.db import connect
    from cryptoarb.storage.writer import StorageWriter

    url = f"sqlite:///{tmp / 'bench-api.db'}"
    db = connect(url)
    w = StorageWriter(db, run_id=uuid.uuid4().hex[:12])
    w.start_run("demo", {"bench": True})
    build_demo(_settings({"url": url}), sink=w, seed=1).run(120, live=False, speed=0)
    w.end_run()
    w.close()
    srv, tok = _serve(_settings({"url": url}), db)
    try:
        p = _spawn("rest", srv.url, tok, "0", "1000")
        closed = json.loads(p.communicate(timeout=300)[0])
        p = _spawn("rest", srv.url, tok, str(rate), str(duration))
        out = json.loads(p.communicate(timeout=duration + 120)[0])
        out["closed_loop"] = closed
        return out  # type: ignore[no-any-return]
    finally:
        srv.stop()


def _send_buckets(url: str) -> dict[str, Any]:
    """The server's own side of the fan-out (publish -> handed to the socket), from its
    ``arb_api_stream_send_seconds`` histogram: the bucket bounds p50 and p99 fall under."""
    import httpx

    buckets: list[tuple[float, float]] = []
    for line in httpx.get(url + "metrics", timeout=10).text.splitlines():
        if line.startswith("arb_api_stream_send_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0.0

    def under(q: float) -> float | None:
        return next((le * 1e3 for le, n in buckets if total and n >= q * total), None)

    share_10ms = next((n / total for le, n in buckets if le == 0.01), None) if total else None
    return {"messages": total, "p50_le_ms": under(0.5), "p99_le_ms": under(0.99), "within_10ms": share_10ms}


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure for all client processes: latencies re-pooled from their per-kind samples."""
    lat = [x for p in parts for x in p["samples"]]
    return {"clients": sum(p["clients"] for p in parts), "failed": sum(p["failed"] for p in parts),
            "closed": sum(p["closed"] for p in parts), "received": sum(p["received"] for p in parts),
            "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "poll": parts[0].get("poll"),
            "by_kind": {k: v for p in parts[:1] for k, v in p["by_kind"].items()}}


def engine_run(duration: float, api: bool, clients: int, seed: int) -> dict[str, Any]:
    from cryptoarb.api.hub import StreamHub
    from cryptoarb.api.link import EngineLink
    from cryptoarb.demo.run import build_demo
    from cryptoarb.storage.db import connect

    settings = _settings({"enabled": False})
    d = build_demo(settings, seed=seed)
    out: dict[str, Any] = {"api": api}
    srv = link = None
    procs: list[subprocess.Popen[str]] = []
    if api:
        link = EngineLink(d.engine, StreamHub(500, 1_000), mode="demo").attach()
        srv, tok = _serve(settings, connect(":memory:"), link)
        # the clients in CLIENT_PROCS processes (one Python process reading 100 sockets is its own bottleneck);
        # the first also polls the REST API at 10 requests/s
        per = [clients // CLIENT_PROCS + (1 if i < clients % CLIENT_PROCS else 0) for i in range(CLIENT_PROCS)]
        procs = [_spawn("ws", srv.url, tok, str(n), str(duration + 3), "10" if i == 0 else "0")
                 for i, n in enumerate(per) if n]
        deadline = time.monotonic() + 60
        while link.hub.clients < clients and time.monotonic() < deadline:
            time.sleep(0.05)
        out["connected"] = link.hub.clients
    try:
        s = d.run(duration, live=False, speed=1, tick=link.pump if link else None)
    finally:
        if procs:
            parts = [json.loads(p.communicate(timeout=duration + 120)[0]) for p in procs]
            out["stream"] = _merge(parts)
            out["server_send"] = _send_buckets(srv.url)  # type: ignore[union-attr]
            out["hub"] = {"published": link.hub.stats.published, "dropped_clients": link.hub.stats.dropped_clients,
                          "dropped_inbox": link.hub.stats.dropped_inbox}  # type: ignore[union-attr]
        if srv is not None:
            link.close()  # type: ignore[union-attr]
            srv.stop()
    out.update(messages=s["messages"], opportunities=s["opportunities"], latency_us=s["latency_us"])
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="engine runs with and without the API (alternated)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per run (the REST load too)")
    ap.add_argument("--rate", type=float, default=300.0, help="REST requests per second")
    ap.add_argument("--clients", type=int, default=100, help="stream clients")
    ap.add_argument("--only", choices=["rest", "engine"], help="one part only")
    ap.add_argument("--json", type=Path, help="write the results here too")
    a = ap.parse_args()
    if not (1 <= a.runs <= 20 and 1 <= a.duration <= 300 and 1 <= a.rate <= 5_000 and 1 <= a.clients <= 1_000):
        ap.error("bounds: --runs 1..20, --duration 1..300, --rate 1..5000, --clients 1..1000")
    import logging
    import tempfile

    logging.getLogger("cryptoarb").setLevel(logging.ERROR)
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        if a.only in (None, "rest"):
            result["rest"] = r = rest_part(a.duration, a.rate, Path(tmp))
            c = r["closed_loop"]
            print(f"REST one request at a time ({c['requests']}, {c['rate']:.0f} req/s): p50 {c['p50_ms']:.2f} ms, "
                  f"p99 {c['p99_ms']:.2f} ms", flush=True)
            print(f"REST at {r['rate']:.0f} req/s ({r['requests']} requests, {r['errors']} errors): "
                  f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms", flush=True)
    if a.only in (None, "engine"):
        runs: list[dict[str, Any]] = []
        for i in range(a.runs):
            for api in (False, True):
                r = engine_run(a.duration, api, a.clients, seed=7)
                runs.append(r)
                lat = r["latency_us"]
                extra = ""
                if api:
                    st = r["stream"]
                    sv = r["server_send"]
                    extra = (f"; {r['connected']} clients, {st['received']:,} messages received, fan-out p50 "
                             f"{st['p50_ms']:.2f} ms p99 {st['p99_ms']:.2f} ms (server side: p50 <= "
                             f"{sv['p50_le_ms']} ms, p99 <= {sv['p99_le_ms']} ms), dropped "
                             f"{r['hub']['dropped_clients']}")
                print(f"run {i + 1} {'with API' if api else 'baseline'}: {r['messages']:,} messages, engine "
                      f"p50 {lat['p50']:.1f} µs p99 {lat['p99']:.1f} µs{extra}", flush=True)
        base = [r for r in runs if not r["api"]]
        with_api = [r for r in runs if r["api"]]

        def med(rs: list[dict[str, Any]], k: str) -> float:
            return statistics.median(r["latency_us"][k] for r in rs)

        summary = {k: {"baseline_us": med(base, k), "with_api_us": med(with_api, k),
                       "ratio": med(with_api, k) / med(base, k)} for k in ("p50", "p99")}
        fan = {k: statistics.median(r["stream"][k] for r in with_api) for k in ("p50_ms", "p99_ms")}
        result["engine"] = {"runs": runs, "summary": summary, "fanout": fan}
        print(f"engine raw->decision, median of {a.runs}: p50 {summary['p50']['baseline_us']:.1f} -> "
              f"{summary['p50']['with_api_us']:.1f} µs (x{summary['p50']['ratio']:.2f}), p99 "
              f"{summary['p99']['baseline_us']:.1f} -> {summary['p99']['with_api_us']:.1f} µs "
              f"(x{summary['p99']['ratio']:.2f}); stream fan-out to {a.clients} clients p50 {fan['p50_ms']:.2f} ms, "
              f"p99 {fan['p99_ms']:.2f} ms")
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
