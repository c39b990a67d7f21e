"""DEX venues in ``arb run --live``: real processes on 127.0.0.1, real Uniswap contracts.

The chain is eth-tester/py-evm with the Uniswap V2/V3 contracts (``dex/chainenv.py``), served
over HTTP JSON-RPC by ``dex/rpcserver.py``; the CEX venue is ``wsserver.LocalVenue`` replaying
real Binance BTC/USDT frames (about 61,800 USDT). A WBTC/USDT pool of test tokens is priced
with a clear gap against that book, and ``arb`` must find it, swap on chain, hedge on the paper
CEX, and book a realised PnL (gas included) equal to what the balances say. Failure paths:
bad endpoint, wrong chain, unknown pool, an RPC outage mid-run, no key (detection only).
"""

from __future__ import annotations

import asyncio
import gzip
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cryptoarb import cli
from cryptoarb.cli import app
from cryptoarb.config import ConfigError, load_settings
from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.orders import ArbStatus
from cryptoarb.dex.execution import KEY_ENV, KEY_FILE_ENV, Signer
from cryptoarb.dex.live import DexRuntime
from cryptoarb.engine import Engine
from dex.chainenv import Env
from dex.livekit import E18, BtcPool, balances, deploy_btc_pool, dex_settings, write_config
from dex.rpcserver import RpcServer
from wsserver import LocalVenue, Scenario

pytest_plugins = ["dex.fixtures"]

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-2024-08-08"
NATIVE = Decimal("3000.0")  # the configured native-coin price (no ETH book in these runs)


@pytest.fixture
def rpc(chain: Env) -> Iterator[RpcServer]:
    with RpcServer(chain.tester) as server:
        yield server


@pytest.fixture(scope="module")
def frames() -> tuple[bytes, list[bytes], list[bytes]]:
    """The real spot snapshot, the frames before it, and 300 depth diffs after it."""
    if not DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{DATA} is missing: CI must have ../shared/data")
        pytest.skip("../shared/data is absent (real exchange captures); CI has it")
    snapshot, prelude, out = b"", [], []
    with gzip.open(DATA / "spot_btcusdt_20240808.gz", "rb") as f:
        for line in f:
            raw = line.rstrip(b"\n").partition(b" ")[2]
            if raw.startswith(b'{"lastUpdateId"'):
                snapshot = raw
            elif not snapshot:
                prelude.append(raw)
            elif b"@depth" in raw[:40]:
                out.append(raw)
                if len(out) == 300:
                    break
    return snapshot, out, prelude


