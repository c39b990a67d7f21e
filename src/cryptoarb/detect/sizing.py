"""Sizing one cross-venue trade: the most net profit the two books, the limits and the balances allow.

The walk takes both books best first, lazily (a walk costs the levels it reads, never the
whole book), in base units, through our own footprint. Net profit is concave in the size
(each further unit pays less), so the walk runs while the marginal unit still pays after
fees; the whole-size threshold ``min_profit_bps`` then bounds the size from above (the average
edge only falls as the size grows) and the largest size that meets it is the best one.
``min_profit_quote`` is a lower bound: if the best size fails it, every size does. Min notional
is a lower bound on the *size*: when the best size is too small for a venue's minimum, the
smallest size that meets it is the best admissible one (profit is concave), if it still clears
the thresholds; it is priced and checked like any other size.

Balances are checked by the rule the venue applies to an IOC limit buy: ``qty x limit price``
(+ the fee where it is charged in quote, see ``core.accounting.spot_need``), the limit being the
worst level walked, not the VWAP; a sell needs its base (+ the fee where charged in base). The
rounded size is checked exactly (decimals) against that rule and stepped down by whole lots
until it passes, so an order we send is never refused for a balance we computed differently.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from cryptoarb.core.accounting import fee_asset, spot_need
from cryptoarb.core.book import OrderBook
from cryptoarb.core.footprint import Footprint
from cryptoarb.core.instruments import Instrument, Kind, ceil_step, dec, floor_step

_INF = float("inf")


@dataclass(frozen=True)
class Limits:
    """What one opportunity may be: thresholds and the size caps applied while walking."""

    min_profit_bps: float = 1.0  # net of fees, on the whole size
    min_profit_quote: float = 0.0
    max_notional_quote: float = 10_000.0  # per opportunity, buy leg cost including its fee
    max_quote_age_ns: int = 5_000_000_000  # ignore a peer book not updated for this long


class Leg:
    """Precomputed per-book numbers, so the hot check touches no Instrument attributes."""

    __slots__ = (
        "book", "buy_mult", "check_mult", "cs", "fee", "fp", "inst", "inverse", "sell_check_mult", "sell_mult", "spot"
    )

    def __init__(self, book: OrderBook, fp: Footprint) -> None:
        inst = book.instrument
        self.book = book
        self.inst = inst
        self.fp = fp
        self.buy_mult = 1.0 + inst.fees.taker
        self.sell_mult = 1.0 - inst.fees.taker
        self.inverse = inst.quote_contracts  # sized in quote-valued contracts (base-sized inverse: not)
        self.spot = inst.kind is Kind.SPOT
        self.fee = dec(inst.fees.taker)
        # what a spot venue locks: a buy's quote per unit of limit price, a sell's base per unit,
        # the fee included where it is charged in the currency spent (core.accounting.spot_need)
        self.check_mult = self.buy_mult if self.spot and fee_asset(inst, "buy") == inst.quote else 1.0
        self.sell_check_mult = self.buy_mult if self.spot and fee_asset(inst, "sell") == inst.base else 1.0
        self.cs = inst.contract_size


class _Side:
    """One side of a book read best first, lazily, net of our footprint: (price, base, native)."""

    __slots__ = ("fp", "it", "leg", "levels", "side", "stamp", "trust")

    def __init__(self, leg: Leg, side: str) -> None:
        book = leg.book
        self.leg = leg
        self.side = side
        self.it: Iterator[tuple[float, float]] = book.asks() if side == "asks" else book.bids()
        self.levels: list[tuple[float, float, float]] = []
        self.fp = leg.fp
        self.stamp = (book.update_id, book.local_ns)
        self.trust = leg.fp.empty(self.stamp)

    def level(self, i: int) -> tuple[float, float, float] | None:
        levels = self.levels
        while len(levels) <= i:
            for p, q in self.it:
                if not self.trust:
                    q -= self.fp.used(self.side, p, self.stamp)
                    if q <= 1e-12:
                        continue
                leg = self.leg
                levels.append((p, q * leg.cs / p if leg.inverse else q * leg.cs, q))
                break
            else:
                return None
        return levels[i]


class Plan:
    """A sized trade: native quantities, limits, VWAPs and money, plus the levels each leg takes."""

    __slots__ = (
        "base",
        "buy_levels",
        "buy_limit",
        "buy_qty",
        "buy_vwap",
        "cost",
        "fees",
        "profit",
        "sell_levels",
        "sell_limit",
        "sell_qty",
        "sell_vwap",
    )

    def __init__(self, buy: _Priced, sell: _Priced, base: float, cost: float, fees: float, profit: float) -> None:
        self.buy_qty, self.buy_limit, self.buy_vwap, self.buy_levels = buy.qty, buy.limit, buy.vwap, buy.takes
        self.sell_qty, self.sell_limit, self.sell_vwap, self.sell_levels = sell.qty, sell.limit, sell.vwap, sell.takes
        self.base = base
        self.cost = cost
        self.fees = fees
        self.profit = profit


class _Priced:
    """One leg priced for its final size."""

    __slots__ = ("base", "limit", "notional", "qty", "takes", "vwap")

    def __init__(
        self, qty: float, base: float, notional: float, limit: float, takes: list[tuple[float, float]]
    ) -> None:
        self.qty = qty
        self.base = base
        self.notional = notional
        self.limit = limit
        self.takes = takes
        self.vwap = notional / base if base > 0.0 else 0.0


def plan_trade(
    buy: Leg,
    sell: Leg,
    step: Decimal | None,
    limits: Limits,
    spend: float | None,
    have_quote: Decimal | None,
    deliver: float | None,
    have_base: Decimal | None,
) -> Plan | None:
    """Size buy-on ``buy`` / sell-on ``sell``; ``spend``/``deliver`` are None for margin legs."""
    if (spend is not None and spend <= 0.0) or (deliver is not None and deliver <= 0.0):
        return None
    asks = _Side(buy, "asks")
    bids = _Side(sell, "bids")
    spend = _INF if spend is None else spend
    deliver = _INF if deliver is None else deliver / sell.sell_check_mult
    qty = _walk(buy, sell, asks, bids, limits, spend, deliver)
    if qty <= 0.0:
        return None
    plan = _finish(buy, sell, asks, bids, step, qty, limits, have_quote, have_base)
    if plan is not None or not (buy.inst.min_notional or sell.inst.min_notional):
        return plan
    # too small for a venue's minimum: the smallest size that meets both minimums, if any pays
    least = _least_base(asks, buy.inst.min_notional, buy.cs, buy.inverse)
    least = max(least, _least_base(bids, sell.inst.min_notional, sell.cs, sell.inverse))
    if not qty < least < _INF:
        return None
    if step is None:
        return _finish(buy, sell, asks, bids, step, least * (1.0 + 1e-9), limits, have_quote, have_base)
    size = ceil_step(least, float(step))
    for _ in range(3):  # a size on a level boundary has the previous level's price: a step more
        if float(size) > deliver:
            return None
        plan = _finish(buy, sell, asks, bids, step, float(size), limits, have_quote, have_base)
        if plan is not None:
            return plan
        size += step
    return None


def _least_base(side: _Side, min_notional: float, cs: float, inverse: bool) -> float:
    """The least base size whose order meets ``min_notional`` as the venue checks it: quantity x
    limit price (the price of the worst level the order reaches), or for quote-valued contracts
    their face value (inf: the book is too thin)."""
    if min_notional <= 0.0:
        return 0.0
    base = face = 0.0
    i = 0
    while True:
        lv = side.level(i)
        if lv is None:
            return _INF
        p, b, q = lv
        if inverse:  # face value: contracts x contract size, whatever the price
            n = q * cs
            if face + n >= min_notional:
                return base + (min_notional - face) / n * b
            face += n
        else:  # once the order reaches this level, all of it is priced at this level's price
            want = max(base, min_notional / p)
            if want <= base + b:
                return want
        base += b
        i += 1


def _walk(buy: Leg, sell: Leg, asks: _Side, bids: _Side, limits: Limits, spend: float, deliver: float) -> float:
    """The best continuous size in base units (before lots)."""
    bm, sm, cm = buy.buy_mult, sell.sell_mult, buy.check_mult
    t = limits.min_profit_bps / 1e4
    max_cost = limits.max_notional_quote
    a = asks.level(0)
    b = bids.level(0)
    if a is None or b is None:
        return 0.0
    i = j = 0
    ap, a_left, _ = a
    bp, b_left, _ = b
    qty = cost = g = 0.0  # g = profit - t x cost: the whole-size threshold's slack
    while True:
        m = bp * sm - ap * bm  # marginal net profit per base unit
        if m <= 0.0:
            break
        cap = min(a_left, b_left, deliver - qty, (max_cost - cost) / (ap * bm))
        if spend != _INF:  # the venue checks qty x worst price: this level's price bounds the whole size
            cap = min(cap, spend / (ap * cm) - qty)
        if cap <= 0.0:
            break
        gm = m - t * ap * bm
        stop = False
        if gm < 0.0 and g + cap * gm < 0.0:
            cap = g / -gm  # the largest size whose whole still clears min_profit_bps
            stop = True
        qty += cap
        cost += cap * ap * bm
        g += cap * gm
        if stop:
            break
        a_left -= cap
        b_left -= cap
        if a_left <= 1e-15 * ap:
            i += 1
            a = asks.level(i)
            if a is None:
                break
            ap, a_left, _ = a
        if b_left <= 1e-15 * bp:
            j += 1
            b = bids.level(j)
            if b is None:
                break
            bp, b_left, _ = b
    return qty


Takes = list[tuple[float, float]]


def _take(inst: Instrument, side: _Side, native: float, cs: float) -> tuple[float, float, float, Takes]:
    """Take ``native`` units from the walked levels: (native got, quote notional, worst price, takes)."""
    got = notional = worst = 0.0
    takes: list[tuple[float, float]] = []
    i = 0
    while got < native * (1.0 - 1e-12):
        lv = side.level(i)
        if lv is None:
            break
        p, _base, q = lv
        x = min(q, native - got)
        got += x
        notional += x * cs * p
        worst = p
        takes.append((p, x))
        i += 1
    return got, notional, worst, takes


def _finish(
    buy: Leg,
    sell: Leg,
    asks: _Side,
    bids: _Side,
    step: Decimal | None,
    qty: float,
    limits: Limits,
    have_quote: Decimal | None,
    have_base: Decimal | None,
) -> Plan | None:
    """Round to lots, price both legs for the rounded size, apply the venue checks and thresholds."""
    bi, si = buy.inst, sell.inst
    if step is None:
        return _finish_inverse(buy, sell, asks, bids, qty, limits, have_quote, have_base)
    base = floor_step(qty, float(step))
    bcs, scs = dec(bi.contract_size), dec(si.contract_size)
    for _ in range(4):  # float depth vs exact checks: step down a lot at a time, a few at most
        if base <= 0:
            return None
        bq, sq = base / bcs, base / scs
        b_got, b_notional, b_worst, b_takes = _take(bi, asks, float(bq), buy.cs)
        s_got, s_notional, s_worst, s_takes = _take(si, bids, float(sq), sell.cs)
        short = b_got < float(bq) * (1.0 - 1e-9) or s_got < float(sq) * (1.0 - 1e-9)
        b_limit = bi.round_price(b_worst, up=True)
        s_limit = si.round_price(s_worst, up=False)
        if not short and _fits(buy, sell, bq, dec(b_limit), sq, have_quote, have_base):
            break
        base -= step
    else:
        return None
    fb = float(base)
    return _price(
        bi,
        si,
        _Priced(float(bq), fb, b_notional, b_limit, b_takes),
        _Priced(float(sq), fb, s_notional, s_limit, s_takes),
        limits,
    )


def _fits(
    buy: Leg,
    sell: Leg,
    bq: Decimal,
    b_limit: Decimal,
    sq: Decimal,
    have_quote: Decimal | None,
    have_base: Decimal | None,
) -> bool:
    """Both spot legs pass their venue's balance check, exactly (None: a margin leg, no check)."""
    if have_quote is not None and spot_need(buy.inst, "buy", bq, b_limit, buy.fee)[1] > have_quote:
        return False
    return have_base is None or spot_need(sell.inst, "sell", sq, Decimal(0), sell.fee)[1] <= have_base


