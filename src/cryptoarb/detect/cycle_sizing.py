"""Sizing one cycle: the start amount that nets the most in the start currency, on the books'
depth, lot and tick grids, min notionals and balances.

A cycle's size is the first leg's quantity ``n x lot``; every later leg trades what the previous
one delivered, rounded down to its own lot (and, for a buy, to what that amount pays at the
worst level walked, by the venue's own balance rule ``core.accounting.spot_need``). The forward
pass is exact (decimals on the shortest reprs of the book's floats), so the profit reported is
the profit the fills will make on an unchanged book, and the quantities are exact lot multiples.

Profit = what the last leg delivers - what the first leg paid (both in the start currency, fees
included); what a later leg could not use (less than one of its lots) stays in that currency as
*dust*, reported, never counted as profit. All counts ``n`` are evaluated when there are at
most ``SCAN_ALL`` of them (an exhaustive search: the optimum). Beyond that: the continuous
optimum (no lots: profit is concave in the start amount, a ternary search in floats), then, as
what the last leg delivers is a step function of the start amount, the smallest count of its
step and of a few steps either side (binary searches on the exact forward pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

from cryptoarb.core.accounting import fee_asset
from cryptoarb.core.book import OrderBook
from cryptoarb.core.footprint import Footprint
from cryptoarb.core.instruments import Instrument, ceil_step, dec, floor_step

SCAN_ALL = 160
STEPS = 3
ZERO = Decimal(0)
ONE = Decimal(1)


class LegBook:
    """One leg's side of its book, read lazily best first through our footprint, as decimals."""

    __slots__ = (
        "book",
        "buy",
        "fee",
        "fee_paid",
        "fp",
        "inst",
        "it",
        "levels",
        "lot",
        "min_notional",
        "side",
        "stamp",
        "trust",
    )

    def __init__(self, book: OrderBook, fp: Footprint, buy: bool) -> None:
        inst: Instrument = book.instrument
        self.book = book
        self.inst = inst
        self.buy = buy
        self.side = "asks" if buy else "bids"
        self.fp = fp
        self.stamp = (book.update_id, book.local_ns)
        self.trust = fp.empty(self.stamp)
        self.it: Iterator[tuple[float, float]] = book.asks() if buy else book.bids()
        self.levels: list[tuple[Decimal, Decimal, float, float]] = []  # (price, qty, float price, float qty)
        self.lot = dec(inst.lot_size)
        self.fee = dec(inst.fees.taker)
        # the fee is taken on top of what is paid (True) or out of what is received (False)
        spent = inst.quote if buy else inst.base
        self.fee_paid = fee_asset(inst, "buy" if buy else "sell") == spent
        self.min_notional = dec(inst.min_notional)

    def level(self, i: int) -> tuple[Decimal, Decimal, float, float] | None:
        levels = self.levels
        while len(levels) <= i:
            for p, q in self.it:
                if not self.trust:
                    q -= self.fp.used(self.side, p, self.stamp)
                    if q <= 1e-12:
                        continue
                levels.append((dec(p), dec(q), p, q))
                break
            else:
                return None
        return levels[i]


class LegFill:
    """What one leg does at a given size: quantities exact, prices as the book has them."""

    __slots__ = ("limit", "need", "notional", "pay", "qty", "receive", "takes", "vwap")

    def __init__(self, qty: Decimal, notional: Decimal, limit: Decimal, pay: Decimal, receive: Decimal,
                 takes: list[tuple[float, float]], need: Decimal) -> None:
        self.qty = qty
        self.need = need  # what the venue locks for the order (core.accounting.spot_need)
        self.notional = notional
        self.limit = limit
        self.pay = pay  # in the leg's source currency, fee included where paid on top
        self.receive = receive  # in the leg's destination currency, net of a fee taken from it
        self.takes = takes  # (price, native qty) per level walked, for the footprint hold
        self.vwap = notional / qty if qty else ZERO


class CyclePlan:
    """A sized cycle: per-leg fills, what goes in and comes out, the dust left on the way."""

    __slots__ = ("amount_in", "amount_out", "dust", "legs", "profit")

    def __init__(self, legs: list[LegFill], dust: list[Decimal]) -> None:
        self.legs = legs
        self.amount_in = legs[0].pay
        self.amount_out = legs[-1].receive
        self.profit = self.amount_out - self.amount_in
        self.dust = dust  # per intermediate currency (after leg i, for i < last)

    @property
    def profit_bps(self) -> float:
        return float(self.profit / self.amount_in * 10_000) if self.amount_in else 0.0


