"""Leg risk for a broken cycle: what to do with the currency a cycle stopped in.

A cycle (``USDT > BTC > ETH > USDT``) whose leg ``k`` gets nothing, or cannot be sent, holds the
leg's source currency instead of the start one. The ``[legrisk]`` policy closes that position in
the configured steps (the same :class:`~cryptoarb.core.legrisk.LegRiskConfig` as the arbitrage
path, the same price and time limits):

* ``retry``  -- send leg ``k`` again on its own book, no worse than its planned limit moved by
  ``retry_bps``; when it fills, the cycle goes on with its next legs;
* ``hedge``  -- not applicable within one venue: the held currency sits at *this* venue, and a
  trade on another venue would neither spend it nor bring the start currency here (it would only
  add a second position elsewhere). The step is passed over, recorded as skipped;
* ``unwind`` -- trade the held currency back to the start currency on the venue's direct market
  between the two, no worse than what the held amount cost (the start currency the cycle paid for
  it, pro rata) moved by ``unwind_bps``. A currency without a direct market to the start one
  (the middle of a cycle of 4+ legs) cannot be unwound in one order: the step finds nothing.

When every step ran out, what is held stays: the cycle is ``broken``, its residual recorded and
reported (never forgotten), the one-legged exposure still counted. Pure domain code: decisions
are functions of the incident, the books and event time; ``execution/cycle_repair.py`` sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from cryptoarb.core.accounting import spot_need
from cryptoarb.core.book import OrderBook
from cryptoarb.core.instruments import Instrument, dec
from cryptoarb.core.legrisk import BPS, Action, IncidentStatus, LegRiskConfig, usable
from cryptoarb.core.orders import ZERO, Order

HEDGE_SKIPPED = "hedge skipped: a within-venue cycle holds the currency at this venue"


@dataclass(slots=True)
class CycleIncident:
    """One broken cycle's held position and what was done about it (exact amounts)."""

    cycle_id: int
    venue: str
    start: str
    leg: int  # the leg the cycle stopped at (what a retry sends again)
    ccy: str  # the currency held: that leg's source
    held: Decimal  # how much of it the cycle holds now
    cost: Decimal  # the start currency the held amount cost (unwind reference)
    opened_ns: int
    step: int = 0
    step_started_ns: int = 0
    attempts: int = 0
    status: IncidentStatus = IncidentStatus.OPEN
    closed_ns: int = 0
    in_flight: str = ""
    orders: list[Order] = field(default_factory=list)
    steps_taken: list[str] = field(default_factory=list)
    unwound: bool = False  # an unwind order filled something
    tracked: Decimal = ZERO  # what of ``ccy`` is counted in the one-legged exposure now
    reason: str = ""


def limit_against(side: str, ref: Decimal, bps: float, tick: Decimal) -> Decimal:
    """``ref`` moved against us by ``bps`` (a buy pays more, a sell takes less), on the tick grid
    inward (never beyond the moved price)."""
    move = ref * dec(bps) * BPS
    px = ref + move if side == "buy" else ref - move
    n = (px / tick).to_integral_value(ROUND_FLOOR if side == "buy" else ROUND_CEILING)
    return n * tick


def spend_qty(inst: Instrument, side: str, have: Decimal, limit: Decimal) -> Decimal:
    """The most lots an order on ``inst`` can trade spending at most ``have`` of what it spends
    (the venue's own rule, ``spot_need``: the fee included when it is charged on top)."""
    lot = dec(inst.lot_size)
    fee = dec(inst.fees.taker)
    _, per = spot_need(inst, side, Decimal(1), limit, fee)
    n = (have / per / lot).to_integral_value(ROUND_FLOOR)
    qty = n * lot
    while qty > 0 and spot_need(inst, side, qty, limit, fee)[1] > have:  # exact: never above ``have``
        qty -= lot
    return qty


def reachable(book: OrderBook, side: str, limit: Decimal) -> Decimal:
    """Base quantity offered within ``limit`` on ``book`` (the side a ``side`` order takes)."""
    lim = float(limit)
    got = ZERO
    for p, q in (book.asks() if side == "buy" else book.bids()):
        if (p > lim) if side == "buy" else (p < lim):
            break
        got += dec(q)
    return got


def direct_market(insts: dict[str, Instrument], venue: str, a: str, b: str) -> Instrument | None:
    """The spot market of ``venue`` between currencies ``a`` and ``b`` (either orientation)."""
    for inst in insts.values():
        if inst.venue == venue and {inst.base, inst.quote} == {a, b}:
            return inst
    return None


def plan_repair(
    inc: CycleIncident,
    cfg: LegRiskConfig,
    retry: tuple[str, bool, Decimal],
    back: Instrument | None,
    books: Callable[[str], OrderBook | None],
    now_ns: int,
    max_age_ns: int = 0,
) -> Action | None:
    """The order the incident's current step sends now, or None to wait.

    ``retry``: (book key, buy?, planned limit) of the leg the cycle stopped at; ``back``: the
    venue's direct market between the held and the start currency (None: there is none)."""
    name = cfg.steps[inc.step]
    if name == "hedge":
        return None
    if name == "retry":
        key, buy, ref = retry
        side = "buy" if buy else "sell"
        book = books(key)
        if book is None or not usable(book, now_ns, max_age_ns):
            return None
        inst = book.instrument
        limit = limit_against(side, ref, cfg.retry_bps, dec(inst.tick_size))
    else:
        if back is None or not inc.held or not inc.cost:
            return None
        book = books(back.key)
        if book is None or not usable(book, now_ns, max_age_ns):
            return None
        inst = back
        side = "sell" if inst.base == inc.ccy else "buy"
        # the held amount's cost as a price of this market: start per held (held is the base),
        # or held per start (the start currency is the base: buying it back)
        ref = inc.cost / inc.held if side == "sell" else inc.held / inc.cost
        limit = limit_against(side, ref, cfg.unwind_bps, dec(inst.tick_size))
    if limit <= 0:
        return None
    qty = spend_qty(inst, side, inc.held, limit)
    if qty <= 0 or qty * limit < dec(inst.min_notional):
        return None
    if not reachable(book, side, limit):
        return None
    return Action(book.key, name, side, qty, limit)
