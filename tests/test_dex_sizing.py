"""The CEX leg of a CEX<->DEX trade: sized so that the venue accepts it, checked before the swap.

Issue 7 on the real Uniswap contracts (eth-tester) and the paper venue:

- item 2: the CEX buy is sized with the rule the venue checks (``qty x limit x (1 + fee)`` of free
  quote), and the executor checks that rule (or the base balance for a sell) *before* the
  on-chain leg is sent, so a leg the venue would refuse never leaves a mined swap unhedged;
- item 7(a): when the optimum is the whole displayed book, the size is the book's exact depth
  (ten levels of 0.1 sum to 0.9999999999999999 in floats), not a hair past it;
- item 5: every CEX order quantity is a whole number of lots and its limit a whole number of ticks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

import pytest

from cryptoarb.core.instruments import Fees, Instrument
from cryptoarb.core.orders import ArbStatus, OrderStatus
from cryptoarb.dex.arb import DexOpportunity
from cryptoarb.dex.lots import buy_funds_needed, ceil_to, floor_estimate, floor_to, grid_step, max_buy_qty
from dex.chainenv import Env
from dex.rig import CEX, Rig, check_exact_pnl, make_book

pytest_plugins = ["dex.fixtures"]

LOT = Decimal("0.0001")
TICK = Decimal("0.01")


def assert_on_grid(opp: DexOpportunity) -> None:
    """The CEX order the executor will send is a whole number of lots at a price on the tick grid."""
    assert opp.cex is not None
    qty, limit = Decimal(repr(opp.cex.qty)), Decimal(repr(opp.cex.limit_price))
    assert qty > 0 and qty % LOT == 0, qty
    assert limit % TICK == 0, limit
    leg = opp.legs[0]
    raw = leg.amount_out if leg.exact_out else leg.amount_in
    assert opp.base.human(raw) == qty  # the chain moves exactly the CEX quantity


# -- item 2: sizing vs the venue's funds check ------------------------------------------------------
def test_cex_buy_is_sized_by_the_venues_funds_rule_not_the_vwap(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """3,000 USDC on the CEX, asks 2920.0/2920.5/2921.0 x 0.5: the VWAP rule allows 1.0262 WETH, whose
    limit 2921.0 needs 3,000.51 USDC; the venue rejects it after the swap was mined. 1.0260 fits."""
    book = make_book([(2900.0, 5.0)], [(2920.0 + 0.5 * i, 0.5) for i in range(10)])
    rig = Rig(chain, monkeypatch, cex={"USDC": Decimal(3000), "ETH": Decimal(0)})

    async def run() -> None:
        await rig.setup(book)
        await rig.cap_by_balances()
        opp = rig.detector.cex_vs_pool(book, rig.uni, rig.weth, now_ns=2)
        assert opp is not None and opp.cex is not None and opp.cex.side == "buy"
        assert_on_grid(opp)
        qty, limit = Decimal(repr(opp.cex.qty)), Decimal(repr(opp.cex.limit_price))
        assert (qty, limit) == (Decimal("1.026"), Decimal("2921"))
        need = buy_funds_needed(qty, limit, CEX.fees.taker)
        assert need <= 3000 < buy_funds_needed(qty + LOT, limit, CEX.fees.taker)  # the largest that fits
        before = await rig.balances()
        trade = await rig.runner.execute(opp, now_ns=3)
        d = rig.delta(before, await rig.balances())
        assert trade.status is ArbStatus.COMPLETE, (trade.buy_order.reason, trade.sell_order.reason)
        assert trade.buy_order.venue == "binance" and trade.buy_order.status is OrderStatus.FILLED
        check_exact_pnl(rig, trade, d)

    chain.run(run())


@pytest.mark.parametrize("direction", ["cex_buy", "cex_sell"])
def test_cex_leg_the_venue_would_refuse_is_checked_before_the_swap(
    chain: Env, monkeypatch: pytest.MonkeyPatch, direction: str
) -> None:
    """The CEX balance falls between detection and execution (another trade spent it): the executor
    refuses the whole trade before the swap is sent: no gas, no unhedged base."""
    if direction == "cex_buy":
        book = make_book([(2900.0, 5.0)], [(2920.0 + 0.5 * i, 0.5) for i in range(10)])
    else:
        book = make_book([(3080.0 - 0.5 * i, 0.25) for i in range(60)], [(3200.0, 5.0)])
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        await rig.setup(book)
        await rig.cap_by_balances()
        opp = rig.detector.cex_vs_pool(book, rig.uni, rig.weth, now_ns=2)
        assert opp is not None and opp.cex is not None
        ccy = "USDC" if direction == "cex_buy" else "ETH"
        rig.portfolio.deposit("binance", ccy, -(rig.portfolio.balance("binance", ccy) - Decimal("0.5")))
        before = await rig.balances()
        trade = await rig.runner.execute(opp, now_ns=3)
        d = rig.delta(before, await rig.balances())
        assert trade.status is ArbStatus.FAILED, (trade.buy_order.reason, trade.sell_order.reason)
        assert d == {k: 0 for k in d}  # nothing sent: no gas, no tokens, no CEX fill
        assert rig.runner.outcomes == []
        cex_order = trade.buy_order if direction == "cex_buy" else trade.sell_order
        assert cex_order.status is OrderStatus.REJECTED and f"insufficient {ccy}" in cex_order.reason
        dex_order = trade.sell_order if direction == "cex_buy" else trade.buy_order
        assert dex_order.status is OrderStatus.REJECTED and "not sent" in dex_order.reason
        assert rig.runner.stats.failed_by_reason == {"cex_check": 1}

    chain.run(run())


# -- item 7(a): the whole book ---------------------------------------------------------------------
@pytest.mark.parametrize("pool", ["uni", "v3"])
@pytest.mark.parametrize("side", ["bids", "asks"])
def test_whole_book_optimum_is_sized_to_the_exact_depth(
    chain: Env, monkeypatch: pytest.MonkeyPatch, pool: str, side: str
) -> None:
    """Ten levels of 0.1 far through the pool's price: the optimum is the whole book, 1.0 exactly,
    although the levels sum to 0.9999999999999999 in floats (lot rounding used to go past it)."""
    assert sum([0.1] * 10) < 1.0
    if side == "bids":
        book = make_book([(3150.0 - 0.5 * i, 0.1) for i in range(10)], [(3300.0, 5.0)])
    else:
        book = make_book([(2700.0, 5.0)], [(2850.0 + 0.5 * i, 0.1) for i in range(10)])
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        await rig.setup(book)
        p = rig.uni if pool == "uni" else rig.v3
        opp = rig.detector.cex_vs_pool(book, p, rig.weth, now_ns=2)
        assert opp is not None, "the whole-book opportunity was dropped"
        assert opp.cex is not None and opp.cex.side == ("sell" if side == "bids" else "buy")
        assert Decimal(repr(opp.cex.qty)) == Decimal("1.0")
        assert_on_grid(opp)
        if pool == "uni":  # and it trades: the paper venue fills the whole book, both legs equal
            before = await rig.balances()
            trade = await rig.runner.execute(opp, now_ns=3)
            d = rig.delta(before, await rig.balances())
            assert trade.status is ArbStatus.COMPLETE, (trade.buy_order.reason, trade.sell_order.reason)
            check_exact_pnl(rig, trade, d)

    chain.run(run())


# -- item 5 and the funds rule: exact arithmetic against a brute-force reference ----------------------
def test_exact_lot_arithmetic() -> None:
    d = Decimal
    assert floor_to(d("22900.1"), d("0.1")) == d("22900.1")  # float lots gave 22900.100000000002
    assert floor_to(d("3299.816"), d("0.0001")) == d("3299.816")  # float lots gave 3299.8159
    assert floor_to(d("150"), d("20")) == d("140") and floor_to(d("150"), d("30")) == d("150")
    assert ceil_to(d("3080.001"), d("0.01")) == d("3080.01") and ceil_to(d("3080.00"), d("0.01")) == d("3080.00")
    assert floor_estimate(sum([0.1] * 10), d("0.0001")) == d("1")  # float noise under a grid point
    assert floor_estimate(0.99995, d("0.0001")) == d("0.9999")  # not noise: down
    # a lot finer than the token's raw unit: the step is a whole number of both
    assert grid_step(Instrument("v", "X/Y", "X", "Y", lot_size=0.25), 1) == d("0.5")
    assert grid_step(Instrument("v", "X/Y", "X", "Y", lot_size=1e-8), 6) == d("0.000001")
    assert grid_step(CEX, 18) == d("0.0001")


def test_max_buy_qty_matches_a_brute_force_over_the_lot_grid() -> None:
    """Random books, fees, lots, ticks and funds: the size is the largest grid quantity whose
    worst-level limit passes ``qty x limit x (1 + fee) <= funds``, found by enumerating lots."""
    rng = random.Random(7)
    for _ in range(300):
        lot = Decimal(rng.choice(["0.001", "0.01", "0.1", "1", "5"]))
        tick = Decimal(rng.choice(["0.01", "0.5", "1"]))
        fee = rng.choice([0.0, 0.0004, 0.001, 0.0075])
        price = Decimal(rng.randint(50, 500)) * tick
        asks: list[tuple[float, float]] = []
        for _ in range(rng.randint(1, 6)):
            asks.append((float(price), float(lot * rng.randint(1, 20) + Decimal(rng.choice(["0", "0.0005"])))))
            price += tick * rng.randint(1, 5)
        upto = lot * rng.randint(0, 150)
        funds = Decimal(rng.randint(0, 50_000)) / 7
        got = max_buy_qty(asks, funds, fee, lot, tick, upto)
        best = Decimal(0)
        n = 1
        while n * lot <= upto:
            x = n * lot
            cum, worst = Decimal(0), None
            for p, q in asks:
                worst = Decimal(repr(p))
                cum += Decimal(repr(q))
                if cum >= x:
                    break
            if cum < x:
                break
            if buy_funds_needed(x, worst, fee) <= funds:  # type: ignore[arg-type]
                best = x
            n += 1
        assert got == best, (asks, funds, fee, lot, upto, got, best)
        assert got % lot == 0


def test_an_instrument_with_an_integer_lot_trades_whole_lots(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lot 0.3 (not a power of ten): the chain and the CEX move the same whole number of lots."""
    inst = Instrument("binance", "ETH/USDC", "ETH", "USDC", tick_size=0.5, lot_size=0.3, fees=Fees(0.001, 0.001))
    book = make_book([(3150.0 - 0.5 * i, 0.7) for i in range(10)], [(3300.0, 5.0)], inst)
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        await rig.setup(book)
        opp = rig.detector.cex_vs_pool(book, rig.uni, rig.weth, now_ns=2)
        assert opp is not None and opp.cex is not None
        qty = Decimal(repr(opp.cex.qty))
        assert qty % Decimal("0.3") == 0 and Decimal(repr(opp.cex.limit_price)) % Decimal("0.5") == 0
        assert qty <= Decimal("7.0")  # the depth
        assert opp.base.human(opp.legs[0].amount_out) == qty

    chain.run(run())