def _walk(leg: LegBook, qty: Decimal) -> tuple[Decimal, Decimal, list[tuple[float, float]]] | None:
    """(notional, worst price, takes) of taking ``qty``; None when the book is too thin."""
    left = qty
    notional = ZERO
    worst = ZERO
    takes: list[tuple[float, float]] = []
    i = 0
    while left > 0:
        lv = leg.level(i)
        if lv is None:
            return None
        p, q, fp_, fq = lv
        x = q if q < left else left
        notional += x * p
        worst = p
        takes.append((fp_, fq if x == q else float(x)))
        left -= x
        i += 1
    return notional, worst, takes


def _fill(leg: LegBook, qty: Decimal) -> LegFill | None:
    """The leg at ``qty`` (a lot multiple): exact money, or None when it cannot trade."""
    if qty <= 0:
        return None
    walked = _walk(leg, qty)
    if walked is None:
        return None
    notional, worst, takes = walked
    if notional < leg.min_notional:
        return None
    inst = leg.inst
    f = leg.fee
    if leg.buy:
        limit = ceil_step(float(worst), inst.tick_size)
        pay = notional * (ONE + f) if leg.fee_paid else notional
        receive = qty if leg.fee_paid else qty - qty * f
    else:
        limit = floor_step(float(worst), inst.tick_size)
        pay = qty * (ONE + f) if leg.fee_paid else qty
        receive = notional if leg.fee_paid else notional - notional * f
    return LegFill(qty, notional, limit, pay, receive, takes, need(leg, qty, limit))


def need(leg: LegBook, qty: Decimal, limit: Decimal) -> Decimal:
    """What the venue locks for this order (``spot_need``): a buy at its limit, a sell its base."""
    if leg.buy:
        amount = qty * limit
    else:
        amount = qty
    return amount * (ONE + leg.fee) if leg.fee_paid else amount


def _fit(leg: LegBook, have: Decimal) -> LegFill | None:
    """The largest lot multiple ``have`` pays for on this leg (the venue's check), filled."""
    if leg.buy:
        # bound by the best level's price, then step down while the check at the worst level fails
        lv = leg.level(0)
        if lv is None:
            return None
        mult = (ONE + leg.fee) if leg.fee_paid else ONE
        qty = _floor(have / (lv[0] * mult), leg.lot)
        for _ in range(64):
            if qty <= 0:
                return None
            f = _fill(leg, qty)
            if f is None:  # too thin: the depth bounds it
                depth = _depth(leg, qty)
                qty = _floor(depth, leg.lot) if depth < qty else qty - leg.lot
                continue
            if f.need <= have:
                return f
            # the worst level bounds what ``have`` pays for
            nq = _floor(have / (f.limit * mult), leg.lot)
            qty = nq if nq < qty else qty - leg.lot
        return None
    mult = (ONE + leg.fee) if leg.fee_paid else ONE
    qty = _floor(have / mult, leg.lot)
    f = _fill(leg, qty)
    if f is None and qty > 0:
        depth = _depth(leg, qty)
        if depth < qty:
            f = _fill(leg, _floor(depth, leg.lot))
    return f


def _depth(leg: LegBook, upto: Decimal) -> Decimal:
    total = ZERO
    i = 0
    while total < upto:
        lv = leg.level(i)
        if lv is None:
            break
        total += lv[1]
        i += 1
    return total


def _floor(x: Decimal, step: Decimal) -> Decimal:
    return (x / step).to_integral_value(rounding="ROUND_FLOOR") * step


def forward(legs: list[LegBook], n: int, have: list[Decimal | None]) -> CyclePlan | None:
    """The cycle with the first leg at ``n`` lots; ``have[i]``: the balance leg ``i`` may lock
    at its venue (None: no limit beyond what the previous leg delivers)."""
    first = _fill(legs[0], legs[0].lot * n)
    if first is None:
        return None
    h0 = have[0]
    if h0 is not None and first.need > h0:
        return None
    fills = [first]
    dust: list[Decimal] = []
    amount = first.receive
    for i in range(1, len(legs)):
        h = have[i]
        cap = amount if h is None or h >= amount else h
        f = _fit(legs[i], cap)
        if f is None:
            return None
        dust.append(amount - f.pay)
        fills.append(f)
        amount = f.receive
    return CyclePlan(fills, dust)


def max_lots(legs: list[LegBook], have0: Decimal | None, max_in: Decimal) -> int:
    """An upper bound on the first leg's lot count: its depth, the start balance, ``max_in``."""
    leg = legs[0]
    cap = max_in if have0 is None or have0 > max_in else have0
    lv = leg.level(0)
    if lv is None:
        return 0
    mult = (ONE + leg.fee) if leg.fee_paid else ONE
    by_money = cap / (lv[0] * mult) if leg.buy else cap / mult
    depth = _depth(leg, by_money)
    return int(min(by_money, depth) / leg.lot)


