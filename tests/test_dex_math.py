"""Pure DEX math: V2 pair formulas, closed-form optimal sizes, V3 TickMath and swap simulation,
the AMM depth view. No chain here; test_dex_chain.py checks the same functions against the
real contracts."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import pytest

from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.instruments import Fees, Instrument
from cryptoarb.detect.cross_venue import CrossVenueDetector, Limits
from cryptoarb.detect.groups import Group
from cryptoarb.dex import InsufficientInput, InsufficientLiquidity, get_amount_in, get_amount_out
from cryptoarb.dex import uniswap_v2 as v2
from cryptoarb.dex import uniswap_v3 as v3
from cryptoarb.dex import v3math as m
from cryptoarb.dex.depth import AmmDepth
from cryptoarb.dex.pools import Token


# -- V2 ------------------------------------------------------------------------------------
def test_v2_matches_the_contract_formulas_for_uniswap_and_pancake() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        r_in = rng.randrange(10**3, 10**30)
        r_out = rng.randrange(10**3, 10**30)
        a = rng.randrange(1, r_in * 3)
        # UniswapV2Library (997/1000) and PancakeLibrary (9975/10000), written as in Solidity
        uni = a * 997 * r_out // (r_in * 1000 + a * 997)
        cake = a * 9975 * r_out // (r_in * 10000 + a * 9975)
        assert get_amount_out(a, r_in, r_out) == uni
        assert get_amount_out(a, r_in, r_out, fee_bps=25) == cake
        out = rng.randrange(1, r_out)
        assert get_amount_in(out, r_in, r_out) == r_in * out * 1000 // ((r_out - out) * 997) + 1
        assert get_amount_in(out, r_in, r_out, 25) == r_in * out * 10000 // ((r_out - out) * 9975) + 1
        # getAmountIn is enough, one less is not (the router's exact-output guarantee)
        need = get_amount_in(out, r_in, r_out)
        assert get_amount_out(need, r_in, r_out) >= out


def test_v2_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="insufficient liquidity"):
        get_amount_out(10, 0, 100)
    with pytest.raises(InsufficientLiquidity, match="insufficient liquidity"):
        get_amount_in(100, 1000, 100)
    with pytest.raises(InsufficientInput, match="insufficient input amount"):
        get_amount_out(0, 10, 10)
    with pytest.raises(ValueError, match="fee_bps"):
        get_amount_out(1, 10, 10, fee_bps=10_000)
    assert v2.get_amounts_out(10**18, [(10**21, 3 * 10**24, 30), (3 * 10**24, 10**21, 25)])[0] == 10**18


def test_pool_vs_pool_closed_form_beats_a_brute_force_grid() -> None:
    rng = random.Random(3)
    checked = 0
    for _ in range(300):
        a_in, a_out = rng.randrange(10**20, 10**24), rng.randrange(10**18, 10**22)
        # B prices Y higher than A by up to 5 %
        gap = 1 + rng.uniform(-0.01, 0.05)
        b_in = rng.randrange(10**18, 10**22)
        b_out = int(b_in * a_in / a_out * gap)
        fa, fb = rng.choice([30, 25]), rng.choice([30, 25, 5])
        x = v2.optimal_pool_vs_pool(a_in, a_out, b_in, b_out, fa, fb)
        best = v2.pool_vs_pool_profit(x, a_in, a_out, b_in, b_out, fa, fb)
        hi = max(2 * x, a_in // 20)
        grid = max(v2.pool_vs_pool_profit(hi * k // 400, a_in, a_out, b_in, b_out, fa, fb) for k in range(1, 401))
        # integer flooring in two swaps: the continuous optimum may lose up to 2 units to a grid point
        assert best >= grid - 2, (x, best, grid)
        if x == 0:
            assert grid <= 2
        else:
            checked += 1
            assert best > 0
    assert checked > 50


def _book_levels(rng: random.Random, start: float, step: float, n: int) -> list[tuple[float, float]]:
    return [(start + i * step, rng.uniform(0.05, 2.0)) for i in range(n)]


def _profit_buy(q: float, rq: float, rb: float, g: float, bids: list[tuple[float, float]], fee: float) -> float:
    """Buy q base on the pool (continuous curve), sell into the bids: profit in quote."""
    if q >= rb:
        return float("-inf")
    cost = rq * q / (g * (rb - q))
    left, value = q, 0.0
    for p, qty in bids:
        t = min(qty, left)
        value += t * p * (1 - fee)
        left -= t
    return value - cost if left <= 1e-12 else float("-inf")


def _profit_sell(x: float, rb: float, rq: float, g: float, asks: list[tuple[float, float]], fee: float) -> float:
    """Buy x base from the asks, sell it into the pool: profit in quote."""
    out = g * x * rq / (rb + g * x)
    left, cost = x, 0.0
    for p, qty in asks:
        t = min(qty, left)
        cost += t * p * (1 + fee)
        left -= t
    return out - cost if left <= 1e-12 else float("-inf")


def test_pool_vs_book_closed_form_walk_beats_brute_force() -> None:
    rng = random.Random(11)
    for _ in range(40):
        rb = rng.uniform(50, 500)
        rq = rb * 3000 * rng.uniform(0.98, 1.0)
        fee_bps, cex_fee = rng.choice([30, 25]), rng.choice([0.001, 0.0004])
        g = 1 - fee_bps / 1e4
        bids = _book_levels(rng, 3000 * 1.02, -0.7, 60)
        q = v2.optimal_buy_vs_bids(rq, rb, fee_bps, bids, cex_fee)
        depth = sum(qty for _, qty in bids)
        grid = max(_profit_buy(depth * k / 1000, rq, rb, g, bids, cex_fee) for k in range(1001))
        assert _profit_buy(q, rq, rb, g, bids, cex_fee) >= grid - 1e-9 * max(1.0, abs(grid))
        asks = _book_levels(rng, 3000 * 0.97, 0.7, 60)
        rq2 = rb * 3000
        x = v2.optimal_sell_vs_asks(rb, rq2, fee_bps, asks, cex_fee)
        depth = sum(qty for _, qty in asks)
        grid = max(_profit_sell(depth * k / 1000, rb, rq2, g, asks, cex_fee) for k in range(1001))
        assert _profit_sell(x, rb, rq2, g, asks, cex_fee) >= grid - 1e-9 * max(1.0, abs(grid))


def test_optimal_input_vs_price_is_where_the_pool_meets_the_price() -> None:
    r_in, r_out = 3 * 10**24, 10**21  # 3000 quote per base
    x = v2.optimal_input_vs_price(r_in, r_out, 3100.0)
    # marginal output rate at x equals 1/3100 (to float precision)
    marg = get_amount_out(x + 10**15, r_in, r_out) - get_amount_out(x, r_in, r_out)
    assert abs(marg / 10**15 * 3100 - 1) < 1e-4
    assert v2.optimal_input_vs_price(r_in, r_out, 2900.0) == 0


# -- V3 math ---------------------------------------------------------------------------------
def test_tick_math_bounds_and_inverse() -> None:
    assert m.get_sqrt_ratio_at_tick(m.MIN_TICK) == m.MIN_SQRT_RATIO
    assert m.get_sqrt_ratio_at_tick(m.MAX_TICK) == m.MAX_SQRT_RATIO
    assert m.get_sqrt_ratio_at_tick(0) == m.Q96
    with pytest.raises(ValueError, match="out of range"):
        m.get_sqrt_ratio_at_tick(m.MAX_TICK + 1)
    rng = random.Random(5)
    for tick in [m.MIN_TICK, m.MAX_TICK - 1, -1, 0, 1, *(rng.randrange(m.MIN_TICK, m.MAX_TICK) for _ in range(500))]:
        s = m.get_sqrt_ratio_at_tick(tick)
        assert m.get_tick_at_sqrt_ratio(s) == tick
        if tick < m.MAX_TICK - 1:
            nxt = m.get_sqrt_ratio_at_tick(tick + 1)
            assert m.get_tick_at_sqrt_ratio(nxt - 1) == tick
    # price 1.0001**tick, to float precision
    assert abs((m.get_sqrt_ratio_at_tick(10_000) / m.Q96) ** 2 / 1.0001**10_000 - 1) < 1e-12


def _state() -> v3.V3PoolState:
    """A pool at tick ~0 with three ranges (spacing 10), built from its initialized ticks."""
    ticks: dict[int, v3.TickInfo] = {}
    L = 10**21
    for lo, hi, liq in ((-600, 600, L), (-3000, 3000, L // 2), (-40_000, 40_000, L // 10)):
        for t, net in ((lo, liq), (hi, -liq)):
            info = ticks.setdefault(t, v3.TickInfo(0, 0))
            info.liquidity_gross += liq
            info.liquidity_net += net
    return v3.V3PoolState.from_ticks(500, 10, m.get_sqrt_ratio_at_tick(3), L + L // 2 + L // 10, ticks)


def test_v3_swap_exact_input_and_output_agree() -> None:
    st = _state()
    rng = random.Random(9)
    checked = 0
    for _ in range(200):
        zf = rng.random() < 0.5
        a = int(10 ** rng.uniform(3, 21.5))
        try:
            out = v3.quote_exact_input(st, zf, a)
        except InsufficientLiquidity:
            continue  # beyond the last range: the pool cannot absorb it all
        if out == 0:
            continue
        need = v3.quote_exact_output(st, zf, out)
        assert need <= a  # exact output of what exact input gave never needs more
        assert v3.quote_exact_input(st, zf, need) >= out
        checked += 1
    assert checked >= 50, checked  # the loop must not have skipped (nearly) every case
    big = v3.swap(st, True, 10**22)
    assert big.ticks_crossed >= 2 and big.steps > big.ticks_crossed  # word boundaries are steps too


def test_v3_incomplete_words_and_liquidity_events() -> None:
    st = _state()
    st.loaded_words = (-1, 0)  # words -1..0 only: ticks -2560..2559 at spacing 10
    v3.quote_exact_input(st, True, 10**18)
    with pytest.raises(v3.IncompleteTickData, match="outside the loaded words"):
        v3.quote_exact_input(st, True, 10**23)
    assert 0 < v3.max_input(st, True) < 10**23
    # mint then burn the same position: back to the same state, bitmap included
    st2 = st.copy()
    st2.apply_liquidity_event(-20, 20, 5 * 10**18)
    assert st2.liquidity == st.liquidity + 5 * 10**18 and st2.words != st.words
    st2.apply_liquidity_event(-20, 20, -5 * 10**18)
    assert (st2.liquidity, st2.words, st2.ticks) == (st.liquidity, st.words, st.ticks)
    with pytest.raises(InsufficientLiquidity):
        v3.quote_exact_output(_state(), True, 10**40)


def test_maximize_finds_the_top_of_a_concave_function() -> None:
    for top in (0, 1, 17, 10**6, 123_456_789_012, 10**12):
        x, fx = v3.maximize(lambda x, t=top: -abs(x - t) * 1.0, 10**12)
        assert abs(x - top) <= 10**12 * 1e-9 + 3 and fx == -abs(x - top)
        x, _ = v3.maximize(lambda x, t=top: -abs(x - t) * 1.0, 10**12, rel_tol=0.0)
        assert abs(x - top) <= 1


# -- depth view --------------------------------------------------------------------------------
def test_amm_depth_walk_matches_exact_pool_cost_and_feeds_the_cross_venue_detector() -> None:
    usdc = Token("0x" + "11" * 20, "USDC", 6)
    inst = Instrument(
        "uniswap_v2@1", "WETH/USDC", "WETH", "USDC", tick_size=1e-6, lot_size=1e-6, fees=Fees(taker=0.0, maker=0.0)
    )
    depth = AmmDepth(inst, 18, 6, fee_bps=30, step_bps=2.0)
    rb, rq = 1_000 * 10**18, 3_000_000 * 10**6
    depth.update(rb, rq, local_ns=1)
    assert depth.valid and depth.ask > depth.mid() > depth.bid
    assert abs(depth.ask / depth.mid() - 1 / 0.997) < 3e-4
    # at level boundaries the walk is the curve; inside a level it is within one step of it
    bounds, cum = [], 0.0
    for _, qty in depth.asks():
        cum += qty
        bounds.append(cum)
    for q in (bounds[0], bounds[9], bounds[99], 0.01, 1.0, 10.0, 30.0):
        filled, notional, _ = depth.walk("asks", q)
        _, quote_raw = depth.exact_buy(q)
        assert filled == pytest.approx(q)
        tol = 1e-9 if q in bounds else 2e-4
        assert notional == pytest.approx(float(usdc.human(quote_raw)), rel=tol, abs=2e-6)
        filled, notional, _ = depth.walk("bids", q)
        _, out_raw = depth.exact_sell(q)
        assert notional == pytest.approx(float(Decimal(out_raw) / 10**6), rel=2e-4)
    # a CEX book whose bids are above the pool's ask: the unchanged detector sizes against the pool
    cex = Instrument("binance", "WETH/USDC", "WETH", "USDC", fees=Fees(taker=0.001, maker=0.001))
    book = OrderBook(cex)
    book.load_snapshot([(3030.0 - i, 0.5) for i in range(40)], [(3031.0 + i, 0.5) for i in range(40)])
    book.set_state(VALID)
    book.local_ns = 1
    det = CrossVenueDetector([Group("WETH/USDC", "dex", (inst.key, cex.key))], Limits(max_notional_quote=1e9))
    det.available = {("uniswap_v2@1", "USDC"): 1e9, ("binance", "WETH"): 1e9}
    det.add_book(depth)  # type: ignore[arg-type]
    det.add_book(book)
    opps = det.on_book(book, 2)
    assert opps and opps[0].buy_key == inst.key and opps[0].sell_key == cex.key
    q = opps[0].qty_base
    # the detector stopped where the pool's marginal cost meets the book's marginal bid
    q_star = v2.optimal_buy_vs_bids(rq / 1e6, rb / 1e18, 30, book.bids(), 0.001)
    assert abs(q - q_star) / q_star < 0.05
    # the raw amounts are the quantity's exact decimal (float products gave 569999999999999936)
    assert depth.exact_buy(0.57)[0] == depth.exact_sell(0.57)[0] == 57 * 10**16
    depth.invalidate()
    assert not depth.valid and list(depth.asks()) == []


def test_token_amounts_are_exact_for_any_decimals() -> None:
    usdc = Token("0x" + "22" * 20, "USDC", 6)
    assert usdc.raw(Decimal("1234.567891")) == 1_234_567_891
    assert usdc.raw(0.1) == 100_000
    assert usdc.human(1_234_567_891) == Decimal("1234.567891")
    assert Fraction(usdc.human(1)) == Fraction(1, 10**6)
