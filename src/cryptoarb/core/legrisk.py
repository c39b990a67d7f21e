"""Leg risk: what to do when one leg of an arbitrage filled and the other did not (see docs/risk.md).

A settled trade that left base behind (a failed or partly filled leg) opens an :class:`Incident`:
the signed quantity still to close. A policy closes it in steps, each within a price limit and a
time limit:

* ``retry``  -- send the missing leg again on its own book, no worse than its expected price
  +/- ``retry_bps``;
* ``hedge``  -- send it on the best *other* valid book of the group (not the venue that failed),
  no worse than the missing leg's expected price +/- ``hedge_bps``;
* ``unwind`` -- reverse the filled leg on its own book, no worse than its average fill price
  +/- ``unwind_bps``.

When a step's time or attempts run out the next step of ``steps`` takes over; after the last one
the incident is left *open*: still tracked, still in the one-legged exposure the risk manager's
breaker watches, reported -- never silently forgotten. What no order can close (less than one lot,
or worth no more than ``residual_quote``) is the incident's *residual*, tracked the same way.

Pure domain code: decisions are functions of the incident, the books and event time; the
execution side (``execution/legrisk.py``) sends what :func:`plan` returns and books the fills.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from cryptoarb.core.accounting import fee_asset
from cryptoarb.core.book import OrderBook
from cryptoarb.core.instruments import Instrument, Kind, dec
from cryptoarb.core.orders import ZERO, ArbStatus, ArbTrade, Order

SECOND_NS = 1_000_000_000
STEPS = ("retry", "hedge", "unwind")
BPS = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class LegRiskConfig:
    steps: tuple[str, ...] = ("retry", "hedge", "unwind")  # tried in this order; () = track only
    retry_bps: float = 20.0  # retry no worse than the missing leg's expected price by this
    hedge_bps: float = 50.0  # hedge no worse than the missing leg's expected price by this
    unwind_bps: float = 100.0  # unwind no worse than the filled leg's average price by this
    step_time_ns: int = 5 * SECOND_NS  # each step's time limit (event time), then the next step
    step_attempts: int = 3  # orders per step, then the next step
    residual_quote: float = 1.0  # an incident worth no more than this (at the mark) is left as residual

    def __post_init__(self) -> None:
        for s in self.steps:
            if s not in STEPS:
                raise ValueError(f"unknown leg-risk step {s!r} (steps: {', '.join(STEPS)})")


class IncidentStatus(StrEnum):
    OPEN = "open"  # something is still to close: a step is waiting or an order is in flight
    CLOSED = "closed"  # nothing left (or only the residual no order can close)
    GAVE_UP = "gave_up"  # every step ran out: the rest stays open, tracked and reported


@dataclass(slots=True)
class Incident:
    """One trade's one-legged position and what was done about it (quote amounts, exact)."""

    trade_id: int
    group: str
    asset: str
    start_qty: Decimal  # signed base the trade left (>0: long, to sell; <0: short, to buy)
    qty: Decimal  # signed base still open
    filled: str  # book key of the leg that filled (more)
    missing: str  # book key of the leg that failed (or filled less)
    missing_price: Decimal  # the missing leg's expected price: the retry/hedge reference
    filled_price: Decimal  # the filled leg's average price: the unwind reference
    opened_ns: int
    step: int = 0  # index into the config's steps
    step_started_ns: int = 0
    attempts: int = 0  # orders sent in the current step
    status: IncidentStatus = IncidentStatus.OPEN
    closed_ns: int = 0
    in_flight: str = ""  # id of the order in flight, if any
    orders: list[Order] = field(default_factory=list)
    realised: Decimal = ZERO  # PnL the incident's fills realised (ledger), fees included
    fees_quote: Decimal = ZERO
    slippage_quote: Decimal = ZERO  # vs the missing leg's expected price, what the fills cost more
    steps_taken: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def side(self) -> str:
        """The side that reduces the open quantity."""
        return "sell" if self.qty > 0 else "buy"