def _price(bi: Instrument, si: Instrument, b: _Priced, s: _Priced, limits: Limits) -> Plan | None:
    """Money of the final size, and the thresholds on the whole of it."""
    if b.base <= 0.0 or s.base <= 0.0 or not (_meets_min(bi, b) and _meets_min(si, s)):
        return None
    base = min(b.base, s.base)
    buy_fee = b.notional * bi.fees.taker
    sell_fee = s.notional * si.fees.taker
    cost = b.notional + buy_fee
    profit = base * (s.vwap - b.vwap) - buy_fee - sell_fee
    if (
        profit <= 0.0
        or profit < limits.min_profit_quote
        or profit / cost * 1e4 < limits.min_profit_bps * (1.0 - 1e-9)
        or cost > limits.max_notional_quote * (1.0 + 1e-12)
    ):
        return None
    return Plan(b, s, base, cost, buy_fee + sell_fee, profit)


def _meets_min(inst: Instrument, leg: _Priced) -> bool:
    """The venue's min notional check, exactly: quantity x limit price (Binance's NOTIONAL filter;
    below the VWAP for a sell, above it for a buy), or quote-valued contracts' face value."""
    if not inst.min_notional:
        return True
    face = dec(leg.qty) * dec(inst.contract_size)
    return (face if inst.quote_contracts else face * dec(leg.limit)) >= dec(inst.min_notional)


