"""Gas is charged in each pair's own quote currency (issue 7, item 7(b)).

A live DEX run (``DexRuntime`` against the real Uniswap V2 contracts behind the local JSON-RPC
node) follows three kinds of pairs on one chain: WBTC/WETH (quote = the wrapped native coin:
gas at 1), WETH/USDC (the pool itself prices ETH in USDC) and WBTC/DAI (nothing prices ETH in
DAI: flagged at start, never evaluated). One USD price for every pair used to charge the
WBTC/WETH gap 3,000x its gas in "WETH" and refuse a real opportunity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from cryptoarb.config import ConfigError, load_settings
from cryptoarb.dex.execution import KEY_ENV, KEY_FILE_ENV
from cryptoarb.dex.live import DexRuntime
from cryptoarb.engine import Engine
from dex.chainenv import Env
from dex.livekit import E18, add_v2_liquidity, deploy_token, dex_settings
from dex.rpcserver import RpcServer

pytest_plugins = ["dex.fixtures"]

GWEI = 20  # fixed gas price for sizing


@pytest.fixture
def rpc(chain: Env) -> Iterator[RpcServer]:
    with RpcServer(chain.tester) as server:
        yield server


def test_gas_is_converted_into_each_pairs_quote_currency(
    chain: Env, rpc: RpcServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)

    async def deploy() -> tuple[str, str]:
        wbtc = await deploy_token(chain, "Wrapped BTC", "WBTC")
        dai = await deploy_token(chain, "Dai", "DAI")
        # WBTC at 20 WETH on uniswap_v2, 5 % dearer on sushiswap: a gap worth ~0.5 WETH
        await add_v2_liquidity(chain, "uniswap_v2", wbtc, chain.weth, 50 * E18, 1000 * E18)
        await add_v2_liquidity(chain, "sushiswap", wbtc, chain.weth, 50 * E18, 1050 * E18)
        for dex in ("uniswap_v2", "sushiswap"):
            await add_v2_liquidity(chain, dex, wbtc, dai, 10 * E18, 600_000 * E18)
        return wbtc, dai

    wbtc, dai = chain.run(deploy())
    pools: list[dict[str, Any]] = []
    for dex in ("uniswap_v2", "sushiswap"):
        pools += [{"venue": dex, "base": wbtc, "quote": chain.weth}, {"venue": dex, "base": chain.weth,
                  "quote": chain.usdc}, {"venue": dex, "base": wbtc, "quote": dai}]
    dex = dex_settings(chain, rpc.url, pools)
    # the configured price is in USDT (a book not in this run, so its fixed fallback): it must
    # price neither the WETH-quoted nor the USDC-quoted nor the DAI-quoted pairs
    dex["chains"][0].update(gas_price_gwei=GWEI, native_price_from="binance ETH/USDT", native_price=3000.0)
    del dex["chains"][0]["native_prices"]
    settings = load_settings(storage={"enabled": False}, dex=dex)
    engine = Engine(settings, ["binance"])
    rt = DexRuntime(settings.dex, engine, ["uniswap_v2", "sushiswap"], set(), None)

    async def main() -> None:
        await rt.start()
        try:
            found = rt.evaluate()
            gases = {s.opp.opportunity.group: round(s.opp.gas_quote, 6) for s in rt.recent}
            assert found == 1, f"the WBTC/WETH gap was refused; gas charged per pair: {gases}"
            opp = rt.recent[-1].opp
            assert opp.opportunity.group == "WBTC/WETH" and opp.gas.quote_symbol == "WETH"
            expected = opp.gas_units * GWEI * 10**9 / 1e18  # in WETH: ~0.006, not ~18
            assert opp.gas_quote == pytest.approx(expected) and opp.gas_quote < 0.01
            assert opp.opportunity.profit_quote > 0.1
            labels = {(p.a.label, p.b.label if p.b else "") for p in rt.pairs}
            assert labels == {("uniswap_v2 WBTC/WETH", "sushiswap WBTC/WETH"),
                              ("uniswap_v2 WETH/USDC", "sushiswap WETH/USDC")}
            note = next(n for n in rt.notes if "WBTC/DAI" in n)  # flagged at start, never evaluated
            assert "no price of ETH in DAI" in note and "native_prices.DAI" in note
            by_label = {p.a.label: p for p in rt.pairs}
            weth_gas = rt.gas_model(by_label["uniswap_v2 WBTC/WETH"])
            usdc_gas = rt.gas_model(by_label["uniswap_v2 WETH/USDC"])
            assert weth_gas is not None and usdc_gas is not None
            assert (weth_gas.native_price_quote, weth_gas.quote_symbol) == (1.0, "WETH")
            # the pool itself prices ETH in USDC (the configured 3,000 is in USDT, another currency)
            assert usdc_gas.quote_symbol == "USDC"
            assert usdc_gas.native_price_quote == pytest.approx(3000.0)
        finally:
            await rt.close()

    asyncio.run(main())


def test_a_fixed_native_price_says_its_currency() -> None:
    base = {"chain_id": 5, "rpc_url": "http://127.0.0.1:1"}
    with pytest.raises(ConfigError, match=r"native_price is in the currency of native_price_from.*native_prices"):
        load_settings(dex={"chains": [{**base, "native_price": 3000.0}]})
    with pytest.raises(ConfigError, match=r"native_prices.USDT must be a positive price"):
        load_settings(dex={"chains": [{**base, "native_prices": {"USDT": 0}}]})
    ok = load_settings(dex={"chains": [{**base, "native_price_from": "binance ETH/USDT", "native_price": 3000.0,
                                         "native_prices": {"DAI": 2999.5}}]})
    assert ok.dex.chains[0].native_prices == {"DAI": 2999.5}
