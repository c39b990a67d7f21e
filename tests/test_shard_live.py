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
import signal
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
    # every book becomes valid at once (snapshots in parallel): 5 trades open together, and
    # max_open_trades is a count per process (per shard), so the single process needs room for 5
    text = "[live]\nstale_after_s = 120\n[detector]\nmax_notional_quote = 1000\n[paper]\nmax_open_trades = 8\n"
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
    store = [] if "--db" in args else ["--no-store"]
    return [sys.executable, "-m", "cryptoarb.cli", "run", "--live", "--venues", "binance,binanceus",
            "--symbols", ",".join(SYMBOLS), "--no-view", "--config", str(cfg), *store, *args]


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


def _stored(db: Path) -> dict[str, Any]:
    """What the run left in its database, independent of ids and clocks."""
    import sqlite3

    with sqlite3.connect(db) as c:
        q = c.execute
        last_pnl = q("SELECT realised, total FROM pnl ORDER BY ts_ns DESC, id DESC LIMIT 1").fetchone()
        last_ts = q("SELECT max(ts_ns) FROM balances").fetchone()[0]
        return {
            "runs": q("SELECT count(*) FROM runs").fetchone()[0],
            "opportunities": sorted(q('SELECT "group", qty_base, profit_quote FROM opportunities').fetchall()),
            "orders": sorted(q("SELECT venue, symbol, side, qty, status, filled_qty FROM orders").fetchall()),
            "fills": q("SELECT count(*) FROM fills").fetchone()[0],
            "trades": sorted(q('SELECT "group", status, realized_pnl FROM arb_trades').fetchall()),
            "pnl": last_pnl,
            "balances": sorted(q("SELECT venue, asset, amount FROM balances WHERE ts_ns = ?", (last_ts,)).fetchall()),
        }


def test_two_shards_decide_what_one_process_decides(venues: dict[str, ProtoVenue], tmp_path: Path) -> None:
    cfg = _config(tmp_path, venues)
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    r1 = _arb(cfg, "--duration", "8", "--summary-json", str(one), "--db", f"sqlite:///{tmp_path}/one.db")
    assert r1.returncode == 0, r1.stderr
    r2 = _arb(cfg, "--duration", "15", "--shards", "2", "--summary-json", str(two), "--db",
              f"sqlite:///{tmp_path}/two.db")
    assert r2.returncode == 0, r2.stderr
    assert "Traceback" not in r1.stderr + r2.stderr
    s1, s2 = json.loads(one.read_text()), json.loads(two.read_text())
    assert s1["opportunities"] == len(SYMBOLS) and s1["trades"] == len(SYMBOLS)  # the input does what it says
    assert _decisions(s2) == _decisions(s1)
    assert [sh["completed"] for sh in s2["shards"]] == [True, True]
    assert sorted(sh["books"] for sh in s2["shards"]) == [4, 6]  # 5 groups of 2 books, never split
    assert len({sh["pid"] for sh in s2["shards"]}) == 2
    # the parent stores what the shards did as one run: the same rows as the single process
    d1, d2 = _stored(tmp_path / "one.db"), _stored(tmp_path / "two.db")
    assert d1["runs"] == 1 and len(d1["opportunities"]) == len(SYMBOLS) and d1["fills"] >= 2 * len(SYMBOLS)
    assert d2 == d1


