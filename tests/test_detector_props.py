"""Property-based tests of the cross-venue detector against the exact reference (tests/exactref.py).

Random two-venue markets (books, fees, decimal and integer lots, ticks, min notionals,
balances, max notional, thresholds) are built as exact decimals, handed to the real
``CrossVenueDetector`` through its public API as floats (the way a venue's strings reach
it), and its answer is checked with fractions against the books and against the brute-force
optimum. Only buying on venue A and selling on venue B can pay: A's bids sit below its asks
and B's asks above everything, so the other direction never crosses.

Example counts are bounded and the runs derandomised (no example database), so the file is
deterministic and quick; no assertion reads a clock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal as D
from fractions import Fraction

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from cryptoarb.core.book import OrderBook
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.core.opportunity import Opportunity
from cryptoarb.detect.cross_venue import CrossVenueDetector
from cryptoarb.detect.cross_venue import Limits as DetLimits
from cryptoarb.detect.groups import Group
from tests import exactref as ref
from tests.helpers import book

# Shrinking a failure costs a minute here; set ARB_PROPS_SHRINK=1 to get the smallest example.
PROPS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    phases=list(Phase) if os.environ.get("ARB_PROPS_SHRINK") else [Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RICH = 10**12  # "unlimited" balance or notional, as the detector is handed it
# float slack allowed on OUR soft limits and thresholds (never on what a venue checks)
REL = D("1e-9")

# price scales a venue really lists, with ticks and lots (decimal and integer) seen there
SCALES: list[tuple[D, list[D], list[D]]] = [
    (D("30000"), [D("0.01"), D("0.1")], [D("0.00001"), D("0.0001"), D("0.001")]),
    (D("100"), [D("0.01"), D("0.1")], [D("0.001"), D("0.01"), D("0.1")]),
    (D("2"), [D("0.0001")], [D("0.1"), D("1")]),
    (D("0.1"), [D("0.00001")], [D("1"), D("20"), D("30")]),
    (D("0.05"), [D("0.00001")], [D("20"), D("30")]),  # always one of each: no common multiple below 60
    (D("0.5"), [D("0.0001")], [D("0.1"), D("0.0001")]),
]
FEES = [D("0"), D("0.0001"), D("0.0002"), D("0.0004"), D("0.00075"), D("0.001"), D("0.002")]


@dataclass
class Case:
    """One market, as exact decimals (for the reference) and as the detector's objects."""

    a: Instrument
    b: Instrument
    a_book: OrderBook
    b_book: OrderBook
    ma: ref.Market  # A's asks
    mb: ref.Market  # B's bids
    reference: ref.Reference
    limits: ref.Limits
    det_limits: DetLimits
    available: dict[tuple[str, str], float]
    changed_a: bool

    def __repr__(self) -> str:
        def side(m: ref.Market) -> str:
            kind = "spot" if m.spot else f"linear cs={m.contract_size}"
            levels = " ".join(f"{p}x{q}" for p, q in m.levels)
            return (f"{kind} lot={m.lot} tick={m.tick} fee={m.fee} min_notional={m.min_notional} [{levels}]")

        return (f"Case(A asks {side(self.ma)}; B bids {side(self.mb)}; {self.limits}; "
                f"changed={'A' if self.changed_a else 'B'})")

    def detect(self) -> Opportunity | None:
        label = "spot" if self.ma.spot and self.mb.spot else "basis"
        d = CrossVenueDetector([Group("X/Q", label, (self.a.key, self.b.key))], self.det_limits,
                               dict(self.available))
        d.add_book(self.a_book)
        d.add_book(self.b_book)
        found = d.on_book(self.a_book if self.changed_a else self.b_book, 2_000) or []
        assert all((o.buy_key, o.sell_key) == (self.a.key, self.b.key) for o in found), found
        assert len(found) <= 1, found
        return found[0] if found else None


def _f(x: D) -> float:
    return float(str(x))


def _inst(venue: str, spot: bool, tick: D, lot: D, min_notional: D, cs: D, fee: D) -> Instrument:
    kind = Kind.SPOT if spot else Kind.LINEAR
    symbol = "X/Q" if spot else "X/Q:Q"
    return Instrument(venue, symbol, "X", "Q", kind, _f(tick), _f(lot), _f(min_notional), _f(cs),
                      Fees(_f(fee), _f(fee)), "XQ", "quote")  # fees in quote: the reference's rule


