"""The real Uniswap contracts on an in-process EVM (eth-tester + py-evm), deployed once per session.

Bytecode and ABIs come from the npm packages in ``tests/dex/node_modules`` (``npm ci`` there):
``@uniswap/v2-core`` (factory, pair), ``@uniswap/v2-periphery`` (Router02, WETH9),
``@uniswap/v3-core`` (factory, pool), ``@uniswap/v3-periphery`` (NonfungiblePositionManager,
SwapRouter, QuoterV2) and ``@openzeppelin/contracts`` (ERC20PresetFixedSupply for USDC-like
tokens with a real symbol). The V2 router and V3 periphery compute pool addresses with hard-coded
init-code hashes; :func:`check_init_code_hashes` verifies the deployed pair/pool bytecode matches.

Two V2 deployments stand for Uniswap V2 and SushiSwap (same pair code, own factory and router);
two V3 pools (0.3 % and 0.05 %) carry several positions so swaps cross initialized ticks and
bitmap words. Tests share one deployment and isolate themselves with EVM snapshots.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import dataclass, field
from math import isqrt
from pathlib import Path
from typing import Any, TypeVar

from eth_tester import EthereumTester, PyEVMBackend
from eth_utils import keccak
from web3 import AsyncWeb3
from web3.datastructures import NamedElementOnion
from web3.logs import DISCARD
from web3.providers.async_base import AsyncJSONBaseProvider
from web3.providers.eth_tester import AsyncEthereumTesterProvider

from cryptoarb.dex.pools import V2, V3, DexSpec
from cryptoarb.dex.v3math import get_tick_at_sqrt_ratio

T = TypeVar("T")
NODE_MODULES = Path(__file__).resolve().parent / "node_modules"
NPM_COMMAND = "cd tests/dex && npm ci --ignore-scripts"
V2_INIT_CODE_HASH = "96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f"  # UniswapV2Library
V3_POOL_INIT_CODE_HASH = "e34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"  # PoolAddress.sol

ARTIFACTS = {
    "WETH9": "@uniswap/v2-periphery/build/WETH9.json",
    "ERC20Fixed": "@openzeppelin/contracts/build/contracts/ERC20PresetFixedSupply.json",
    "V2Factory": "@uniswap/v2-core/build/UniswapV2Factory.json",
    "V2Pair": "@uniswap/v2-core/build/UniswapV2Pair.json",
    "V2Router02": "@uniswap/v2-periphery/build/UniswapV2Router02.json",
    "V3Factory": "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json",
    "V3Pool": "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json",
    "NFPM": "@uniswap/v3-periphery/artifacts/contracts/NonfungiblePositionManager.sol/NonfungiblePositionManager.json",
    "SwapRouter": "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json",
    "QuoterV2": "@uniswap/v3-periphery/artifacts/contracts/lens/QuoterV2.sol/QuoterV2.json",
}
DEADLINE = 2**40
MAX_UINT = 2**256 - 1


def artifacts_missing() -> str | None:
    """Why the contract artifacts cannot be loaded, with the command that fixes it."""
    missing = [rel for rel in ARTIFACTS.values() if not (NODE_MODULES / rel).is_file()]
    if missing:
        return (
            f"Uniswap contract artifacts are missing ({missing[0]} and {len(missing) - 1} more) under {NODE_MODULES}; "
            f"install them with: {NPM_COMMAND}"
        )
    return None


def artifact(name: str) -> tuple[list[dict[str, Any]], str]:
    d = json.loads((NODE_MODULES / ARTIFACTS[name]).read_text())
    bc = d["bytecode"] if isinstance(d["bytecode"], str) else d["bytecode"]["object"]
    return d["abi"], bc if bc.startswith("0x") else "0x" + bc


def check_init_code_hashes() -> tuple[str, str]:
    """keccak of the V2 pair and V3 pool creation code, as the periphery hard-codes them."""
    _, pair = artifact("V2Pair")
    _, pool = artifact("V3Pool")
    return keccak(hexstr=pair).hex(), keccak(hexstr=pool).hex()


class TestProvider(AsyncEthereumTesterProvider):
    """The eth-tester provider with switches for failures: ``mode`` 'error' or 'hang'."""

    def __init__(self, tester: EthereumTester) -> None:
        super().__init__()
        self.ethereum_tester = tester
        self.mode: str | None = None
        self.requests = 0

    async def make_request(self, method: Any, params: Any) -> Any:
        self.requests += 1
        if self.mode == "error":
            raise ConnectionError("simulated RPC failure: connection reset by peer")
        if self.mode == "hang":
            await asyncio.sleep(3600)
        return await super().make_request(method, params)


class BatchingTestProvider(AsyncJSONBaseProvider):
    """A JSON-RPC provider with batch support in front of eth-tester (each batch answered
    request by request), so the client's batched-read path runs as it does over HTTP."""

    def __init__(self, tester: EthereumTester) -> None:
        super().__init__()
        self.inner = TestProvider(tester)
        self.batches = 0
        self._fn: Any = None

    async def _call(self, method: Any, params: Any) -> Any:
        if self._fn is None:
            self._fn = await self.inner.request_func(AsyncWeb3(self.inner), NamedElementOnion([]))
        return await self._fn(method, params)

    async def make_request(self, method: Any, params: Any) -> Any:
        return await self._call(method, params)

    async def make_batch_request(self, requests: list[tuple[Any, Any]]) -> Any:
        self.batches += 1
        return [await self._call(m, p) for m, p in requests]

    async def is_connected(self, show_traceback: bool = False) -> bool:
        return True


