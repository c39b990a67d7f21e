"""Bus benchmark: hop latency engine -> API stream client and engine -> consumer, events/s
through Redis Streams, and the engine's latency with and without the bus attached (same run,
alternating).

    python bench/bus_bench.py [--redis redis://127.0.0.1:6379/15] [--runs 3] [--events 50000]

- ``hop_api``: events published one by one at ``--rate`` per second by a ``BusSink`` on the Redis
  transport and received by a WebSocket client of ``/api/stream`` of an ``arb api --bus`` process
  (its bus -> hub feeder, the hub's fan-out, the socket): latency = the client's receive time -
  the event's decision time (same clock). p50/p99 over ``--hop-events`` events.
- ``hop``: the same into an ``EventConsumer`` in another process (XREADGROUP, decode,
  de-duplication, XACK): the bus alone.
- ``throughput``: ``--events`` events published as fast as the engine thread can, until the
  consumer process has handled the last one: events/s end to end.
- ``engine``: the zero-fee replay of the Binance captures (spot + USDⓈ-M, real frames) without a
  sink, with the bus sink, and with the bus sink and the training-row log off (any sink turns it
  on: ``ml.features``), alternating, ``--runs`` each: per depth message raw bytes -> decision
  p50/p99, decision alone p50/p99; the ratios to "without" are what the bus costs the hot path
  (the sink is called after it, so they should be ~1). ``--engine-only``: just this part.

Needs a Redis server; uses a fresh key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance-2024-08-08"
sys.path.insert(0, str(ROOT))
from tests.zerofees import ZERO_FEES  # noqa: E402  (one source with the role tests)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))] if s else float("nan")


# -- the consumer process -------------------------------------------------------------------------

def consume(url: str, prefix: str, n: int, out: str) -> None:
    from cryptoarb.bus import messages as M
    from cryptoarb.bus.events import EventConsumer, open_transport

    bus = open_transport(url, prefix=prefix)
    lat: list[int] = []
    first = last = 0

    def handle(evs: list[M.Event]) -> None:
        nonlocal first, last
        now = time.time_ns()
        if not first:
            first = now
        last = now
        for e in evs:
            if isinstance(e, M.OppEvent):
                lat.append(now - e.local_ns)

    c = EventConsumer(bus, "bench", "c1", ["opportunities"], handle)
    Path(out + ".ready").write_text("1")
    deadline = time.monotonic() + 300  # never outlive a benchmark that failed
    while c.received < n and time.monotonic() < deadline:
        c.poll(100)
    Path(out).write_text(json.dumps({"lat_ns": lat, "first": first, "last": last}))
    bus.close()


def _consumer(url: str, prefix: str, n: int, tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp / f"c-{uuid.uuid4().hex[:6]}.json"
    p = subprocess.Popen([sys.executable, __file__, "--consume", url, prefix, str(n), str(out)])
    while not Path(str(out) + ".ready").exists():
        time.sleep(0.01)
    return p, out


def _opp(i: int) -> Any:
    from cryptoarb.core.opportunity import Opportunity, OrderIntent

    b = OrderIntent("binance", "BTC/USDT", "buy", 0.01, 61000.1, 61000.0)
    s = OrderIntent("binanceusdm", "BTC/USDT:USDT", "sell", 0.01, 61010.0, 61010.1)
    return Opportunity(i, "BTC/USDT", "basis", b, s, 0.01, 61000.0, 61010.1, 610.0, 0.0, 0.1, 0, 0)


def hop(url: str, n: int, rate: float, tmp: Path) -> dict[str, float]:
    from cryptoarb.bus.events import BusSink, open_transport

    prefix = f"bench{uuid.uuid4().hex[:6]}:"
    bus = open_transport(url, prefix=prefix)
    p, out = _consumer(url, prefix, n, tmp)
    sink = BusSink(bus, "hop")
    gap = 1 / rate
    try:
        t_next = time.perf_counter()
        for i in range(1, n + 1):
            wait = t_next - time.perf_counter()
            if wait > 0:
                time.sleep(wait)  # releases the GIL: the publisher thread runs meanwhile
            t_next += gap
            o = _opp(i)
            o.local_ns = time.time_ns()  # the decision time, as the engine stamps it
            sink.opportunity(o)
        p.wait(120)
    finally:
        p.kill()
    bus.close()
    lat = [x / 1e3 for x in json.loads(out.read_text())["lat_ns"]]
    _clean(url, prefix)
    return {"p50_us": pct(lat, 50), "p99_us": pct(lat, 99), "n": len(lat)}


SECRET = "bench-secret-0123456789-0123456789-0123456789"


def _arb(*args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cryptoarb.cli", *args], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "ARB_API__JWT_SECRET": SECRET}, **kw)


class _StreamClient:
    """A WebSocket client of ``/api/stream`` keeping (receive ns, decision ns) per opportunity."""

    def __init__(self, url: str, token: str) -> None:
        self.got: list[tuple[int, int]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, args=(url, token), daemon=True)
        self.t.start()
        if not self.ready.wait(20):
            raise RuntimeError("the API stream did not answer")

    def _run(self, url: str, token: str) -> None:
        from websockets.sync.client import connect

        with connect(url, max_size=2**20) as ws:
            ws.send(json.dumps({"type": "auth", "token": token, "kinds": ["opportunity"]}))
            ws.recv(timeout=10)
            self.ready.set()
            while not self.stop.is_set():
                try:
                    raw = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                now = time.time_ns()
                self.got.append((now, int(json.loads(raw)["data"]["local_ns"])))


def hop_api(url: str, n: int, rate: float, tmp: Path) -> dict[str, float]:
    """Engine -> Redis -> ``arb api --bus`` (feeder, hub) -> a WebSocket client."""
    import httpx

    from cryptoarb.bus.events import BusSink, open_transport

    prefix = f"bench{uuid.uuid4().hex[:6]}:"
    db, cfg = tmp / f"api-{prefix[:-1]}.db", tmp / f"api-{prefix[:-1]}.toml"
    cfg.write_text(f'[bus]\nprefix = "{prefix}"\n[api]\nstream_queue = {max(1000, 2 * n)}\n')
    p = _arb("user", "add", "bench", "--db", str(db), stdin=subprocess.PIPE)
    if p.communicate("bench-password\n", timeout=60)[0] is None or p.returncode:
        raise RuntimeError("arb user add failed")
    api = _arb("api", "--config", str(cfg), "--db", str(db), "--bus", url, "--port", "0")
    bus = open_transport(url, prefix=prefix)
    client: _StreamClient | None = None
    try:
        assert api.stdout is not None
        m = re.match(r"^api: (\S+)", api.stdout.readline())
        if not m:
            raise RuntimeError("arb api did not start")
        base = m.group(1)
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.post(base + "api/login", json={"username": "bench", "password": "bench-password"}, timeout=10)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        client = _StreamClient(base.replace("http://", "ws://") + "api/stream", r.json()["access_token"])
        sink = BusSink(bus, "hop-api")
        gap = 1 / rate
        t_next = time.perf_counter()
        for i in range(1, n + 1):
            wait = t_next - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            t_next += gap
            o = _opp(i)
            o.local_ns = time.time_ns()
            sink.opportunity(o)
        deadline = time.monotonic() + 60
        while len(client.got) < n and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if client is not None:
            client.stop.set()
            client.t.join(5)
        bus.close()
        api.send_signal(signal.SIGTERM)
        try:
            api.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            api.kill()
            api.communicate()
        _clean(url, prefix)
    assert client is not None
    lat = [(a - b) / 1e3 for a, b in client.got]
    if len(lat) != n:
        raise RuntimeError(f"the API stream delivered {len(lat)} of {n} events")
    return {"p50_us": pct(lat, 50), "p99_us": pct(lat, 99), "n": len(lat)}


def throughput(url: str, n: int, tmp: Path) -> dict[str, float]:
    from cryptoarb.bus.events import BusSink, open_transport

    prefix = f"bench{uuid.uuid4().hex[:6]}:"
    bus = open_transport(url, prefix=prefix, maxlen=max(100_000, n))
    p, out = _consumer(url, prefix, n, tmp)
    sink = BusSink(bus, "tp")
    opps = [_opp(i) for i in range(1, n + 1)]
    try:
        t0 = time.time_ns()
        for o in opps:
            sink.opportunity(o)
        t_pub = time.time_ns()
        p.wait(300)
    finally:
        p.kill()
    bus.close()
    r = json.loads(out.read_text())
    _clean(url, prefix)
    return {"events_per_s": n / ((r["last"] - t0) / 1e9), "publish_calls_per_s": n / ((t_pub - t0) / 1e9),
            "bytes_per_event": len(__import__("cryptoarb.bus.messages", fromlist=["encode"]).encode(
                _opp_event()))}


def _opp_event() -> Any:
    from cryptoarb.bus import messages as M

    return M.OppEvent("run-0123456789", 123456, 42, "BTC/USDT", "basis", "binance BTC/USDT",
                      "binanceusdm BTC/USDT:USDT", 0.01, 61000.0, 61010.1, 610.0, 0.0, 0.1, 1.6,
                      1723161253000000000, 1723161253001000000)


def engine_run(url: str | None, cfg: Path, files: int = 3, features: bool = True) -> dict[str, float]:
    from cryptoarb.bus.events import BusSink, open_transport
    from cryptoarb.config import load_settings
    from cryptoarb.engine.engine import Engine
    from cryptoarb.replay.reader import parse_sources
    from cryptoarb.replay.run import replay

    settings = load_settings(cfg, ml={"features": features})  # a sink turns the training-row log on
    names = [f"binance:{DATA / 'spot_btcusdt_20240808.gz'}", f"binanceusdm:{DATA / 'usdm_btcusdt_20240808.gz'}",
             f"binance:{DATA / 'spot_btcusdt_20240809.gz'}"]
    srcs = parse_sources(names[:max(2, files)])
    bus = sink = None
    prefix = f"bench{uuid.uuid4().hex[:6]}:"
    if url is not None:
        bus = open_transport(url, prefix=prefix)
        sink = BusSink(bus, "eng")
    eng = Engine(settings, ["binance", "binanceusdm"], sink=sink, run_id="eng")  # type: ignore[arg-type]
    replay(eng, srcs)
    if bus is not None:
        bus.flush(30)
        bus.close()
        _clean(url or "", prefix)
    lat = eng.latency.percentiles_us(50, 99)
    dec = eng.decision.percentiles_us(50, 99)
    return {"msg_p50": lat["p50"], "msg_p99": lat["p99"], "dec_p50": dec["p50"], "dec_p99": dec["p99"],
            "opportunities": eng.opportunities, "events": sink.seq if sink else 0}


def _clean(url: str, prefix: str) -> None:
    r = redis.Redis.from_url(url)
    keys = list(r.scan_iter(f"{prefix}*"))
    if keys:
        r.delete(*keys)
    r.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--hop-events", type=int, default=3_000)
    ap.add_argument("--rate", type=float, default=1_000.0, help="hop: events per second")
    ap.add_argument("--engine-files", type=int, default=3, help="engine: captures replayed (2 or 3)")
    ap.add_argument("--engine-only", action="store_true", help="only the engine with/without the bus")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--consume", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.consume:
        consume(a.consume[0], a.consume[1], int(a.consume[2]), a.consume[3])
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cfg = tmp / "zero.toml"
        cfg.write_text(ZERO_FEES)
        nan = {"p50_us": float("nan"), "p99_us": float("nan"), "events_per_s": float("nan"),
               "publish_calls_per_s": float("nan"), "bytes_per_event": 0}
        bus_runs = 0 if a.engine_only else a.runs
        hop_apis = [hop_api(a.redis, a.hop_events, a.rate, tmp) for _ in range(bus_runs)] or [nan]
        hops = [hop(a.redis, a.hop_events, a.rate, tmp) for _ in range(bus_runs)] or [nan]
        tps = [throughput(a.redis, a.events, tmp) for _ in range(bus_runs)] or [nan]
        rows: dict[str, list[dict[str, float]]] = {"without": [], "with_bus": [], "with_bus_no_features": []}
        plan = (("without", None, True), ("with_bus", a.redis, True), ("with_bus_no_features", a.redis, False))
        for i in range(a.runs):  # alternating, same process; the order reverses every other round
            for name, url, feats in (plan if i % 2 == 0 else plan[::-1]):
                rows[name].append(engine_run(url, cfg, a.engine_files, feats))

    def med(rows: list[dict[str, float]], k: str) -> float:
        return statistics.median(r[k] for r in rows)

    res = {
        "hop_api_us": {"p50": med(hop_apis, "p50_us"), "p99": med(hop_apis, "p99_us"), "rate": a.rate,
                       "events": a.hop_events},
        "hop_us": {"p50": med(hops, "p50_us"), "p99": med(hops, "p99_us"), "rate": a.rate, "events": a.hop_events},
        "throughput": {"events_per_s": med(tps, "events_per_s"),
                       "publish_calls_per_s": med(tps, "publish_calls_per_s"),
                       "bytes_per_event": tps[0]["bytes_per_event"], "events": a.events},
        "engine": {name: {k: med(rs, k) for k in rs[0]} for name, rs in rows.items()},
    }
    e = res["engine"]
    keys = ("msg_p50", "msg_p99", "dec_p50", "dec_p99")
    res["ratio"] = {k: e["with_bus"][k] / e["without"][k] for k in keys}
    res["ratio_no_features"] = {k: e["with_bus_no_features"][k] / e["without"][k] for k in keys}
    if a.json:
        print(json.dumps(res, indent=2))
        return
    h, t, ha = res["hop_us"], res["throughput"], res["hop_api_us"]
    print(f"runs: {a.runs} (medians)")
    print(f"hop engine -> arb api --bus -> stream client ({a.hop_events} events at {a.rate:g}/s): "
          f"p50 {ha['p50']:.0f} µs, p99 {ha['p99']:.0f} µs")
    print(f"hop engine -> consumer ({a.hop_events} events at {a.rate:g}/s): p50 {h['p50']:.0f} µs, "
          f"p99 {h['p99']:.0f} µs")
    print(f"throughput ({a.events} events): {t['events_per_s']:,.0f} events/s end to end; publish calls "
          f"{t['publish_calls_per_s']:,.0f}/s; {t['bytes_per_event']} bytes per opportunity event")
    print(f"| engine (zero-fee replay, {a.engine_files} captures) | msg p50 µs | msg p99 µs | decision p50 µs "
          "| decision p99 µs | opportunities | events published |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ("without", "with_bus", "with_bus_no_features"):
        r = e[name]
        print(f"| {name} | {r['msg_p50']:.2f} | {r['msg_p99']:.1f} | {r['dec_p50']:.2f} | {r['dec_p99']:.2f} | "
              f"{r['opportunities']:.0f} | {r['events']:.0f} |")
    for label, key in (("with_bus / without", "ratio"), ("with_bus_no_features / without", "ratio_no_features")):
        rt = res[key]
        print(f"| {label} | {rt['msg_p50']:.2f} | {rt['msg_p99']:.2f} | {rt['dec_p50']:.2f} "
              f"| {rt['dec_p99']:.2f} | | |")


if __name__ == "__main__":
    main()
