"""Our own footprint: liquidity our orders hold or took is not there for the next decision.

The demo's simulated market takes our fills out of its books (as a real venue does), so a
leg can fail there only because the market moved between the decision and the order's
arrival, never because the engine sized a trade on liquidity its own orders had already
taken (issue 7 item 1: before the footprint, most of the demo's failed legs were of that kind).
"""

from __future__ import annotations

from decimal import Decimal

from cryptoarb.config import load_settings
from cryptoarb.core.footprint import Footprint, Footprints
from cryptoarb.core.orders import Order, OrderStatus
from cryptoarb.demo.run import build_demo


def test_hold_and_release_per_order() -> None:
    fp = Footprint()
    stamp = (1, 10)
    assert fp.empty(stamp)
    fp.hold("1b", "asks", [(100.0, 2.0), (101.0, 0.5)])
    fp.hold("2b", "asks", [(100.0, 1.0)])
    assert not fp.empty(stamp)
    assert fp.used("asks", 100.0, stamp) == 3.0 and fp.used("bids", 100.0, stamp) == 0.0
    fp.release("1b")
    assert fp.used("asks", 100.0, stamp) == 1.0 and fp.used("asks", 101.0, stamp) == 0.0
    fp.release("2b")
    fp.release("never-held")
    assert fp.empty(stamp) and fp.held == {}


def test_taken_lasts_until_the_book_changes() -> None:
    fps = Footprints()
    fp = fps["a X/Q"]
    assert fps["a X/Q"] is fp
    assert fp.taken_at("asks", 100.0, (1, 10)) == 0
    fp.take("asks", 100.0, Decimal("2.5"))
    assert fp.taken_at("asks", 100.0, (1, 10)) == Decimal("2.5")
    assert fp.used("asks", 100.0, (1, 10)) == 2.5 and not fp.empty((1, 10))
    # the venue's next picture includes our fill: what we took is no longer subtracted
    assert fp.empty((2, 11)) and fp.used("asks", 100.0, (2, 11)) == 0.0
    assert fp.taken_at("asks", 100.0, (2, 11)) == 0


def test_demo_legs_fail_only_where_the_market_moved() -> None:
    demo = build_demo(load_settings(storage={"enabled": False}), seed=1)
    engine = demo.engine
    at_decision: dict[str, tuple[int, int]] = {}
    unmoved_failures: list[str] = []
    failures = 0

    def watch(order: Order) -> None:
        nonlocal failures
        book = engine.books[f"{order.venue} {order.symbol}"]
        stamp = (book.update_id, book.local_ns)
        if order.status is OrderStatus.NEW:
            at_decision[order.id] = stamp
        elif order.filled_qty < order.qty:
            failures += 1
            if at_decision[order.id] == stamp:
                unmoved_failures.append(f"{order.id}: {order.reason}")

    engine.executor.on_order.insert(0, watch)
    summary = demo.run(120, live=False, speed=0, start_ns=0)
    assert summary["trades"] >= 20, summary["trades"]
    assert failures > 0  # the market does move within the venues' latencies: the check has material
    assert unmoved_failures == []
