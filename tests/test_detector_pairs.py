"""A pair of books is compared once, whatever the number of groups they share."""

from __future__ import annotations

from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.detect.cross_venue import CrossVenueDetector, Limits
from cryptoarb.detect.groups import auto_groups
from tests.helpers import book, spot


def test_spot_crossing_in_a_spot_and_a_basis_group_is_found_once() -> None:
    """Spot markets sit in their spot group and in the basis group: one opportunity, labelled spot."""
    a, b = spot("a", taker=0.0), spot("b", taker=0.0)
    perp = Instrument("p", "BTC/USDT:USDT", "BTC", "USDT", Kind.LINEAR, 0.1, 0.001, 0.0, 1.0, Fees(0.0), "BTCUSDT")
    plan = auto_groups([a, b, perp], basis=True)
    assert [g.label for g in plan.groups] == ["spot", "basis"]  # both list a and b
    d = CrossVenueDetector(plan.groups, Limits(min_profit_bps=0.0), {("a", "USDT"): 1e6, ("b", "BTC"): 10.0})
    ba = book(a, [(99.0, 1.0)], [(100.0, 1.0)])
    bp = book(perp, [(100.2, 1.0)], [(100.4, 1.0)])
    bb = book(b, [(101.0, 1.0)], [(102.0, 1.0)])
    for x in (ba, bp, bb):
        d.add_book(x)
    found = d.on_book(bb, 1_000) or []
    spot_pairs = [o for o in found if {o.buy_key, o.sell_key} == {ba.key, bb.key}]
    assert len(spot_pairs) == 1 and spot_pairs[0].label == "spot"
    # the perp is still compared with both spot books (basis)
    assert {len(d._pairs[k]) for k in (ba.key, bb.key, bp.key)} == {2}