@dataclass(frozen=True, slots=True)
class Action:
    """An IOC order to send: what :func:`plan` decided."""

    key: str  # book key
    step: str
    side: str
    qty: Decimal  # native (base for spot / linear) on the lot grid
    limit: Decimal  # on the tick grid


def opens_incident(trade: ArbTrade) -> bool:
    """A trade whose legs did not both fill the same quantity: a failed or partial leg.
    (A complete trade's fee-in-base dust is inventory, not leg risk: see docs/risk.md.)"""
    return trade.status in (ArbStatus.FAILED_LEG, ArbStatus.PARTIAL) and bool(trade.unhedged_qty_base)


def new_incident(trade: ArbTrade, asset: str, now_ns: int) -> Incident:
    b, s = trade.buy_order, trade.sell_order
    long = trade.unhedged_qty_base > 0
    filled, missing = (b, s) if long else (s, b)
    return Incident(
        trade.id, trade.group, asset, trade.unhedged_qty_base, trade.unhedged_qty_base,
        f"{filled.venue} {filled.symbol}", f"{missing.venue} {missing.symbol}", missing.expected_price,
        filled.avg_price or filled.expected_price, now_ns, step_started_ns=now_ns,
    )


def closable(inst: Instrument, qty: Decimal, price: Decimal = ZERO) -> bool:
    """At least one lot of ``inst`` in base: ``lot x contract size`` for spot, linear and
    base-sized books, ``/ price`` for classic inverse contracts (each worth a quote amount)."""
    step = dec(inst.lot_size) * dec(inst.contract_size)
    if inst.quote_contracts:
        if not price:
            return True  # no price to convert at: let the spot/linear books decide
        step = step / price
    return abs(qty) >= step


def order_qty(inst: Instrument, side: str, qty: Decimal) -> Decimal:
    """Native quantity that closes ``|qty|`` base: floor to the lot, and for a buy whose fee is
    taken from the base received, grossed up so that what arrives is what is missing."""
    want = abs(qty)
    if inst.kind is Kind.SPOT and side == "buy" and fee_asset(inst, "buy") == inst.base:
        want = want / (1 - dec(inst.fees.taker))
    step = dec(inst.lot_size) * dec(inst.contract_size)
    n = (want / step).to_integral_value(ROUND_FLOOR)
    return n * step / dec(inst.contract_size)


def _limit(side: str, ref: Decimal, bps: float, inst: Instrument) -> Decimal:
    """The worst acceptable price: ``ref`` moved against us by ``bps``, on the tick grid (inward)."""
    move = ref * dec(bps) * BPS
    px = ref - move if side == "sell" else ref + move
    tick = dec(inst.tick_size)
    n = px / tick
    n = n.to_integral_value(ROUND_FLOOR) if side == "buy" else -((-n).to_integral_value(ROUND_FLOOR))
    return n * tick


def _reachable(book: OrderBook, side: str, limit: Decimal, qty: Decimal) -> tuple[Decimal, Decimal]:
    """(base quantity available within ``limit``, up to ``qty``; its cost) on ``book``."""
    lim = float(limit)
    got = cost = ZERO
    for p, q in (book.bids() if side == "sell" else book.asks()):
        if (p < lim) if side == "sell" else (p > lim):
            break
        take = min(dec(q), qty - got)
        got += take
        cost += take * dec(p)
        if got >= qty:
            break
    return got, cost


def usable(book: OrderBook | None, now_ns: int, max_age_ns: int) -> bool:
    """A book that can be traded on now: valid, uncrossed, not older than ``max_age_ns``."""
    return (book is not None and book.valid and bool(book.bid) and bool(book.ask) and book.bid < book.ask
            and (not max_age_ns or now_ns - book.local_ns < max_age_ns))