def make_case(ma: ref.Market, mb: ref.Market, limits: ref.Limits, changed_a: bool = True,
              reference: ref.Reference | None = None) -> Case:
    """The detector's instruments, books, limits and balances for a market given exactly."""
    (ask0, ask_q), (bid0, bid_q) = ma.levels[0], mb.levels[0]
    # the sides that must never cross: A's bid below its asks, B's ask above everything
    a_bid = ask0 - 10 * ma.tick
    top = max(ma.levels[-1][0], bid0)
    b_ask = (top / mb.tick).to_integral_value(rounding="ROUND_CEILING") * mb.tick + mb.tick
    a = _inst("a", ma.spot, ma.tick, ma.lot, ma.min_notional, ma.contract_size, ma.fee)
    b = _inst("b", mb.spot, mb.tick, mb.lot, mb.min_notional, mb.contract_size, mb.fee)
    a_book = book(a, [(_f(a_bid), _f(ask_q))], [(_f(p), _f(q)) for p, q in ma.levels])
    b_book = book(b, [(_f(p), _f(q)) for p, q in mb.levels], [(_f(b_ask), _f(bid_q))])
    lim = limits
    det = DetLimits(min_profit_bps=_f(lim.min_profit_bps), min_profit_quote=_f(lim.min_profit_quote),
                    max_notional_quote=float(RICH) if lim.max_notional is None else _f(lim.max_notional))
    available = {("a", "Q"): float(RICH) if lim.quote_balance is None else _f(lim.quote_balance),
                 ("b", "X"): float(RICH) if lim.base_balance is None else _f(lim.base_balance)}
    return Case(a, b, a_book, b_book, ma, mb, reference or ref.Reference(ma, mb), limits, det, available,
                changed_a)


def spot_market(levels: list[tuple[str, str]], lot: str, fee: str = "0", tick: str = "0.1",
                min_notional: str = "0") -> ref.Market:
    return ref.Market(tuple((D(p), D(q)) for p, q in levels), D(lot), D(tick), D(fee), D(min_notional))


# The reproductions as explicit examples: each property fails on today's code for a
# known reason however the random examples fall (and keeps checking it after the fix).
ITEM2 = make_case(spot_market([("100.0", "5"), ("100.5", "5")], "0.001", "0.001"),
                  spot_market([("101.5", "20")], "0.001", "0.001"), ref.Limits(quote_balance=D(700)))
ITEM5 = make_case(spot_market([("1.0", "1000")], "20", tick="0.01"), spot_market([("1.1", "1000")], "30", tick="0.01"),
                  ref.Limits(max_notional=D(165)))
ITEM6 = make_case(spot_market([("100", "1"), ("101.8", "10")], "0.001"), spot_market([("102", "11")], "0.001"),
                  ref.Limits(min_profit_bps=D(50)))

# Found by the property below (2026-11-30): the profit-maximising size (29 X) is too small for
# B's min notional of 5 Q, while 49 X still clears it with 20 bps; the detector gave up instead
# of taking the smallest size that meets the minimum (min notional bounds the size from below).
MIN_NOTIONAL_BELOW = make_case(
    ref.Market(tuple((D(p), D(q)) for p, q in [("0.10186", "3001"), ("0.10221", "28702"), ("0.10396", "25800")]),
               D(1), D("0.00001"), D("0.0004"), D(1), contract_size=D("0.01"), spot=False),
    spot_market([("0.10240", "29"), ("0.10211", "107"), ("0.10037", "16")], "1", "0.0004", "0.00001", "5"),
    ref.Limits(min_profit_bps=D(5), base_balance=D("49.49")))