def _children(pid: int) -> list[int]:
    """The shard processes of a parent."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for c in (task / "children").read_text().split():
            if b"cryptoarb.shard" in Path(f"/proc/{c}/cmdline").read_bytes():
                out.append(int(c))
    return out


@pytest.fixture
def start() -> Iterator[Any]:
    """Start ``arb run`` in its own session; whatever a failing test left running is killed."""
    procs: list[subprocess.Popen[str]] = []

    def go(cfg: Path, *args: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(_arb_args(cfg, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env(), stdin=subprocess.DEVNULL, start_new_session=True)
        procs.append(p)
        return p

    yield go
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()


def _running(p: subprocess.Popen[str], shards: int, vs: dict[str, ProtoVenue] | None = None) -> list[int]:
    """Wait until the parent has its shards and (``vs`` given) every book has been served its
    snapshot, plus a moment for the decisions and the paper fills."""
    deadline = time.monotonic() + 90
    kids: list[int] = []
    while time.monotonic() < deadline:
        assert p.poll() is None, p.communicate()
        kids = _children(p.pid)
        if len(kids) == shards and (vs is None or all(len(v.requests) >= len(SYMBOLS) for v in vs.values())):
            time.sleep(1.5)
            return kids
        time.sleep(0.1)
    raise AssertionError(f"the shards never started or never got their books ({len(kids)} shard(s))")


def _gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() and b"zombie" not in Path(f"/proc/{pid}/status").read_bytes().lower()
                   for pid in pids)


@pytest.mark.parametrize("how", ["SIGINT to the process group", "SIGTERM to the parent"])
def test_a_signal_stops_every_shard_cleanly(venues: dict[str, ProtoVenue], tmp_path: Path, how: str,
                                          start: Any) -> None:
    out = tmp_path / "s.json"
    p = start(_config(tmp_path, venues), "--duration", "120", "--shards", "2", "--summary-json", str(out))
    kids = _running(p, 2, venues)
    if how.startswith("SIGINT"):
        os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: every process gets it
    else:
        p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "died" not in err
    s = json.loads(out.read_text())
    assert s["interrupted"] is True and [sh["completed"] for sh in s["shards"]] == [True, True]
    assert s["opportunities"] == len(SYMBOLS) and s["trades"] == len(SYMBOLS)  # nothing lost on the way
    assert _gone(kids)


def test_the_kill_switch_reaches_every_shard(venues: dict[str, ProtoVenue], tmp_path: Path, start: Any) -> None:
    """SIGUSR1 (what ``arb kill`` sends) reaches the parent, which kills every shard."""
    out = tmp_path / "s.json"
    p = start(_config(tmp_path, venues), "--duration", "120", "--shards", "2", "--summary-json", str(out))
    _running(p, 2, venues)
    p.send_signal(signal.SIGUSR1)
    time.sleep(1.5)  # carried out at each shard's next tick (2 ms), wherever the message is
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    s = json.loads(out.read_text())
    assert s["risk"]["killed"] is True
    assert all(sh["completed"] for sh in s["shards"])


def test_a_dead_shard_is_reported_and_the_run_stops(venues: dict[str, ProtoVenue], tmp_path: Path,
                                                    start: Any) -> None:
    out = tmp_path / "s.json"
    p = start(_config(tmp_path, venues), "--duration", "120", "--shards", "2", "--summary-json", str(out))
    kids = _running(p, 2, venues)
    os.kill(kids[0], signal.SIGKILL)
    _, err = p.communicate(timeout=60)  # no hang: the other shard is stopped, the run ends
    assert p.returncode == 1, err
    died = [line for line in err.splitlines() if "died" in line]
    assert len(died) == 1 and died[0].startswith("error: shard ") and "exit code -9" in died[0], err
    assert "Traceback" not in err
    s = json.loads(out.read_text())
    assert sorted(sh["completed"] for sh in s["shards"]) == [False, True]
    assert _gone(kids)


def test_bad_shard_counts_are_one_line_errors(venues: dict[str, ProtoVenue], tmp_path: Path) -> None:
    cfg = _config(tmp_path, venues)
    for args, says in ((("--shards", "0"), "--shards 0: give 1"),
                       (("--shards", "6"), "--shards 6: the run has only 5 independent cross-venue group(s)"),
                       (("--shards", "2", "--trade"), "--shards: --trade (real orders) runs in one process only")):
        r = _arb(cfg, "--duration", "1", *args)
        assert r.returncode == 2, (args, r.stderr)
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and says in r.stderr, (args, r.stderr)


def test_shards_stop_when_the_parent_is_killed(venues: dict[str, ProtoVenue], tmp_path: Path, start: Any) -> None:
    """A parent SIGKILLed cannot tell its shards: they see its socket close and stop by
    themselves (no orphan keeps trading)."""
    p = start(_config(tmp_path, venues), "--duration", "120", "--shards", "2")
    kids = _running(p, 2)
    p.kill()
    p.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _gone(kids):
        time.sleep(0.2)
    assert _gone(kids)


def test_a_shard_that_cannot_run_says_why_in_one_line(venues: dict[str, ProtoVenue], tmp_path: Path) -> None:
    """A shard's own error (here: a WebSocket URL its feed refuses) is the parent's one line."""
    cfg = _config(tmp_path, venues)
    cfg.write_text(cfg.read_text().replace(venues["binanceus"].ws_url, "ftp://127.0.0.1:1/nope"))
    r = _arb(cfg, "--duration", "30", "--shards", "2")
    assert r.returncode == 1, r.stderr
    died = [line for line in r.stderr.splitlines() if "died" in line]
    assert died and all("FeedError: binanceus: bad WebSocket URL" in line for line in died), r.stderr
    assert "Traceback" not in r.stderr
