"""CEX<->DEX and DEX<->DEX opportunities: detect, size optimally, price exactly, net of every cost.

Costs in every opportunity: the pool fee (inside the pool's exact amounts, reported separately
in ``pool_fee_quote``), the CEX taker fee, and gas: ``gas units x gas price``, converted to the
pair's own quote currency with the native coin's price in it (:class:`GasModel`, :mod:`.gas`).
Gas is a fixed cost per swap, so it does not move the optimal size; it decides whether the
optimum is worth trading.

Sizing: V2 pools in closed form (:mod:`.uniswap_v2`: pool vs book by a level walk with the
closed form inside each level, pool vs pool by the composed curve); V3 pools numerically
(:func:`.uniswap_v3.maximize`, a golden-section search where every probe is an exact simulated
swap). The CEX leg is then made an order the venue accepts (:mod:`.lots`, exact decimals): the
grid point nearest the optimum, capped at the book's exact depth and the balances, a CEX buy at
the venue's funds rule ``qty x limit x (1 + fee)``, its limit on the tick grid. That size is
re-priced with the contracts' integer math; the exact plan (amounts and the
``amountOutMin``/``amountInMax`` bound) goes into :class:`DexLeg` for execution. Pools are
checked for freshness first: stale or unhealthy state raises :class:`StalePoolError` and nothing is sized on it.

Results are the project's :class:`Opportunity` with :class:`OrderIntent` legs (venue
``uniswap_v2@<chain id>``, symbol ``WETH/USDC``), wrapped in :class:`DexOpportunity`.

This module is the sizing logic only. The exact pool quotes it probes live in :mod:`.quote` and
the plan types it returns in :mod:`.plan`; both are re-exported here so that existing imports
(``from cryptoarb.dex.arb import pool_out, DexOpportunity``) keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from cryptoarb.core.book import OrderBook
from cryptoarb.core.footprint import Footprints, visible
from cryptoarb.core.instruments import Instrument, dec
from cryptoarb.core.opportunity import BUY, SELL, Opportunity, OrderIntent
from cryptoarb.dex import uniswap_v2 as v2
from cryptoarb.dex import uniswap_v3 as v3
from cryptoarb.dex.errors import DexError
from cryptoarb.dex.lots import (
    ZERO,
    Taken,
    as_cap,
    buy_funds_needed,
    floor_to,
    grid_step,
    max_buy_qty,
    nearest,
    on_tick,
    within_depth,
)
from cryptoarb.dex.plan import CEX_DEX, DEX_DEX, DexLeg, DexLimits, DexOpportunity, GasModel
from cryptoarb.dex.pools import Token, V2Pool
from cryptoarb.dex.quote import Pool, fee_frac, max_in, pool_in, pool_mid, pool_out, safe, walk_levels

__all__ = [
    "CEX_DEX",
    "DEX_DEX",
    "DexArbDetector",
    "DexLeg",
    "DexLimits",
    "DexOpportunity",
    "GasModel",
    "Pool",
    "pool_in",
    "pool_mid",
    "pool_out",
]


def _cex_terms(book: OrderBook, pool: Pool, base: Token) -> tuple[Token, Instrument, float, int, int]:
    """What both CEX<->DEX directions start from: quote token, instrument, taker fee, raw units."""
    quote = pool.other(base)
    inst = book.instrument
    return quote, inst, inst.fees.taker, int(10**base.decimals), int(10**quote.decimals)


class DexArbDetector:
    """Finds and sizes opportunities between pools and books; one instance per quote currency."""

    def __init__(
        self,
        limits: DexLimits,
        gas: GasModel,
        next_id: Callable[[], int] | None = None,
        available: dict[tuple[str, str], float] | None = None,
        footprints: Footprints | None = None,
    ) -> None:
        self.limits = limits
        self.gas = gas
        self.available = available  # (venue or "wallet@<chain>", currency) -> amount; None: no caps
        # our own orders' footprint on the CEX books (shared with the engine's paper venues): a
        # level our last fill took is not there again until the venue's next update
        self.footprints = footprints if footprints is not None else Footprints()
        self._count = 0
        self._next_id = next_id or self._default_id
        self.evaluations = 0

    def _default_id(self) -> int:
        self._count += 1
        return self._count

    def _avail(self, venue: str, currency: str) -> float:
        if self.available is None:
            return float("inf")
        return self.available.get((venue, currency), 0.0)

    # -- CEX <-> DEX -------------------------------------------------------------------------
    def cex_vs_pool(self, book: OrderBook, pool: Pool, base: Token, now_ns: int) -> DexOpportunity | None:
        """Both directions between a CEX book and a pool; the more profitable one, if any.

        The book's instrument must trade the pool's base against its quote (e.g. ETH/USDC
        against WETH/USDC); the pool is checked for freshness (raises StalePoolError).
        """
        pool.check_fresh()
        if not book.valid:
            return None
        self.evaluations += 1
        mid = pool_mid(pool, base)
        g = 1.0 - fee_frac(pool)
        f = book.instrument.fees.taker
        thr = 1.0 + self.limits.min_profit_bps / 1e4
        found = []
        if book.bid and book.bid * (1.0 - f) > mid / g * thr:
            found.append(self._buy_pool(book, pool, base, now_ns))
        if book.ask and mid * g > book.ask * (1.0 + f) * thr:
            found.append(self._sell_pool(book, pool, base, now_ns))
        best = [o for o in found if o is not None]
        return max(best, key=lambda o: o.opportunity.profit_quote) if best else None

    def _wallet(self, pool: Pool) -> str:
        return f"wallet@{pool.chain_id}"

    def _buy_pool(self, book: OrderBook, pool: Pool, base: Token, now_ns: int) -> DexOpportunity | None:
        """Buy base on the pool (exact output), sell it into the book's bids."""
        quote, inst, f, db, dq = _cex_terms(book, pool, base)
        # read as far as the sizing walks, no further, net of our own footprint
        bids = Taken(visible(book.bids(), self.footprints[book.key], "bids", (book.update_id, book.local_ns)))
        if isinstance(pool, V2Pool):
            rb, rq = pool.reserves(base)
            q_est = v2.optimal_buy_vs_bids(rq / dq, rb / db, pool.fee_bps, bids, f)
        else:
            levels = bids.all()

            def value(q_raw: int) -> float:
                _, notional, _ = walk_levels(levels, q_raw / db)
                return notional * (1.0 - f) - pool_in(pool, base, q_raw) / dq

            try:
                hi = pool_out(pool, quote, max_in(pool, quote)) - 1
            except DexError:
                return None
            q_raw, _ = v3.maximize(safe(value), min(hi, int(sum(q for _, q in levels) * db)))
            q_est = q_raw / db
        # the grid point nearest the optimum (the profit is concave in the size, so it is within
        # one lot of the best), in exact lots, then capped: never past the displayed depth, the CEX
        # base balance (the sell's funds rule) nor the pool spend cap
        step = grid_step(inst, base.decimals)
        q = nearest(q_est, step)
        avail = self._avail(inst.venue, inst.base)
        if avail != float("inf"):
            q = min(q, floor_to(dec(avail), step))
        if q > 0:
            q = within_depth(q, bids, step)
        spend = min(self.limits.max_notional_quote, self._avail(self._wallet(pool), quote.symbol))
        try:
            q, cost_raw = self._under_spend(pool, base, quote, q, step, spend)
        except DexError:
            return None
        if q <= 0:
            return None
        _, notional, worst = walk_levels(bids, float(q))  # q is within the exact depth: it fills
        qf = float(q)
        q_raw = base.raw(q)
        limit = float(on_tick(worst, inst, SELL))
        if qf * limit < inst.min_notional:
            return None
        cost = cost_raw / dq
        bound = cost_raw + self._slip(cost_raw)
        leg = DexLeg(pool, BUY, quote, base, True, cost_raw, q_raw, bound)
        cex = OrderIntent(inst.venue, inst.symbol, SELL, qf, limit, notional / qf)
        buy = OrderIntent(pool.venue, pool.symbol(base), BUY, qf, bound / dq / qf, cost / qf)
        return self._finish(
            CEX_DEX,
            base,
            quote,
            [leg],
            cex,
            buy,
            cex,
            qf,
            cost,
            notional * (1.0 - f),
            cost * fee_frac(pool),
            notional * f,
            book.exchange_ns,
            now_ns,
        )

    @staticmethod
    def _under_spend(
        pool: Pool, base: Token, quote: Token, q: Decimal, step: Decimal, spend: float
    ) -> tuple[Decimal, int]:
        """The largest grid size ``<= q`` whose exact pool cost fits ``spend`` (quote), and that cost."""
        if q <= 0:
            return ZERO, 0
        cost_raw = pool_in(pool, base, base.raw(q))
        spend_raw = quote.raw(as_cap(spend)) if spend != float("inf") else cost_raw
        if cost_raw <= spend_raw:
            return q, cost_raw
        q = min(q - step, floor_to(base.human(pool_out(pool, quote, spend_raw)), step)) if spend_raw > 0 else ZERO
        while q > 0:  # the exact-output cost can exceed the exact-input amount by a wei: step down
            cost_raw = pool_in(pool, base, base.raw(q))
            if cost_raw <= spend_raw:
                return q, cost_raw
            q -= step
        return ZERO, 0

    def _sell_pool(self, book: OrderBook, pool: Pool, base: Token, now_ns: int) -> DexOpportunity | None:
        """Buy base from the book's asks, sell it into the pool (exact input)."""
        quote, inst, f, db, dq = _cex_terms(book, pool, base)
        asks = Taken(visible(book.asks(), self.footprints[book.key], "asks", (book.update_id, book.local_ns)))
        if isinstance(pool, V2Pool):
            rb, rq = pool.reserves(base)
            x_est = v2.optimal_sell_vs_asks(rb / db, rq / dq, pool.fee_bps, asks, f)
        else:
            levels = asks.all()

            def value(x_raw: int) -> float:
                filled, notional, _ = walk_levels(levels, x_raw / db)
                if filled < x_raw / db:
                    return float("-inf")
                return pool_out(pool, base, x_raw) / dq - notional * (1.0 + f)

            x_raw, _ = v3.maximize(safe(value), min(max_in(pool, base), int(sum(q for _, q in levels) * db)))
            x_est = x_raw / db
        # the grid point nearest the optimum, in exact lots, within the depth and the wallet's
        # base; then the venue's funds rule for an IOC buy (qty x limit x (1 + fee) of free quote),
        # the same rule the executor checks before the swap is sent (the buy-leg cost cap too)
        step = grid_step(inst, base.decimals)
        x = nearest(x_est, step)
        avail = self._avail(self._wallet(pool), base.symbol)
        if avail != float("inf"):
            x = min(x, floor_to(dec(avail), step))
        funds = as_cap(min(self.limits.max_notional_quote, self._avail(inst.venue, inst.quote)))
        if x > 0:
            x = max_buy_qty(asks, funds, f, step, dec(inst.tick_size), within_depth(x, asks, step))
        if x <= 0:
            return None
        _, notional, worst = walk_levels(asks, float(x))
        x_raw = base.raw(x)
        try:
            out_raw = pool_out(pool, base, x_raw)
        except DexError:
            return None
        xf = float(x)
        limit = on_tick(worst, inst, BUY)
        if buy_funds_needed(x, limit, f) > funds or xf * float(limit) < inst.min_notional:
            return None
        proceeds = out_raw / dq
        bound = out_raw - self._slip(out_raw)
        leg = DexLeg(pool, SELL, base, quote, False, x_raw, out_raw, bound)
        cex = OrderIntent(inst.venue, inst.symbol, BUY, xf, float(limit), notional / xf)
        sell = OrderIntent(pool.venue, pool.symbol(base), SELL, xf, bound / dq / xf, proceeds / xf)
        cost = notional * (1.0 + f)
        return self._finish(
            CEX_DEX,
            base,
            quote,
            [leg],
            cex,
            cex,
            sell,
            xf,
            cost,
            proceeds,
            proceeds / (1.0 - fee_frac(pool)) * fee_frac(pool),
            notional * f,
            book.exchange_ns,
            now_ns,
        )

    # -- DEX <-> DEX -------------------------------------------------------------------------
    def pool_vs_pool(self, a: Pool, b: Pool, base: Token, now_ns: int) -> DexOpportunity | None:
        """Buy base on one pool with quote, sell it on the other; both directions, best one."""
        a.check_fresh()
        b.check_fresh()
        self.evaluations += 1
        found = [self._pool_pool(a, b, base, now_ns), self._pool_pool(b, a, base, now_ns)]
        best = [o for o in found if o is not None]
        return max(best, key=lambda o: o.opportunity.profit_quote) if best else None

    def _pool_pool(self, a: Pool, b: Pool, base: Token, now_ns: int) -> DexOpportunity | None:
        quote = a.other(base)
        if b.other(base).address != quote.address:
            raise ValueError(f"{a.venue} and {b.venue} do not trade the same pair")
        # O(1) check on marginal prices before any sizing
        if pool_mid(b, base) * (1.0 - fee_frac(b)) <= pool_mid(a, base) / (1.0 - fee_frac(a)):
            return None
        dq = int(10**quote.decimals)
        spend_raw = int(min(self.limits.max_notional_quote, self._avail(self._wallet(a), quote.symbol)) * dq)
        if isinstance(a, V2Pool) and isinstance(b, V2Pool):
            a_in, a_out = a.reserves(quote)
            b_in, b_out = b.reserves(base)
            x = v2.optimal_pool_vs_pool(a_in, a_out, b_in, b_out, a.fee_bps, b.fee_bps)
        else:
            x, _ = v3.maximize(safe(lambda x: pool_out(b, base, pool_out(a, quote, x)) - x), max_in(a, quote))
        x = min(x, spend_raw)
        if x <= 0:
            return None
        try:
            y = pool_out(a, quote, x)
            z = pool_out(b, base, y)
        except DexError:
            return None
        slip = int(self.limits.slippage_bps * 100)
        legs = [
            DexLeg(a, BUY, quote, base, False, x, y, y - self._slip(y)),
            DexLeg(b, SELL, base, quote, False, y, z, z - self._slip(z)),
        ]
        qty = y / 10**base.decimals
        cost, proceeds = x / dq, z / dq
        buy = OrderIntent(a.venue, a.symbol(base), BUY, qty, cost / qty * (1 + slip / 1e6), cost / qty)
        sell = OrderIntent(b.venue, b.symbol(base), SELL, qty, proceeds / qty * (1 - slip / 1e6), proceeds / qty)
        pool_fees = cost * fee_frac(a) + proceeds / (1.0 - fee_frac(b)) * fee_frac(b)
        return self._finish(DEX_DEX, base, quote, legs, None, buy, sell, qty, cost, proceeds, pool_fees, 0.0, 0, now_ns)

    # -- common ------------------------------------------------------------------------------
    def _slip(self, amount: int) -> int:
        """The slippage allowance on a raw amount, in integer math like the bound it sets."""
        return amount * int(self.limits.slippage_bps * 100) // 1_000_000

    def _finish(
        self,
        kind: str,
        base: Token,
        quote: Token,
        legs: list[DexLeg],
        cex: OrderIntent | None,
        buy: OrderIntent,
        sell: OrderIntent,
        qty: float,
        cost: float,
        proceeds: float,
        pool_fee: float,
        cex_fee: float,
        exchange_ns: int,
        now_ns: int,
    ) -> DexOpportunity | None:
        """Net of gas, apply the thresholds, build the Opportunity."""
        gas_units = sum(leg.pool.dex.gas_per_swap for leg in legs)
        gas_quote = self.gas.cost_quote(gas_units)
        profit = proceeds - cost - gas_quote
        lim = self.limits
        if profit <= 0.0 or profit < lim.min_profit_quote or profit / cost * 1e4 < lim.min_profit_bps:
            return None
        group = f"{base.symbol}/{quote.symbol}"
        opp = Opportunity(
            self._next_id(),
            group,
            "dex",
            buy,
            sell,
            qty,
            buy.expected_price,
            sell.expected_price,
            cost,
            pool_fee + cex_fee + gas_quote,
            profit,
            exchange_ns,
            now_ns,
        )
        blocks = {leg.pool.address: leg.pool.block for leg in legs}
        return DexOpportunity(
            opp, kind, base, quote, legs, cex, self.gas, gas_units, gas_quote, pool_fee, cex_fee, blocks
        )