# -- the whole detector against an exact brute force over the lot grid --------------------------------
def _exact_walk(levels: list[tuple[float, float]], qty: Decimal) -> tuple[Decimal, Decimal] | None:
    """(notional, worst price) of taking ``qty`` from ``levels`` in exact decimals; None past the depth."""
    left, notional, worst = qty, Decimal(0), Decimal(0)
    for p, q in levels:
        if left <= 0:
            break
        take = min(left, Decimal(repr(q)))
        notional += take * Decimal(repr(p))
        worst = Decimal(repr(p))
        left -= take
    return None if left > 0 else (notional, worst)


@dataclass
class _Case:
    levels: list[tuple[float, float]]
    cex_buy: bool  # buy on the CEX, sell into the pool (else the reverse)
    bdec: int
    qdec: int
    r_b: int
    r_q: int
    fee: Decimal
    cex_funds: float  # min(cost cap, CEX quote): the buy's funds rule
    pool_spend: float  # min(cost cap, wallet quote): the pool buy's spend
    cex_base: float
    wallet_base: float


def _profit(c: _Case, x: Decimal) -> Decimal | None:
    """Exact profit of size ``x`` (pool integer math, CEX fills in decimals) if every limit allows it."""
    from cryptoarb.dex.uniswap_v2 import get_amount_in, get_amount_out

    w = _exact_walk(c.levels, x)
    if w is None or x <= 0:
        return None
    notional, worst = w
    raw = int(x.scaleb(c.bdec))
    if c.cex_buy:
        if x > Decimal(repr(c.wallet_base)) or x * worst * (1 + c.fee) > Decimal(repr(c.cex_funds)):
            return None
        return Decimal(get_amount_out(raw, c.r_b, c.r_q, 30)).scaleb(-c.qdec) - notional * (1 + c.fee)
    if x > Decimal(repr(c.cex_base)) or raw >= c.r_b:
        return None
    cost = get_amount_in(raw, c.r_q, c.r_b, 30)
    if cost > int(Decimal(repr(c.pool_spend)).scaleb(c.qdec)):
        return None
    return notional * (1 - c.fee) - Decimal(cost).scaleb(-c.qdec)