# ... and with A's minimum too: a venue checks quantity x limit price (49 x 0.10221 = 5.008 >= 5),
# not the VWAP notional (4.998); the detector refused a size the venue accepts.
MIN_NOTIONAL_AT_LIMIT = make_case(
    ref.Market(tuple((D(p), D(q)) for p, q in [("0.10186", "3001"), ("0.10221", "28702"), ("0.10396", "25800")]),
               D(1), D("0.00001"), D("0.0004"), D(5), contract_size=D("0.01"), spot=False),
    spot_market([("0.10240", "29"), ("0.10211", "107"), ("0.10037", "16")], "1", "0.0004", "0.00001", "5"),
    ref.Limits(min_profit_bps=D(5), base_balance=D("49.49")))


@st.composite
def cases(draw: st.DrawFn, only: str | None = None, deep: bool = False) -> Case:
    """A random market; ``only`` sets just that limit ("quote", "base", "notional", "none").
    Deep books (half of the cases; always with ``deep`` or ``only``) cross over several levels
    with limits that bind: where sizing rules differ."""
    scale, ticks, lots = draw(st.sampled_from(SCALES))
    deep = deep or only is not None or draw(st.booleans())
    gaps = st.integers(10, 200) if deep else st.integers(0, 80) | st.integers(80, 200)
    tick_a, tick_b = draw(st.sampled_from(ticks)), draw(st.sampled_from(ticks))
    lot_a, lot_b = draw(st.permutations(lots))[:2] if scale == D("0.05") else (
        draw(st.sampled_from(lots)), draw(st.sampled_from(lots)))
    spot_a = only == "quote" or draw(st.sampled_from([True, True, False]))
    spot_b = only == "base" or draw(st.sampled_from([True, True, False]))
    cs_a = D(1) if spot_a else draw(st.sampled_from([D(1), D("0.1"), D("0.01")]))
    cs_b = D(1) if spot_b else draw(st.sampled_from([D(1), D("0.1"), D("0.01")]))
    fee_a, fee_b = draw(st.sampled_from(FEES)), draw(st.sampled_from(FEES))
    # the common step (base units) in each leg's native units, so books have depth on the grid
    step_d = ref.grid_step(ref.Market((), lot_a, D(1), D(0), contract_size=cs_a),
                           ref.Market((), lot_b, D(1), D(0), contract_size=cs_b))

    def qty(lot: D, cs: D) -> D:
        steps = draw(st.integers(30, 600) if deep else st.integers(0, 30) | st.integers(30, 600))
        extra = draw(st.integers(0, 4))
        return (steps * step_d / cs + extra * lot) or lot

    top_ticks = int(scale / tick_a) + draw(st.integers(0, 200))
    ask0 = top_ticks * tick_a
    asks: list[tuple[D, D]] = []
    p = ask0
    for _ in range(draw(st.integers(1, 5))):
        asks.append((p, qty(lot_a, cs_a)))
        p += tick_a * max(1, int(ask0 * draw(gaps) / D(10_000) / tick_a))
    spread_bps = draw(st.integers(50, 300) if deep else st.integers(-5, 250))
    bid0 = (ask0 * (1 + D(spread_bps) / 10_000) / tick_b).to_integral_value() * tick_b
    bids: list[tuple[D, D]] = []
    p = bid0
    for _ in range(draw(st.integers(1, 5))):
        if p <= 0:
            break
        bids.append((p, qty(lot_b, cs_b)))
        p -= tick_b * max(1, int(bid0 * draw(gaps) / D(10_000) / tick_b))
    min_a = draw(st.sampled_from([D(0), D(1), D(5), D(10), D(100)]))
    min_b = draw(st.sampled_from([D(0), D(1), D(5), D(10), D(100)]))
    bps = draw(st.sampled_from([D(0), D("0.5"), D(1), D(5), D(10), D(25), D(50), D(100)]))
    mpq = draw(st.sampled_from([D(0), D(0), D("0.01"), D(1), D(10)]))
    ma = ref.Market(tuple(asks), lot_a, tick_a, fee_a, min_a, cs_a, spot_a)
    mb = ref.Market(tuple(bids), lot_b, tick_b, fee_b, min_b, cs_b, spot_b)

    # Each limit is a share of what the unconstrained optimum would use, so that it binds
    # (below 100 %) or nearly binds; often only one is set, so each is seen binding alone.
    reference = ref.Reference(ma, mb)
    free = reference.solve(ref.Limits(bps, mpq)).best
    if free is None:
        need_quote = need_base = need_cost = sum(p * q * cs_a for p, q in asks)
    else:
        need_quote = ref.buy_reserve(free.buy.native, free.buy.worst, ma.fee, ma.contract_size)
        need_base, need_cost = free.sell.native, free.cost

    def part(total: D, places: str) -> D | None:
        pct = draw(st.integers(40, 99) if deep else st.integers(1, 110))
        value = (total * pct / 100).quantize(D(places), rounding="ROUND_DOWN")
        return value if value > 0 else None

    only = only or draw(st.sampled_from(["quote", "base", "notional", "all", "none"]))
    quote_bal = part(need_quote, "0.01") if spot_a and only in ("quote", "all") else None
    base_bal = part(need_base, "0.00000001") if spot_b and only in ("base", "all") else None
    max_notional = part(need_cost, "0.01") if only in ("notional", "all") else None

    limits = ref.Limits(bps, mpq, max_notional, quote_bal, base_bal)
    return make_case(ma, mb, limits, draw(st.booleans()), reference)


