"""An independent, exact reference for triangular arbitrage within a venue (issue 14, "Tests").

Nothing here imports the detector: the specification it is tested against, in exact decimals
(the trapping context of tests/exactref.py: any rounding raises), solved by brute force.

* Cycles: every ordered triple (start, b, c) of distinct currencies with one market between
  each consecutive pair, in either orientation: going from a market's quote to its base buys
  (walks the asks), from its base to its quote sells (walks the bids).
* A leg of ``q`` (a multiple of its lot) walks its side best first. Its fee is ``rate x`` the
  amount in the asset the venue charges it in: received asset -> out of what comes in; paid
  asset -> on top of what goes out. The venue locks ``q x limit`` (+ fee when paid on top)
  for a buy, ``q`` (+ fee when paid on top) for a sell, ``limit`` being the worst level walked
  rounded to the tick (up for a buy). Each leg's notional must reach its min notional.
* The first leg is ``n`` lots; its lock must fit the start balance, and what it pays must
  not exceed ``max_in``. Each later leg trades the largest lot multiple whose lock fits what
  the previous leg delivered (brute force, from the largest count down).
* Profit = what the last leg delivers - what the first leg paid; the best ``n`` is the one with
  the largest profit meeting the thresholds (profit > 0, profit / paid x 1e4 >= min bps); ties:
  the smallest ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from itertools import permutations

from tests.exactref import exact

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(frozen=True)
class RefMarket:
    key: str
    base: str
    quote: str
    bids: tuple[tuple[Decimal, Decimal], ...]  # best first
    asks: tuple[tuple[Decimal, Decimal], ...]
    lot: Decimal
    tick: Decimal
    fee: Decimal
    fee_in_quote: bool  # Kraken-style: the fee is always in quote; else in the received asset
    min_notional: Decimal = ZERO


@dataclass(frozen=True)
class RefLeg:
    qty: Decimal
    paid: Decimal  # what leaves the account, fee included when paid on top
    lock: Decimal  # what the venue checks against the balance
    receive: Decimal  # what arrives, net of a fee taken from it


def cycles(markets: list[RefMarket], start: str) -> list[tuple[tuple[str, bool], ...]]:
    """Every 3-leg cycle from ``start``: ((market key, buy?), ...)."""
    ccys = sorted({m.base for m in markets} | {m.quote for m in markets})
    out = []
    for b, c in permutations([x for x in ccys if x != start], 2):
        path = [(start, b), (b, c), (c, start)]
        options: list[list[tuple[str, bool]]] = []
        for src, dst in path:
            options.append([(m.key, m.quote == src) for m in markets
                            if (m.quote, m.base) == (src, dst) or (m.base, m.quote) == (src, dst)])
        for x in options[0]:
            for y in options[1]:
                for z in options[2]:
                    if len({x[0], y[0], z[0]}) == 3:
                        out.append((x, y, z))
    return out


def leg(m: RefMarket, buy: bool, q: Decimal) -> RefLeg | None:
    """Leg of ``q`` (native), or None when the book is too thin or the notional too small."""
    with exact():
        levels = m.asks if buy else m.bids
        left, notional, worst = q, ZERO, ZERO
        for p, size in levels:
            if left <= 0:
                break
            x = min(size, left)
            notional += x * p
            worst = p
            left -= x
        if left > 0 or q <= 0 or notional < m.min_notional:
            return None
        rounding = ROUND_CEILING if buy else ROUND_FLOOR
        limit = (worst / m.tick).to_integral_value(rounding) * m.tick
        # charged in the asset paid: only a buy where every fee is in quote (selling, quote is received)
        fee_paid = m.fee_in_quote and buy
        if buy:
            paid = notional + notional * m.fee if fee_paid else notional
            lock = q * limit + q * limit * m.fee if fee_paid else q * limit
            receive = q if fee_paid else q - q * m.fee
        else:
            paid = lock = q + q * m.fee if fee_paid else q
            receive = notional if fee_paid else notional - notional * m.fee
        return RefLeg(q, paid, lock, receive)


def run(markets: dict[str, RefMarket], cyc: tuple[tuple[str, bool], ...], n: int, balance: Decimal,
        max_in: Decimal) -> tuple[Decimal, Decimal, list[Decimal]] | None:
    """(paid in, profit, leg quantities) with the first leg at ``n`` lots, or None."""
    (k0, b0), *rest = cyc
    m0 = markets[k0]
    r0 = leg(m0, b0, m0.lot * n)
    if r0 is None or r0.lock > balance or r0.paid > max_in:
        return None
    amount = r0.receive
    qtys = [r0.qty]
    for k, b in rest:
        m = markets[k]
        levels = m.asks if b else m.bids
        if not levels:
            return None
        # a start for the downward search (a division: not exact, only a bound)
        top = int((amount / levels[0][0] if b else amount) / m.lot) + 2
        top = min(top, int(sum(q for _, q in levels) / m.lot) + 1)  # nor more than the book holds
        got = None
        for count in range(top, 0, -1):
            r = leg(m, b, m.lot * count)
            if r is not None and r.lock <= amount:
                got = r
                break
        if got is None:
            return None
        amount = got.receive
        qtys.append(got.qty)
    with exact():
        return r0.paid, amount - r0.paid, qtys


def best(markets: dict[str, RefMarket], cyc: tuple[tuple[str, bool], ...], balance: Decimal, max_in: Decimal,
         min_bps: Decimal, n_max: int) -> tuple[int, Decimal, Decimal, list[Decimal]] | None:
    """(n, paid, profit, quantities) of the best first-leg count in 1..n_max, or None."""
    found = None
    for n in range(1, n_max + 1):
        r = run(markets, cyc, n, balance, max_in)
        if r is None:
            continue
        paid, profit, qtys = r
        with exact():
            if profit <= 0 or profit * 10_000 < min_bps * paid:
                continue
        if found is None or profit > found[2]:
            found = (n, paid, profit, qtys)
    return found