@dataclass
class Env:
    loop: asyncio.AbstractEventLoop
    tester: EthereumTester
    w3: AsyncWeb3
    chain_id: int
    deployer: str
    trader: str
    trader_key: str
    c: dict[str, Any] = field(default_factory=dict)  # deployed contracts by name
    specs: dict[str, DexSpec] = field(default_factory=dict)
    pools: dict[str, str] = field(default_factory=dict)  # name -> address

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def provider(self) -> TestProvider:
        return TestProvider(self.tester)

    def batching_provider(self) -> BatchingTestProvider:
        return BatchingTestProvider(self.tester)

    @property
    def weth(self) -> str:
        return str(self.c["WETH"].address)

    @property
    def usdc(self) -> str:
        return str(self.c["USDC"].address)

    async def send(self, fn: Any, sender: str | None = None, value: int = 0) -> Any:
        h = await fn.transact({"from": sender or self.deployer, "value": value})
        rc = await self.w3.eth.wait_for_transaction_receipt(h)
        assert rc["status"] == 1, f"set-up transaction reverted: {fn}"
        return rc

    async def balance(self, token: str, who: str) -> int:
        c = self.c["WETH"] if token == self.weth else self.w3.eth.contract(address=token, abi=self.c["USDC"].abi)
        return int(await c.functions.balanceOf(who).call())

    async def v2_swap(self, dex: str, token_in: str, token_out: str, amount_in: int) -> None:
        """A swap by someone else (the deployer): moves a V2 pool's price."""
        r = self.c[f"{dex}_router"]
        await self.send(
            r.functions.swapExactTokensForTokens(amount_in, 0, [token_in, token_out], self.deployer, DEADLINE)
        )

    async def v3_swap(self, fee: int, token_in: str, token_out: str, amount_in: int) -> None:
        params = (token_in, token_out, fee, self.deployer, DEADLINE, amount_in, 0, 0)
        await self.send(self.c["SwapRouter"].functions.exactInputSingle(params))

    async def v3_mint(self, fee: int, lower: int, upper: int, weth_amt: int, usdc_amt: int) -> Any:
        t0, t1 = sorted([self.weth, self.usdc], key=str.lower)
        amount0, amount1 = (weth_amt, usdc_amt) if t0 == self.weth else (usdc_amt, weth_amt)
        params = (t0, t1, fee, lower, upper, amount0, amount1, 0, 0, self.deployer, DEADLINE)
        return await self.send(self.c["NFPM"].functions.mint(params))


async def _deploy(w3: AsyncWeb3, sender: str, name: str, *args: Any) -> Any:
    abi_, bc = artifact(name)
    h = await w3.eth.contract(abi=abi_, bytecode=bc).constructor(*args).transact({"from": sender})
    rc = await w3.eth.wait_for_transaction_receipt(h)
    assert rc["status"] == 1, f"deploying {name} reverted"
    return w3.eth.contract(address=rc["contractAddress"], abi=abi_)


def sqrt_price_x96(price_token1_per_token0: float) -> int:
    """sqrtPriceX96 for a human price with equal decimals (both test tokens have 18)."""
    return isqrt(int(price_token1_per_token0 * 2**64) << 128)


