"""``--symbols all``: market discovery from the venues' ccxt metadata, served by local venues on
127.0.0.1 (Binance ``/api/v3/exchangeInfo``, Binance.US's, OKX ``/api/v5/public/instruments``),
then a live run subscribing exactly the discovered markets (issue #15)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cryptoarb.live.discovery import DiscoveryRequest, load_all, select
from discovery_venues import binance_venue, config_toml, okx_venue
from protovenue import ProtoVenue
from tests.busenv import REDIS_URL, redis_prefix  # noqa: F401


@pytest.fixture
def venues() -> Iterator[dict[str, ProtoVenue]]:
    vs = {"binance": binance_venue("binance").start(), "binanceus": binance_venue("binanceus").start(),
          "okx": okx_venue().start()}
    yield vs
    for v in vs.values():
        v.stop()


def _configs(vs: dict[str, ProtoVenue]) -> dict[str, dict[str, object]]:
    return {"binance": {"urls": {"api": {"public": vs["binance"].http_url + "/api/v3"}}},
            "binanceus": {"urls": {"api": {"public": vs["binanceus"].http_url + "/api/v3"}}},
            "okx": {"urls": {"api": {"rest": vs["okx"].http_url}},
                    "options": {"fetchMarkets": {"types": ["spot", "swap"]}}}}


def _arb(tmp_path: Path, vs: dict[str, ProtoVenue], *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "arb.toml"
    cfg.write_text(config_toml(vs))
    return subprocess.run([sys.executable, "-m", "cryptoarb.cli", "run", "--live", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def test_groups_follow_the_detector_and_keep_only_what_two_venues_list(venues: dict[str, ProtoVenue]) -> None:
    ex = asyncio.run(load_all(list(venues), _configs(venues)))
    d = select(ex, ["USDT", "USD"], ["spot", "swap"], 2)
    kept = {v: [i.symbol for i in x] for v, x in d.kept.items()}
    # XRP/USDT is in BREAK on binance (inactive): listed on one venue only; DOGE/USDT on one;
    # ETH/BTC, BTC/FDUSD, BTC/USDC are other quotes
    assert kept == {"binance": ["BTC/USDT", "ETH/USDT", "SOL/USDT"],
                    "binanceus": ["BTC/USD", "BTC/USDT", "ETH/USDT"],
                    "okx": ["BTC/USD:BTC", "BTC/USDT", "BTC/USDT:USDT", "ETH/USDT", "SOL/USDT"]}
    names = {g.name: g.label for g in d.groups}
    # the linear swap compares with USDT spot; the inverse one with USD spot (its quote)
    assert names == {"BTC/USDT": "spot", "BTC/USDT basis": "basis", "ETH/USDT": "spot", "SOL/USDT": "spot",
                     "BTC/USD basis": "basis"}
    assert d.group_sizes() == {3: 3, 2: 2}
    assert d.listed == {"binance": 7, "binanceus": 5, "okx": 6}
    # each venue asked once for its metadata (OKX: one request per instrument type)
    assert [p for p, _ in venues["binance"].requests] == ["/api/v3/exchangeInfo"]
    assert sorted(q["instType"] for _, q in venues["okx"].requests) == ["SPOT", "SWAP"]


def test_spot_only_and_max_books_keep_the_most_listed_groups(venues: dict[str, ProtoVenue]) -> None:
    ex = asyncio.run(load_all(list(venues), _configs(venues)))
    d = select(ex, ["USDT"], ["spot"], 2, max_books=6)
    assert [g.name for g in d.groups] == ["BTC/USDT", "ETH/USDT"]  # on 3 venues, before SOL/USDT on 2
    assert d.books == 6 and d.capped == 2
    d3 = select(ex, ["USDT"], ["spot"], 3)
    assert sorted(g.name for g in d3.groups) == ["BTC/USDT", "ETH/USDT"]


def test_dry_run_shows_the_counts_and_connects_nothing(venues: dict[str, ProtoVenue], tmp_path: Path) -> None:
    r = _arb(tmp_path, venues, "--venues", "binance,binanceus,okx", "--symbols", "all", "--quote", "USDT",
             "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "total books" in r.stdout and "Groups" in r.stdout
    rows = {c[0]: c[1:] for line in r.stdout.splitlines()
            if len(c := [x.strip() for x in line.split("│")[1:-1]]) == 4}
    # venue: listed, candidates (active, USDT, spot or swap, streamable), kept
    assert rows["okx"] == ["6", "4", "4"] and rows["binance"] == ["7", "3", "3"]
    assert rows["binanceus"] == ["5", "4", "2"] and rows["total books"] == ["", "", "9"]
    assert all(not v.conns for v in venues.values())  # nothing connected


@pytest.mark.parametrize(("args", "msg"), [
    (["--venues", "binance", "--min-venues", "2"], "needs at least 2 venues"),
    (["--venues", "binance,okx", "--quote", "USDX"], "quotes seen: BTC, FDUSD, USD, USDC, USDT"),
    (["--venues", "binance,binanceus", "--quote", "USDC"], "no market is listed on enough venues"),
    (["--venues", "binance,okx", "--kinds", "spot,future"], "--kinds: unknown future"),
])
def test_bad_requests_are_one_line_errors(venues: dict[str, ProtoVenue], tmp_path: Path, args: list[str],
                                          msg: str) -> None:
    r = _arb(tmp_path, venues, "--symbols", "all", "--dry-run", *args)
    assert r.returncode == 2
    assert msg in r.stderr and "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1


def test_run_subscribes_exactly_the_discovered_markets(venues: dict[str, ProtoVenue], tmp_path: Path) -> None:
    r = _arb(tmp_path, venues, "--venues", "binance,binanceus,okx", "--symbols", "all", "--quote", "USDT",
             "--min-venues", "3", "--duration", "4", "--no-view")
    assert r.returncode == 0, r.stderr
    assert "total books" in r.stdout
    # on three venues: BTC/USDT and ETH/USDT (SOL/USDT is on two); OKX's linear swap joins the
    # BTC/USDT basis group
    okx = [json.loads(t) for c in venues["okx"].conns for _, t in c.received if t != "ping"]
    assert sorted(a["instId"] for m in okx if m.get("op") == "subscribe" for a in m["args"]) == [
        "BTC-USDT", "BTC-USDT-SWAP", "ETH-USDT"]
    feeds = {c[0]: c[1:] for line in r.stdout.splitlines()
             if len(c := [x.strip() for x in line.split("│")[1:-1]]) == 8}
    for v in ("binance", "binanceus", "okx"):  # columns: path, connects, disconnects, stale, messages, bad, ...
        assert int(feeds[v][4].replace(",", "")) > 0 and feeds[v][5] == "0", (v, feeds[v])
    for name in ("binance", "binanceus"):
        subs = [json.loads(t) for c in venues[name].conns for _, t in c.received]
        streams = sorted(s for m in subs if m.get("method") == "SUBSCRIBE" for s in m["params"])
        assert streams == ["btcusdt@depth@100ms", "ethusdt@depth@100ms"], name
        depth = sorted(q["symbol"] for p, q in venues[name].requests if p == "/api/v3/depth")
        assert depth[:2] == ["BTCUSDT", "ETHUSDT"] and set(depth) == {"BTCUSDT", "ETHUSDT"}


def test_request_defaults() -> None:
    assert DiscoveryRequest() == DiscoveryRequest(("USDT", "USDC", "USD"), ("spot", "swap"), 2, None, False)


def test_the_default_quotes_are_a_net_not_a_demand(venues: dict[str, ProtoVenue], tmp_path: Path) -> None:
    """Neither lists a USD spot market: the default USDT,USDC,USD is fine; USD asked for is an error."""
    r = _arb(tmp_path, venues, "--venues", "binance,okx", "--symbols", "all", "--kinds", "spot", "--dry-run")
    assert r.returncode == 0, r.stderr
    r = _arb(tmp_path, venues, "--venues", "binance,okx", "--symbols", "all", "--kinds", "spot", "--dry-run",
             "--quote", "USD")
    assert r.returncode == 2 and "no venue lists USD" in r.stderr


def test_engine_role_discovers_too(venues: dict[str, ProtoVenue], tmp_path: Path, redis_prefix: str) -> None:  # noqa: F811
    """``arb engine --live --symbols all``: the same discovery (its defaults), then the shard runs."""
    cfg = tmp_path / "engine.toml"
    cfg.write_text(config_toml({k: venues[k] for k in ("binance", "binanceus")})
                   + f'\n[bus]\nprefix = "{redis_prefix}"\nrequired_groups = []\n')
    r = subprocess.run([sys.executable, "-m", "cryptoarb.cli", "engine", "--live", "--venues", "binance,binanceus",
                        "--symbols", "all", "--duration", "3", "--config", str(cfg), "--bus", REDIS_URL,
                        "--metrics-port", "0", "--wait", "0", "--summary-json", str(tmp_path / "s.json")],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "total books" in r.stdout
    # USDT, USDC and USD by default: BTC/USDT and ETH/USDT on both (BTC/USDC and BTC/USD on one each)
    subs = [json.loads(t) for c in venues["binanceus"].conns for _, t in c.received]
    assert sorted(s for m in subs if m.get("method") == "SUBSCRIBE" for s in m["params"]) == [
        "btcusdt@depth@100ms", "ethusdt@depth@100ms"]


def test_a_venue_whose_metadata_cannot_be_loaded_is_one_line(venues: dict[str, ProtoVenue], tmp_path: Path) -> None:
    from tests.busenv import free_port

    dead = free_port()  # nothing listens there
    cfg = tmp_path / "dead.toml"
    cfg.write_text(config_toml({"binance": venues["binance"]})
                   + f'[live.venues.okx.ccxt]\nurls = {{ api = {{ rest = "http://127.0.0.1:{dead}" }} }}\n')
    r = subprocess.run([sys.executable, "-m", "cryptoarb.cli", "run", "--live", "--config", str(cfg), "--venues",
                        "binance,okx", "--symbols", "all", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "okx: cannot load markets through ccxt" in r.stderr and "Traceback" not in r.stderr
