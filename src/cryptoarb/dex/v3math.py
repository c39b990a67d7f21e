"""Uniswap V3 core math in exact integers: TickMath, FullMath, SqrtPriceMath, SwapMath, TickBitmap.

A port of the libraries in ``@uniswap/v3-core`` (``contracts/libraries``), line for line where
rounding matters, so that a swap simulated here gives the same wei as the pool. Solidity's
``uint256`` overflow checks that decide a code path (``getNextSqrtPriceFromAmount0RoundingUp``)
are reproduced explicitly; everywhere else Python's unbounded integers give the mathematically
exact value the contract computes with 512-bit intermediates (``FullMath.mulDiv``).

Pure: no I/O. ``require`` failures raise :class:`ValueError` with the contract's reason.
"""

from __future__ import annotations

import math

Q96 = 1 << 96
Q128 = 1 << 128
MAX_UINT256 = (1 << 256) - 1
MAX_UINT160 = (1 << 160) - 1
MAX_UINT128 = (1 << 128) - 1

MIN_TICK = -887272
MAX_TICK = 887272
MIN_SQRT_RATIO = 4295128739
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342

# (bit of |tick|, multiplier) from TickMath.getSqrtRatioAtTick
_TICK_FACTORS = (
    (0x2, 0xFFF97272373D413259A46990580E213A),
    (0x4, 0xFFF2E50F5F656932EF12357CF3C7FDCC),
    (0x8, 0xFFE5CACA7E10E4E61C3624EAA0941CD0),
    (0x10, 0xFFCB9843D60F6159C9DB58835C926644),
    (0x20, 0xFF973B41FA98C081472E6896DFB254C0),
    (0x40, 0xFF2EA16466C96A3843EC78B326B52861),
    (0x80, 0xFE5DEE046A99A2A811C461F1969C3053),
    (0x100, 0xFCBE86C7900A88AEDCFFC83B479AA3A4),
    (0x200, 0xF987A7253AC413176F2B074CF7815E54),
    (0x400, 0xF3392B0822B70005940C7A398E4B70F3),
    (0x800, 0xE7159475A2C29B7443B29C7FA6E889D9),
    (0x1000, 0xD097F3BDFD2022B8845AD8F792AA5825),
    (0x2000, 0xA9F746462D870FDF8A65DC1F90E061E5),
    (0x4000, 0x70D869A156D2A1B890BB3DF62BAF32F7),
    (0x8000, 0x31BE135F97D08FD981231505542FCFA6),
    (0x10000, 0x9AA508B5B7A84E1C677DE54F3E99BC9),
    (0x20000, 0x5D6AF8DEDB81196699C329225EE604),
    (0x40000, 0x2216E584F5FA1EA926041BEDFE98),
    (0x80000, 0x48A170391F7DC42444E8FA2),
)
_LOG_SQRT_1_0001 = math.log(1.0001) / 2.0
_LOG_Q96 = 96 * math.log(2.0)


# -- FullMath / UnsafeMath ----------------------------------------------------------------
def mul_div(a: int, b: int, denominator: int) -> int:
    """floor(a*b/denominator); reverts (ValueError) on a zero denominator or a result >= 2**256."""
    if denominator <= 0:
        raise ValueError("mulDiv: zero denominator")
    r = a * b // denominator
    if r > MAX_UINT256:
        raise ValueError("mulDiv: result overflows uint256")
    return r


def mul_div_rounding_up(a: int, b: int, denominator: int) -> int:
    """ceil(a*b/denominator) with the contract's overflow checks."""
    r = mul_div(a, b, denominator)
    if a * b % denominator:
        if r >= MAX_UINT256:
            raise ValueError("mulDivRoundingUp: result overflows uint256")
        r += 1
    return r