def _legs(case: Case, opp: Opportunity) -> tuple[ref.Walk, ref.Walk, Fraction, Fraction]:
    """Exact fills of both intents on the displayed books, with the exact cost and net profit
    of the matched base quantity (a leftover on one leg is exposure, not profit)."""
    buy = ref.reprice(case.ma, ref.F(opp.buy.qty), ref.F(opp.buy.limit_price), buying=True)
    sell = ref.reprice(case.mb, ref.F(opp.sell.qty), ref.F(opp.sell.limit_price), buying=False)
    fr = Fraction
    cost = fr(buy.notional) * (1 + fr(case.ma.fee))
    matched = min(fr(buy.base), fr(sell.base))
    if matched == 0:
        return buy, sell, cost, -cost
    vwap_gap = fr(sell.notional) / fr(sell.base) - fr(buy.notional) / fr(buy.base)
    profit = matched * vwap_gap - fr(buy.notional) * fr(case.ma.fee) - fr(sell.notional) * fr(case.mb.fee)
    return buy, sell, cost, profit


# -- the properties ---------------------------------------------------------------------------
@PROPS
@given(cases())
@example(ITEM5)
def test_every_order_passes_the_venues_own_checks(case: Case) -> None:
    """Quantity an exact multiple of the lot, price a multiple of the tick, same base on both legs."""
    opp = case.detect()
    if opp is None:
        return
    for intent, inst in ((opp.buy, case.a), (opp.sell, case.b)):
        assert intent.qty > 0
        assert D(str(intent.qty)) % D(str(inst.lot_size)) == 0, (intent, inst.lot_size)
        assert D(str(intent.limit_price)) % D(str(inst.tick_size)) == 0, (intent, inst.tick_size)
    assert ref.F(opp.buy.qty) * case.ma.contract_size == ref.F(opp.sell.qty) * case.mb.contract_size, opp


@PROPS
@given(cases())
@example(ITEM2)
def test_never_violates_a_limit(case: Case) -> None:
    """Balances under the venue's own check, min notional (qty x limit, as venues check a limit
    order), max notional (the buy leg's cost with its fee)."""
    opp = case.detect()
    if opp is None:
        return
    lim, ma, mb = case.limits, case.ma, case.mb
    bq, bl, sq, sl = ref.F(opp.buy.qty), ref.F(opp.buy.limit_price), ref.F(opp.sell.qty), ref.F(opp.sell.limit_price)
    if ma.spot and lim.quote_balance is not None:
        assert ref.buy_reserve(bq, bl, ma.fee) <= lim.quote_balance, (opp, lim)
    if mb.spot and lim.base_balance is not None:
        assert sq <= lim.base_balance, (opp, lim)
    assert ref.order_notional(bq, bl, ma.contract_size) >= ma.min_notional, opp
    assert ref.order_notional(sq, sl, mb.contract_size) >= mb.min_notional, opp
    _buy, _sell, cost, _profit = _legs(case, opp)
    if lim.max_notional is not None:
        assert cost <= Fraction(lim.max_notional * (1 + REL)), (opp, lim)