def arb(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, KEY_FILE_ENV)}
    env.update(COLUMNS="160", NO_COLOR="1")
    if key:
        env[KEY_ENV] = key
    return subprocess.run([sys.executable, "-m", "cryptoarb.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, stdin=subprocess.DEVNULL)


def metric(out: str, name: str, after: str = "") -> str:
    """The value cell of a summary table row."""
    text = out[out.index(after):] if after else out
    line = next(x for x in text.splitlines() if x.startswith(f"│ {name} "))
    return line.strip("│ ").split("│")[-1].strip()


def pool_cfg(pool: BtcPool, venue: str = "uniswap_v2", **kw: Any) -> dict[str, Any]:
    return {"venue": venue, "base": pool.wbtc, "quote": pool.usdt, **kw}


# -- end to end: two real processes, a real trade -------------------------------------------------
def test_arb_run_live_trades_a_cex_dex_gap_on_chain_and_books_exact_pnl(
    chain: Env, rpc: RpcServer, frames: tuple[bytes, list[bytes], list[bytes]], tmp_path: Path
) -> None:
    pool = chain.run(deploy_btc_pool(chain, price=61_000.0))  # ~1.4 % under the book's bid
    before = chain.run(balances(chain, pool))
    # the diffs go out at once, so the CEX book is still by the time the DEX side trades against
    # it: a market moving during the swap's mining would (rightly) fail a CEX leg, and this test
    # is about exact books and PnL, not about that race (tests/test_live.py paces the stream)
    venue = LocalVenue(frames[1], frames[0], prelude=frames[2], scenario=Scenario(pace_s=0.0)).start()
    try:
        cex = (f'[paper.balances.binance]\nUSDT = "100000"\nBTC = "2"\n'
               f'[live.venues.binance]\nws_url = "{venue.ws_url}"\n'
               f'[live.venues.binance.ccxt]\nurls = {{ api = {{ public = "{venue.http_url}/api/v3" }} }}\n')
        dex = dex_settings(chain, rpc.url, [pool_cfg(pool, compare_with=["binance BTC/USDT"])])
        cfg = write_config(tmp_path / "live.toml", dex, cex)
        db = tmp_path / "run.db"
        r = arb("run", "--live", "--venues", "binance,uniswap_v2", "--symbols", "BTC/USDT", "--duration", "4",
                "--no-view", "--config", str(cfg), "--db", f"sqlite:///{db}", key=chain.trader_key)
    finally:
        venue.stop()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    after = chain.run(balances(chain, pool))
    d = {k: after[k] - before[k] for k in before}

    con = sqlite3.connect(db)
    trades = con.execute("SELECT status, realized_pnl FROM arb_trades").fetchall()
    swaps = con.execute("SELECT o.side, o.status, f.qty, f.price, f.fee, f.fee_currency FROM orders o "
                        "JOIN fills f ON f.order_id = o.id WHERE o.type = 'swap'").fetchall()
    last = dict(((v, a), Decimal(x)) for v, a, x in con.execute(
        "SELECT venue, asset, amount FROM balances WHERE ts_ns = (SELECT max(ts_ns) FROM balances)"))
    n_opps = con.execute("SELECT count(*) FROM opportunities WHERE label = 'dex'").fetchone()[0]
    con.close()
    assert trades and all(s == ArbStatus.COMPLETE.value for s, _ in trades), (trades, r.stdout)
    assert n_opps >= len(trades)
    assert len(swaps) == len(trades) and all(side == "buy" and st == "filled" for side, st, *_ in swaps)

    # the DEX leg happened on chain exactly as the orders say
    assert d["WBTC"] == sum(Decimal(q) for *_, q, _p, _f, _c in swaps) * E18 > 0
    gas_eth = sum(Decimal(f) for *_, f, _c in swaps)
    assert all(c == "ETH" for *_, c in swaps)
    assert -d["ETH"] == gas_eth * E18  # every wei of gas is booked (the routers were approved in set-up)
    # realised PnL, gas included, is what the balances say: chain tokens + paper CEX
    cex_usdt = last[("binance", "USDT")] - 100_000
    cex_btc = last[("binance", "BTC")] - 2
    realized = sum(Decimal(p) for _, p in trades)
    assert realized == Decimal(d["USDT"]) / E18 + cex_usdt - gas_eth * NATIVE
    assert Decimal(d["WBTC"]) / E18 + cex_btc == 0  # hedged: no base left over
    assert realized > 0
    # the run's wallet balances are the chain's
    wallet = f"wallet@{chain.chain_id}"
    assert last[(wallet, "USDT")] * E18 == after["USDT"] and last[(wallet, "WBTC")] * E18 == after["WBTC"]

    out = r.stdout
    feeds = out[out.index("Feeds"):]
    row = next(line for line in feeds.splitlines() if line.strip().startswith("│ uniswap_v2"))
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[1] == "dex" and cells[2] == "1" and int(cells[5]) >= len(trades)  # pool updates
    assert "executing as" in out and metric(out, "DEX execution").startswith("on:")
    assert metric(out, "swaps mined / reverted / rejected / dropped") == f"{len(trades)} / 0 / 0 / 0"
    assert metric(out, "trades by status", after="DEX summary") == f"complete {len(trades)}"
    assert metric(out, "realised PnL incl. gas (quote)") == f"{realized:,.6f}"
    key = chain.trader_key[2:]
    assert key not in out + r.stderr and key.encode() not in db.read_bytes()  # nor in the stored run config


# -- start-up errors: one line, exit 2 -------------------------------------------------------------
def _invoke(cfg: Path, venues: str = "uniswap_v2", view: bool = False) -> tuple[int, str]:
    """``arb run --live`` in this process (the node's thread serves it), console 160 columns wide."""
    width = cli.console.width
    cli.console.width = 160
    try:
        res = CliRunner().invoke(app, ["run", "--live", "--venues", venues, "--duration", "1", "--no-store",
                                       "--config", str(cfg), *([] if view else ["--no-view"])])
    finally:
        cli.console.width = width
    out = res.output + (res.stderr if hasattr(res, "stderr") else "")
    return res.exit_code, out


def test_bad_endpoint_wrong_chain_and_unknown_pool_are_one_line_errors(
    chain: Env, rpc: RpcServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    pool = chain.run(deploy_btc_pool(chain, price=61_000.0))
    good = dex_settings(chain, rpc.url, [pool_cfg(pool)])
    cases: list[tuple[dict[str, Any], list[str], str]] = []
    down = dex_settings(chain, "http://127.0.0.1:9/rpc/SECRET", [pool_cfg(pool)])
    cases.append((down, ["dex chain", "eth_chainId", "127.0.0.1:9"], "uniswap_v2"))
    wrong = dex_settings(chain, rpc.url, [pool_cfg(pool)])
    wrong["chains"][0]["chain_id"] = 1
    for v in wrong["venues"]:
        v["chain_id"] = 1
    cases.append((wrong, [f"serves chain id {chain.chain_id}", "expects 1"], "uniswap_v2"))
    cases.append((dex_settings(chain, rpc.url, [{"venue": "sushiswap", "base": pool.wbtc, "quote": pool.usdt}]),
                  ["dex.pools.0 (sushiswap)", "no pair for WBTC/USDT"], "sushiswap"))
    cases.append((dex_settings(chain, rpc.url, [pool_cfg(pool, base="0x" + "12" * 20)]),
                  ["dex.pools.0", "not a token"], "uniswap_v2"))
    for i, (dex, needles, venues) in enumerate(cases):
        code, out = _invoke(write_config(tmp_path / f"c{i}.toml", dex), venues)
        assert code == 2, out
        assert "Traceback" not in out and "SECRET" not in out
        line = next(x for x in out.splitlines() if x.startswith("error:"))
        for n in needles:
            assert n in line, line
    # a DEX venue name without a pool, and a malformed setting, stop before anything runs
    code, out = _invoke(write_config(tmp_path / "ok.toml", good), venues="sushiswap")
    assert code == 2 and "dex venue 'sushiswap' has no [[dex.pools]] entry" in out
    with pytest.raises(ConfigError, match=r"dex.chains.0.rpc_url.*not an http"):
        load_settings(dex={**good, "chains": [{**good["chains"][0], "rpc_url": "ftp://node"}]})
    with pytest.raises(ConfigError, match=r"pools.1: the same pool is configured twice"):
        load_settings(dex={**good, "pools": [pool_cfg(pool), pool_cfg(pool, base=pool.wbtc.lower())]})
    with pytest.raises(ConfigError, match=r"dex.pools.0.base.*address"):
        load_settings(dex={**good, "pools": [pool_cfg(pool, base="WBTC")]})


# -- in-process runs against the node: outage, detection only ---------------------------------------
def _book(engine: Engine, bid: float) -> OrderBook:
    """A valid binance BTC/USDT book around ``bid`` (the hedge side of the pool trades)."""
    inst = engine.catalog.get("binance", "BTC/USDT")
    book = engine.books.get(inst.key) or OrderBook(inst)
    book.load_snapshot([(bid - 0.5 * i, 0.5) for i in range(40)], [(bid + 0.01 + 0.5 * i, 0.5) for i in range(40)])
    book.set_state(VALID)
    book.update_id += 1
    book.local_ns = book.exchange_ns = time.time_ns()
    engine.books[inst.key] = book
    return book


async def _until(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_rpc_outage_mid_run_makes_pools_unhealthy_and_nothing_trades_on_stale_state(
    chain: Env, rpc: RpcServer
) -> None:
    pool = chain.run(deploy_btc_pool(chain, price=61_000.0))
    settings = load_settings(storage={"enabled": False},
                             dex=dex_settings(chain, rpc.url, [pool_cfg(pool, compare_with=["binance BTC/USDT"])]))
    engine = Engine(settings, ["binance"])
    rt = DexRuntime(settings.dex, engine, ["uniswap_v2"], {"binance BTC/USDT"}, Signer(chain.trader_key))

    async def main() -> None:
        await rt.start()
        stop = asyncio.Event()
        task = asyncio.create_task(rt.run(stop))
        try:
            _book(engine, 61_000.0)  # no gap: nothing to do
            entry = rt.entries[0]
            await _until(lambda: rt.stats["uniswap_v2"].stale == 0 and entry.pool.healthy and rt.pairs[0].last)
            rpc.mode = "error"  # the node goes away
            await _until(lambda: not entry.pool.healthy)
            assert "event poll failed" in entry.pool.reason
            sent = rpc.count("eth_sendRawTransaction")
            _book(engine, 62_500.0)  # a gap opens while our pool state cannot be trusted
            await _until(lambda: rt.stats["uniswap_v2"].stale >= 3)
            await asyncio.sleep(0.3)
            assert rt.stats["uniswap_v2"].opportunities == 0 and rpc.count("eth_sendRawTransaction") == sent
            assert rt.chains[chain.chain_id].poll_failures >= 1
            rpc.mode = None  # back: state is re-read in full, then the gap is traded
            await _until(lambda: entry.pool.healthy and rt.stats["uniswap_v2"].trades >= 1)
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
            await rt.close()

    asyncio.run(main())
    runner = rt.chains[chain.chain_id].runner
    assert runner is not None and runner.stats.by_status.get("complete", 0) >= 1
    assert [o.status for o in runner.outcomes].count("mined") >= 1 and runner.stats.failed_legs == 0
    assert rt.stats["uniswap_v2"].disconnects >= 1  # failed polls show in the Feeds table


def test_without_a_key_opportunities_are_recorded_not_traded(chain: Env, rpc: RpcServer, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """DEX<->DEX among uniswap_v2, sushiswap and the uniswap_v3 0.3 % pool (WETH/USDC), through the
    CLI, with no key set: WETH is dearer on sushiswap than on the two others."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    chain.run(chain.v2_swap("sushiswap", chain.usdc, chain.weth, 12_000 * E18))  # WETH dearer on sushi
    before = chain.run(chain.balance(chain.usdc, chain.trader))
    sent = rpc.count("eth_sendRawTransaction")
    pools = [{"venue": v, "base": chain.weth, "quote": chain.usdc} for v in ("uniswap_v2", "sushiswap")]
    pools.append({"venue": "uniswap_v3", "base": chain.weth, "quote": chain.usdc, "fee": 3000})
    cfg = write_config(tmp_path / "c.toml", dex_settings(chain, rpc.url, pools))
    batches = rpc.batches
    code, out = _invoke(cfg, venues="uniswap_v2,sushiswap,uniswap_v3", view=True)  # DEX-only live view too
    assert code == 0, out
    assert "DEX pools — DETECTION ONLY, no ARB_DEX_PRIVATE_KEY" in out
    assert metric(out, "DEX execution") == "OFF (no ARB_DEX_PRIVATE_KEY): opportunities recorded, not traded"
    # each standing gap (sushiswap vs each other pool) is one opportunity, however long it stands
    assert metric(out, "opportunities", after="DEX summary") == "2"
    assert "uniswap_v3-3000@" in out and rpc.batches > batches  # V3 state read with JSON-RPC batches
    assert metric(out, "swaps mined / reverted / rejected / dropped") == "0 / 0 / 0 / 0"
    assert rpc.count("eth_sendRawTransaction") == sent
    assert chain.run(chain.balance(chain.usdc, chain.trader)) == before
