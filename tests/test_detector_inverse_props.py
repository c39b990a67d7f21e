"""Property-based tests of the detector with an inverse (coin-margined) sell leg.

Buy spot X/USD on venue A, sell X/USD:X inverse contracts (each worth ``cs`` USD) on venue B.
An inverse leg's base quantity depends on the levels walked (contracts x cs / price), so the
two legs cannot match exactly on a lot grid: the properties here are the ones that hold
whatever sizing policy is chosen (the difference is bounded by one spot lot and is exposure):
every order passes the venue's checks, both legs fill on the displayed books, the matched
quantity never loses on exact repricing (fractions), the reported profit is that exact
profit, and no limit is violated. Optimality is checked on spot and linear legs only
(tests/test_detector_props.py), where the exact reference applies.
"""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

from hypothesis import example, given
from hypothesis import strategies as st

from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.core.opportunity import Opportunity
from cryptoarb.detect.cross_venue import CrossVenueDetector, Limits
from cryptoarb.detect.groups import Group
from tests import exactref as ref
from tests.helpers import book
from tests.test_detector_props import PROPS

RICH = 1e12


class InverseCase:
    """Spot asks on A (price, base qty), inverse bids on B (price, contracts), limits."""

    def __init__(self, spot_lot: D, tick: D, cs: D, fee_a: D, fee_b: D, asks: list[tuple[D, D]],
                 bids: list[tuple[D, int]], bps: D, quote_balance: D | None, max_notional: D | None) -> None:
        self.spot_lot, self.tick, self.cs, self.fee_a, self.fee_b = spot_lot, tick, cs, fee_a, fee_b
        self.asks, self.bids = asks, bids
        self.bps, self.quote_balance, self.max_notional = bps, quote_balance, max_notional
        f = float
        self.a = Instrument("a", "X/USD", "X", "USD", Kind.SPOT, f(tick), f(spot_lot), 0.0, 1.0,
                            Fees(f(fee_a), f(fee_a)), "XUSD", "quote")  # fees in quote: the reference's rule
        self.b = Instrument("b", "X/USD:X", "X", "USD", Kind.INVERSE, f(tick), 1.0, 0.0, f(cs),
                            Fees(f(fee_b), f(fee_b)), "XUSD_PERP")

    def __repr__(self) -> str:
        return (f"InverseCase(spot lot={self.spot_lot} tick={self.tick} cs={self.cs} fees={self.fee_a}/{self.fee_b} "
                f"asks={[(str(p), str(q)) for p, q in self.asks]} bids={[(str(p), n) for p, n in self.bids]} "
                f"bps={self.bps} quote_balance={self.quote_balance} max_notional={self.max_notional})")

    def detect(self) -> Opportunity | None:
        f = float
        ask0, top = self.asks[0][0], max(self.asks[-1][0], self.bids[0][0])
        a = book(self.a, [(f(ask0 - 10 * self.tick), 1.0)], [(f(p), f(q)) for p, q in self.asks])
        b = book(self.b, [(f(p), float(n)) for p, n in self.bids], [(f(top + self.tick), 10.0)])
        limits = Limits(min_profit_bps=f(self.bps),
                        max_notional_quote=RICH if self.max_notional is None else f(self.max_notional))
        available = {("a", "USD"): RICH if self.quote_balance is None else f(self.quote_balance)}
        d = CrossVenueDetector([Group("X/USD", "basis", (a.key, b.key))], limits, available)
        d.add_book(a)
        d.add_book(b)
        found = d.on_book(b, 2_000) or []
        assert all((o.buy_key, o.sell_key) == (a.key, b.key) for o in found) and len(found) <= 1, found
        return found[0] if found else None


@st.composite
def inverse_cases(draw: st.DrawFn) -> InverseCase:
    scale, tick, cs = draw(st.sampled_from([(D(30000), D("0.5"), D(100)), (D(2000), D("0.01"), D(10))]))
    spot_lot = draw(st.sampled_from([D("0.00001"), D("0.0001"), D("0.001")]))
    fees = [D(0), D("0.0002"), D("0.0005"), D("0.001")]
    ask0 = (scale / tick + draw(st.integers(0, 1000))) * tick
    asks, p = [], ask0
    for _ in range(draw(st.integers(1, 4))):
        asks.append((p, draw(st.integers(1, 20_000)) * spot_lot))
        p += tick * max(1, int(ask0 * draw(st.integers(0, 60)) / D(10_000) / tick))
    bid0 = (ask0 * (1 + D(draw(st.integers(-5, 200))) / 10_000) / tick).to_integral_value() * tick
    bids, p = [], bid0
    for _ in range(draw(st.integers(1, 4))):
        bids.append((p, draw(st.integers(1, 300))))
        p -= tick * max(1, int(bid0 * draw(st.integers(0, 60)) / D(10_000) / tick))
    depth = sum(p * q for p, q in asks)

    def part() -> D | None:
        pct = draw(st.none() | st.integers(5, 110))
        value = None if pct is None else (depth * pct / 100).quantize(D("0.01"), rounding="ROUND_DOWN")
        return value if value else None

    return InverseCase(spot_lot, tick, cs, draw(st.sampled_from(fees)), draw(st.sampled_from(fees)), asks, bids,
                       draw(st.sampled_from([D(0), D(1), D(10), D(50)])), part(), part())