def test_cex_dex_sizing_is_optimal_within_a_lot_and_every_cex_order_passes_the_venue() -> None:
    """Seeded random V2 pools, books, fees, lots, ticks, balances and caps (zero gas): the detector's
    size is a grid point, within every limit exactly, the paper venue fills its CEX order whole,
    the exact profit is not a loss, and no grid size does better by more than one lot's worth."""
    from cryptoarb.core.accounting import Portfolio
    from cryptoarb.core.book import VALID, OrderBook
    from cryptoarb.core.orders import Order
    from cryptoarb.dex.arb import DexArbDetector, DexLimits, GasModel
    from cryptoarb.dex.lots import grid_step
    from cryptoarb.dex.pools import V2, DexSpec, Token, V2Pool
    from cryptoarb.execution.paper import PaperVenue

    rng = random.Random(11)
    found = 0
    for case in range(150):
        bdec, qdec = rng.choice([18, 8]), rng.choice([18, 6])
        base, quote = Token("0x" + "aa" * 20, "WETH", bdec), Token("0x" + "bb" * 20, "USDC", qdec)
        pool = V2Pool(DexSpec("uniswap_v2", V2, 1, "0x" + "01" * 20, "0x" + "02" * 20), "0x" + "03" * 20, base, quote)
        mid = 100.0
        rb = rng.randint(20, 400)
        pool.reserve0, pool.reserve1 = rb * 10**bdec, int(rb * mid) * 10**qdec
        pool.mark_healthy(1, 1)
        lot = rng.choice([0.01, 0.05, 0.1, 0.25])
        tick = rng.choice([0.01, 0.5])
        fee = rng.choice([0.0, 0.001, 0.0075])
        inst = Instrument("binance", "WETH/USDC", "WETH", "USDC", tick_size=tick, lot_size=lot, fees=Fees(fee, fee))
        step = grid_step(inst, bdec)
        gap = rng.uniform(0.01, 0.06)
        sizes = [float(step * rng.randint(1, 30)) for _ in range(rng.randint(1, 8))]
        if rng.random() < 0.5:  # bids above the pool: buy on the pool, sell on the CEX
            px = [float(ceil_to(Decimal(repr(mid * (1 + gap))), Decimal(repr(tick))) - i * Decimal(repr(tick)))
                  for i in range(len(sizes))]
            bids, asks = list(zip(px, sizes, strict=True)), [(px[0] + 50.0, 1.0)]
        else:
            px = [float(floor_to(Decimal(repr(mid * (1 - gap))), Decimal(repr(tick))) + i * Decimal(repr(tick)))
                  for i in range(len(sizes))]
            bids, asks = [(px[0] - 50.0, 1.0)], list(zip(px, sizes, strict=True))
        book = OrderBook(inst)
        book.load_snapshot(bids, asks)
        book.set_state(VALID)
        cex_q, cex_b = rng.choice([50.0, 400.0, 5000.0, 1e6]), rng.choice([0.3, 2.0, 40.0, 1e4])
        w_q, w_b = rng.choice([60.0, 800.0, 1e7]), rng.choice([0.4, 3.0, 1e4])
        cap = rng.choice([150.0, 2000.0, 1e9])
        det = DexArbDetector(DexLimits(min_profit_bps=0.0, max_notional_quote=cap), GasModel(0, 1.0))
        det.available = {("binance", "USDC"): cex_q, ("binance", "WETH"): cex_b,
                         ("wallet@1", "USDC"): w_q, ("wallet@1", "WETH"): w_b}
        opp = det.cex_vs_pool(book, pool, base, now_ns=1)
        r_b, r_q = pool.reserve0, pool.reserve1
        cex_buy = bool(asks[0][0] < mid)
        levels = asks if cex_buy else bids
        f = Decimal(repr(fee))

        c = _Case(levels, cex_buy, bdec, qdec, r_b, r_q, f, min(cap, cex_q), min(cap, w_q), cex_b, w_b)

        grid = []
        n = 1
        while True:
            p = _profit(c, n * step)
            if p is None and _exact_walk(levels, n * step) is None:
                break
            grid.append((n * step, p))
            n += 1
        feasible = [(x, p) for x, p in grid if p is not None]
        best = max((p for _, p in feasible), default=None)
        if opp is None:
            assert best is None or best <= 0 or best < Decimal("1e-6") * max(x for x, _ in feasible), (case, best)
            continue
        found += 1
        assert opp.cex is not None
        x = Decimal(repr(opp.cex.qty))
        assert x % step == 0 and Decimal(repr(opp.cex.limit_price)) % Decimal(repr(tick)) == 0, case
        got = _profit(c, x)
        assert got is not None, (case, "the size breaks a limit")
        assert got > -Decimal("1e-9") * x * 100, (case, got)  # never a loss on exact repricing
        assert best is not None
        i = next(k for k, (g, _) in enumerate(grid) if g == x)
        near = [p for _, p in grid[max(i - 1, 0) : i + 2] if p is not None]
        one_lot = max(abs(a - b) for a in near for b in near) if len(near) > 1 else Decimal(0)
        assert got >= best - one_lot - Decimal("1e-9"), (case, x, got, best)
        # the paper venue (its own checks) takes the CEX order whole
        pf = Portfolio()
        pf.deposit("binance", "USDC", Decimal(repr(cex_q)))
        pf.deposit("binance", "WETH", Decimal(repr(cex_b)))
        o = opp.cex
        order = Order("t", "binance", inst.symbol, o.side, x, Decimal(repr(o.limit_price)), Decimal(0), 1)
        PaperVenue("binance", pf).execute(order, book, 2)
        assert order.status is OrderStatus.FILLED and order.filled_qty == x, (case, order.reason)
    assert found >= 60  # the test saw opportunities, not only refusals


