"""Sharded live runs (``arb run --live --shards N``) against local Binance-protocol venues on
127.0.0.1: the same opportunities, trades and PnL as the single-process run over the same input;
clean stops (duration, SIGINT, SIGTERM, the kill switch); a dead shard reported, never a hang.

The input is deterministic whatever the timing: each venue serves every market's REST snapshot
and one depth diff chaining onto it, then stays quiet. Venue ``binanceus`` quotes every market
above ``binance`` (a cross after both fees), so each group gives exactly one opportunity, traded
against books that no longer move.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protovenue import Conn, ProtoVenue

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT"]
# per venue: (best bid, best ask); binanceus sits 2 % above binance: buy there, sell here
TOPS = {"binance": (99.9, 100.0), "binanceus": (102.0, 102.1)}


def _levels(side: str, best: float) -> list[list[str]]:
    sign = -1 if side == "bids" else 1
    return [[f"{best + sign * 0.1 * i:.2f}", f"{0.5 + 0.25 * i:.4f}"] for i in range(10)]


def _venue(name: str) -> ProtoVenue:
    bid, ask = TOPS[name]

    async def session(conn: Conn) -> None:
        while True:
            m = await conn.recv_json()
            if m.get("method") != "SUBSCRIBE":
                continue
            await conn.send({"result": None, "id": m.get("id")})
            for stream in m["params"]:
                native = stream.split("@")[0].upper()
                # one diff chaining onto the snapshot (lastUpdateId 100): a level far from the top
                data = {"e": "depthUpdate", "E": int(time.time() * 1000), "s": native, "U": 101, "u": 101,
                        "b": [[f"{bid - 5:.2f}", "1.0"]], "a": []}
                await conn.send({"stream": stream, "data": data})

    def depth(_q: dict[str, str]) -> bytes:
        return json.dumps({"lastUpdateId": 100, "bids": _levels("bids", bid), "asks": _levels("asks", ask)}).encode()

    return ProtoVenue(session, rest={"/api/v3/depth": depth})


@pytest.fixture
def venues() -> Iterator[dict[str, ProtoVenue]]:
    vs = {n: _venue(n).start() for n in TOPS}
    try:
        yield vs
    finally:
        for v in vs.values():
            v.stop()


def _config(tmp_path: Path, vs: dict[str, ProtoVenue], extra: str = "") -> Path:
    text = "[storage]\nenabled = false\n[live]\nstale_after_s = 120\n[detector]\nmax_notional_quote = 1000\n"
    for name, v in vs.items():
        text += (f'[live.venues.{name}]\nws_url = "{v.ws_url}"\n'
                 f'[live.venues.{name}.ccxt]\nurls = {{ api = {{ public = "{v.http_url}/api/v3" }} }}\n')
        text += f"[paper.balances.{name}]\nUSDT = 10000\n" + "".join(
            f"{s.split('/')[0]} = 100\n" for s in SYMBOLS)
    for name in vs:
        for s in SYMBOLS:
            text += f'[[instruments]]\nvenue = "{name}"\nsymbol = "{s}"\ntick_size = 0.01\nlot_size = 0.001\n'
    cfg = tmp_path / "shard.toml"
    cfg.write_text(text + extra)
    return cfg


def _arb_args(cfg: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cryptoarb.cli", "run", "--live", "--venues", "binance,binanceus",
            "--symbols", ",".join(SYMBOLS), "--no-view", "--config", str(cfg), *args]


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}


def _arb(cfg: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_arb_args(cfg, *args), capture_output=True, text=True, env=_env(), timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _decisions(s: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the number of processes."""
    return {"opportunities": s["opportunities"], "trades": s["trades"], "pnl": s["pnl"],
            "realized_pnl": s["realized_pnl"], "expected_pnl": s["expected_pnl"],
            "trades_by_status": s["trades_by_status"],
            "books": {k: (b["bids"], b["asks"]) for k, b in s["books"].items()},
            "refused": s["risk"]["refused"]}


def test_two_shards_decide_what_one_process_decides(venues: dict[str, ProtoVenue], tmp_path: Path) -> None:
    cfg = _config(tmp_path, venues)
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    r1 = _arb(cfg, "--duration", "6", "--summary-json", str(one))
    assert r1.returncode == 0, r1.stderr
    r2 = _arb(cfg, "--duration", "10", "--shards", "2", "--summary-json", str(two))
    assert r2.returncode == 0, r2.stderr
    assert "Traceback" not in r1.stderr + r2.stderr
    s1, s2 = json.loads(one.read_text()), json.loads(two.read_text())
    assert s1["opportunities"] == len(SYMBOLS) and s1["trades"] == len(SYMBOLS)  # the input does what it says
    assert _decisions(s2) == _decisions(s1)
    assert [sh["completed"] for sh in s2["shards"]] == [True, True]
    assert sorted(sh["books"] for sh in s2["shards"]) == [4, 6]  # 5 groups of 2 books, never split
    assert len({sh["pid"] for sh in s2["shards"]}) == 2