def _fill(levels: list[tuple[D, D]] | list[tuple[D, int]], qty: Fraction, limit: Fraction, buying: bool
          ) -> list[tuple[Fraction, Fraction]]:
    """(price, native qty) taken by an IOC order on displayed levels, best first."""
    out, left = [], qty
    for p, q in levels:
        fp = Fraction(p)
        if left <= 0 or ((fp > limit) if buying else (fp < limit)):
            break
        take = min(Fraction(q), left)
        out.append((fp, take))
        left -= take
    return out


@PROPS
@given(inverse_cases())
def test_inverse_sell_leg_passes_checks_fills_and_never_loses(case: InverseCase) -> None:
    """Lots, ticks, full fills, exact profit (as reported, above the threshold), max notional;
    the buy leg's balance rule is the next test."""
    opp = case.detect()
    if opp is None:
        return
    # the venues' own checks
    assert D(str(opp.buy.qty)) % case.spot_lot == 0 and opp.buy.qty > 0, opp
    assert D(str(opp.sell.qty)) % 1 == 0 and opp.sell.qty > 0, opp  # whole contracts
    for intent in (opp.buy, opp.sell):
        assert D(str(intent.limit_price)) % case.tick == 0, opp
    # both legs fill completely on the displayed books, within their limits
    fr = Fraction
    buys = _fill(case.asks, fr(ref.F(opp.buy.qty)), fr(ref.F(opp.buy.limit_price)), True)
    sells = _fill(case.bids, fr(ref.F(opp.sell.qty)), fr(ref.F(opp.sell.limit_price)), False)
    assert sum(q for _, q in buys) == fr(ref.F(opp.buy.qty)), (opp, buys)
    assert sum(n for _, n in sells) == fr(ref.F(opp.sell.qty)), (opp, sells)
    # exact money: base per inverse fill = contracts x cs / price; fees in quote
    cs = fr(case.cs)
    buy_base, buy_quote = sum(q for _, q in buys), sum(p * q for p, q in buys)
    sell_base, sell_quote = sum(n * cs / p for p, n in sells), sum(n * cs for _, n in sells)
    assert abs(buy_base - sell_base) <= fr(case.spot_lot), (opp, float(buy_base), float(sell_base))
    cost = buy_quote * (1 + fr(case.fee_a))
    if case.max_notional is not None:
        assert cost <= fr(case.max_notional) * (1 + fr(1, 10**9)), (opp, float(cost))
    matched = min(buy_base, sell_base)
    profit = matched * (sell_quote / sell_base - buy_quote / buy_base) - buy_quote * fr(case.fee_a) - (
        sell_quote * fr(case.fee_b))
    assert profit > 0, (opp, float(profit))
    assert abs(fr(opp.profit_quote) - profit) <= abs(profit) / 10**6 + fr(1, 10**9), (opp, float(profit))
    assert profit * 10_000 >= fr(case.bps) * cost * (1 - fr(1, 10**9)), (opp, float(profit / cost * 10_000))


# issue 7 item 2 with an inverse sell leg: 14,000 USD; asks 2000x5, 2010x5 (fee 0.1 %); sizing
# on the VWAP cost gives 6.98 X (whole contracts), whose IOC buy needs 6.98 x 2010 x 1.001 = 14,043.83 USD.
ITEM2_INVERSE = InverseCase(D("0.001"), D("0.01"), D(10), D("0.001"), D(0), [(D(2000), D(5)), (D(2010), D(5))],
                            [(D(2030), 3000)], D(0), D(14_000), None)


@PROPS
@given(inverse_cases())
@example(ITEM2_INVERSE)
def test_inverse_case_buy_leg_passes_the_venues_balance_check(case: InverseCase) -> None:
    opp = case.detect()
    if opp is None or case.quote_balance is None:
        return
    reserve = ref.buy_reserve(ref.F(opp.buy.qty), ref.F(opp.buy.limit_price), case.fee_a)
    assert reserve <= case.quote_balance, (opp, float(reserve), case.quote_balance)
