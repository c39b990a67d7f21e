"""Uniswap V3 pool state and an exact local swap simulation across initialized ticks.

:func:`swap` runs ``UniswapV3Pool.swap``'s loop on a :class:`V3PoolState` (slot0 price and tick,
in-range liquidity, the tick bitmap and each initialized tick's liquidity): the same
``nextInitializedTickWithinOneWord`` steps (word boundaries included, since each step rounds on
its own), the same ``computeSwapStep`` and tick crossings, hence the same wei as the pool and as
``QuoterV2`` (which runs the pool's swap and reverts). No eth_call is needed to quote.

The state knows which bitmap words it holds (``loaded_words``); a swap that would step into a
word it does not hold raises :class:`IncompleteTickData` instead of treating unknown liquidity
as empty. Events keep it current: ``Swap`` carries the new price, tick and liquidity; ``Mint`` and
``Burn`` change ticks' gross/net liquidity (and the in-range liquidity).

Optimal size against another venue is numeric (:func:`maximize`): a golden-section search on
integers with every candidate evaluated exactly, since the V3 curve is piecewise and has no
closed form across ticks. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptoarb.dex import v3math as m
from cryptoarb.dex.errors import IncompleteTickData, InsufficientInput, InsufficientLiquidity

FEE_TICK_SPACING = {100: 1, 500: 10, 3000: 60, 10000: 200}


@dataclass(slots=True)
class TickInfo:
    liquidity_gross: int
    liquidity_net: int


@dataclass(slots=True)
class V3PoolState:
    """Everything a swap reads from a pool. ``loaded_words`` None means the bitmap is complete."""

    fee: int  # pips (3000 == 0.3 %)
    tick_spacing: int
    sqrt_price_x96: int
    tick: int
    liquidity: int
    ticks: dict[int, TickInfo] = field(default_factory=dict)
    words: dict[int, int] = field(default_factory=dict)
    loaded_words: tuple[int, int] | None = None  # inclusive range of bitmap words read from chain
    block: int = 0

    def copy(self) -> V3PoolState:
        return V3PoolState(
            self.fee,
            self.tick_spacing,
            self.sqrt_price_x96,
            self.tick,
            self.liquidity,
            {t: TickInfo(i.liquidity_gross, i.liquidity_net) for t, i in self.ticks.items()},
            dict(self.words),
            self.loaded_words,
            self.block,
        )

    # -- events -----------------------------------------------------------------------
    def apply_swap_event(self, sqrt_price_x96: int, liquidity: int, tick: int) -> None:
        """A ``Swap`` event carries the pool's state after the swap: take it as is."""
        self.sqrt_price_x96 = sqrt_price_x96
        self.liquidity = liquidity
        self.tick = tick

    def apply_liquidity_event(self, tick_lower: int, tick_upper: int, amount: int) -> None:
        """``Mint`` (amount > 0) or ``Burn`` (amount < 0) of a position: Tick.update + flipTick."""
        if amount == 0:
            return  # a poke: no tick changes
        for t, net in ((tick_lower, amount), (tick_upper, -amount)):
            info = self.ticks.get(t)
            before = info.liquidity_gross if info else 0
            after = before + amount
            if after < 0:
                raise ValueError(f"burn below zero liquidity at tick {t}: state out of sync")
            if info is None:
                info = self.ticks[t] = TickInfo(0, 0)
            info.liquidity_gross = after
            info.liquidity_net += net
            if (before == 0) != (after == 0):
                m.flip_tick(self.words, t, self.tick_spacing)
            if after == 0:
                del self.ticks[t]
        if tick_lower <= self.tick < tick_upper:
            self.liquidity = m.add_delta(self.liquidity, amount)

    @classmethod
    def from_ticks(
        cls, fee: int, tick_spacing: int, sqrt_price_x96: int, liquidity: int, ticks: dict[int, TickInfo]
    ) -> V3PoolState:
        """A complete state from a list of initialized ticks (bitmap derived from them)."""
        st = cls(fee, tick_spacing, sqrt_price_x96, m.get_tick_at_sqrt_ratio(sqrt_price_x96), liquidity)
        for t, info in ticks.items():
            st.ticks[t] = TickInfo(info.liquidity_gross, info.liquidity_net)
            m.flip_tick(st.words, t, tick_spacing)
        return st


