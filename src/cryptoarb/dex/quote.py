"""Exact pool quotes for the detector: one place that knows how to price a V2 or a V3 pool.

The detector sizes trades by probing pools many times. Keeping the V2/V3 dispatch here (rather
than in every sizing routine) means each search is written once against :data:`Pool`, and the
quotes are the contracts' integer math (:mod:`.uniswap_v2`, :mod:`.uniswap_v3`), never a float
approximation. Freshness is the caller's check: these functions quote whatever state is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cryptoarb.dex import uniswap_v2 as v2
from cryptoarb.dex import uniswap_v3 as v3
from cryptoarb.dex.errors import DexError
from cryptoarb.dex.pools import Token, V2Pool, V3Pool

Pool = V2Pool | V3Pool


def fee_frac(pool: Pool) -> float:
    """The pool fee as a fraction of the input (V2: basis points, V3: hundredths of a bip)."""
    return pool.dex.fee_bps / 1e4 if isinstance(pool, V2Pool) else pool.fee / 1e6


def pool_out(pool: Pool, token_in: Token, amount_in: int) -> int:
    """Exact output from the pool's current state (freshness is the caller's check)."""
    if isinstance(pool, V2Pool):
        r_in, r_out = pool.reserves(token_in)
        return v2.get_amount_out(amount_in, r_in, r_out, pool.fee_bps)
    assert pool.state is not None
    return v3.quote_exact_input(pool.state, pool.zero_for_one(token_in), amount_in)


def pool_in(pool: Pool, token_out: Token, amount_out: int) -> int:
    """Exact input needed for ``amount_out`` from the pool's current state."""
    if isinstance(pool, V2Pool):
        r_out, r_in = pool.reserves(token_out)
        return v2.get_amount_in(amount_out, r_in, r_out, pool.fee_bps)
    assert pool.state is not None
    return v3.quote_exact_output(pool.state, not pool.zero_for_one(token_out), amount_out)


def pool_mid(pool: Pool, base: Token) -> float:
    """Marginal price of base in quote (human units), fee excluded."""
    quote = pool.other(base)
    if isinstance(pool, V2Pool):
        rb, rq = pool.reserves(base)
        return v2.mid_price(rb, rq, base.decimals, quote.decimals)
    assert pool.state is not None
    p0 = v3.price_of_token0(pool.state.sqrt_price_x96, pool.token0.decimals, pool.token1.decimals)
    return p0 if pool.zero_for_one(base) else 1.0 / p0


def max_in(pool: Pool, token_in: Token) -> int:
    """Upper bound for a search over input amounts."""
    if isinstance(pool, V2Pool):
        return pool.reserves(token_in)[0]
    assert pool.state is not None
    return v3.max_input(pool.state, pool.zero_for_one(token_in))


def safe(f: Callable[[int], float]) -> Callable[[int], float]:
    """An objective that is -inf where the pool cannot serve the size (so searches avoid it)."""

    def g(x: int) -> float:
        if x <= 0:
            return 0.0
        try:
            return f(x)
        except (DexError, ValueError):
            return float("-inf")

    return g


def walk_levels(levels: Iterable[tuple[float, float]], qty: float) -> tuple[float, float, float]:
    """OrderBook.walk over levels already taken (a list, or a :class:`.lots.Taken` side), not the book."""
    filled = notional = worst = 0.0
    for p, q in levels:
        left = qty - filled
        worst = p
        if q >= left:
            return qty, notional + left * p, worst
        filled += q
        notional += q * p
    return filled, notional, worst
