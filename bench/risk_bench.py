"""Risk check benchmark: the per-intent cost of ``RiskManager.check`` (µs).

    python bench/risk_bench.py [--runs 7] [--calls 200000]

Median over ``--runs`` runs of the mean time per call of ``--calls`` calls, for:

- ``pass``: default limits, every check evaluated (the path of an accepted intent), with 3
  trades in flight on 4 venues and one-legged exposure on the books;
- ``breaker open``: one breaker tripped (the refusal walks the breakers);
- ``killed``: the kill switch on (the first test refuses);
- the loop's own cost (a no-op lambda), included in each figure;
- ``learn``: what one settled trade costs the manager afterwards (2 orders + pending + settled),
  off the decision path but on the engine thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cryptoarb.core.opportunity import Opportunity, OrderIntent
from cryptoarb.core.orders import ArbStatus, ArbTrade, Order, OrderStatus
from cryptoarb.core.risk import RiskConfig, RiskManager

T0 = 1_700_000_000 * 1_000_000_000


def per_call_us(fn: Callable[[], Any], runs: int, calls: int) -> float:
    """Median over ``runs`` of the mean time per call (µs) of ``calls`` calls."""
    rng = range(calls)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        for _ in rng:
            fn()
        out.append((time.perf_counter_ns() - t0) / calls / 1e3)
    return statistics.median(out)


def opp(i: int, bv: str = "binance", sv: str = "okx") -> Opportunity:
    return Opportunity(i, "BTC/USDT", "spot", OrderIntent(bv, "BTC/USDT", "buy", 0.05, 60_010.0, 60_000.0),
                       OrderIntent(sv, "BTC/USDT", "sell", 0.05, 60_090.0, 60_100.0), 0.05, 60_000.0, 60_100.0,
                       3_003.0, 6.0, 4.0, T0, T0)


def submit(rm: RiskManager, o: Opportunity, now: int) -> ArbTrade:
    legs = [Order(f"{o.id}{leg}", i.venue, i.symbol, i.side, Decimal("0.05"), Decimal(60_000), Decimal(60_000), now)
            for leg, i in (("b", o.buy), ("s", o.sell))]
    for order in legs:
        rm.on_order(order)
    t = ArbTrade(o.id, o.id, o.group, legs[0], legs[1], Decimal(4), Decimal("0.05"), now)
    rm.on_trade(t)
    return t


def settle(rm: RiskManager, t: ArbTrade, now: int) -> None:
    for order in (t.buy_order, t.sell_order):
        order.status, order.updated_ns = OrderStatus.FILLED, now
        rm.on_order(order)
    t.status, t.realized_pnl, t.closed_ns = ArbStatus.COMPLETE, Decimal("3.5"), now
    rm.on_trade(t)


def loaded() -> RiskManager:
    rm = RiskManager(RiskConfig())
    for i, (bv, sv) in enumerate((("binance", "okx"), ("bybit", "okx"), ("binance", "kraken"))):
        submit(rm, opp(1_000 + i, bv, sv), T0)
    rm.set_unhedged("ETH", Decimal("0.4"), Decimal(2_600), T0)
    return rm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--calls", type=int, default=200_000)
    a = ap.parse_args()
    o = opp(1)
    now = T0 + 1_000_000

    rm = loaded()
    assert rm.check(o, now, T0, T0) is None
    passing = per_call_us(lambda: rm.check(o, now, T0, T0), a.runs, a.calls)

    tripped = loaded()
    tripped.config = RiskConfig(max_loss_streak=1)
    tripped._trip("loss_streak", T0, "bench", {})
    assert tripped.check(o, now, T0, T0) == "breaker:loss_streak"
    open_ = per_call_us(lambda: tripped.check(o, now, T0, T0), a.runs, a.calls)

    killed = loaded()
    killed.kill("bench", now_ns=T0)
    assert killed.check(o, now, T0, T0) == "killed"
    kill = per_call_us(lambda: killed.check(o, now, T0, T0), a.runs, a.calls)

    learner = RiskManager(RiskConfig())
    ids = iter(range(10**9))

    def learn() -> None:
        settle(learner, submit(learner, opp(next(ids)), now), now)

    learn_us = per_call_us(learn, a.runs, max(1, a.calls // 10))
    base = per_call_us(lambda: None, a.runs, a.calls)
    print(f"(timing loop + lambda call overhead, included below: {base:.3f} µs)")
    print(f"risk check, pass (all limits evaluated): {passing:.3f} µs")
    print(f"risk check, breaker open:                {open_:.3f} µs")
    print(f"risk check, killed:                      {kill:.3f} µs")
    print(f"learn one settled trade (incl. building it): {learn_us:.3f} µs")


if __name__ == "__main__":
    main()
