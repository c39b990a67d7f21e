"""The roles as separate processes over the machine's Redis and PostgreSQL: two engines (split
venues) replaying real captures, the recorder and analytics; every opportunity, order, fill and
trade arrives exactly once in PostgreSQL and at the consumer. Bad input at start."""

from __future__ import annotations

import json
import signal
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.busenv import (  # noqa: F401
    REDIS_URL,
    arb,
    done,
    free_port,
    pg_counts,
    pg_url,
    reap,
    redis_prefix,
    shard_sources,
    write_config,
)


def start_consumers(cfg: Path, bus: str, db: str, tmp: Path, tag: str = "") -> tuple[Any, Any, int]:
    port = free_port()
    rec = arb("recorder", "--config", str(cfg), "--bus", bus, "--db", db, "--outbox", str(tmp / f"outbox{tag}.sqlite"),
              "--metrics-port", str(port), "--consumer", f"rec{tag}")
    ana = arb("analytics", "--config", str(cfg), "--bus", bus, "--metrics-port", "0", "--consumer", f"ana{tag}",
              "--events-out", str(tmp / "events.jsonl"), "--summary-json", str(tmp / "analytics.json"))
    return rec, ana, port


def run_engine(cfg: Path, bus: str, data: Path, shard: str, tmp: Path, run_id: str, *extra: str) -> Any:
    return arb("engine", *shard_sources(data, shard), "--shard", shard, "--config", str(cfg), "--bus", bus,
               "--run-id", run_id, "--metrics-port", "0", "--summary-json", str(tmp / f"{run_id}.json"), *extra)


def stop(p: Any) -> tuple[int, str]:
    p.send_signal(signal.SIGTERM)
    return done(p, 30)


def check_exactly_once(tmp: Path, db: str, runs: list[str]) -> None:
    """PostgreSQL and the analytics event log hold every opportunity, order, fill and trade of the
    engines' summaries, once."""
    sums = {r: json.loads((tmp / f"{r}.json").read_text()) for r in runs}
    n = pg_counts(db)
    assert n["runs"] == len(runs)
    assert n["opportunities"] == sum(s["opportunities"] for s in sums.values())
    assert n["arb_trades"] == sum(s["trades"] for s in sums.values())
    # both legs of each trade, and the orders the leg-risk policy sent to close failed legs
    assert n["orders"] == 2 * n["arb_trades"] + sum(s["legrisk"]["orders"] for s in sums.values())
    stored = sum(s["published"] - s["published_by_stream"].get("books", 0) for s in sums.values())
    assert n["bus_events"] == stored  # every stored event exactly once
    assert n["fills"] == sum(s["published_by_stream"]["fills"] for s in sums.values())
    lines = [json.loads(x) for x in (tmp / "events.jsonl").read_text().splitlines()]
    keys = Counter((x["run"], x["seq"]) for x in lines)
    assert keys and max(keys.values()) == 1  # nothing twice at the consumer
    for r, s in sums.items():
        opps = sorted(x["id"] for x in lines if x["run"] == r and x["kind"] == "opportunities")
        assert opps == list(range(1, s["opportunities"] + 1))
        for kind in ("orders", "fills", "trades"):
            assert sum(1 for x in lines if x["run"] == r and x["kind"] == kind) == s["published_by_stream"][kind]
        settled = {x["id"][0] for x in lines if x["run"] == r and x["kind"] == "trades" and x["id"][1] != "pending"}
        assert len(settled) == s["trades"]
    agg = json.loads((tmp / "analytics.json").read_text())
    assert {r: agg[r]["events"]["opportunities"] for r in runs} == {r: s["opportunities"] for r, s in sums.items()}


def test_two_engines_recorder_and_analytics(redis_prefix: str, pg_url: str, shared_data: Path,  # noqa: F811
                                            tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "arb.toml", redis_prefix)
    rec, ana, port = start_consumers(cfg, REDIS_URL, pg_url, tmp_path)
    e1 = run_engine(cfg, REDIS_URL, shared_data, "usdm", tmp_path, "usdm-1")
    e2 = run_engine(cfg, REDIS_URL, shared_data, "coinm", tmp_path, "coinm-1")
    for e in (e1, e2):
        code, out = done(e, 90)
        assert code == 0, out
        assert "events published" in out
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'arb_bus_received_total{group="recorder",role="recorder"}' in metrics
    assert "arb_outbox_depth" in metrics and "arb_bus_lag" in metrics
    health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read())
    assert health["ok"] and health["db_up"]
    for p in (rec, ana):
        code, out = stop(p)
        assert code == 130, out
    check_exactly_once(tmp_path, pg_url, ["usdm-1", "coinm-1"])
    s = json.loads((tmp_path / "usdm-1.json").read_text())
    assert s["unconfirmed"] == 0 and s["opportunities"] > 0


def test_unreachable_services_at_start_fail_fast(tmp_path: Path, shared_data: Path) -> None:
    cfg = write_config(tmp_path / "arb.toml", "never:")
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    dead_pg = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    procs = {
        "engine": run_engine(cfg, dead_redis, shared_data, "usdm", tmp_path, "x"),
        "recorder-pg": arb("recorder", "--config", str(cfg), "--bus", REDIS_URL, "--metrics-port", "0",
                           "--db", dead_pg, "--outbox", str(tmp_path / "o2.sqlite")),
    }
    for name, p in procs.items():
        code, out = done(p, 60)  # a hang fails here
        assert code == 2, (name, out)
        assert "error:" in out and "Traceback" not in out, (name, out)
        assert ("cannot reach Redis" in out) or ("cannot open database" in out), (name, out)
    code, out = done(arb("engine", "--config", str(cfg), "--shard", "nope", "binance:x.gz"))
    assert code == 2 and "--shard 'nope'" in out
    code, out = done(run_engine(cfg, REDIS_URL, shared_data, "usdm", tmp_path, "y", "--venues", "binance"))
    assert code == 2 and "binanceusdm: not in this engine's venues" in out.replace("captures of ", "")


@pytest.fixture(autouse=True)
def _reap(reap: None) -> None:  # noqa: F811
    """Role processes never outlive their test."""
