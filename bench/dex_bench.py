"""DEX quoting benchmark: local exact math against an eth_call round trip, on the real contracts.

    python bench/dex_bench.py [--runs 7] [--scale 1.0]

Deploys Uniswap V2 and V3 (npm artifacts in tests/dex/node_modules; ``cd tests/dex && npm ci
--ignore-scripts``) on an in-process EVM (eth-tester + py-evm), then times, median of ``--runs``
runs of many calls each:

- V2 quote (``get_amount_out``), V2 optimal size (pool vs pool closed form; pool vs a 50-level
  book by level walk) and the whole CEX<->V2 detection (size + exact re-pricing + Opportunity);
- V3 quote by local simulation, within one tick range and across several initialized ticks;
- the same quotes by eth_call: Router02.getAmountsOut and QuoterV2.quoteExactInputSingle.

The eth_call figures are for an in-process EVM, so they are a floor: a real node adds the
network round trip (typically 1-100 ms) on top.

The pools are loaded once and quoted for minutes: their freshness limit (``max_age_s``, 30 s by
default, what keeps a live run from trading on old state) would make the detector refuse them
half-way, so the benchmark lifts it -- it times the arithmetic on fixed state. Each row is printed
as soon as it is measured; ``--scale`` multiplies the call counts (0.01 for a quick check).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.instruments import Fees, Instrument
from cryptoarb.dex import uniswap_v2 as v2
from cryptoarb.dex import uniswap_v3 as v3
from cryptoarb.dex.arb import DexArbDetector, DexLimits, GasModel
from cryptoarb.dex.chain import ChainClient
from cryptoarb.dex.pools import Freshness
from dex.chainenv import artifacts_missing, get_env


def per_call_us(fn: Callable[[], Any], runs: int, calls: int) -> float:
    """Median over ``runs`` of the mean time per call (µs) of ``calls`` calls."""
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - t) / calls * 1e6)
    return statistics.median(samples)


def per_call_us_async(env: Any, fn: Callable[[], Any], runs: int, calls: int) -> float:
    async def many() -> None:
        for _ in range(calls):
            await fn()

    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        env.run(many())
        samples.append((time.perf_counter() - t) / calls * 1e6)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the call counts (0.01: a quick check)")
    args = ap.parse_args(argv)
    why = artifacts_missing()
    if why:
        sys.exit(why)
    env = get_env()
    runs = args.runs

    def n(calls: int) -> int:
        return max(1, round(calls * args.scale))

    async def load() -> tuple[Any, ...]:
        client = await ChainClient.connect(env.provider(), env.chain_id)
        uni = await client.v2_pair(env.specs["uniswap_v2"], env.weth, env.usdc)
        sushi = await client.v2_pair(env.specs["sushiswap"], env.weth, env.usdc)
        pool = await client.v3_pool(env.specs["uniswap_v3"], env.weth, env.usdc, 3000)
        return client, uni, sushi, pool, await client.token(env.weth)

    client, uni, sushi, pool, weth = env.run(load())
    for p in (uni, sushi, pool):  # fixed state, timed for minutes: not a live quote (see above)
        p.freshness = Freshness(max_block_lag=p.freshness.max_block_lag, max_age_s=math.inf)
    r_in, r_out = uni.reserves(env.usdc)
    s_in, s_out = sushi.reserves(env.weth)
    inst = Instrument("binance", "ETH/USDC", "ETH", "USDC", lot_size=0.0001, fees=Fees(0.001, 0.001))
    book = OrderBook(inst)
    book.load_snapshot([(3080.0 - 0.5 * i, 0.25) for i in range(50)], [(3081.0 + 0.5 * i, 0.25) for i in range(50)])
    book.set_state(VALID)
    det = DexArbDetector(DexLimits(max_notional_quote=1e9), GasModel(10**9, 3000.0))
    st = pool.state
    assert st is not None
    zf = pool.zero_for_one(env.usdc)
    small = 1000 * 10**18  # 1000 USDC: stays within one tick range
    big = v3.max_input(st, zf) // 2  # crosses several initialized ticks
    big_res = v3.swap(st, zf, big)
    tin = env.usdc

    width = 52
    print(f"{'what':<{width}}  {'median µs/call':>15}  note")
    print(f"{'-' * width}  {'-' * 15}  ----")

    class Rows(list[tuple[str, float, str]]):
        """Each row printed the moment it is measured: a failure later loses nothing."""

        def append(self, row: tuple[str, float, str]) -> None:
            super().append(row)
            name, us, note = row
            print(f"{name:<{width}}  {us:>15.2f}  {note}", flush=True)

    rows = Rows()
    rows.append(
        (
            "V2 quote: get_amount_out (local, exact)",
            per_call_us(lambda: v2.get_amount_out(10**21, r_in, r_out), runs, n(20000)),
            "",
        )
    )
    rows.append(
        (
            "V2 optimal size: pool vs pool (closed form)",
            per_call_us(lambda: v2.optimal_pool_vs_pool(r_in, r_out, s_in, s_out), runs, n(20000)),
            "",
        )
    )
    rq, rb = r_in / 1e18, r_out / 1e18
    rows.append(
        (
            "V2 optimal size: pool vs 50-level book (walk)",
            per_call_us(lambda: v2.optimal_buy_vs_bids(rq, rb, 30, book.bids(), 0.001), runs, n(5000)),
            "",
        )
    )
    rows.append(
        (
            "V2 quote + optimal size + exact re-price (detector)",
            per_call_us(lambda: det.cex_vs_pool(book, uni, weth, 1), runs, n(2000)),
            "CEX<->V2, both directions",
        )
    )
    rows.append(
        (
            "V3 quote: local simulation, 1 range",
            per_call_us(lambda: v3.quote_exact_input(st, zf, small), runs, n(2000)),
            f"{v3.swap(st, zf, small).steps} step",
        )
    )
    rows.append(
        (
            "V3 quote: local simulation, across ticks",
            per_call_us(lambda: v3.quote_exact_input(st, zf, big), runs, n(500)),
            f"{big_res.steps} steps, {big_res.ticks_crossed} ticks crossed",
        )
    )
    rows.append(
        (
            "V2 quote: eth_call Router02.getAmountsOut",
            per_call_us_async(env, lambda: client.router_amounts_out(uni, tin, 10**21), runs, n(30)),
            "in-process EVM",
        )
    )
    rows.append(
        (
            "V3 quote: eth_call QuoterV2, 1 range",
            per_call_us_async(env, lambda: client.quoter_v2_exact_input(pool, tin, small), runs, n(20)),
            "in-process EVM",
        )
    )
    rows.append(
        (
            "V3 quote: eth_call QuoterV2, across ticks",
            per_call_us_async(env, lambda: client.quoter_v2_exact_input(pool, tin, big), runs, n(20)),
            "in-process EVM",
        )
    )

    async def same() -> bool:
        return pool.quote_out(tin, big) == await client.quoter_v2_exact_input(pool, tin, big)

    if not env.run(same()):
        sys.exit("local V3 quote differs from QuoterV2")


if __name__ == "__main__":
    main()