# -- item 1 on the DEX path: the CEX book is read through our own footprint ---------------------------
def test_cex_levels_our_last_fill_took_are_not_sized_again(chain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Levels a CEX fill of ours took stay taken until the venue's next update of that book: the next
    CEX<->DEX opportunity sizes on what is left (the live end-to-end run's second trade used to sell
    into the bid its first trade had just filled, and its CEX leg found nothing)."""
    book = make_book([(2900.0, 5.0)], [(2920.0 + 0.5 * i, 0.5) for i in range(10)])
    rig = Rig(chain, monkeypatch)

    async def run() -> None:
        await rig.setup(book)
        fresh = rig.detector.cex_vs_pool(book, rig.uni, rig.weth, now_ns=2)
        assert fresh is not None and fresh.cex is not None and fresh.cex.side == "buy"
        fp = rig.detector.footprints[book.key]
        stamp = (book.update_id, book.local_ns)
        for i in range(4):  # our fills took the four best asks
            fp.taken_at("asks", 2920.0 + 0.5 * i, stamp)
            fp.take("asks", 2920.0 + 0.5 * i, Decimal("0.5"))
        after = rig.detector.cex_vs_pool(book, rig.uni, rig.weth, now_ns=3)
        assert after is None or (after.cex is not None and after.cex.expected_price >= 2922.0)
        assert after is None or after.opportunity.profit_quote < fresh.opportunity.profit_quote
        book.update_id += 1  # the venue's next picture includes our fills: the levels are back
        again = rig.detector.cex_vs_pool(book, rig.uni, rig.weth, now_ns=4)
        assert again is not None and again.cex is not None
        assert again.cex.expected_price == fresh.cex.expected_price

    chain.run(run())