@PROPS
@given(cases(only="quote"))
@example(ITEM2)
def test_buy_leg_passes_the_venues_balance_check(case: Case) -> None:
    """The quote balance alone binds: the venue's reserve (qty x limit x (1 + fee)) must fit.
    (That the size is then the largest this rule allows is the optimality property's job.)"""
    opp = case.detect()
    if opp is None or case.limits.quote_balance is None:
        return
    reserve = ref.buy_reserve(ref.F(opp.buy.qty), ref.F(opp.buy.limit_price), case.ma.fee)
    assert reserve <= case.limits.quote_balance, (opp, float(reserve), case.limits)


@PROPS
@given(cases())
@example(ITEM2)
@example(ITEM5)
@example(ITEM6)
@example(MIN_NOTIONAL_BELOW)
@example(MIN_NOTIONAL_AT_LIMIT)
def test_never_a_loss_on_exact_repricing(case: Case) -> None:
    """Both intents fill completely on the displayed books within their limits, and the
    matched quantity earns a positive net profit, the one the detector reports."""
    opp = case.detect()
    if opp is None:
        return
    buy, sell, _cost, profit = _legs(case, opp)
    assert buy.native == ref.F(opp.buy.qty) and sell.native == ref.F(opp.sell.qty), (opp, buy, sell)
    assert profit > 0, (opp, float(profit))
    assert abs(Fraction(opp.profit_quote) - profit) <= abs(profit) * Fraction(1, 10**6) + Fraction(1, 10**9), (
        opp, float(profit))


@PROPS
@given(cases())
@example(ITEM6)
@example(MIN_NOTIONAL_BELOW)
@example(MIN_NOTIONAL_AT_LIMIT)
def test_size_and_profit_are_optimal_within_one_lot(case: Case) -> None:
    """Against the brute-force optimum: the detector finds an opportunity whenever one exists,
    and its size and exact net profit are those of the optimum within one grid step."""
    r = case.reference
    lim = case.limits
    # thresholds a hair stricter / looser: a float detector may decide a size that ties them
    # exactly either way (limits a venue checks are never relaxed)
    tight = ref.Limits(lim.min_profit_bps + REL * 1000, lim.min_profit_quote * (1 + REL) + REL,
                       lim.max_notional, lim.quote_balance, lim.base_balance)
    loose = ref.Limits(max(lim.min_profit_bps - REL * 1000, D(0)), lim.min_profit_quote * (1 - REL),
                       None if lim.max_notional is None else lim.max_notional * (1 + REL),
                       lim.quote_balance, lim.base_balance)
    exact, strict = r.solve(lim), r.solve(tight)
    opp = case.detect()
    if strict.best is None:
        if r.solve(loose).best is None:
            assert opp is None, opp  # nothing can pay: the detector must say so
        return
    assert opp is not None, (strict.best, lim)
    _buy, _sell, _cost, profit = _legs(case, opp)
    # within one lot: no worse than the worst admissible size next to the optimum
    near = [r.point(strict.best.base + k * r.step) for k in (-1, 0, 1)]
    floor = min(Fraction(pt.profit) for pt in near if pt is not None and r.within_limits(pt, tight)
                and r.acceptable(pt, tight))
    assert profit >= floor, (opp, float(profit), float(strict.best.profit), float(strict.best.base))
    base = ref.F(opp.buy.qty) * case.ma.contract_size
    assert strict.argmax_lo - r.step <= base <= exact.argmax_hi + r.step, (opp, strict.argmax_lo, exact.argmax_hi)


@settings(PROPS, max_examples=60)
@given(cases())
def test_reference_bisect_walk_equals_the_level_by_level_walk(case: Case) -> None:
    """The reference's fast cumulative walk agrees with the plain walk (the reference's own check)."""
    r = case.reference
    for pt in r.points()[:: max(1, len(r.points()) // 40)]:
        assert pt.buy == ref.walk(case.ma, pt.buy.native), pt
        assert pt.sell == ref.walk(case.mb, pt.sell.native, buying=False), pt
        assert pt.profit == pt.sell.notional * (1 - case.mb.fee) - pt.buy.notional * (1 + case.ma.fee)