async def build(env: Env) -> None:
    w3, dep = env.w3, env.deployer
    c = env.c
    c["WETH"] = await _deploy(w3, dep, "WETH9")
    c["USDC"] = await _deploy(w3, dep, "ERC20Fixed", "USD Coin", "USDC", 10**33, dep)
    await env.send(c["WETH"].functions.deposit(), value=100_000 * 10**18)
    for dex in ("uniswap_v2", "sushiswap"):
        f = c[f"{dex}_factory"] = await _deploy(w3, dep, "V2Factory", dep)
        r = c[f"{dex}_router"] = await _deploy(w3, dep, "V2Router02", f.address, c["WETH"].address)
        env.specs[dex] = DexSpec(dex, V2, env.chain_id, f.address, r.address, fee_bps=30)
    c["V3Factory"] = await _deploy(w3, dep, "V3Factory")
    c["NFPM"] = await _deploy(w3, dep, "NFPM", c["V3Factory"].address, c["WETH"].address, dep)
    c["SwapRouter"] = await _deploy(w3, dep, "SwapRouter", c["V3Factory"].address, c["WETH"].address)
    c["QuoterV2"] = await _deploy(w3, dep, "QuoterV2", c["V3Factory"].address, c["WETH"].address)
    env.specs["uniswap_v3"] = DexSpec(
        "uniswap_v3", V3, env.chain_id, c["V3Factory"].address, c["SwapRouter"].address, quoter=c["QuoterV2"].address
    )
    spenders = [c["uniswap_v2_router"], c["sushiswap_router"], c["NFPM"], c["SwapRouter"]]
    for tok in (c["WETH"], c["USDC"]):
        for sp in spenders:
            await env.send(tok.functions.approve(sp.address, MAX_UINT))
    # V2 pairs: Uniswap at 3000 USDC/WETH, SushiSwap at 3000 too (tests open gaps themselves)
    for dex, weth_amt, usdc_amt in (("uniswap_v2", 100, 300_000), ("sushiswap", 60, 180_000)):
        r = c[f"{dex}_router"]
        await env.send(
            r.functions.addLiquidity(env.weth, env.usdc, weth_amt * 10**18, usdc_amt * 10**18, 0, 0, dep, DEADLINE)
        )
        env.pools[dex] = await c[f"{dex}_factory"].functions.getPair(env.weth, env.usdc).call()
    # V3 pools around 3000 USDC/WETH
    t0, t1 = sorted([env.weth, env.usdc], key=str.lower)
    price = 3000.0 if t0 == env.weth else 1 / 3000.0
    sp = sqrt_price_x96(price)
    center = get_tick_at_sqrt_ratio(sp)
    for fee, spacing in ((3000, 60), (500, 10)):
        await env.send(c["NFPM"].functions.createAndInitializePoolIfNecessary(t0, t1, fee, sp))
        env.pools[f"v3_{fee}"] = await c["V3Factory"].functions.getPool(t0, t1, fee).call()
        base = center // spacing * spacing
        if fee == 3000:
            # a thin full-range position, then stacked ranges: many initialized ticks near the price
            full = 887272 // spacing * spacing
            await env.v3_mint(fee, -full, full, 20 * 10**18, 20 * 3000 * 10**18)
            for hw in (2, 5, 9, 14, 30):
                await env.v3_mint(fee, base - hw * spacing, base + (hw + 1) * spacing, 5 * 10**18, 15_000 * 10**18)
            # two ranges above the price sharing a boundary with equal liquidity: that tick ends
            # up with liquidityNet 0 but liquidityGross > 0 (still initialized, still a step)
            lo, mid, hi = base + 6 * spacing, base + 12 * spacing, base + 18 * spacing
            rc = await env.v3_mint(fee, lo, mid, 10**18, 10**18)
            first = c["NFPM"].events.IncreaseLiquidity().process_receipt(rc, errors=DISCARD)[0]["args"]["liquidity"]
            rc = await env.v3_mint(fee, mid, hi, 2 * 10**18, 2 * 10**18)
            ev = c["NFPM"].events.IncreaseLiquidity().process_receipt(rc, errors=DISCARD)[0]["args"]
            extra = ev["liquidity"] - first
            assert extra > 0
            await env.send(c["NFPM"].functions.decreaseLiquidity((ev["tokenId"], extra, 0, 0, DEADLINE)))
        else:
            # narrow liquidity over several bitmap words (a word is 2560 ticks at spacing 10)
            for k in range(-6, 7):
                lo = (base + k * 700 - 350) // spacing * spacing
                await env.v3_mint(fee, lo, lo + 1400, 3 * 10**18, 9_000 * 10**18)
    # the trader: funded with WETH and USDC; gas is paid in ETH from its genesis balance
    await env.send(c["WETH"].functions.transfer(env.trader, 1_000 * 10**18))
    await env.send(c["USDC"].functions.transfer(env.trader, 3_000_000 * 10**18))


_ENV: Env | None = None


def get_env() -> Env:
    """Deploy once per process (fixtures imported into several modules share it)."""
    global _ENV
    if _ENV is None:
        loop = asyncio.new_event_loop()
        tester = EthereumTester(PyEVMBackend())
        w3 = AsyncWeb3(TestProvider(tester))
        accounts = tester.get_accounts()
        keys = tester.backend.account_keys
        env = Env(
            loop,
            tester,
            w3,
            chain_id=loop.run_until_complete(w3.eth.chain_id),
            deployer=accounts[0],
            trader=accounts[1],
            trader_key=keys[1].to_hex(),
        )
        loop.run_until_complete(build(env))
        _ENV = env
    return _ENV
