"""The risk manager's per-intent limits for a cycle (core/risk/cycles.py): the two-legged rule
adapted to N legs, with known answers at each trip point."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from cryptoarb.core.risk import CycleIntent, RiskConfig, RiskManager

S = 1_000_000_000
OFF = {"max_trade_notional": 0.0, "max_venue_notional": 0.0, "max_asset_notional": 0.0, "max_open_exposure": 0.0,
       "max_book_age_ns": 0, "max_decision_latency_ns": 0, "max_open_orders": 0}


def cyc(id: int = 1, notional: float = 1000.0, at_once: int = 1, bps: float = 30.0) -> CycleIntent:
    return CycleIntent(id, "binance", ("BTC", "ETH", "ETH"), notional, bps, 10 * S, at_once)


def rm(**kw: object) -> RiskManager:
    return RiskManager(RiskConfig(**{**OFF, **kw}))  # type: ignore[arg-type]


def test_a_cycle_within_every_limit_passes_and_is_counted_in_flight_until_it_settles() -> None:
    r = rm()
    c = cyc(at_once=3)
    assert r.check_cycle(c, 10 * S, 10 * S) is None
    r.cycle_opened(c)
    ex = r.exposure
    assert ex.venue_open["binance"] == 3000.0 and ex.open_notional == 3000.0  # three legs at once
    assert ex.asset_open == {"BTC": 1000.0, "ETH": 1000.0}  # ETH counted once, not per leg
    r.cycle_closed(1, D("-2"), 11 * S)
    assert ex.venue_open["binance"] == 0.0 and ex.open_notional == 0.0 and ex.asset_open == {"BTC": 0.0, "ETH": 0.0}
    assert r.loss_streak == 1
    r.cycle_closed(1, D("5"), 12 * S)  # already released: learnt once
    assert r.loss_streak == 1


@pytest.mark.parametrize(("limit", "value", "reason"), [
    ({"max_trade_notional": 1000.0}, 999.99, "trade_notional"),
    ({"max_venue_notional": 2500.0}, 833.33, "venue_notional"),  # 500 in flight + 2 legs x n
    ({"max_asset_notional": 1500.0}, 999.99, "asset_notional"),  # ETH: 500 in flight + n
    ({"max_open_exposure": 2500.0}, 833.33, "open_exposure"),
])
def test_each_notional_limit_trips_exactly_at_its_value(limit: dict[str, float], value: float, reason: str) -> None:
    r = rm(**limit)
    r.cycle_opened(CycleIntent(9, "binance", ("ETH",), 500.0, 30.0, 0, 1))  # 500 in flight on binance, ETH
    assert r.check_cycle(cyc(notional=value, at_once=2), 10 * S, 10 * S) is None
    assert r.check_cycle(cyc(notional=1000.0, at_once=2), 10 * S, 10 * S) == reason
    assert r.refused == {reason: 1}


def test_legs_at_once_decide_the_venue_notional_a_sequential_cycle_sends_one_leg_at_a_time() -> None:
    r = rm(max_venue_notional=2500.0)
    assert r.check_cycle(cyc(notional=1000.0, at_once=1), 10 * S, 10 * S) is None
    assert r.check_cycle(cyc(notional=1000.0, at_once=3), 10 * S, 10 * S) == "venue_notional"


def test_edge_book_age_latency_open_orders_and_venue_health() -> None:
    r = rm(min_edge_bps=5.0, extra_cost_bps=25.0)
    assert r.check_cycle(cyc(bps=30.0), 10 * S, 10 * S) == "min_edge"  # 30 - 25 <= 5
    assert r.check_cycle(cyc(bps=30.01), 10 * S, 10 * S) is None
    r = rm(max_book_age_ns=2 * S)
    assert r.check_cycle(cyc(), 10 * S, 8 * S) == "book_age"  # the oldest leg's book
    assert r.check_cycle(cyc(), 10 * S, 8 * S + 1) is None
    r = rm(max_decision_latency_ns=S)
    assert r.check_cycle(cyc(), 11 * S, 11 * S) == "decision_latency"
    r = rm(max_open_orders=3)
    r.exposure.open_orders["x"] = "binance"
    assert r.check_cycle(cyc(at_once=2), 10 * S, 10 * S) is None  # 1 + 2 <= 3
    assert r.check_cycle(cyc(at_once=3), 10 * S, 10 * S) == "open_orders"
    r = rm()
    r._venue_down["binance"] = 20 * S
    assert r.check_cycle(cyc(), 10 * S, 10 * S) == "venue_health"


def test_kill_switch_and_breakers_refuse_cycles_and_half_open_waits_for_an_arbitrage_probe() -> None:
    r = rm(max_loss_streak=2, cooldown_ns=60 * S)
    r.kill("test", now_ns=10 * S)
    assert r.check_cycle(cyc(), 10 * S, 10 * S) == "killed"
    r.resume(now_ns=10 * S)
    for i in (1, 2):  # two losing cycles in a row trip the loss-streak breaker
        r.cycle_opened(replace(cyc(), id=i))
        r.cycle_closed(i, D(-1), 11 * S)
    assert r.check_cycle(cyc(id=3), 12 * S, 12 * S) == "breaker:loss_streak"
    assert r.check_cycle(cyc(id=3), 72 * S, 72 * S) == "half_open"  # cooled down: half-open


def test_an_engine_run_sends_no_cycle_the_risk_manager_refuses() -> None:
    from cryptoarb.config import load_settings
    from cryptoarb.demo.run import build_demo

    def run(**risk: object) -> tuple[int, int, dict[str, int]]:
        demo = build_demo(load_settings(storage={"enabled": False}, risk=risk), seed=8)
        demo.run(60, live=False, speed=0, start_ns=0)
        c = demo.engine.cycles
        assert c is not None
        return c.found, len(c.executor.trades), dict(demo.engine.risk.refused)

    found, sent, _ = run()
    assert found >= 1 and sent >= 1
    found, sent, refused = run(max_trade_notional=1.0)  # every cycle spends more than 1 USDT
    assert found >= 1 and sent == 0 and refused["trade_notional"] >= found