def _take_inverse(inst: Instrument, side: _Side, want_base: float) -> tuple[float, float, float, float, list[
        tuple[float, float]]]:
    """Contracts level by level (each priced at its level), whole lots: (native, notional, base, worst, takes)."""
    cs, lot = inst.contract_size, inst.lot_size
    native = notional = got = worst = 0.0
    takes: list[tuple[float, float]] = []
    i = 0
    while got < want_base * 0.999999:
        lv = side.level(i)
        if lv is None:
            break
        p, _b, q = lv
        take_n = float(floor_step(min(q, (want_base - got) * p / cs), lot))
        if take_n <= 0.0:
            break
        native += take_n
        notional += take_n * cs
        got += take_n * cs / p
        worst = p
        takes.append((p, take_n))
        i += 1
    return float(dec(native)), notional, got, worst, takes


def _take_linear(inst: Instrument, side: _Side, base_qty: float) -> tuple[float, float, float, float, list[
        tuple[float, float]]]:
    native = inst.round_qty(base_qty / inst.contract_size)
    got, notional, worst, takes = _take(inst, side, native, inst.contract_size)
    if got < native * (1.0 - 1e-9):
        native = inst.round_qty(got)
        got, notional, worst, takes = _take(inst, side, native, inst.contract_size)
    return native, notional, native * inst.contract_size, worst, takes


