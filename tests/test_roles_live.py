"""``arb engine --live`` end to end: an engine shard (Binance spot + USDⓈ-M) on live feeds from
two local venues on 127.0.0.1 serving real recorded Binance frames (tests/wsserver.py), its events
on the machine's Redis, the recorder writing them to PostgreSQL and analytics logging them. Every
live event arrives exactly once; SIGTERM stops the engine cleanly (exit 130, its summary written,
everything it published acknowledged)."""

from __future__ import annotations

import gzip
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.busenv import (  # noqa: F401
    REDIS_URL,
    arb,
    done,
    pg_counts,
    pg_url,
    reap,
    redis_prefix,
    write_config,
)
from tests.test_roles import check_exactly_once, start_consumers, stop
from wsserver import LocalVenue, Scenario

DEPTH_FRAMES = 1_500


def frames_of(path: Path, n: int = DEPTH_FRAMES) -> tuple[bytes, list[bytes], list[bytes]]:
    """A capture's REST snapshot, the frames before it and the first ``n`` depth frames after it."""
    snapshot = b""
    prelude: list[bytes] = []
    frames: list[bytes] = []
    with gzip.open(path, "rb") as f:
        for line in f:
            raw = line.rstrip(b"\n").partition(b" ")[2]
            if raw.startswith(b'{"lastUpdateId"'):
                snapshot = raw
            elif not snapshot:
                prelude.append(raw)
            elif b"@depth" in raw[:40]:
                frames.append(raw)
                if len(frames) == n:
                    break
    assert snapshot and frames, path
    return snapshot, frames, prelude


@pytest.fixture
def venues(shared_data: Path) -> Iterator[dict[str, LocalVenue]]:
    out: dict[str, LocalVenue] = {}
    try:
        for name, file, futures in (("binance", "spot_btcusdt_20240808.gz", False),
                                    ("binanceusdm", "usdm_btcusdt_20240808.gz", True)):
            snap, frames, prelude = frames_of(shared_data / file)
            out[name] = LocalVenue(frames, snap, futures=futures, prelude=prelude,
                                   scenario=Scenario(pace_s=0.002)).start()
        yield out
    finally:
        for v in out.values():
            v.stop()


def live_config(path: Path, prefix: str, venues: dict[str, LocalVenue]) -> Path:
    write_config(path, prefix)
    api = {"binance": "public", "binanceusdm": "fapiPublic"}
    root = {"binance": "/api/v3", "binanceusdm": "/fapi/v1"}
    extra = "".join(f'[live.venues.{v}]\nws_url = "{lv.ws_url}"\n'
                    f'[live.venues.{v}.ccxt]\nurls = {{ api = {{ {api[v]} = "{lv.http_url}{root[v]}" }} }}\n'
                    for v, lv in venues.items())
    path.write_text(path.read_text() + "[bus.shards.live]\nvenues = [\"binance\", \"binanceusdm\"]\n"
                    "symbols = [\"BTC/USDT\", \"BTC/USDT:USDT\"]\n" + extra)
    return path


def test_live_engine_over_the_bus_into_postgresql(redis_prefix: str, pg_url: str,  # noqa: F811
                                                  venues: dict[str, LocalVenue], tmp_path: Path) -> None:
    cfg = live_config(tmp_path / "arb.toml", redis_prefix, venues)
    rec, ana, _port = start_consumers(cfg, REDIS_URL, pg_url, tmp_path)
    eng = arb("engine", "--live", "--shard", "live", "--config", str(cfg), "--bus", REDIS_URL, "--run-id", "live-1",
              "--metrics-port", "0", "--summary-json", str(tmp_path / "live-1.json"))
    deadline = time.monotonic() + 120
    while not all(v.done.is_set() for v in venues.values()):  # every frame sent (and read: paced)
        assert eng.poll() is None, done(eng)[1]
        assert time.monotonic() < deadline, {k: v.cursor for k, v in venues.items()}
        time.sleep(0.1)
    time.sleep(1.0)  # the last frames through the engine
    eng.send_signal(signal.SIGTERM)
    code, out = done(eng, 60)
    assert code == 130, out  # docs: 130 after SIGINT/SIGTERM, a clean stop
    assert "Traceback" not in out and "events published" in out, out
    s = json.loads((tmp_path / "live-1.json").read_text())
    assert s["unconfirmed"] == 0, s  # everything acknowledged by the recorder and analytics before exit
    assert s["published_by_stream"].get("books", 0) > 0
    for v in venues.values():
        assert v.connections == 1 and v.snapshots_served >= 1  # one clean session each, no resync
    for p in (rec, ana):
        code, out = stop(p)
        assert code == 130, out
    check_exactly_once(tmp_path, pg_url, ["live-1"])
    n = pg_counts(pg_url)
    assert n["opportunities"] == s["opportunities"] > 0  # live books of both venues were compared
    assert n["runs"] == 1


def test_a_shard_splits_its_symbols_between_its_venues(redis_prefix: str, tmp_path: Path) -> None:  # noqa: F811
    """Regression: a shard's symbols went to every venue, so a spot + perpetual shard asked spot
    for ``BTC/USDT:USDT`` (ccxt markets: unreachable offline, wrong online)."""
    from cryptoarb.config import load_settings
    from cryptoarb.engine.engine import build_catalog
    from cryptoarb.roles.engine import split_symbols

    catalog = build_catalog(load_settings())
    got = split_symbols(catalog, ["binance", "binanceusdm", "binancecoinm"],
                        ["BTC/USDT", "BTC/USDT:USDT", "BTC/USD:BTC", "SOL/USDT"])
    assert got == {"binance": ["BTC/USDT", "SOL/USDT"], "binanceusdm": ["BTC/USDT:USDT", "SOL/USDT"],
                   "binancecoinm": ["BTC/USD:BTC", "SOL/USDT"]}  # SOL/USDT: unknown here, ccxt decides
    cfg = write_config(tmp_path / "arb.toml", redis_prefix)
    code, out = done(arb("engine", "--live", "--venues", "binance,binanceusdm", "--symbols", "BTC/USDT", "--config",
                         str(cfg), "--bus", REDIS_URL, "--metrics-port", "0"), 60)
    assert code == 2 and "binanceusdm: none of the symbols (BTC/USDT) is listed on it" in out, out
    assert "Traceback" not in out


@pytest.fixture(autouse=True)
def _reap(reap: None) -> None:  # noqa: F811
    """Role processes never outlive their test."""