def plan(
    inc: Incident,
    cfg: LegRiskConfig,
    books: Callable[[str], OrderBook | None],
    members: Iterable[str],
    now_ns: int,
    max_age_ns: int = 0,
    afford: Callable[[Instrument, str, Decimal, Decimal], bool] | None = None,
) -> Action | None:
    """The order the incident's current step sends now, or None to wait (nothing reachable
    within the price limit right now). ``members``: the book keys of the incident's group;
    ``afford(inst, side, qty, limit)``: whether the account can pay for that order there
    (a hedge venue without the money is passed over rather than sent a doomed order)."""
    name = cfg.steps[inc.step]
    side = inc.side
    if name == "retry":
        keys = [inc.missing]
        ref, bps = inc.missing_price, cfg.retry_bps
    elif name == "hedge":
        failed_venue = inc.missing.split(" ", 1)[0]
        keys = [k for k in members if k.split(" ", 1)[0] != failed_venue]
        ref, bps = inc.missing_price, cfg.hedge_bps
    else:
        keys = [inc.filled]
        ref, bps = inc.filled_price, cfg.unwind_bps
    best: tuple[Decimal, Decimal, Action] | None = None
    for key in keys:
        book = books(key)
        if book is None or not usable(book, now_ns, max_age_ns):
            continue
        inst = book.instrument
        if inst.quote_contracts or not closable(inst, inc.qty):
            continue
        limit = _limit(side, ref, bps, inst)
        qty = order_qty(inst, side, inc.qty)
        base = qty * dec(inst.contract_size)
        got, cost = _reachable(book, side, limit, base)
        if not got or got * limit < dec(inst.min_notional):
            continue
        if afford is not None and not afford(inst, side, qty, limit):
            continue
        avg = cost / got
        # the best book fills the most; at equal size, the better average price
        score = (got, avg if side == "sell" else -avg)
        if best is None or score > best[:2]:
            best = (score[0], score[1], Action(key, name, side, qty, limit))
    return best[2] if best is not None else None


def book_fills(inc: Incident, order: Order, inst: Instrument) -> Decimal:
    """Apply a finished order's fills to the incident; returns the base it closed (signed as
    the incident's quantity). Fees in base reduce what a buy brings (and add to what a sell
    takes); the slippage is measured against the missing leg's expected price."""
    moved = ZERO
    for f in order.fills:
        base = f.qty * dec(inst.contract_size)
        fee_base = f.fee if inst.kind is Kind.SPOT and f.fee_currency == inst.base else ZERO
        delta = base - fee_base if f.side == "buy" else -base - fee_base
        moved += delta
        inc.realised += f.pnl
        inc.fees_quote += f.fee_quote
        worse = (inc.missing_price - f.price) if f.side == "sell" else (f.price - inc.missing_price)
        inc.slippage_quote += worse * base
    inc.qty += moved
    return moved


class OneLegged:
    """One-legged exposure per asset: the signed base settled trades left behind, plus what the
    leg-risk orders moved since. Valued at the marks on demand (quote, floats for limits)."""

    __slots__ = ("max_quote", "qty")

    def __init__(self) -> None:
        self.qty: dict[str, Decimal] = {}
        self.max_quote = 0.0

    def add(self, asset: str, delta: Decimal) -> Decimal:
        """Move ``asset`` by ``delta`` base; returns its new signed quantity."""
        q = self.qty[asset] = self.qty.get(asset, ZERO) + delta
        return q

    def value(self, price: Callable[[str], Decimal | None]) -> tuple[float, dict[str, float]]:
        """(sum of |qty| x mark over assets, quote value per asset); also samples the maximum."""
        by: dict[str, float] = {}
        total = ZERO
        for asset, q in sorted(self.qty.items()):
            if q:
                v = abs(q) * (price(asset) or ZERO)
                by[asset] = float(v)
                total += v
        t = float(total)
        if t > self.max_quote:
            self.max_quote = t
        return t, by
