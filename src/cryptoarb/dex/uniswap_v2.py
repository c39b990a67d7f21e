"""Uniswap V2 pair math (and its forks) in the contract's integer arithmetic, and optimal sizing.

``get_amount_out`` / ``get_amount_in`` are ``UniswapV2Library.getAmountOut/getAmountIn`` with the
fee in basis points: ``30`` is Uniswap V2 and SushiSwap (997/1000), ``25`` PancakeSwap V2
(9975/10000). ``amountIn * 9970 * R / (Rin * 10000 + amountIn * 9970)`` is the same rational as
the contract's ``997/1000`` form, so the floor is the same wei.

Optimal sizes come in closed form (the constant-product curve has a closed-form marginal
price): pool against pool, and pool against a CEX order book, where the book's marginal price
is piecewise constant, so the optimum is found by walking levels and solving in closed form
within each level. Gas is a fixed cost per trade: it does not move the optimum, it only decides
whether trading at the optimum is worth it, which is the caller's check.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from math import isqrt, sqrt

from cryptoarb.dex.errors import InsufficientInput, InsufficientLiquidity

BPS = 10_000

# fee of each known V2 family member, in bps of the input amount
FEE_BPS = {"uniswap_v2": 30, "sushiswap": 30, "pancakeswap_v2": 25}


def _check_fee(fee_bps: int) -> None:
    if not 0 <= fee_bps < BPS:
        raise ValueError(f"fee_bps must be within [0, {BPS}), got {fee_bps}")


def get_amount_out(amount_in: int, reserve_in: int, reserve_out: int, fee_bps: int = 30) -> int:
    """Output of swapping ``amount_in`` into a pair, exactly as ``UniswapV2Library.getAmountOut``."""
    if amount_in <= 0:
        raise InsufficientInput(f"insufficient input amount: {amount_in} (must be > 0)")
    if reserve_in <= 0 or reserve_out <= 0:
        raise InsufficientLiquidity(f"insufficient liquidity: reserves in={reserve_in} out={reserve_out}")
    _check_fee(fee_bps)
    amount_in_with_fee = amount_in * (BPS - fee_bps)
    return amount_in_with_fee * reserve_out // (reserve_in * BPS + amount_in_with_fee)


def get_amount_in(amount_out: int, reserve_in: int, reserve_out: int, fee_bps: int = 30) -> int:
    """Input needed to receive ``amount_out``, exactly as ``UniswapV2Library.getAmountIn``."""
    if amount_out <= 0:
        raise InsufficientInput(f"insufficient output amount: {amount_out} (must be > 0)")
    if reserve_in <= 0 or reserve_out <= 0:
        raise InsufficientLiquidity(f"insufficient liquidity: reserves in={reserve_in} out={reserve_out}")
    if amount_out >= reserve_out:
        raise InsufficientLiquidity(f"insufficient liquidity: amount_out {amount_out} >= reserve_out {reserve_out}")
    _check_fee(fee_bps)
    return reserve_in * amount_out * BPS // ((reserve_out - amount_out) * (BPS - fee_bps)) + 1


def get_amounts_out(amount_in: int, hops: Iterable[tuple[int, int, int]]) -> list[int]:
    """Router02.getAmountsOut along ``hops`` of ``(reserve_in, reserve_out, fee_bps)``."""
    amounts = [amount_in]
    for r_in, r_out, fee in hops:
        amounts.append(get_amount_out(amounts[-1], r_in, r_out, fee))
    return amounts


def get_amounts_in(amount_out: int, hops: Iterable[tuple[int, int, int]]) -> list[int]:
    """Router02.getAmountsIn: ``hops`` in path order, computed backwards like the router."""
    hl = list(hops)
    amounts = [amount_out]
    for r_in, r_out, fee in reversed(hl):
        amounts.insert(0, get_amount_in(amounts[0], r_in, r_out, fee))
    return amounts


def mid_price(reserve_base: int, reserve_quote: int, base_decimals: int, quote_decimals: int) -> float:
    """Quote per base in human units, fee excluded (the pool's marginal price)."""
    if reserve_base <= 0 or reserve_quote <= 0:
        raise InsufficientLiquidity(f"insufficient liquidity: reserves base={reserve_base} quote={reserve_quote}")
    return float((reserve_quote / 10**quote_decimals) / (reserve_base / 10**base_decimals))


# -- optimal sizing ----------------------------------------------------------------------
def optimal_pool_vs_pool(a_in: int, a_out: int, b_in: int, b_out: int, fee_a_bps: int = 30, fee_b_bps: int = 30) -> int:
    """Amount of token X to swap X->Y on pool A and then Y->X on pool B for the most X back.

    ``a_in``/``a_out`` are A's reserves of X/Y, ``b_in``/``b_out`` B's reserves of Y/X. The two
    pools compose into one curve ``z(x) = N x / (D + C x)`` with
    ``N = gA gB a_out b_out``, ``D = a_in b_in``, ``C = gA (b_in + gB a_out)``; ``z'(x) = 1`` at
    ``x* = (sqrt(N D) - D) / C``. Computed with ``isqrt`` on integers scaled by the fee
    denominators, so no float rounding; 0 when no positive profit exists (``N <= D``).
    """
    for r in (a_in, a_out, b_in, b_out):
        if r <= 0:
            raise InsufficientLiquidity(f"insufficient liquidity: reserves {a_in}, {a_out}, {b_in}, {b_out}")
    _check_fee(fee_a_bps)
    _check_fee(fee_b_bps)
    ga, gb = BPS - fee_a_bps, BPS - fee_b_bps
    n = ga * gb * a_out * b_out  # scaled by BPS**2
    d = a_in * b_in * BPS * BPS  # scaled by BPS**2
    if n <= d:
        return 0
    c = ga * (b_in * BPS + gb * a_out)  # scaled by BPS**2
    x = (isqrt(n * d) - d) // c
    return max(x, 0)


def pool_vs_pool_profit(x: int, a_in: int, a_out: int, b_in: int, b_out: int, fee_a: int = 30, fee_b: int = 30) -> int:
    """Exact X profit of the round trip of :func:`optimal_pool_vs_pool` for input ``x``."""
    if x <= 0:
        return 0
    y = get_amount_out(x, a_in, a_out, fee_a)
    if y <= 0:
        return -x
    return get_amount_out(y, b_in, b_out, fee_b) - x


def optimal_input_vs_price(reserve_in: int, reserve_out: int, price: float, fee_bps: int = 30) -> int:
    """Input that takes the pool's marginal output rate down to ``1/price``.

    ``price`` is what one raw unit of the output token is worth in raw units of the input token
    elsewhere (net of that venue's fee). Maximises ``price * y(x) - x``:
    ``x* = (sqrt(g Rin Rout price) - Rin) / g``; 0 when the pool is not cheaper than ``price``.
    """
    if reserve_in <= 0 or reserve_out <= 0:
        raise InsufficientLiquidity(f"insufficient liquidity: reserves in={reserve_in} out={reserve_out}")
    _check_fee(fee_bps)
    g = (BPS - fee_bps) / BPS
    x = (sqrt(g * reserve_in * reserve_out * price) - reserve_in) / g
    return int(x) if x > 0 else 0


def optimal_buy_vs_bids(
    reserve_quote: float, reserve_base: float, fee_bps: int, bids: Iterable[tuple[float, float]], cex_fee: float
) -> float:
    """Base quantity to buy from the pool and sell into a book's ``bids`` (best first).

    Human units (reserves already divided by their decimals). Buying ``q`` base costs
    ``x(q) = Rq q / (g (Rb - q))``, marginal ``Rq Rb / (g (Rb - q)**2)``; selling into a bid level
    earns ``p (1 - fee)``, constant within the level. Within each level the marginal equation has
    the closed form ``q* = Rb - sqrt(Rq Rb / (g p'))``: the walk stops in the first level where
    ``q*`` falls inside it, or at a level boundary (the kink) when ``q*`` falls before it.
    """
    if reserve_quote <= 0 or reserve_base <= 0:
        raise InsufficientLiquidity("insufficient liquidity: empty pool")
    g = (BPS - fee_bps) / BPS
    k = reserve_quote * reserve_base / g
    cum = 0.0
    for price, qty in bids:
        p = price * (1.0 - cex_fee)
        if p <= 0.0:
            break
        q_star = reserve_base - sqrt(k / p)
        if q_star <= cum:
            return cum
        if q_star < cum + qty:
            return q_star
        cum += qty
    return cum


def optimal_sell_vs_asks(
    reserve_base: float, reserve_quote: float, fee_bps: int, asks: Iterable[tuple[float, float]], cex_fee: float
) -> float:
    """Base quantity to buy from a book's ``asks`` (best first) and sell into the pool.

    Selling ``x`` base yields ``y(x) = g x Rq / (Rb + g x)``, marginal ``g Rb Rq / (Rb + g x)**2``;
    an ask level costs ``a (1 + fee)`` per base. Closed form within a level:
    ``x* = (sqrt(g Rb Rq / a') - Rb) / g``; the walk is the mirror of :func:`optimal_buy_vs_bids`.
    """
    if reserve_quote <= 0 or reserve_base <= 0:
        raise InsufficientLiquidity("insufficient liquidity: empty pool")
    g = (BPS - fee_bps) / BPS
    k = g * reserve_base * reserve_quote
    cum = 0.0
    for price, qty in asks:
        a = price * (1.0 + cex_fee)
        if a <= 0.0:
            continue
        x_star = (sqrt(k / a) - reserve_base) / g
        if x_star <= cum:
            return cum
        if x_star < cum + qty:
            return x_star
        cum += qty
    return cum