def div_rounding_up(x: int, y: int) -> int:
    """UnsafeMath.divRoundingUp: x/y rounded up (y must be > 0)."""
    return -(-x // y)


# -- TickMath -----------------------------------------------------------------------------
def get_sqrt_ratio_at_tick(tick: int) -> int:
    """sqrt(1.0001**tick) * 2**96 as the contract rounds it (Q64.96)."""
    abs_tick = -tick if tick < 0 else tick
    if abs_tick > MAX_TICK:
        raise ValueError(f"tick {tick} out of range [{MIN_TICK}, {MAX_TICK}] (T)")
    ratio = 0xFFFCB933BD6FAD37AA2D162D1A594001 if abs_tick & 0x1 else 0x100000000000000000000000000000000
    for bit, factor in _TICK_FACTORS:
        if abs_tick & bit:
            ratio = (ratio * factor) >> 128
    if tick > 0:
        ratio = MAX_UINT256 // ratio
    return (ratio >> 32) + (1 if ratio & 0xFFFFFFFF else 0)


def get_tick_at_sqrt_ratio(sqrt_price_x96: int) -> int:
    """The greatest tick whose sqrt ratio is <= ``sqrt_price_x96`` (TickMath's specification).

    The contract computes a log2 approximation and corrects it by one; we start from a float
    logarithm and correct it with the exact :func:`get_sqrt_ratio_at_tick`, which yields the same
    tick by definition and is much shorter than porting the assembly.
    """
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise ValueError(f"sqrtPriceX96 {sqrt_price_x96} out of range (R)")
    # float estimate: log(sqrtP / 2**96) / log(sqrt(1.0001)) (math.log takes big ints exactly)
    approx = (math.log(sqrt_price_x96) - _LOG_Q96) / _LOG_SQRT_1_0001
    tick = max(MIN_TICK, min(MAX_TICK, math.floor(approx)))
    while tick > MIN_TICK and get_sqrt_ratio_at_tick(tick) > sqrt_price_x96:
        tick -= 1
    while tick < MAX_TICK and get_sqrt_ratio_at_tick(tick + 1) <= sqrt_price_x96:
        tick += 1
    return tick


# -- SqrtPriceMath ------------------------------------------------------------------------
def get_next_sqrt_price_from_amount0_rounding_up(sqrt_p: int, liquidity: int, amount: int, add: bool) -> int:
    if amount == 0:
        return sqrt_p
    numerator1 = liquidity << 96
    product = amount * sqrt_p
    if add:
        # the contract takes this branch only when neither product nor the sum overflows uint256
        if product <= MAX_UINT256:
            denominator = numerator1 + product
            if denominator <= MAX_UINT256:
                return mul_div_rounding_up(numerator1, sqrt_p, denominator)
        return div_rounding_up(numerator1, numerator1 // sqrt_p + amount)
    if product > MAX_UINT256 or numerator1 <= product:
        raise ValueError("getNextSqrtPriceFromAmount0RoundingUp: not enough liquidity for this output")
    r = mul_div_rounding_up(numerator1, sqrt_p, numerator1 - product)
    if r > MAX_UINT160:
        raise ValueError("toUint160 overflow")
    return r


def get_next_sqrt_price_from_amount1_rounding_down(sqrt_p: int, liquidity: int, amount: int, add: bool) -> int:
    if add:
        r = sqrt_p + (amount << 96) // liquidity
        if r > MAX_UINT160:
            raise ValueError("toUint160 overflow")
        return r
    quotient = div_rounding_up(amount << 96, liquidity)
    if sqrt_p <= quotient:
        raise ValueError("getNextSqrtPriceFromAmount1RoundingDown: not enough liquidity for this output")
    return sqrt_p - quotient


def get_next_sqrt_price_from_input(sqrt_p: int, liquidity: int, amount_in: int, zero_for_one: bool) -> int:
    if sqrt_p <= 0 or liquidity <= 0:
        raise ValueError("getNextSqrtPriceFromInput: zero price or liquidity")
    if zero_for_one:
        return get_next_sqrt_price_from_amount0_rounding_up(sqrt_p, liquidity, amount_in, True)
    return get_next_sqrt_price_from_amount1_rounding_down(sqrt_p, liquidity, amount_in, True)


def get_next_sqrt_price_from_output(sqrt_p: int, liquidity: int, amount_out: int, zero_for_one: bool) -> int:
    if sqrt_p <= 0 or liquidity <= 0:
        raise ValueError("getNextSqrtPriceFromOutput: zero price or liquidity")
    if zero_for_one:
        return get_next_sqrt_price_from_amount1_rounding_down(sqrt_p, liquidity, amount_out, False)
    return get_next_sqrt_price_from_amount0_rounding_up(sqrt_p, liquidity, amount_out, False)


def get_amount0_delta(sqrt_a: int, sqrt_b: int, liquidity: int, round_up: bool) -> int:
    if sqrt_a > sqrt_b:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    if sqrt_a <= 0:
        raise ValueError("getAmount0Delta: zero price")
    numerator1 = liquidity << 96
    numerator2 = sqrt_b - sqrt_a
    if round_up:
        return div_rounding_up(mul_div_rounding_up(numerator1, numerator2, sqrt_b), sqrt_a)
    return mul_div(numerator1, numerator2, sqrt_b) // sqrt_a


def get_amount1_delta(sqrt_a: int, sqrt_b: int, liquidity: int, round_up: bool) -> int:
    if sqrt_a > sqrt_b:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    if round_up:
        return mul_div_rounding_up(liquidity, sqrt_b - sqrt_a, Q96)
    return mul_div(liquidity, sqrt_b - sqrt_a, Q96)


# -- SwapMath -----------------------------------------------------------------------------
def compute_swap_step(
    sqrt_current: int, sqrt_target: int, liquidity: int, amount_remaining: int, fee_pips: int
) -> tuple[int, int, int, int]:
    """One step of a swap within a single liquidity range.

    Returns ``(sqrt_next, amount_in, amount_out, fee_amount)``; ``amount_remaining`` > 0 is
    exact input, < 0 exact output (the contract's sign convention).
    """
    zero_for_one = sqrt_current >= sqrt_target
    exact_in = amount_remaining >= 0
    amount_in = amount_out = 0
    if exact_in:
        remaining_less_fee = mul_div(amount_remaining, 1_000_000 - fee_pips, 1_000_000)
        if zero_for_one:
            amount_in = get_amount0_delta(sqrt_target, sqrt_current, liquidity, True)
        else:
            amount_in = get_amount1_delta(sqrt_current, sqrt_target, liquidity, True)
        if remaining_less_fee >= amount_in:
            sqrt_next = sqrt_target
        else:
            sqrt_next = get_next_sqrt_price_from_input(sqrt_current, liquidity, remaining_less_fee, zero_for_one)
    else:
        if zero_for_one:
            amount_out = get_amount1_delta(sqrt_target, sqrt_current, liquidity, False)
        else:
            amount_out = get_amount0_delta(sqrt_current, sqrt_target, liquidity, False)
        if -amount_remaining >= amount_out:
            sqrt_next = sqrt_target
        else:
            sqrt_next = get_next_sqrt_price_from_output(sqrt_current, liquidity, -amount_remaining, zero_for_one)

    is_max = sqrt_target == sqrt_next
    if zero_for_one:
        if not (is_max and exact_in):
            amount_in = get_amount0_delta(sqrt_next, sqrt_current, liquidity, True)
        if not (is_max and not exact_in):
            amount_out = get_amount1_delta(sqrt_next, sqrt_current, liquidity, False)
    else:
        if not (is_max and exact_in):
            amount_in = get_amount1_delta(sqrt_current, sqrt_next, liquidity, True)
        if not (is_max and not exact_in):
            amount_out = get_amount0_delta(sqrt_current, sqrt_next, liquidity, False)

    if not exact_in and amount_out > -amount_remaining:
        amount_out = -amount_remaining
    if exact_in and sqrt_next != sqrt_target:
        fee_amount = amount_remaining - amount_in
    else:
        fee_amount = mul_div_rounding_up(amount_in, fee_pips, 1_000_000 - fee_pips)
    return sqrt_next, amount_in, amount_out, fee_amount


# -- LiquidityMath ------------------------------------------------------------------------
def add_delta(x: int, y: int) -> int:
    z = x + y
    if z < 0:
        raise ValueError("liquidity underflow (LS)")
    if z > MAX_UINT128:
        raise ValueError("liquidity overflow (LA)")
    return z


# -- TickBitmap ---------------------------------------------------------------------------
def compress(tick: int, tick_spacing: int) -> int:
    """tick / tickSpacing rounded toward negative infinity (the contract's ``compressed``)."""
    return tick // tick_spacing  # Python's floor division is exactly the contract's correction


def position(compressed: int) -> tuple[int, int]:
    """(wordPos, bitPos) of a compressed tick in the bitmap."""
    return compressed >> 8, compressed & 0xFF


def next_initialized_tick_within_one_word(
    words: dict[int, int], tick: int, tick_spacing: int, lte: bool
) -> tuple[int, bool, int]:
    """TickBitmap.nextInitializedTickWithinOneWord over a ``wordPos -> word`` dict.

    Returns ``(next_tick, initialized, word_pos)``; the word position lets the caller check
    that the word was actually loaded (a missing word reads as zero on-chain too, so the
    caller, not this function, must know whether zero means "empty" or "unknown").
    """
    compressed = compress(tick, tick_spacing)
    if lte:
        word_pos, bit_pos = position(compressed)
        mask = (1 << bit_pos) - 1 + (1 << bit_pos)
        masked = words.get(word_pos, 0) & mask
        if masked:
            return (compressed - (bit_pos - (masked.bit_length() - 1))) * tick_spacing, True, word_pos
        return (compressed - bit_pos) * tick_spacing, False, word_pos
    word_pos, bit_pos = position(compressed + 1)
    mask = ~((1 << bit_pos) - 1) & MAX_UINT256
    masked = words.get(word_pos, 0) & mask
    if masked:
        lsb = (masked & -masked).bit_length() - 1
        return (compressed + 1 + (lsb - bit_pos)) * tick_spacing, True, word_pos
    return (compressed + 1 + (255 - bit_pos)) * tick_spacing, False, word_pos


def flip_tick(words: dict[int, int], tick: int, tick_spacing: int) -> None:
    """TickBitmap.flipTick: toggle the initialized bit of ``tick``."""
    if tick % tick_spacing:
        raise ValueError(f"tick {tick} is not a multiple of the spacing {tick_spacing}")
    word_pos, bit_pos = position(tick // tick_spacing)
    words[word_pos] = words.get(word_pos, 0) ^ (1 << bit_pos)
