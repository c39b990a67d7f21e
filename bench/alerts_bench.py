"""Alert benchmark: what ``AlertSink.notify`` costs the engine's thread (µs per call).

    python bench/alerts_bench.py [--runs 7] [--calls 20000]

Median over ``--runs`` runs of the mean time per call of ``--calls`` calls, for:

- ``folded``: the same key again inside the de-dupe window (the common case in a storm: a dict
  lookup under a lock, nothing queued);
- ``queued``: a new key each call, no rate limit, handed to one channel's queue (the channel
  does not deliver here -- its worker is not started -- so the figure is the caller's side only;
  the queue is emptied between runs);
- ``rate-limited``: a new key each call with the bucket empty (dropped and counted);
- ``leg-failure listener``: ``trade_alert`` on a settled failed-leg trade (the text, the detail,
  then ``notify``; folded after the first), what the engine's ``on_trade`` listener pays;
- the loop's own cost (a no-op), included in each figure.
"""

from __future__ import annotations

import argparse
import itertools
import queue
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cryptoarb.alerts import AlertSink, trade_alert
from cryptoarb.core.orders import ArbStatus, ArbTrade, Order, OrderStatus


def per_call_us(fn: Callable[[], Any], runs: int, calls: int, reset: Callable[[], None] = lambda: None) -> float:
    rng = range(calls)
    out = []
    for _ in range(runs):
        reset()
        t0 = time.perf_counter_ns()
        for _ in rng:
            fn()
        out.append((time.perf_counter_ns() - t0) / calls / 1e3)
    return statistics.median(out)


def _sink(**kw: Any) -> AlertSink:
    # a channel whose worker never runs: notify's cost alone, nothing leaves the machine
    return AlertSink([("json://127.0.0.1:9/", lambda *_: True)], **kw)


def _trade() -> ArbTrade:
    def order(oid: str, side: str, status: OrderStatus, filled: str) -> Order:
        return Order(oid, "binance", "BTC/USDT", side, Decimal("0.5"), Decimal(100), Decimal(100), 1,
                     status=status, filled_qty=Decimal(filled), reason="rejected")

    return ArbTrade(1, 1, "BTC/USDT", order("r-1b", "buy", OrderStatus.FILLED, "0.5"),
                    order("r-1s", "sell", OrderStatus.REJECTED, "0"), Decimal(1), Decimal("0.5"), 1,
                    status=ArbStatus.FAILED_LEG, unhedged_qty_base=Decimal("0.5"), closed_ns=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--calls", type=int, default=20_000)
    a = ap.parse_args()
    runs, calls = a.runs, a.calls

    folded = _sink(dedupe_window_s=1e9)
    folded.notify("breaker", "k", "t", "b")
    fresh = _sink(dedupe_window_s=1e9, rate_per_min=0, queue_size=calls + 1)
    keys = itertools.count()
    limited = _sink(dedupe_window_s=1e9, rate_per_min=1, burst=1)
    limited.notify("breaker", "first", "t")
    legs = _sink(dedupe_window_s=1e9)
    trade = _trade()

    def drain() -> None:
        q = fresh.channels[0].queue
        while True:
            try:
                q.get_nowait()
            except queue.Empty:
                return

    rows = [
        ("loop alone", per_call_us(lambda: None, runs, calls)),
        ("folded (same key in the window)", per_call_us(lambda: folded.notify("breaker", "k", "t", "b"), runs, calls)),
        ("queued (new key, one channel)", per_call_us(
            lambda: fresh.notify("leg_failure", f"k{next(keys)}", "t", "b", {"x": 1}), runs, calls, drain)),
        ("rate-limited (bucket empty)", per_call_us(
            lambda: limited.notify("leg_failure", f"r{next(keys)}", "t"), runs, calls)),
        ("leg-failure listener (trade_alert)", per_call_us(lambda: trade_alert(legs, trade, "run"), runs, calls)),
    ]
    print(f"AlertSink.notify, median of {runs} runs x {calls:,} calls (µs per call, loop included)")
    for name, us in rows:
        print(f"  {name:<38} {us:8.2f}")


if __name__ == "__main__":
    main()
