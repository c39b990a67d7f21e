"""The DEX venue against the real Uniswap contracts on an in-process EVM.

Local quotes must equal Router02.getAmountsOut/getAmountsIn (V2) and QuoterV2 (V3) to the wei;
pool state followed from events must equal a fresh read; bad input and RPC failures must give
clear errors and unhealthy pools that refuse to quote.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time

import pytest
from web3 import AsyncHTTPProvider
from web3.logs import DISCARD

from cryptoarb.dex import abi
from cryptoarb.dex import uniswap_v3 as v3
from cryptoarb.dex.chain import ChainClient, make_provider
from cryptoarb.dex.errors import ChainIdMismatch, RpcError, StalePoolError, UnknownPool, UnknownToken
from cryptoarb.dex.pools import V2, DexSpec, Freshness, V2Pool, V3Pool
from dex.chainenv import (
    NODE_MODULES,
    V2_INIT_CODE_HASH,
    V3_POOL_INIT_CODE_HASH,
    Env,
    _deploy,
    check_init_code_hashes,
)

pytest_plugins = ["dex.fixtures"]  # dex_env (session) and chain (snapshot per test)


def _strip(e: dict) -> dict:
    e = json.loads(json.dumps(e))

    def clean(xs: list) -> list:
        out = []
        for x in xs:
            x.pop("internalType", None)
            if "components" in x:
                x["components"] = clean(x["components"])
            out.append(x)
        return out

    for k in ("inputs", "outputs"):
        if k in e:
            e[k] = clean(e[k])
    for k in ("constant", "payable", "gas"):
        e.pop(k, None)
    return e


def test_artifacts_init_code_hashes_and_embedded_abis(dex_env: Env) -> None:
    pair_hash, pool_hash = check_init_code_hashes()
    assert pair_hash == V2_INIT_CODE_HASH  # Router02's UniswapV2Library.pairFor
    assert pool_hash == V3_POOL_INIT_CODE_HASH  # periphery's PoolAddress.computeAddress
    for name, rel in abi.ABI_SOURCES.items():
        official = {
            (e.get("type"), e.get("name")): _strip(e) for e in json.loads((NODE_MODULES / rel).read_text())["abi"]
        }
        for entry in getattr(abi, name):
            assert official[(entry["type"], entry["name"])] == entry, (name, entry["name"])


async def _client(env: Env, **kw: object) -> ChainClient:
    return await ChainClient.connect(env.provider(), env.chain_id, **kw)  # type: ignore[arg-type]


def test_v2_quotes_equal_router_for_random_sizes_and_reserves(chain: Env) -> None:
    rng = random.Random(2024)

    async def run() -> int:
        client = await _client(chain)
        pools = [await client.v2_pair(chain.specs[d], chain.weth, chain.usdc) for d in ("uniswap_v2", "sushiswap")]
        checked = 0
        for _ in range(8):
            # someone else trades: reserves change; we follow them through Sync events only
            for p in pools:
                tin, tout = rng.choice([(chain.weth, chain.usdc), (chain.usdc, chain.weth)])
                amt = int(10 ** rng.uniform(17, 19.5)) * (3000 if tin == chain.usdc else 1)
                await chain.v2_swap(p.dex.name, tin, tout, amt)
            assert await client.poll() >= len(pools)
            for p in pools:
                c = chain.w3.eth.contract(address=p.address, abi=abi.V2_PAIR)
                r0, r1, _ = await c.functions.getReserves().call()
                assert (p.reserve0, p.reserve1) == (r0, r1)
                for _ in range(7):
                    tin = rng.choice([chain.weth, chain.usdc])
                    amt = int(10 ** rng.uniform(6, 22.5)) * (3000 if tin == chain.usdc else 1)
                    assert p.quote_out(tin, amt) == await client.router_amounts_out(p, tin, amt)
                    checked += 1
                tout = rng.choice([chain.weth, chain.usdc])
                out = int(p.reserves(tout)[0] * rng.uniform(1e-9, 0.5))
                router = chain.w3.eth.contract(address=p.dex.router, abi=abi.V2_ROUTER)
                path = [p.other(tout).address, tout]
                assert p.quote_in(tout, out) == (await router.functions.getAmountsIn(out, path).call())[0]
        return checked

    assert chain.run(run()) >= 100


def test_v3_local_swap_math_equals_quoter_across_ticks_and_words(chain: Env) -> None:
    rng = random.Random(77)

    async def run() -> tuple[int, int, int]:
        client = await _client(chain)
        checked = max_crossed = max_extra_steps = 0
        for fee in (3000, 500):
            pool = await client.v3_pool(chain.specs["uniswap_v3"], chain.weth, chain.usdc, fee)
            assert pool.state is not None and len(pool.state.ticks) >= 10
            for zf in (True, False):
                tin = pool.token0 if zf else pool.token1
                top = v3.max_input(pool.state, zf)
                sizes = [int(top * 10 ** rng.uniform(-10, -0.02)) for _ in range(14)] + [top * 99 // 100]
                for amt in sizes:
                    res = v3.swap(pool.state, zf, amt)
                    local = pool.quote_out(tin.address, amt)
                    assert local == await client.quoter_v2_exact_input(pool, tin.address, amt), (fee, zf, amt)
                    checked += 1
                    max_crossed = max(max_crossed, res.ticks_crossed)
                    max_extra_steps = max(max_extra_steps, res.steps - res.ticks_crossed)
                # exact output against quoteExactOutputSingle
                q = chain.w3.eth.contract(address=pool.dex.quoter, abi=abi.V3_QUOTER_V2)
                tout = pool.other(tin)
                for amt in sizes[:4]:
                    want = pool.quote_out(tin.address, amt)
                    if want == 0:
                        continue
                    onchain = await q.functions.quoteExactOutputSingle((tin.address, tout.address, want, fee, 0)).call()
                    assert pool.quote_in(tout.address, want) == onchain[0]
        return checked, max_crossed, max_extra_steps

    checked, crossed, extra = chain.run(run())
    assert checked >= 60
    assert crossed >= 5  # sizes that cross several initialized ticks
    assert extra >= 3  # and bitmap-word boundaries (uninitialized steps)


def test_events_keep_pool_state_equal_to_a_fresh_read(chain: Env) -> None:
    async def run() -> None:
        client = await _client(chain)
        v2p = await client.v2_pair(chain.specs["uniswap_v2"], chain.weth, chain.usdc)
        pools = [await client.v3_pool(chain.specs["uniswap_v3"], chain.weth, chain.usdc, f) for f in (3000, 500)]
        p = pools[0]
        assert p.state is not None
        t = p.state.tick
        # other people's swaps, a new position around the price and a partial burn of it
        await chain.v3_swap(3000, chain.weth, chain.usdc, 3 * 10**18)
        await chain.v3_swap(500, chain.usdc, chain.weth, 20_000 * 10**18)
        rc = await chain.v3_mint(3000, (t // 60 - 3) * 60, (t // 60 + 4) * 60, 2 * 10**18, 6000 * 10**18)
        ev = chain.c["NFPM"].events.IncreaseLiquidity().process_receipt(rc, errors=DISCARD)[0]["args"]
        await chain.send(
            chain.c["NFPM"].functions.decreaseLiquidity((ev["tokenId"], ev["liquidity"] // 3, 0, 0, 2**40))
        )
        await chain.v3_swap(3000, chain.usdc, chain.weth, 9_000 * 10**18)
        await chain.v2_swap("uniswap_v2", chain.weth, chain.usdc, 10**18)
        assert await client.poll() >= 6
        fresh = await _client(chain)
        for pool in pools:
            other = await fresh.v3_pool(pool.dex, chain.weth, chain.usdc, pool.fee)
            a, b = pool.state, other.state
            assert a is not None and b is not None
            assert (a.sqrt_price_x96, a.tick, a.liquidity) == (b.sqrt_price_x96, b.tick, b.liquidity)
            assert a.ticks == b.ticks and a.words == b.words
            for amt in (10**15, 10**18):
                assert pool.quote_out(chain.weth, amt) == await client.quoter_v2_exact_input(pool, chain.weth, amt)
        other2 = await fresh.v2_pair(v2p.dex, chain.weth, chain.usdc)
        assert (v2p.reserve0, v2p.reserve1) == (other2.reserve0, other2.reserve1)

    chain.run(run())


def test_bad_input_gives_clear_errors(chain: Env) -> None:
    async def run() -> None:
        with pytest.raises(ChainIdMismatch, match=f"serves chain id {chain.chain_id}, the configuration expects 1"):
            await ChainClient.connect(chain.provider(), 1)
        client = await _client(chain)
        with pytest.raises(UnknownToken, match="no contract at"):
            await client.token(chain.trader)  # an account, not a token
        with pytest.raises(UnknownToken, match="not an ERC-20 token"):
            await client.token(chain.specs["uniswap_v2"].factory)  # a contract whose decimals() reverts
        with pytest.raises(UnknownToken, match="not an address"):
            await client.token("0x1234")
        dai = await _deploy(chain.w3, chain.deployer, "ERC20Fixed", "Dai", "DAI", 10**24, chain.deployer)
        with pytest.raises(UnknownPool, match="no pair for WETH/DAI"):
            await client.v2_pair(chain.specs["uniswap_v2"], chain.weth, dai.address)
        with pytest.raises(UnknownPool, match="fee 10000"):
            await client.v3_pool(chain.specs["uniswap_v3"], chain.weth, chain.usdc, 10000)
        bsc = DexSpec("pancakeswap_v2", V2, 56, chain.specs["uniswap_v2"].factory, chain.specs["uniswap_v2"].router, 25)
        with pytest.raises(ChainIdMismatch, match="configured for chain 56"):
            await client.v2_pair(bsc, chain.weth, chain.usdc)
        tok = await client.token(chain.usdc.lower())
        assert (tok.symbol, tok.decimals, tok.address) == ("USDC", 18, chain.usdc)

    chain.run(run())


@pytest.mark.parametrize("mode", ["error", "hang"])
def test_rpc_failure_marks_pools_unhealthy_and_no_quote(chain: Env, mode: str) -> None:
    async def run() -> None:
        provider = chain.provider()
        client = await ChainClient.connect(provider, chain.chain_id, timeout_s=0.3)
        v2p = await client.v2_pair(chain.specs["uniswap_v2"], chain.weth, chain.usdc)
        v3p = await client.v3_pool(chain.specs["uniswap_v3"], chain.weth, chain.usdc, 3000)
        assert v2p.quote_out(chain.weth, 10**18) > 0
        provider.mode = mode
        with pytest.raises(RpcError, match="timed out" if mode == "hang" else "connection reset"):
            await client.poll()
        for p in (v2p, v3p):
            assert not p.healthy and "event poll failed" in p.reason
            with pytest.raises(StalePoolError, match="unhealthy"):
                p.quote_out(chain.weth, 10**18)
        with pytest.raises(RpcError):
            await client.refresh(v2p)
        assert not v2p.healthy
        # the pool moves while we are blind; recovery re-reads it in full before quoting again
        provider.mode = None
        await chain.v2_swap("uniswap_v2", chain.weth, chain.usdc, 5 * 10**18)
        await client.poll()
        assert v2p.healthy and v3p.healthy
        assert v2p.quote_out(chain.weth, 10**18) == await client.router_amounts_out(v2p, chain.weth, 10**18)

    chain.run(run())


def test_stale_state_is_refused(chain: Env) -> None:
    async def run() -> None:
        client = await ChainClient.connect(chain.provider(), chain.chain_id, freshness=Freshness(1, 5.0))
        p = await client.v2_pair(chain.specs["uniswap_v2"], chain.weth, chain.usdc)
        p.check_fresh()
        with pytest.raises(StalePoolError, match="last confirmed"):
            p.check_fresh(now=time.monotonic() + 60)  # nobody polled for a minute
        for _ in range(3):
            await chain.v2_swap("uniswap_v2", chain.usdc, chain.weth, 10**20)
        head = await chain.w3.eth.block_number
        p.head_block = head  # the head moved on but the pool's events were not applied
        with pytest.raises(StalePoolError, match=f"head {head}"):
            p.quote_out(chain.weth, 10**18)
        await client.poll()
        assert p.quote_out(chain.weth, 10**18) == await client.router_amounts_out(p, chain.weth, 10**18)

    chain.run(run())


def test_batched_reads_through_a_batching_provider(chain: Env) -> None:
    async def run() -> None:
        provider = chain.batching_provider()
        client = await ChainClient.connect(provider, chain.chain_id)
        batched = await client.v3_pool(chain.specs["uniswap_v3"], chain.weth, chain.usdc, 500)
        plain = await (await _client(chain)).v3_pool(chain.specs["uniswap_v3"], chain.weth, chain.usdc, 500)
        assert provider.batches >= 3
        assert isinstance(batched, V3Pool) and batched.state is not None and plain.state is not None
        assert (batched.state.ticks, batched.state.words) == (plain.state.ticks, plain.state.words)
        assert batched.state.sqrt_price_x96 == plain.state.sqrt_price_x96

    chain.run(run())


def test_pool_venue_names(chain: Env) -> None:
    async def run() -> tuple[V2Pool, V3Pool]:
        client = await _client(chain)
        return (
            await client.v2_pair(chain.specs["sushiswap"], chain.weth, chain.usdc),
            await client.v3_pool(chain.specs["uniswap_v3"], chain.weth, chain.usdc, 500),
        )

    v2p, v3p = chain.run(run())
    weth = v2p.token0 if v2p.token0.symbol == "WETH" else v2p.token1
    assert v2p.venue == f"sushiswap@{chain.chain_id}" and v2p.symbol(weth) == "WETH/USDC"
    assert v3p.venue == f"uniswap_v3-500@{chain.chain_id}"


def test_follow_keeps_state_current_until_stopped(chain: Env) -> None:
    async def run() -> None:
        client = await _client(chain)
        p = await client.v2_pair(chain.specs["uniswap_v2"], chain.weth, chain.usdc)
        stop = asyncio.Event()
        task = asyncio.create_task(client.follow(0.02, stop))
        await chain.v2_swap("uniswap_v2", chain.weth, chain.usdc, 2 * 10**18)
        for _ in range(100):
            await asyncio.sleep(0.02)
            if p.block == await chain.w3.eth.block_number:
                break
        stop.set()
        await asyncio.wait_for(task, 2.0)
        assert p.quote_out(chain.weth, 10**18) == await client.router_amounts_out(p, chain.weth, 10**18)

    chain.run(run())


def test_url_endpoints(dex_env: Env) -> None:
    assert isinstance(make_provider("http://127.0.0.1:8545"), AsyncHTTPProvider)
    with pytest.raises(ValueError, match="unsupported RPC endpoint"):
        make_provider("ftp://127.0.0.1")
    with socket.socket() as s:  # a local port nobody listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def run() -> None:
        url = f"http://127.0.0.1:{port}/v3/secret-api-key?token=abc"
        with pytest.raises(RpcError, match=f"eth_chainId on http://127.0.0.1:{port}/...") as e:
            await ChainClient.connect(url, 1, timeout_s=2.0)
        assert "secret-api-key" not in str(e.value) and "token=abc" not in str(e.value)

    dex_env.run(run())