def _finish_inverse(
    buy: Leg,
    sell: Leg,
    asks: _Side,
    bids: _Side,
    qty: float,
    limits: Limits,
    have_quote: Decimal | None,
    have_base: Decimal | None,
) -> Plan | None:
    """A trade with an inverse leg: contracts are worth a different base amount at each price, so
    the legs match within a lot; the difference is the trade's declared exposure."""
    bi, si = buy.inst, sell.inst
    b_take = _take_inverse if buy.inverse else _take_linear
    s_take = _take_inverse if sell.inverse else _take_linear
    bq, b_notional, b_base, b_worst, b_takes = b_take(bi, asks, qty)
    sq, s_notional, s_base, s_worst, s_takes = s_take(si, bids, min(qty, b_base))
    if bq <= 0.0 or sq <= 0.0:
        return None
    if b_base > s_base * 1.0000001 and not buy.inverse:
        bq, b_notional, b_base, b_worst, b_takes = b_take(bi, asks, s_base)
        if bq <= 0.0:
            return None
    b_limit = bi.round_price(b_worst, up=True)
    s_limit = si.round_price(s_worst, up=False)
    if not _fits(buy, sell, dec(bq), dec(b_limit), dec(sq), have_quote, have_base):
        return None
    return _price(
        bi, si, _Priced(bq, b_base, b_notional, b_limit, b_takes), _Priced(sq, s_base, s_notional, s_limit, s_takes),
        limits,
    )
