"""The API as a process of its own in the distributed mode: two engines (split venues) replaying
real captures, the recorder, analytics and ``arb api --bus --db`` over the machine's Redis and
PostgreSQL. A real client (a user made by ``arb user add`` on that database, a JWT from
``/api/login``, a WebSocket on ``/api/stream`` opened before the engines start) receives every
opportunity, order state, fill and trade the engines published exactly once; PostgreSQL holds
each exactly once; the API's REST listings agree with PostgreSQL. Malformed messages put on the
bus mid-run are dead-lettered by every role and stop none of them."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.busenv import (  # noqa: F401
    REDIS_URL,
    arb,
    done,
    pg_rows,
    pg_url,
    reap,
    redis_prefix,
    write_config,
)
from tests.test_roles import check_exactly_once, run_engine, start_consumers, stop

SECRET = "a-test-secret-that-is-long-enough-0123456789"
PASSWORD = "a-long-password"
#: the API's stream kinds -> the bus streams (and the analytics event log's ``kind``)
STREAM_OF = {"opportunity": "opportunities", "order": "orders", "fill": "fills", "trade": "trades"}


class StreamClient:
    """A WebSocket client on its own thread: authenticates with its first message, then keeps
    every message it receives."""

    def __init__(self, url: str, token: str, kinds: list[str]) -> None:
        self.url, self.token, self.kinds = url, token, kinds
        self.messages: list[dict[str, Any]] = []
        self.hello: dict[str, Any] = {}
        self.closed: str = ""
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        assert self.ready.wait(20), self.closed or "no hello from the stream"
        assert self.hello.get("kind") == "hello", self.hello

    def _run(self) -> None:
        try:
            with ws_connect(self.url, open_timeout=10, max_size=2**20) as ws:
                ws.send(json.dumps({"type": "auth", "token": self.token, "kinds": self.kinds}))
                self.hello = json.loads(ws.recv(timeout=10))
                self.ready.set()
                while not self._stop.is_set():
                    try:
                        raw = ws.recv(timeout=0.2)
                    except TimeoutError:
                        continue
                    self.messages.append(json.loads(raw))
        except ConnectionClosed as e:
            self.closed = f"closed by the server: {e}"
        except Exception as e:  # reported by the test
            self.closed = f"{type(e).__name__}: {e}"
        finally:
            self.ready.set()

    def close(self) -> None:
        self._stop.set()
        self._t.join(10)


def start_api(cfg: Path, db: str) -> tuple[Any, str]:
    """``arb api --bus --db`` on a free port; its base URL once it answers /health."""
    p = arb("api", "--config", str(cfg), "--db", db, "--bus", REDIS_URL, "--port", "0",
            env={"ARB_API__JWT_SECRET": SECRET})
    assert p.stdout is not None
    line = p.stdout.readline()
    m = re.match(r"^api: (\S+)", line)
    assert m, line + (p.stderr.read() if p.poll() is not None and p.stderr else "")
    base = m.group(1)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "health", timeout=5).status_code == 200:
                return p, base
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the API did not answer /health"
        time.sleep(0.1)


def _metric(port: int, series: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return float(next(line for line in text.splitlines() if line.startswith(series + " ")).rsplit(" ", 1)[1])


def add_user(db: str, name: str) -> None:
    p = arb("user", "add", name, "--role", "viewer", "--db", db, stdin=-1)
    out, errs = p.communicate(PASSWORD + "\n", timeout=60)
    assert p.returncode == 0, out + errs


def expected_events(tmp: Path) -> Counter[tuple[str, str, int]]:
    """(bus stream, run, seq) of every opportunity, order state, fill and trade analytics got."""
    lines = [json.loads(x) for x in (tmp / "events.jsonl").read_text().splitlines()]
    return Counter((x["kind"], x["run"], x["seq"]) for x in lines)


def got_events(client: StreamClient) -> Counter[tuple[str, str, int]]:
    return Counter((STREAM_OF[m["kind"]], m["data"]["run_id"], m["data"]["seq"]) for m in client.messages
                   if m["kind"] in STREAM_OF)


def total(c: httpx.Client, path: str, run: str) -> int:
    r = c.get(path, params={"run": run, "limit": 1})
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def test_api_process_streams_every_event_once(redis_prefix: str, pg_url: str, shared_data: Path,  # noqa: F811
                                              tmp_path: Path) -> None:
    runs = ["usdm-a", "coinm-a"]
    # the API is a required group too: an engine ends once the API has taken every event
    cfg = write_config(tmp_path / "arb.toml", redis_prefix, groups=("recorder", "analytics", "api"))
    add_user(pg_url, "watcher")
    api, base = start_api(cfg, pg_url)
    http = httpx.Client(base_url=base, timeout=20)
    r = http.post("/api/login", json={"username": "watcher", "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    client = StreamClient(base.replace("http://", "ws://") + "api/stream", token, list(STREAM_OF))
    assert sorted(client.hello["data"]["kinds"]) == sorted(STREAM_OF)
    try:
        rec, ana, port = start_consumers(cfg, REDIS_URL, pg_url, tmp_path)
        engines = [run_engine(cfg, REDIS_URL, shared_data, run.split("-")[0], tmp_path, run) for run in runs]
        r = redis.Redis.from_url(REDIS_URL)
        bad = [b"\x01not msgpack", msgspec.msgpack.encode(["?", "usdm-a", 1]), msgspec.msgpack.encode(["o", "x"])]
        for i, data in enumerate(bad):  # among the engines' events: every role meets them
            r.xadd(f"{redis_prefix}{('orders', 'opportunities', 'trades')[i]}", {"d": data})
        for e in engines:
            code, out = done(e, 120)
            assert code == 0, out
        series = 'arb_bus_bad_total{group="recorder",role="recorder"}'
        deadline = time.monotonic() + 10  # the role publishes its metrics once a second
        while (recorder_bad := _metric(port, series)) < len(bad) and time.monotonic() < deadline:
            time.sleep(0.2)
        for p in (rec, ana):
            code, out = stop(p)
            assert code == 130, out
            assert f"{len(bad)} malformed dead-lettered" in out, out
        assert recorder_bad == len(bad)
        # each of the three groups (recorder, analytics, api) dead-lettered each one, with its reason
        dlq = r.xrange(f"{redis_prefix}dlq")
        assert len(dlq) == 3 * len(bad) and all(f[b"reason"] for _, f in dlq)
        assert sorted(f[b"d"] for _, f in dlq) == sorted(bad * 3)
        r.close()
        check_exactly_once(tmp_path, pg_url, runs)
        want = expected_events(tmp_path)
        assert want and max(want.values()) == 1
        sums = {r: json.loads((tmp_path / f"{r}.json").read_text()) for r in runs}
        by_stream = Counter(k[0] for k in want)
        assert by_stream == {s: sum(x["published_by_stream"].get(s, 0) for x in sums.values())
                             for s in STREAM_OF.values()}
        # the engines ended once the API acknowledged everything: the stream delivers it soon after
        deadline = time.monotonic() + 60
        while sum(got_events(client).values()) < len(want) and not client.closed and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # anything extra (a duplicate) would arrive now
        got = got_events(client)
        assert not client.closed, client.closed
        assert max(got.values()) == 1, [k for k, n in got.items() if n > 1][:5]  # nothing twice
        assert set(got) == set(want), (len(got), len(want), sorted(set(want) - set(got))[:5])

        # PostgreSQL holds exactly these events (by identity), once each
        stored = pg_rows(pg_url, "SELECT key, kind FROM bus_events WHERE kind IN ('opp', 'order', 'fill', 'trade')")
        keys = Counter(k for k, _ in stored)
        assert max(keys.values()) == 1
        assert set(keys) == {f"{run}:{seq}" for _s, run, seq in got}

        # each order's latest state in PostgreSQL is the last one the stream showed
        last: dict[tuple[str, str], str] = {}
        for m in client.messages:
            if m["kind"] == "order":
                d = m["data"]
                prev = last.get((d["run_id"], d["id"]))
                if prev is None or d["seq"] > int(prev.split("|")[0]):
                    last[(d["run_id"], d["id"])] = f"{d['seq']}|{d['status']}"
        rows = pg_rows(pg_url, "SELECT run_id, id, status FROM orders")
        assert {(r, i): s for r, i, s in rows} == {k: v.split("|")[1] for k, v in last.items()}

        # the API's REST listings agree with PostgreSQL
        for run in runs:
            for path, table in (("/api/opportunities", "opportunities"), ("/api/trades", "arb_trades"),
                                ("/api/orders", "orders"), ("/api/fills", "fills")):
                n = pg_rows(pg_url, f"SELECT count(*) FROM {table} WHERE run_id = '{run}'")[0][0]
                assert total(http, path, run) == n, (path, run)
            items = http.get("/api/trades", params={"run": run, "limit": 1000}).json()["items"]
            db_trades = pg_rows(pg_url, f"SELECT id, status FROM arb_trades WHERE run_id = '{run}'")
            assert sorted((t["id"], t["status"]) for t in items) == sorted(db_trades)
            settled = {m["data"]["id"]: m["data"]["status"] for m in client.messages
                       if m["kind"] == "trade" and m["data"]["run_id"] == run and m["data"]["closed_ns"]}
            assert settled == dict(db_trades)
        runs_listed = {x["id"] for x in http.get("/api/runs").json()["items"]}
        assert set(runs) <= runs_listed
    finally:
        client.close()
        http.close()
    api.send_signal(signal.SIGTERM)
    code, out = done(api, 30)
    assert "Traceback" not in out, out


@pytest.fixture(autouse=True)
def _reap(reap: None) -> None:  # noqa: F811
    """Role processes never outlive their test."""
