"""The bus: events on the wire, the in-memory and Redis transports behind one interface, the
consumer loop (de-duplication, dead letters, claims), and the recorder's exactly-once writes."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis

from cryptoarb.bus import messages as M
from cryptoarb.bus.base import BusError
from cryptoarb.bus.events import BusSink, EventConsumer, Seen, open_transport
from cryptoarb.bus.memory import MemoryTransport
from cryptoarb.bus.outbox import Outbox
from cryptoarb.config import load_settings
from cryptoarb.engine.engine import Engine
from cryptoarb.obs.metrics import METRICS, Metrics
from cryptoarb.replay.reader import parse_sources
from cryptoarb.replay.run import replay
from cryptoarb.roles.consumers import HubFeeder
from cryptoarb.storage import connect
from tests.busenv import REDIS_URL, pg_counts, pg_url, redis_prefix, write_config  # noqa: F401

D = Decimal


def _order(run: str, seq: int, status: str = "filled", updated: int = 2) -> M.OrderEvent:
    return M.OrderEvent(run, seq, f"{run}-1b", 1, "binance", "BTC/USDT", "buy", "limit_ioc", D("0.001"),
                        D("61000.1"), D("61000"), status, D("0.001"), D("61.0001"), D("0"), "BTC", "", 1, updated)


def test_events_round_trip_exactly_and_compactly() -> None:
    ev = _order("r1", 7)
    data = M.encode(ev)
    assert M.decode(data) == ev
    assert M.decode(data).qty == D("0.001") and isinstance(M.decode(data).qty, Decimal)
    assert len(data) < 100  # an array and a one-letter tag, no field names
    assert M.key(ev) == "r1:7"
    for bad in (b"", b"\x93xx", b"\xc1", M.encode(ev)[:-3], b'{"json": 1}'):
        with pytest.raises(M.BadMessage):
            M.decode(bad)


def test_seen_drops_repeats_and_stays_small() -> None:
    s = Seen(limit=100)
    assert s.add("a", 1) and s.add("a", 3) and not s.add("a", 1) and not s.add("a", 3)
    assert s.add("a", 2) and ("a", 2) in s and ("a", 4) not in s
    assert s.add("b", 1)  # runs are separate
    assert s._wm["a"] == 3 and not s._above["a"]
    for i in range(10, 400, 2):  # gaps (another member has the odd ones): bounded
        s.add("c", i)
    assert len(s._above["c"]) <= 100


def _consume_all(c: EventConsumer, rounds: int = 20) -> None:
    for _ in range(rounds):
        c.poll(10)


def test_memory_consumer_groups_ack_claim_and_dead_letters() -> None:
    bus = MemoryTransport()
    got: list[M.Event] = []
    sink = BusSink(bus, "r1")
    sink.order(_ev_order := _fake_order())
    bus.publish("orders", b"\x00garbage")
    sink.order(_ev_order)
    bad: list[str] = []
    c = EventConsumer(bus, "g", "c1", ["orders"], got.extend, on_bad=bad.append)
    _consume_all(c)
    assert [e.seq for e in got] == [1, 2] and c.bad == 1 and bad == ["orders"]
    assert bus.entries("dlq") and bus.entries("dlq")[0].startswith(b"orders 2 ")
    assert c.sub.pending() == 0 and c.sub.lag() == 0
    # a second group sees everything again; a member that reads and dies leaves its entries pending
    dead = bus.subscribe("g2", "dead", ["orders"])
    assert len(dead.read(10, 0)) == 3 and dead.pending() == 3
    later: list[M.Event] = []
    c2 = EventConsumer(bus, "g2", "alive", ["orders"], later.extend, claim_idle_ms=0)
    _consume_all(c2)
    assert [e.seq for e in later] == [1, 2] and c2.claimed == 3 and c2.sub.pending() == 0


def test_a_role_that_raises_gets_the_batch_again() -> None:
    bus = MemoryTransport()
    BusSink(bus, "r").order(_fake_order())
    calls: list[int] = []

    def flaky(evs: list[M.Event]) -> None:
        calls.append(len(evs))
        if len(calls) == 1:
            raise RuntimeError("database down")

    c = EventConsumer(bus, "g", "c", ["orders"], flaky)
    with pytest.raises(RuntimeError):
        c.poll(0)
    c.sub = bus.subscribe("g", "c", ["orders"])  # the role restarted under its name
    c.poll(0)
    assert calls == [1, 1] and c.received == 1 and c.sub.pending() == 0


def _fake_order() -> Any:
    from cryptoarb.core.orders import Order

    return Order("r-1b", "binance", "BTC/USDT", "buy", D("0.001"), D("61000.1"), D("61000"), 1)


def test_metrics_exposition_lists_every_metric() -> None:
    m = Metrics("engine")
    m.set("arb_messages", 12, "binance")
    m.observe_ns("arb_decision_latency_seconds", [500, 1500, 2_000_000_000])
    text = m.exposition().decode()
    for name, (kind, _, _) in METRICS.items():
        assert f"# TYPE {name}{'_total' if kind == 'counter' else ''} {kind}" in text, name
    assert 'arb_messages_total{role="engine",venue="binance"} 12.0' in text
    assert 'arb_decision_latency_seconds_bucket{le="1e-06",role="engine"} 1.0' in text
    assert 'arb_decision_latency_seconds_bucket{le="+Inf",role="engine"} 3.0' in text
    with pytest.raises(KeyError):
        m.set("arb_nope", 1)


def _replay_to(transport: Any, tmp: Path, data: Path, shard: str = "usdm", run: str = "r1") -> Engine:
    from tests.busenv import shard_sources

    settings = load_settings(write_config(tmp / "c.toml", "x:"))
    srcs = parse_sources(shard_sources(data, shard))
    sink = BusSink(transport, run)
    eng = Engine(settings, [s.venue for s in srcs], sink=sink, run_id=run)
    sink.start_run("replay", {})
    replay(eng, srcs)
    sink.end_run("replay")
    return eng


def test_replay_over_the_memory_bus_into_sqlite_exactly_once(shared_data: Path, tmp_path: Path) -> None:
    """Every event of a real replay reaches the database once, even delivered three times."""
    bus = MemoryTransport()
    eng = _replay_to(bus, tmp_path, shared_data)
    db = connect(str(tmp_path / "db.sqlite"))
    box = Outbox(tmp_path / "outbox.sqlite", db)
    try:
        for name in ("a", "b", "c"):  # three groups = three full deliveries, one outbox
            c = EventConsumer(bus, name, "m", M.ALL_KINDS, box.put, seen=Seen())
            _consume_all(c)
        assert box.drain(20)
    finally:
        box.close()
    from sqlalchemy import text

    with db.connect() as conn:
        n = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
             for t in ("opportunities", "arb_trades", "orders", "fills", "runs")}
        ended = conn.execute(text("SELECT ended_ns FROM runs")).scalar_one()
        statuses = {r[0] for r in conn.execute(text("SELECT status FROM orders"))}
    s = eng.summary()
    assert s["opportunities"] > 0 and s["trades"] > 0
    assert n["opportunities"] == s["opportunities"] and n["arb_trades"] == s["trades"]
    assert n["orders"] == 2 * s["trades"] and n["runs"] == 1 and ended
    assert n["fills"] == sum(len(o.fills) for t in eng.executor.settled() for o in (t.buy_order, t.sell_order))
    assert "new" not in statuses  # the latest state of every order, not the first


def test_hub_feeder_feeds_the_api_stream_once(redis_prefix: str, shared_data: Path,  # noqa: F811
                                             tmp_path: Path) -> None:
    """A real replay over the machine's Redis into the API's StreamHub, every event delivered
    twice (a republish after a Redis restart looks like this): each reaches the hub once."""
    from cryptoarb.api.hub import StreamHub

    bus = open_transport(REDIS_URL, prefix=redis_prefix)
    try:
        eng = _replay_to(bus, tmp_path, shared_data, "usdm", run="h1")
        assert bus.flush(20)
        hub = StreamHub()
        c = EventConsumer(bus, "api", "a", M.ALL_KINDS, HubFeeder(hub).handle)
        while c.poll(100):
            pass
        again = open_transport(REDIS_URL, prefix=redis_prefix)
        sink = BusSink(again, "h1")  # the same run republished from the start
        for data in _all_entries(redis_prefix):
            again.publish(data[0], data[1])
        assert again.flush(20)
        again.close()
        while c.poll(100):
            pass
        assert sink.seq == 0 and c.duplicates == eng.sink.seq  # type: ignore[union-attr]
        inbox = list(hub._inbox)
        kinds = [k for k, _, _ in inbox]
        assert len(inbox) == eng.sink.seq  # type: ignore[union-attr]
        assert kinds.count("opportunity") == eng.opportunities and kinds.count("trade") == 2 * len(
            eng.executor.settled())
        opp = next(p for k, p, _ in inbox if k == "opportunity")
        assert opp["run_id"] == "h1" and isinstance(opp["profit_quote"], float)
        trade = next(p for k, p, _ in inbox if k == "trade" and p["closed_ns"])
        assert isinstance(trade["realized_pnl"], str)
    finally:
        bus.close()


def test_hub_feeder_never_outruns_a_client_that_reads() -> None:
    """Regression: a bus batch went into the hub at once and the hub's fan-out put all of it on
    a client's queue before the client's sender could run: a batch larger than the queue dropped
    (close code 1008) a client that reads everything."""
    import asyncio

    from cryptoarb.api.hub import StreamHub

    events = [M.OppEvent("r", i, i, "BTC/USDT", "basis", "binance BTC/USDT", "binanceusdm BTC/USDT:USDT", 0.01,
                         61000.0, 61010.1, 610.0, 0.0, 0.1, 1.6, 1, 2) for i in range(1, 501)]

    async def scenario() -> tuple[bool, list[int]]:
        hub = StreamHub(queue_size=20)
        runner = asyncio.ensure_future(hub.run())
        await asyncio.sleep(0)
        client = hub.subscribe(["opportunity"])
        got: list[int] = []

        async def sender() -> None:  # as the stream's sender: takes each message as it comes
            while True:
                _ts, msg = await client.queue.get()
                got.append(json.loads(msg)["data"]["seq"])

        reader = asyncio.ensure_future(sender())
        await asyncio.to_thread(HubFeeder(hub).handle, events)  # one bus batch, from the feeder's thread
        for _ in range(500):
            if len(got) == len(events) or client.dropped:
                break
            await asyncio.sleep(0.01)
        reader.cancel()
        runner.cancel()
        return client.dropped, got

    dropped, got = asyncio.run(scenario())
    assert not dropped and got == list(range(1, 501))


def _all_entries(prefix: str) -> list[tuple[str, bytes]]:
    r = redis.Redis.from_url(REDIS_URL)
    out = []
    for kind in M.ALL_KINDS:
        for _, fields in r.xrange(f"{prefix}{kind}"):
            out.append((kind, fields[b"d"]))
    r.close()
    return out


def test_bad_bus_urls_are_one_line_errors() -> None:
    with pytest.raises(BusError, match="use memory:// or redis://"):
        open_transport("kafka://x")
    with pytest.raises(BusError, match=r"cannot reach Redis at 127\.0\.0\.1:1/0"):
        open_transport("redis://127.0.0.1:1/0")  # refused at once: no client-side retry loop


# -- the Redis transport, against the machine's Redis ------------------------------------------

def test_redis_groups_acks_bounded_streams_claims_and_dlq(redis_prefix: str) -> None:  # noqa: F811
    bus = open_transport(REDIS_URL, prefix=redis_prefix, maxlen=1000, required_groups=("rec",))
    r = redis.Redis.from_url(REDIS_URL)
    try:
        sink = BusSink(bus, "r1")
        for _ in range(3000):
            sink.order(_fake_order())
        assert bus.flush(20)
        assert r.xlen(f"{redis_prefix}orders") < 3000  # MAXLEN ~ 1000 trims (approximately)
        r.xadd(f"{redis_prefix}orders", {"d": b"\x01not msgpack"})
        r.xadd(f"{redis_prefix}orders", {"other": b"field"})
        # a member reads a batch and dies before acknowledging it
        dead = bus.subscribe("rec", "dead", ["orders"])
        taken = dead.read(100, 0)
        assert len(taken) == 100 and dead.pending() == 100
        got: list[M.Event] = []
        c = EventConsumer(bus, "rec", "alive", ["orders"], got.extend, claim_idle_ms=200)
        time.sleep(0.25)
        while c.poll(50):
            pass
        assert c.claimed == 100 and c.bad == 2
        seqs = [e.seq for e in got]
        assert len(seqs) == len(set(seqs)) and seqs[-1] == 3000
        assert c.sub.pending() == 0 and c.sub.lag() == 0
        assert r.xlen(f"{redis_prefix}dlq") == 2
        assert bus.wait_confirmed(10)  # type: ignore[attr-defined]
        assert bus.backlog() == 0
    finally:
        bus.close()
        r.close()


def test_redis_replay_into_postgresql_exactly_once(redis_prefix: str, pg_url: str, shared_data: Path,  # noqa: F811
                                                   tmp_path: Path) -> None:
    bus = open_transport(REDIS_URL, prefix=redis_prefix, required_groups=("recorder",))
    try:
        eng = _replay_to(bus, tmp_path, shared_data, "coinm", run="c1")
        assert bus.flush(20)
        db = connect(pg_url)
        box = Outbox(tmp_path / "outbox.sqlite", db)
        c = EventConsumer(bus, "recorder", "m", M.ALL_KINDS, box.put)
        while c.poll(100):
            pass
        # delivered again (a republish after a Redis restart looks like this): written once
        c2 = EventConsumer(bus, "recorder-2", "m", M.ALL_KINDS, box.put)
        while c2.poll(100):
            pass
        assert box.drain(20)
        box.close()
        db.dispose()
        n = pg_counts(pg_url)
        s = eng.summary()
        assert n["opportunities"] == s["opportunities"] > 0 and n["arb_trades"] == s["trades"] > 0
        assert n["bus_events"] == c.received == eng.sink.seq  # type: ignore[union-attr]  # every event once
        assert bus.wait_confirmed(10)  # type: ignore[attr-defined]
    finally:
        bus.close()


def test_dashboard_and_scrape_config_match_the_metrics() -> None:
    """infra/: every metric is plotted, every plotted name exists, every role is scraped."""
    import json
    import re

    import yaml

    from cryptoarb.cli.roles import DEFAULT_PORTS

    root = Path(__file__).resolve().parents[1] / "infra"
    dash = json.loads((root / "grafana" / "cryptoarb-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {re.sub(r"_(total|bucket)$", "", n) for e in exprs for n in re.findall(r"\barb_[a-z_]+", e)}
    assert used == set(METRICS), (used ^ set(METRICS))
    prom = yaml.safe_load((root / "prometheus" / "prometheus.yml").read_text())
    ports = {int(t.rsplit(":", 1)[1]) for job in prom["scrape_configs"] for sc in job["static_configs"]
             for t in sc["targets"]}
    assert set(DEFAULT_PORTS.values()) <= ports
    assert all(job["metrics_path"] == "/metrics" for job in prom["scrape_configs"])


def test_bus_bench_runs_small(redis_prefix: str) -> None:  # noqa: F811
    """The documented benchmark runs (tiny counts; its figures are in docs/benchmarks.md)."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / "bench" / "bus_bench.py"), "--redis", REDIS_URL, "--runs", "1",
                        "--events", "300", "--hop-events", "100", "--rate", "2000", "--engine-files", "1", "--json"],
                       capture_output=True, text=True, timeout=300, cwd=root)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["hop_us"]["p50"] > 0 and res["hop_api_us"]["p50"] > 0 and res["throughput"]["events_per_s"] > 0
    assert res["engine"]["with_bus"]["events"] > 0 and res["engine"]["without"]["events"] == 0
    assert res["engine"]["with_bus"]["opportunities"] == res["engine"]["without"]["opportunities"]