def _flow(leg: LegBook, amount: float) -> float:
    """Continuous (no lots, no minimums) output of ``amount`` of the leg's source currency."""
    f = float(leg.fee)
    if leg.buy:
        spend = amount / (1.0 + f) if leg.fee_paid else amount
        got = 0.0
        i = 0
        while spend > 0.0:
            lv = leg.level(i)
            if lv is None:
                return got  # the rest stays unspent
            p, q = lv[2], lv[3]
            x = min(q, spend / p)
            got += x
            spend -= x * p
            i += 1
            if x < q:
                break
        return got if leg.fee_paid else got * (1.0 - f)
    qty = amount / (1.0 + f) if leg.fee_paid else amount
    out = 0.0
    i = 0
    while qty > 0.0:
        lv = leg.level(i)
        if lv is None:
            break
        p, q = lv[2], lv[3]
        x = min(q, qty)
        out += x * p
        qty -= x
        i += 1
    return out if leg.fee_paid else out * (1.0 - f)


def _continuous_best(legs: list[LegBook], top: int) -> int:
    """The first-leg lot count near the continuous optimum (profit is concave in the amount)."""
    leg0 = legs[0]
    lot = float(leg0.lot)

    def profit(n: float) -> float:
        qty = n * lot
        # what the first leg pays for ``qty`` (walk) and what comes back
        if leg0.buy:
            cost = 0.0
            left = qty
            i = 0
            while left > 0.0:
                lv = leg0.level(i)
                if lv is None:
                    return -1e300
                x = min(lv[3], left)
                cost += x * lv[2]
                left -= x
                i += 1
            pay = cost * (1.0 + float(leg0.fee)) if leg0.fee_paid else cost
            amount = qty if leg0.fee_paid else qty * (1.0 - float(leg0.fee))
        else:
            pay = qty * (1.0 + float(leg0.fee)) if leg0.fee_paid else qty
            amount = _flow(leg0, pay)
        for leg in legs[1:]:
            amount = _flow(leg, amount)
        return amount - pay

    lo, hi = 0.0, float(top)
    for _ in range(80):
        m1 = lo + (hi - lo) / 3
        m2 = hi - (hi - lo) / 3
        if profit(m1) < profit(m2):
            lo = m1
        else:
            hi = m2
    return max(1, min(top, round(lo)))


def best_plan(legs: list[LegBook], have: list[Decimal | None], max_in: Decimal, min_profit: Decimal,
              min_bps: float) -> CyclePlan | None:
    """The most profitable size meeting the thresholds (ties: the smallest), or None."""
    top = max_lots(legs, have[0], max_in)
    if top <= 0:
        return None
    cache: dict[int, CyclePlan | None] = {}

    def at(n: int) -> CyclePlan | None:
        if n not in cache:
            p = forward(legs, n, have)
            cache[n] = p if p is not None and p.amount_in <= max_in else None
        return cache[n]

    if top <= SCAN_ALL:
        candidates: list[int] = list(range(1, top + 1))
    else:
        candidates = _edges(at, _continuous_best(legs, top), top)
    best: CyclePlan | None = None
    for n in sorted(set(candidates)):
        p = at(n)
        if p is None or p.profit <= 0 or p.profit < min_profit or p.profit_bps < min_bps * (1 - 1e-9):
            continue
        if best is None or p.profit > best.profit:
            best = p
    return best


def _edges(at: Callable[[int], CyclePlan | None], n0: int, top: int) -> list[int]:
    """Candidate counts around ``n0``: what the last leg delivers is a step function of the
    start amount (every later leg rounds down to its lots), so within a step the smallest count
    is the best; the step of ``n0``, ``STEPS`` steps below it and one above are tried."""

    def out(n: int) -> Decimal:
        p = at(n)
        return p.amount_out if p is not None else Decimal(-1)

    def left_edge(n: int) -> int:
        target = out(n)
        lo, hi = 1, n  # smallest m in [lo, n] with out(m) >= target (out is non-decreasing)
        while lo < hi:
            m = (lo + hi) // 2
            if out(m) >= target:
                hi = m
            else:
                lo = m + 1
        return lo

    n = n0
    while n > 1 and at(n) is None:  # infeasible at the continuous optimum (a minimum, the depth)
        n -= max(1, n // 64)
    found = [n]
    e = n
    for _ in range(STEPS):
        if e <= 1 or at(e) is None:
            break
        e = left_edge(e)
        found.append(e)
        e -= 1  # the best count of the step below is its own left edge: found next round
        if e >= 1:
            found.append(e)
    # one step above: the smallest count delivering more than n0 does
    lo, hi, base = n, top, out(n)
    if out(hi) > base:
        while lo < hi:
            m = (lo + hi) // 2
            if out(m) > base:
                hi = m
            else:
                lo = m + 1
        found.append(lo)
    return [x for x in found if 1 <= x <= top]