@dataclass(frozen=True, slots=True)
class SwapResult:
    amount0: int  # pool's delta of token0 (> 0: paid in, < 0: paid out), like the contract
    amount1: int
    sqrt_price_x96: int
    tick: int
    liquidity: int
    steps: int
    ticks_crossed: int  # initialized ticks whose liquidity was applied

    def amounts(self, zero_for_one: bool) -> tuple[int, int]:
        """(amount in, amount out) for the direction of the swap."""
        return (self.amount0, -self.amount1) if zero_for_one else (self.amount1, -self.amount0)


def swap(
    state: V3PoolState, zero_for_one: bool, amount_specified: int, sqrt_price_limit_x96: int | None = None
) -> SwapResult:
    """Simulate ``pool.swap`` (exact input when ``amount_specified`` > 0, exact output when < 0).

    ``sqrt_price_limit_x96`` None is what the router and QuoterV2 use for "no limit":
    ``MIN_SQRT_RATIO + 1`` / ``MAX_SQRT_RATIO - 1``. The state is not modified.
    """
    if amount_specified == 0:
        raise InsufficientInput("amount_specified must not be zero (AS)")
    limit = sqrt_price_limit_x96
    if limit is None:
        limit = m.MIN_SQRT_RATIO + 1 if zero_for_one else m.MAX_SQRT_RATIO - 1
    sqrt_p = state.sqrt_price_x96
    if zero_for_one:
        if not (m.MIN_SQRT_RATIO < limit < sqrt_p):
            raise ValueError(f"price limit {limit} not below the current price {sqrt_p} (SPL)")
    elif not (sqrt_p < limit < m.MAX_SQRT_RATIO):
        raise ValueError(f"price limit {limit} not above the current price {sqrt_p} (SPL)")

    exact_input = amount_specified > 0
    remaining = amount_specified
    calculated = 0
    tick = state.tick
    liquidity = state.liquidity
    words = state.words
    loaded = state.loaded_words
    spacing = state.tick_spacing
    fee = state.fee
    steps = crossed = 0
    while remaining != 0 and sqrt_p != limit:
        start = sqrt_p
        tick_next, initialized, word = m.next_initialized_tick_within_one_word(words, tick, spacing, zero_for_one)
        if loaded is not None and not loaded[0] <= word <= loaded[1]:
            raise IncompleteTickData(
                f"swap reaches tick-bitmap word {word}, outside the loaded words {loaded[0]}..{loaded[1]}"
            )
        tick_next = max(m.MIN_TICK, min(m.MAX_TICK, tick_next))
        sqrt_next = m.get_sqrt_ratio_at_tick(tick_next)
        target = limit if (sqrt_next < limit if zero_for_one else sqrt_next > limit) else sqrt_next
        sqrt_p, a_in, a_out, fee_amt = m.compute_swap_step(sqrt_p, target, liquidity, remaining, fee)
        steps += 1
        if exact_input:
            remaining -= a_in + fee_amt
            calculated -= a_out
        else:
            remaining += a_out
            calculated += a_in + fee_amt
        if sqrt_p == sqrt_next:
            if initialized:
                info = state.ticks.get(tick_next)
                if info is None:
                    raise IncompleteTickData(f"tick {tick_next} is set in the bitmap but its liquidity is unknown")
                net = -info.liquidity_net if zero_for_one else info.liquidity_net
                liquidity = m.add_delta(liquidity, net)
                crossed += 1
            tick = tick_next - 1 if zero_for_one else tick_next
        elif sqrt_p != start:
            tick = m.get_tick_at_sqrt_ratio(sqrt_p)

    if zero_for_one == exact_input:
        amount0, amount1 = amount_specified - remaining, calculated
    else:
        amount0, amount1 = calculated, amount_specified - remaining
    return SwapResult(amount0, amount1, sqrt_p, tick, liquidity, steps, crossed)


