"""A test rig for the DEX arbitrage tests: client, detector, executors and balance snapshots.

Shared by ``tests/test_dex_arb.py`` (end to end on the real Uniswap contracts) and
``tests/test_dex_sizing.py`` (CEX leg sizing: exact lots, depth, the venue's funds rule, gas).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.instruments import Fees, Instrument
from cryptoarb.core.orders import ArbStatus, ArbTrade
from cryptoarb.dex.arb import DexArbDetector, DexLimits, GasModel
from cryptoarb.dex.chain import ChainClient
from cryptoarb.dex.execution import KEY_ENV, DexExecutor, Signer
from cryptoarb.dex.settle import DexArbExecutor
from cryptoarb.execution.paper import PaperVenue
from dex.chainenv import Env

WEI = Decimal(10) ** 18
# fee in quote: the DEX settlement (dex/settle.py) books the CEX fee in quote; Binance's own rule
# (fee in the asset received) needs the DEX path to value a base fee and hedge net of it
CEX = Instrument("binance", "ETH/USDC", "ETH", "USDC", tick_size=0.01, lot_size=0.0001, fees=Fees(0.001, 0.001),
                 fee_side="quote")


def make_book(bids: list[tuple[float, float]], asks: list[tuple[float, float]], inst: Instrument = CEX) -> OrderBook:
    book = OrderBook(inst)
    book.load_snapshot(bids, asks)
    book.set_state(VALID)
    book.local_ns = book.exchange_ns = 1
    return book


class Rig:
    """Client, detector, executors and balance snapshots for one test."""

    def __init__(
        self,
        env: Env,
        monkeypatch: pytest.MonkeyPatch,
        preflight: bool = False,
        cex: dict[str, Decimal] | None = None,
        **limits: Any,
    ) -> None:
        self.env = env
        monkeypatch.setenv(KEY_ENV, env.trader_key)
        self.monkeypatch = monkeypatch
        self.preflight = preflight
        self.limits = DexLimits(**({"max_notional_quote": 1e9, "min_profit_bps": 0.5} | limits))
        self.portfolio = Portfolio()
        for ccy, amount in (cex or {"USDC": Decimal(1_000_000), "ETH": Decimal(300)}).items():
            self.portfolio.deposit("binance", ccy, amount)
        self.failed: list[tuple[str, str]] = []

    async def setup(self, book: OrderBook | None = None) -> None:
        env = self.env
        self.client = await ChainClient.connect(env.provider(), env.chain_id)
        self.uni = await self.client.v2_pair(env.specs["uniswap_v2"], env.weth, env.usdc)
        self.sushi = await self.client.v2_pair(env.specs["sushiswap"], env.weth, env.usdc)
        self.v3 = await self.client.v3_pool(env.specs["uniswap_v3"], env.weth, env.usdc, 3000)
        self.weth = await self.client.token(env.weth)
        self.usdc = await self.client.token(env.usdc)
        self.dex = DexExecutor(self.client, Signer.from_env(), receipt_timeout_s=5.0, preflight=self.preflight)
        await self.dex.approve_routers([self.uni, self.sushi, self.v3])  # one-time set-up, not a trade cost
        gas_price = await self.dex.expected_gas_price()
        self.gas = GasModel(gas_price, 3000.0)
        self.detector = DexArbDetector(self.limits, self.gas)
        self.book = book
        venues = {"binance": PaperVenue("binance", self.portfolio)}
        self.runner = DexArbExecutor(
            self.dex, self.portfolio, venues, lambda key: book if book and key == book.key else None
        )
        self.runner.on_failed_leg.append(lambda order, why: self.failed.append((order.id, why)))
        await self.client.poll()

    async def cap_by_balances(self) -> None:
        """Size against the real balances (CEX paper account and the chain wallet), as a live run does."""
        env = self.env
        wallet = f"wallet@{env.chain_id}"
        avail = {("binance", c): float(a) for c, a in self.portfolio.balances.get("binance", {}).items()}
        avail[(wallet, "WETH")] = await env.balance(env.weth, env.trader) / 1e18
        avail[(wallet, "USDC")] = await env.balance(env.usdc, env.trader) / 1e18
        self.detector.available = avail

    async def balances(self) -> dict[str, Any]:
        env = self.env
        return {
            "WETH": await env.balance(env.weth, env.trader),
            "USDC": await env.balance(env.usdc, env.trader),
            "ETH": int(await env.w3.eth.get_balance(env.trader)),
            "cex_ETH": self.portfolio.balance("binance", "ETH"),
            "cex_USDC": self.portfolio.balance("binance", "USDC"),
        }

    def delta(self, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        return {k: after[k] - before[k] for k in before}


def check_exact_pnl(rig: Rig, trade: ArbTrade, d: dict[str, Any]) -> None:
    """Realised PnL == the quote that appeared on chain and on the CEX, minus gas at the model's
    price; base nets to zero; the native coin paid exactly the receipts' gas."""
    gas_wei = sum(o.gas_cost_wei for o in rig.runner.outcomes)
    assert -d["ETH"] == gas_wei  # the account's ETH paid exactly gasUsed x effectiveGasPrice
    gas_quote = Decimal(gas_wei) / WEI * Decimal(repr(rig.gas.native_price_quote))
    quote_delta = Decimal(d["USDC"]) / WEI + d["cex_USDC"]
    assert trade.realized_pnl == quote_delta - gas_quote
    if trade.status is ArbStatus.COMPLETE:
        assert Decimal(d["WETH"]) / WEI + d["cex_ETH"] == 0
        assert trade.unhedged_qty_base == 0
