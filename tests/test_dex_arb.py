"""CEX<->DEX and DEX<->DEX arbitrage on the real Uniswap contracts, end to end.

A price gap is opened between a pool and a (simulated) CEX book, or between two pools; the
detector finds and sizes it; the DEX legs are executed on chain through the routers (the CEX
leg on the paper venue); the realised PnL, gas included, must equal the change of the balances
on chain (and on the CEX) exactly. Failure paths: reverted, rejected and dropped transactions,
stale pools, nonces and the private key's handling.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from cryptoarb.core.book import OrderBook
from cryptoarb.core.orders import ArbStatus, OrderStatus
from cryptoarb.dex import settle as settle_mod
from cryptoarb.dex.arb import DexOpportunity, pool_out
from cryptoarb.dex.chain import ChainClient
from cryptoarb.dex.errors import SecretError, StalePoolError
from cryptoarb.dex.execution import KEY_ENV, KEY_FILE_ENV, DexExecutor, Signer
from cryptoarb.dex.pools import Token, V2Pool, V3Pool
from dex.chainenv import Env
from dex.rig import CEX, WEI, Rig, check_exact_pnl, make_book

pytest_plugins = ["dex.fixtures"]  # dex_env (session) and chain (snapshot per test)


# -- CEX <-> DEX -----------------------------------------------------------------------------------
def test_cex_bid_above_v2_pool_buy_on_chain_sell_on_cex(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    book = make_book([(3080.0 - 0.5 * i, 0.25) for i in range(60)], [(3081.0 + 0.5 * i, 0.25) for i in range(60)])
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        await rig.setup(book)
        opp = rig.detector.cex_vs_pool(book, rig.uni, rig.weth, now_ns=2)
        assert opp is not None and opp.kind == "cex_dex"
        o = opp.opportunity
        assert (o.buy.venue, o.buy.symbol, o.sell.venue) == (f"uniswap_v2@{chain.chain_id}", "WETH/USDC", "binance")
        assert opp.gas_quote > 0 and opp.pool_fee_quote > 0 and opp.cex_fee_quote > 0
        assert o.fees_quote == pytest.approx(opp.gas_quote + opp.pool_fee_quote + opp.cex_fee_quote)
        # the closed-form size is at least as good as any size on a grid (exact pool cost)
        assert o.profit_quote >= _grid_best_buy_pool(rig.uni, rig.weth, book, opp) - 1e-6
        before = await rig.balances()
        trade = await rig.runner.execute(opp, now_ns=3)
        after = await rig.balances()
        assert trade.status is ArbStatus.COMPLETE, (trade.buy_order.reason, trade.sell_order.reason)
        assert trade.buy_order.type == "swap" and trade.buy_order.status is OrderStatus.FILLED
        d = rig.delta(before, after)
        leg = opp.legs[0]
        assert d["WETH"] == leg.amount_out and -d["USDC"] == leg.amount_in  # the plan was exact
        check_exact_pnl(rig, trade, d)
        assert float(trade.realized_pnl) == pytest.approx(o.profit_quote, rel=0.02)
        assert rig.runner.stats.by_status == {"complete": 1} and rig.runner.stats.failed_legs == 0

    chain.run(run())


def _grid_best_buy_pool(pool: V2Pool, base: Token, book: OrderBook, opp: DexOpportunity) -> float:
    best = float("-inf")
    q_max = opp.opportunity.qty_base * 2
    for k in range(1, 201):
        q = CEX.round_qty(q_max * k / 200)
        filled, notional, _ = book.walk("bids", q)
        if q <= 0 or filled < q:
            continue
        cost = pool.quote_in(base, base.raw(q)) / 1e18
        best = max(best, notional * (1 - CEX.fees.taker) - cost - opp.gas_quote)
    return best


def test_cex_ask_below_v3_pool_buy_on_cex_sell_on_chain(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    book = make_book([(2919.0 - 0.5 * i, 0.5) for i in range(60)], [(2920.0 + 0.5 * i, 0.5) for i in range(60)])
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        await rig.setup(book)
        opp = rig.detector.cex_vs_pool(book, rig.v3, rig.weth, now_ns=2)
        assert opp is not None
        o = opp.opportunity
        assert o.buy.venue == "binance" and o.sell.venue == f"uniswap_v3-3000@{chain.chain_id}"
        # numeric optimum vs a grid of exact evaluations
        best = float("-inf")
        for k in range(1, 101):
            x = CEX.round_qty(o.qty_base * 2 * k / 100)
            filled, notional, _ = book.walk("asks", x)
            if filled >= x > 0:
                out = pool_out(rig.v3, rig.weth, rig.weth.raw(x)) / 1e18
                best = max(best, out - notional * 1.001 - opp.gas_quote)
        assert o.profit_quote >= best - 1e-6
        before = await rig.balances()
        trade = await rig.runner.execute(opp, now_ns=3)
        d = rig.delta(before, await rig.balances())
        assert trade.status is ArbStatus.COMPLETE, (trade.buy_order.reason, trade.sell_order.reason)
        assert -d["WETH"] == opp.legs[0].amount_in and d["USDC"] == opp.legs[0].amount_out
        check_exact_pnl(rig, trade, d)

    chain.run(run())


# -- DEX <-> DEX -----------------------------------------------------------------------------------
@pytest.mark.parametrize("pair", ["v2_v2", "v3_v2"])
def test_dex_dex_between_two_pools(chain: Env, monkeypatch: pytest.MonkeyPatch, pair: str) -> None:
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        # someone buys WETH on SushiSwap: WETH is now dearer there than on the other pool
        await chain.v2_swap("sushiswap", chain.usdc, chain.weth, 12_000 * 10**18)
        await rig.setup()
        a = rig.uni if pair == "v2_v2" else rig.v3
        opp = rig.detector.pool_vs_pool(a, rig.sushi, rig.weth, now_ns=2)
        assert opp is not None and opp.kind == "dex_dex" and len(opp.legs) == 2
        assert opp.opportunity.buy.venue == a.venue and opp.opportunity.sell.venue == rig.sushi.venue
        before = await rig.balances()
        trade = await rig.runner.execute(opp, now_ns=3)
        d = rig.delta(before, await rig.balances())
        assert trade.status is ArbStatus.COMPLETE, (trade.buy_order.reason, trade.sell_order.reason)
        assert d["WETH"] == 0 and d["USDC"] == opp.legs[1].amount_out - opp.legs[0].amount_in
        check_exact_pnl(rig, trade, d)
        assert trade.realized_pnl > 0
        # after the trade the gap is closed: nothing left worth the gas
        await rig.client.poll()
        again = rig.detector.pool_vs_pool(a, rig.sushi, rig.weth, now_ns=4)
        assert again is None or again.opportunity.profit_quote < opp.opportunity.profit_quote / 20

    chain.run(run())


# -- failures ----------------------------------------------------------------------------------------
def test_reverted_swap_is_a_failed_leg_with_gas_booked(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    book = make_book([(3080.0 - 0.5 * i, 0.25) for i in range(60)], [(3081.0 + 0.5 * i, 0.25) for i in range(60)])
    rig = Rig(chain, monkeypatch, preflight=False)

    async def run() -> None:
        await rig.setup(book)
        opp = rig.detector.cex_vs_pool(book, rig.uni, rig.weth, now_ns=2)
        assert opp is not None
        # front-run: the pool moves before our swap lands; amountInMax no longer holds
        await chain.v2_swap("uniswap_v2", chain.usdc, chain.weth, 30_000 * 10**18)
        await rig.client.poll()
        before = await rig.balances()
        trade = await rig.runner.execute(opp, now_ns=3)
        d = rig.delta(before, await rig.balances())
        assert trade.status is ArbStatus.FAILED
        assert trade.buy_order.status is OrderStatus.FAILED and "reverted" in trade.buy_order.reason
        assert trade.sell_order.status is OrderStatus.REJECTED  # the CEX leg was never sent
        assert rig.runner.stats.failed_legs == 1 and rig.runner.stats.failed_by_reason == {"reverted": 1}
        assert rig.failed and rig.failed[0][0] == trade.buy_order.id
        assert rig.runner.outcomes[0].gas_used > 0 and d["WETH"] == d["USDC"] == 0
        check_exact_pnl(rig, trade, d)  # realised = -gas
        assert trade.realized_pnl < 0

    chain.run(run())


def test_preflight_rejects_without_paying_gas(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    book = make_book([(3080.0 - 0.5 * i, 0.25) for i in range(60)], [(3081.0 + 0.5 * i, 0.25) for i in range(60)])
    rig = Rig(chain, monkeypatch, preflight=True)

    async def run() -> None:
        await rig.setup(book)
        opp = rig.detector.cex_vs_pool(book, rig.uni, rig.weth, now_ns=2)
        assert opp is not None
        await chain.v2_swap("uniswap_v2", chain.usdc, chain.weth, 30_000 * 10**18)
        await rig.client.poll()
        before = await rig.balances()
        trade = await rig.runner.execute(opp, now_ns=3)
        d = rig.delta(before, await rig.balances())
        assert trade.status is ArbStatus.FAILED and trade.buy_order.status is OrderStatus.REJECTED
        assert "EXCESSIVE_INPUT_AMOUNT" in trade.buy_order.reason
        assert d == {k: 0 for k in d} and trade.realized_pnl == 0
        assert rig.runner.stats.failed_by_reason == {"rejected": 1}

    chain.run(run())


def test_dropped_transaction_is_a_failed_leg_and_resyncs_the_nonce(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        await chain.v2_swap("sushiswap", chain.usdc, chain.weth, 12_000 * 10**18)
        await rig.setup()
        opp = rig.detector.pool_vs_pool(rig.uni, rig.sushi, rig.weth, now_ns=2)
        assert opp is not None
        rig.dex.receipt_timeout_s = 0.3
        chain.tester.disable_auto_mine_transactions()  # the node accepts it but never mines it
        trade = await rig.runner.execute(opp, now_ns=3)
        chain.tester.enable_auto_mine_transactions()
        assert trade.status is ArbStatus.FAILED and trade.buy_order.status is OrderStatus.FAILED
        assert "no receipt" in trade.buy_order.reason
        assert rig.runner.stats.failed_by_reason == {"dropped": 1} and rig.dex.nonces.resyncs == 1

    chain.run(run())


def test_second_leg_revert_leaves_recorded_unhedged_base(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        await chain.v2_swap("sushiswap", chain.usdc, chain.weth, 12_000 * 10**18)
        await rig.setup()
        opp = rig.detector.pool_vs_pool(rig.uni, rig.sushi, rig.weth, now_ns=2)
        assert opp is not None
        # the sell pool is expected to pay 10x: amountOutMin cannot be met, the sell reverts
        monkeypatch.setattr(settle_mod, "pool_out", lambda pool, token, amount: 10 * pool_out(pool, token, amount))
        before = await rig.balances()
        trade = await rig.runner.execute(opp, now_ns=3)
        d = rig.delta(before, await rig.balances())
        assert trade.status is ArbStatus.FAILED_LEG
        assert trade.buy_order.status is OrderStatus.FILLED and trade.sell_order.status is OrderStatus.FAILED
        assert trade.unhedged_qty_base == Decimal(d["WETH"]) / WEI > 0  # the WETH we are left holding
        gas_wei = sum(o.gas_cost_wei for o in rig.runner.outcomes)
        assert trade.realized_pnl == -(Decimal(gas_wei) / WEI * Decimal("3000.0"))
        assert rig.runner.stats.failed_legs == 1

    chain.run(run())


def test_stale_pool_is_neither_sized_nor_traded(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    book = make_book([(3080.0 - 0.5 * i, 0.25) for i in range(60)], [(3081.0 + 0.5 * i, 0.25) for i in range(60)])
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        await rig.setup(book)
        opp = rig.detector.cex_vs_pool(book, rig.uni, rig.weth, now_ns=2)
        assert opp is not None
        rig.uni.mark_unhealthy("event poll failed: RpcError eth_getLogs timed out")
        with pytest.raises(StalePoolError, match="unhealthy"):
            rig.detector.cex_vs_pool(book, rig.uni, rig.weth, now_ns=3)
        before = await rig.balances()
        trade = await rig.runner.execute(opp, now_ns=3)
        assert trade.status is ArbStatus.FAILED and "not sent" in trade.buy_order.reason
        assert rig.delta(before, await rig.balances())["ETH"] == 0
        assert rig.runner.stats.failed_by_reason == {"stale": 1}

    chain.run(run())


def test_nonces_are_local_and_resync_after_an_error(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        await rig.setup()
        dex = rig.dex
        start = await chain.w3.eth.get_transaction_count(dex.address)
        for _ in range(2):
            out = await dex.swap(rig.uni, chain.usdc, 1000 * 10**18, 1)
            assert out.ok and out.amount_in == 1000 * 10**18 and out.amount_out > 0
        assert await chain.w3.eth.get_transaction_count(dex.address) == start + 2
        dex.nonces._next = start  # a nonce already used: the node refuses the transaction
        out = await dex.swap(rig.uni, chain.usdc, 1000 * 10**18, 1)
        assert out.status == "rejected" and dex.nonces.resyncs == 1
        assert (await dex.swap(rig.uni, chain.usdc, 1000 * 10**18, 1)).ok

    chain.run(run())


def test_private_key_from_env_or_file_never_shown(
    dex_env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = dex_env.trader_key
    body = key[2:] if key.startswith("0x") else key
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    with pytest.raises(SecretError, match="no private key"):
        Signer.from_env()
    monkeypatch.setenv(KEY_ENV, key)
    s = Signer.from_env()
    assert s.address == dex_env.trader
    assert body not in repr(s) and body not in str(s) and "redacted" in repr(s)
    with pytest.raises(TypeError):
        __import__("pickle").dumps(s)
    monkeypatch.delenv(KEY_ENV)
    secret = tmp_path / "key"
    secret.write_text(key + "\n")
    secret.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600") as e:
        Signer.from_env(secrets_file=secret)
    assert body not in str(e.value)
    secret.chmod(0o600)
    monkeypatch.setenv(KEY_FILE_ENV, str(secret))
    assert Signer.from_env().address == dex_env.trader
    bad = body[:-4] + "zzzz"
    with pytest.raises(SecretError) as e:
        Signer(bad)
    assert bad not in str(e.value) and e.value.__cause__ is None
    # an execution with DEBUG logging everywhere: the key appears in no log line
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(KEY_ENV, key)

    async def run() -> None:
        client = await ChainClient.connect(dex_env.provider(), dex_env.chain_id)
        dex = DexExecutor(client, Signer.from_env())
        pool = await client.v2_pair(dex_env.specs["uniswap_v2"], dex_env.weth, dex_env.usdc)
        logging.getLogger("test").debug("executor %r", dex)
        out = await dex.swap(pool, dex_env.usdc, 10**18, 10**30)  # reverts in pre-flight
        assert out.status == "rejected"

    snap = dex_env.tester.take_snapshot()
    try:
        dex_env.run(run())
    finally:
        dex_env.tester.revert_to_snapshot(snap)
    assert caplog.records and body not in caplog.text and body.lower() not in caplog.text.lower()


def test_v3_pool_state_used_for_sizing_is_recorded(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        await chain.v3_swap(3000, chain.usdc, chain.weth, 60_000 * 10**18)  # WETH dearer on V3
        await rig.setup()
        opp = rig.detector.pool_vs_pool(rig.uni, rig.v3, rig.weth, now_ns=2)
        assert opp is not None and isinstance(opp.legs[1].pool, V3Pool)
        assert opp.blocks == {rig.uni.address: rig.uni.block, rig.v3.address: rig.v3.block}
        trade = await rig.runner.execute(opp, now_ns=3)
        assert trade.status is ArbStatus.COMPLETE

    chain.run(run())