def quote_exact_input(state: V3PoolState, zero_for_one: bool, amount_in: int) -> int:
    """Output for ``amount_in`` (what QuoterV2.quoteExactInputSingle returns); all input must fit.

    Raises :class:`InsufficientLiquidity` when the pool runs out of liquidity before the whole
    input is consumed (the quoter would quote the partial swap; we refuse rather than mislead).
    """
    if amount_in <= 0:
        raise InsufficientInput(f"insufficient input amount: {amount_in} (must be > 0)")
    res = swap(state, zero_for_one, amount_in)
    used, out = res.amounts(zero_for_one)
    if used != amount_in:
        raise InsufficientLiquidity(f"insufficient liquidity: only {used} of {amount_in} can be swapped")
    return out


def quote_exact_output(state: V3PoolState, zero_for_one: bool, amount_out: int) -> int:
    """Input needed to receive exactly ``amount_out``."""
    if amount_out <= 0:
        raise InsufficientInput(f"insufficient output amount: {amount_out} (must be > 0)")
    res = swap(state, zero_for_one, -amount_out)
    amount_in, got = res.amounts(zero_for_one)
    if got != amount_out:
        raise InsufficientLiquidity(f"insufficient liquidity: only {got} of {amount_out} available")
    return amount_in


def price_of_token0(sqrt_price_x96: int, decimals0: int, decimals1: int) -> float:
    """Human price of token0 in token1 (fee excluded)."""
    return float((sqrt_price_x96 / m.Q96) ** 2 * 10.0 ** (decimals0 - decimals1))


# -- numeric optimum -------------------------------------------------------------------------
_INV_PHI = (5**0.5 - 1) / 2


def maximize(
    f: Callable[[int], float], hi: int, lo: int = 0, rel_tol: float = 1e-9, max_iter: int = 200
) -> tuple[int, float]:
    """Integer golden-section search for the maximum of a unimodal ``f`` on ``[lo, hi]``.

    Every probe is an exact evaluation (a simulated swap), so the returned size's value is
    exact; the search stops when the bracket is narrower than ``rel_tol`` of ``hi`` (or one
    unit). ``f(lo)`` is included so a no-profit situation returns ``lo``.
    """
    if hi <= lo:
        return lo, f(lo)
    a, b = lo, hi
    c = b - int((b - a) * _INV_PHI)
    d = a + int((b - a) * _INV_PHI)
    fc, fd = f(c), f(d)
    tol = max(1, int(hi * rel_tol))
    for _ in range(max_iter):
        if b - a <= max(tol, 3):
            break
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - int((b - a) * _INV_PHI)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + int((b - a) * _INV_PHI)
            fd = f(d)
    best_x, best_f = lo, f(lo)
    for x in {a, b, c, d}:
        fx = fc if x == c else fd if x == d else f(x)
        if fx > best_f:
            best_x, best_f = x, fx
    return best_x, best_f


def max_input(state: V3PoolState, zero_for_one: bool) -> int:
    """Largest exact input the loaded liquidity absorbs (swap to the loaded edge or the limit)."""
    st = state
    try:
        res = swap(st, zero_for_one, 1 << 200)
    except IncompleteTickData:
        # swap only up to the edge of the loaded words
        assert st.loaded_words is not None
        # going down a word is left at its first slot; going up, at its last slot (the next
        # search starts at compressed + 1, in the next word)
        lo, hi = st.loaded_words
        edge = (lo << 8) if zero_for_one else (hi << 8) + 255
        edge_tick = max(m.MIN_TICK + 1, min(m.MAX_TICK - 1, edge * st.tick_spacing))
        limit = m.get_sqrt_ratio_at_tick(edge_tick)
        if (zero_for_one and limit >= st.sqrt_price_x96) or (not zero_for_one and limit <= st.sqrt_price_x96):
            return 0
        res = swap(st, zero_for_one, 1 << 200, limit)
    return res.amounts(zero_for_one)[0]
