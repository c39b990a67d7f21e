"""The risk manager: every limit and breaker at its exact threshold, half-open/reset, the kill
switch, audit rows through the real storage writer, and the engine refusing in a demo run.

Thresholds are trip points: just short of one passes, reaching it refuses (or trips) and the
very next intent is refused. All times are event time; no wall clock anywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import select

from cryptoarb.config import ConfigError, load_settings
from cryptoarb.core.opportunity import Opportunity, OrderIntent
from cryptoarb.core.orders import ArbStatus, ArbTrade, Order, OrderStatus
from cryptoarb.core.risk import AuditEvent, RiskConfig, RiskManager
from cryptoarb.core.risk.config import SECOND_NS
from cryptoarb.demo.run import build_demo, print_summary
from cryptoarb.engine import killswitch
from cryptoarb.storage import StorageWriter, connect
from cryptoarb.storage.models import Base

MS = 1_000_000
DAY = 86_400 * SECOND_NS
T0 = 19_000 * DAY + 12 * 3_600 * SECOND_NS  # noon UTC, event time
OFF = dict(  # every check off, so each test switches on only what it measures
    max_trade_notional=0.0, max_venue_notional=0.0, max_asset_notional=0.0, max_open_exposure=0.0,
    min_edge_bps=-1e9, max_book_age_ns=0, max_decision_latency_ns=0, max_open_orders=0, venue_error_limit=0,
    max_daily_loss=Decimal(0), max_drawdown=Decimal(0), max_loss_streak=0, win_rate_window=0, min_win_rate=0.0,
    error_window=0, max_error_rate=0.0, max_stale_feeds=0, max_one_legged=0.0, max_order_latency_ns=0,
    latency_breaches=0, cooldown_ns=10 * SECOND_NS,
)


def manager(**limits: Any) -> RiskManager:
    return RiskManager(RiskConfig(**{**OFF, **limits}))


_ids = iter(range(1, 1_000_000))


def opp(qty: float = 1.0, buy: float = 100.0, sell: float = 101.0, bv: str = "a", sv: str = "b",
        symbol: str = "BTC/USDT", profit: float | None = None, local_ns: int = T0) -> Opportunity:
    cost = qty * buy
    p = (sell - buy) * qty if profit is None else profit
    return Opportunity(next(_ids), "g", "l", OrderIntent(bv, symbol, "buy", qty, buy, buy),
                       OrderIntent(sv, symbol, "sell", qty, sell, sell), qty, buy, sell, cost, 0.0, p, 0, local_ns)


def check(rm: RiskManager, o: Opportunity, now: int = T0, book_ns: int | None = None) -> str | None:
    ns = now if book_ns is None else book_ns
    return rm.check(o, now, ns, ns)


def submit(rm: RiskManager, o: Opportunity, now: int = T0) -> ArbTrade:
    """What the executor reports for a trade it sends: two new orders, then the pending trade."""
    legs = [Order(f"o{o.id}{leg}", i.venue, i.symbol, i.side, Decimal(str(i.qty)), Decimal(str(i.limit_price)),
                  Decimal(str(i.expected_price)), now) for leg, i in (("b", o.buy), ("s", o.sell))]
    for order in legs:
        rm.on_order(order)
    t = ArbTrade(o.id, o.id, o.group, legs[0], legs[1], Decimal(str(o.profit_quote)), Decimal(str(o.qty_base)), now)
    rm.on_trade(t)
    return t


def settle(rm: RiskManager, t: ArbTrade, pnl: float | Decimal, now: int, status: ArbStatus = ArbStatus.COMPLETE,
           unhedged: Decimal = Decimal(0), sell_status: OrderStatus = OrderStatus.FILLED) -> None:
    for order, st in ((t.buy_order, OrderStatus.FILLED), (t.sell_order, sell_status)):
        order.status, order.updated_ns = st, now
        rm.on_order(order)
    t.status, t.realized_pnl, t.closed_ns, t.unhedged_qty_base = status, Decimal(str(pnl)), now, unhedged
    rm.on_trade(t)


def trade(rm: RiskManager, pnl: float | Decimal, now: int, **kw: Any) -> ArbTrade:
    t = submit(rm, opp(), now)
    settle(rm, t, pnl, now, **kw)
    return t


def actions(rm: RiskManager) -> list[tuple[str, str]]:
    return [(e.action, e.detail.get("breaker", "")) for e in rm.events]


# -- pre-trade limits ---------------------------------------------------------------------------

def test_trade_notional_refused_at_the_limit() -> None:
    rm = manager(max_trade_notional=1_000.0)
    assert check(rm, opp(qty=10, buy=99.0, sell=99.9)) is None  # 999 quote
    assert check(rm, opp(qty=10, buy=99.0, sell=100.0)) == "trade_notional"  # the worse price: 1000
    assert rm.refused == {"trade_notional": 1}


def test_venue_notional_counts_trades_in_flight() -> None:
    rm = manager(max_venue_notional=2_000.0)
    t = submit(rm, opp(qty=10, buy=99.0, sell=100.0))  # 1000 on a and b
    assert check(rm, opp(qty=10, buy=99.0, sell=99.9, bv="c", sv="b")) is None  # b: 1999
    assert check(rm, opp(qty=10, buy=99.0, sell=100.0, bv="c", sv="b")) == "venue_notional"  # b: 2000
    assert check(rm, opp(qty=10, buy=99.0, sell=100.0, bv="c", sv="d")) is None
    assert check(rm, opp(qty=9.99, buy=99.0, sell=100.0, bv="c", sv="c")) is None  # both legs on c: 1998
    assert check(rm, opp(qty=10, buy=99.0, sell=100.0, bv="c", sv="c")) == "venue_notional"  # 2000
    settle(rm, t, 1, T0 + MS)
    assert check(rm, opp(qty=10, buy=99.0, sell=100.0, bv="c", sv="b")) is None  # released


def test_asset_notional_and_open_exposure() -> None:
    rm = manager(max_asset_notional=2_000.0)
    submit(rm, opp(qty=10, buy=99.0, sell=100.0))
    assert check(rm, opp(qty=10, buy=99.0, sell=99.9, bv="c", sv="d")) is None
    assert check(rm, opp(qty=10, buy=99.0, sell=100.0, bv="c", sv="d")) == "asset_notional"
    assert check(rm, opp(qty=10, buy=99.0, sell=100.0, bv="c", sv="d", symbol="ETH/USDT")) is None

    rm = manager(max_open_exposure=2_000.0)
    submit(rm, opp(qty=10, buy=99.0, sell=100.0))
    assert check(rm, opp(qty=10, buy=99.0, sell=99.9, symbol="ETH/USDT")) is None
    assert check(rm, opp(qty=10, buy=99.0, sell=100.0, symbol="ETH/USDT")) == "open_exposure"


def test_open_exposure_includes_one_legged_positions() -> None:
    rm = manager(max_open_exposure=2_000.0)
    rm.set_unhedged("ETH", Decimal("-0.5"), Decimal(2_000), T0)  # 1000 quote short
    assert check(rm, opp(qty=10, buy=99.0, sell=99.9)) is None
    assert check(rm, opp(qty=10, buy=99.0, sell=100.0)) == "open_exposure"


def test_min_edge_after_extra_costs() -> None:
    o = opp(qty=1, buy=10_000.0, sell=10_010.0, profit=6.0)  # ~6 bps
    rm = manager(min_edge_bps=o.profit_bps - 1.0, extra_cost_bps=1.0)
    assert check(rm, o) == "min_edge"  # 6 - 1 = 5: at the floor
    assert check(rm, opp(qty=1, buy=10_000.0, sell=10_010.0, profit=6.001)) is None


def test_book_age_and_decision_latency() -> None:
    rm = manager(max_book_age_ns=100 * MS)
    assert check(rm, opp(), T0, book_ns=T0 - 100 * MS + 1) is None
    assert check(rm, opp(), T0, book_ns=T0 - 100 * MS) == "book_age"
    assert rm.check(opp(), T0, T0, T0 - 100 * MS) == "book_age"  # either book

    rm = manager(max_decision_latency_ns=10 * MS)
    assert check(rm, opp(local_ns=T0 - 10 * MS + 1)) is None
    assert check(rm, opp(local_ns=T0 - 10 * MS)) == "decision_latency"


def test_max_open_orders() -> None:
    rm = manager(max_open_orders=4)  # the most orders allowed open at once
    t = submit(rm, opp())
    assert check(rm, opp()) is None  # 2 + 2 = 4
    submit(rm, opp())
    assert check(rm, opp()) == "open_orders"
    assert len(rm.open_orders) == 4
    settle(rm, t, 1, T0 + MS)
    assert check(rm, opp()) is None


def test_venue_health_after_consecutive_errors_until_cooldown() -> None:
    rm = manager(venue_error_limit=2, venue_cooldown_ns=5 * SECOND_NS)
    settle(rm, submit(rm, opp()), 0, T0, status=ArbStatus.FAILED_LEG, sell_status=OrderStatus.REJECTED)
    assert check(rm, opp()) is None  # one error on b
    settle(rm, submit(rm, opp()), 0, T0 + MS, status=ArbStatus.FAILED_LEG, sell_status=OrderStatus.REJECTED)
    assert check(rm, opp(), T0 + MS) == "venue_health"  # the next intent on b
    assert check(rm, opp(sv="c"), T0 + MS) is None  # other venues trade on
    assert check(rm, opp(), T0 + MS + 5 * SECOND_NS - 1) == "venue_health"
    assert check(rm, opp(), T0 + MS + 5 * SECOND_NS) is None
    down = [e for e in rm.events if e.action == "venue_down"]
    assert len(down) == 1 and down[0].detail["venue"] == "b" and down[0].detail["errors"] == 2


# -- circuit breakers ---------------------------------------------------------------------------

def test_daily_loss_trips_at_the_limit_and_waits_for_the_next_day() -> None:
    rm = manager(max_daily_loss=Decimal(100))
    trade(rm, "50", T0)
    trade(rm, "-149.99", T0 + 1)  # -99.99 today
    assert rm.breakers["daily_loss"].state == "closed" and check(rm, opp(), T0 + 1) is None
    trade(rm, "-0.01", T0 + 2)  # -100.00
    assert rm.breakers["daily_loss"].state == "open"
    assert check(rm, opp(), T0 + 2) == "breaker:daily_loss"
    ev = rm.events[-1]
    assert ev.action == "trip" and ev.detail["daily_loss"] == Decimal(100) and ev.detail["limit"] == Decimal(100)
    # cool-down over, still the same day: the level is still breached, it re-trips, no probe
    assert check(rm, opp(), T0 + 2 + 10 * SECOND_NS) == "breaker:daily_loss"
    assert actions(rm)[-1] == ("trip", "daily_loss") and rm.breakers["daily_loss"].trips == 2
    # the next day has a fresh budget: half-open, one probe; its success closes the breaker
    nxt = T0 + DAY
    assert check(rm, opp(), nxt) is None and rm.breakers["daily_loss"].state == "half_open"
    probe = submit(rm, opp(), nxt)
    assert check(rm, opp(), nxt) == "probe_in_flight"
    settle(rm, probe, "1", nxt + MS)
    assert rm.breakers["daily_loss"].state == "closed" and check(rm, opp(), nxt + MS) is None
    assert actions(rm)[-2:] == [("half_open", "daily_loss"), ("reset", "daily_loss")]


def test_drawdown_from_peak() -> None:
    rm = manager(max_drawdown=Decimal(100))
    trade(rm, "300", T0)
    trade(rm, "-99.99", T0 + 1)
    assert check(rm, opp(), T0 + 1) is None
    trade(rm, "-0.01", T0 + 2)
    assert check(rm, opp(), T0 + 2) == "breaker:drawdown"
    assert rm.events[-1].detail["peak"] == Decimal(300) and rm.events[-1].detail["drawdown"] == Decimal(100)


def test_equity_hook_drives_drawdown_and_daily_loss() -> None:
    rm = manager(max_drawdown=Decimal(100), max_daily_loss=Decimal(1_000))
    rm.on_equity(Decimal(500), T0)
    rm.on_equity(Decimal("400.01"), T0 + 1)
    assert check(rm, opp(), T0 + 1) is None
    trade(rm, "-1000", T0 + 2)  # ignored for equity once the accounting feeds it
    assert rm.equity == Decimal("400.01") and check(rm, opp(), T0 + 2) is None
    rm.on_equity(Decimal(400), T0 + 3)
    assert check(rm, opp(), T0 + 3) == "breaker:drawdown"


def test_loss_streak_half_open_probe_failure_retrips_then_success_resets() -> None:
    rm = manager(max_loss_streak=3)
    trade(rm, "-1", T0)
    trade(rm, "-1", T0 + 1)
    assert check(rm, opp(), T0 + 1) is None
    trade(rm, "-1", T0 + 2)
    assert check(rm, opp(), T0 + 2) == "breaker:loss_streak"
    assert rm.events[-1].detail["streak"] == 3 and rm.events[-1].detail["limit"] == 3
    assert check(rm, opp(), T0 + 2 + 10 * SECOND_NS - 1) == "breaker:loss_streak"
    t1 = T0 + 2 + 10 * SECOND_NS
    assert check(rm, opp(), t1) is None  # half-open: the probe
    probe = submit(rm, opp(), t1)
    assert check(rm, opp(), t1) == "probe_in_flight"
    settle(rm, probe, "-0.5", t1 + MS)  # the probe lost: open again, a fresh cool-down
    assert rm.breakers["loss_streak"].state == "open"
    assert check(rm, opp(), t1 + MS) == "breaker:loss_streak"
    t2 = t1 + MS + 10 * SECOND_NS
    assert check(rm, opp(), t2) is None
    probe = submit(rm, opp(), t2)
    assert rm.breakers["loss_streak"].state == "half_open"
    settle(rm, probe, "0.5", t2 + MS)
    assert rm.breakers["loss_streak"].state == "closed" and check(rm, opp(), t2 + MS) is None
    assert actions(rm) == [("trip", "loss_streak"), ("half_open", "loss_streak"), ("trip", "loss_streak"),
                           ("half_open", "loss_streak"), ("reset", "loss_streak")]


def test_win_rate_over_a_full_window() -> None:
    rm = manager(win_rate_window=4, min_win_rate=0.25)
    for pnl in ("1", "-1", "-1"):
        trade(rm, pnl, T0)
    assert check(rm, opp()) is None  # window not full yet
    trade(rm, "1", T0)  # 2/4
    trade(rm, "-1", T0)  # window -1 -1 1 -1: 1/4 = 0.25
    assert check(rm, opp()) == "breaker:win_rate"
    assert rm.events[-1].detail["wins"] == 1 and rm.events[-1].detail["window"] == 4


def test_error_rate_over_a_window_of_orders() -> None:
    rm = manager(error_window=4, max_error_rate=0.5)
    settle(rm, submit(rm, opp()), 0, T0, status=ArbStatus.FAILED_LEG, sell_status=OrderStatus.FAILED)
    settle(rm, submit(rm, opp()), 0, T0, sell_status=OrderStatus.CANCELED)  # IOC with no liquidity: no error
    assert check(rm, opp()) is None  # 1/4
    t = submit(rm, opp())
    t.buy_order.status, t.buy_order.updated_ns = OrderStatus.REJECTED, T0
    rm.on_order(t.buy_order)  # 2/4: trips on the order, before the trade settles
    assert check(rm, opp()) == "breaker:error_rate"
    assert rm.events[-1].detail["errors"] == 2 and rm.events[-1].detail["rate"] == 0.5


def test_latency_breaker_on_consecutive_slow_orders() -> None:
    rm = manager(max_order_latency_ns=100 * MS, latency_breaches=3)
    t = submit(rm, opp(), T0)
    settle(rm, t, 1, T0 + 100 * MS)  # two slow orders
    t = submit(rm, opp(), T0)
    settle(rm, t, 1, T0 + 100 * MS - 1)  # fast ones end the run
    t = submit(rm, opp(), T0)
    settle(rm, t, 1, T0 + 100 * MS)
    assert check(rm, opp(), T0 + 100 * MS) is None
    t = submit(rm, opp(), T0)
    settle(rm, t, 1, T0 + 100 * MS)  # the third slow order in a row
    assert rm.breakers["latency"].state == "open"
    assert rm.events[-1].detail["consecutive"] == 3


def test_stale_feeds_level_and_recovery() -> None:
    rm = manager(stale_feed_ns=60 * SECOND_NS, max_stale_feeds=1)
    rm.on_feeds(T0, {"a": T0 - 60 * SECOND_NS + 1, "b": T0})
    assert check(rm, opp()) is None
    rm.on_feeds(T0, {"a": T0 - 60 * SECOND_NS, "b": T0})
    assert check(rm, opp()) == "breaker:stale_feeds" and rm.events[-1].detail["stale"] == ["a"]
    t1 = T0 + 10 * SECOND_NS
    rm.on_feeds(t1, {"a": T0 - 60 * SECOND_NS, "b": t1})  # still stale when the cool-down ends
    assert rm.breakers["stale_feeds"].state == "open" and rm.breakers["stale_feeds"].trips == 2
    t2 = t1 + 10 * SECOND_NS
    rm.on_feeds(t2, {"a": t2, "b": t2})
    assert rm.breakers["stale_feeds"].state == "half_open" and check(rm, opp(), t2) is None


def test_one_legged_exposure_from_failed_legs() -> None:
    rm = manager(max_one_legged=1_000.0)
    t = submit(rm, opp())
    t.buy_order.notional, t.buy_order.filled_qty = Decimal("999"), Decimal("9.99")  # avg price 100
    settle(rm, t, -1, T0 + 1, status=ArbStatus.FAILED_LEG, unhedged=Decimal("9.99"), sell_status=OrderStatus.FAILED)
    assert rm.exposure.one_legged_quote == 999.0 and check(rm, opp(), T0 + 1) is None
    rm.set_unhedged("BTC", Decimal(10), Decimal(100), T0 + 2)  # the leg-risk hook
    assert check(rm, opp(), T0 + 2) == "breaker:one_legged"
    assert rm.events[-1].detail["one_legged_quote"] == 1_000.0


def test_disabled_breaker_never_trips() -> None:
    rm = RiskManager(RiskConfig(**{**OFF, "max_loss_streak": 1, "disabled": frozenset({"loss_streak"})}))
    trade(rm, "-1", T0)
    assert check(rm, opp()) is None and not rm.events
    rm = manager(win_rate_window=2, min_win_rate=0.0)  # a zero limit switches the check off
    trade(rm, "-1", T0)
    trade(rm, "-1", T0)
    assert check(rm, opp()) is None and not rm.events


def test_manual_reset() -> None:
    rm = manager(max_loss_streak=1)
    trade(rm, "-1", T0)
    assert rm.reset(actor="alice", now_ns=T0 + 1) == ["loss_streak"]
    assert check(rm, opp(), T0 + 1) is None
    assert rm.events[-1] == AuditEvent("alice", "reset", "reset by command", T0 + 1, {"breaker": "loss_streak"})


# -- kill switch --------------------------------------------------------------------------------

def test_kill_blocks_everything_and_lists_open_orders_resume_lifts_it() -> None:
    rm = manager()
    t = submit(rm, opp())
    assert rm.kill("operator panic", "bob", T0 + 1) == [t.buy_order.id, t.sell_order.id]
    assert check(rm, opp(), T0 + 1) == "killed"
    assert rm.kill("again", "bob", T0 + 2) == [t.buy_order.id, t.sell_order.id]  # still listed, no new event
    settle(rm, t, 1, T0 + 3)
    assert rm.kill("again", "bob", T0 + 3) == []
    assert check(rm, opp(), T0 + 10 * DAY) == "killed"  # nothing resumes by itself
    assert rm.resume("carol", now_ns=T0 + 10 * DAY) is True
    assert check(rm, opp(), T0 + 10 * DAY) is None
    assert rm.resume("carol") is False
    kill, resume = rm.events
    assert (kill.actor, kill.action, kill.reason) == ("bob", "kill", "operator panic")
    assert kill.detail["cancel_orders"] == [t.buy_order.id, t.sell_order.id]
    assert (resume.actor, resume.action, resume.detail["killed_for"]) == ("carol", "resume", "operator panic")
    assert rm.summary()["refused"] == {"killed": 2}


# -- audit rows through the real writer (SQLite) ------------------------------------------------

def _audit_rows(url: str) -> list[dict[str, Any]]:
    eng = connect(url)
    t = Base.metadata.tables["audit_log"]
    with eng.connect() as conn:
        out = [dict(r) for r in conn.execute(select(t).order_by(t.c.id)).mappings()]
    eng.dispose()
    return out


def test_audit_events_become_audit_log_rows(tmp_path: Path) -> None:
    url = str(tmp_path / "audit.db")
    eng = connect(url)
    rm = manager(max_loss_streak=2)
    with StorageWriter(eng, "run-a", flush_interval=0.01) as w:
        rm.on_audit.append(lambda ev: w.audit(ev.actor, "risk." + ev.action, ev.as_detail()))
        trade(rm, "-1.5", T0)
        trade(rm, "-2.25", T0 + 1)
        rm.kill("test kill", "tester", T0 + 2)
        rm.resume("tester", now_ns=T0 + 3)
    eng.dispose()
    rows = _audit_rows(url)
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("risk", "risk.trip"), ("tester", "risk.kill"), ("tester", "risk.resume")]
    trip = rows[0]["detail"]
    assert trip["breaker"] == "loss_streak" and trip["streak"] == 2 and trip["limit"] == 2
    assert trip["last_pnl"] == "-2.25" and trip["reason"] == "2 losing trades in a row" and trip["ts_ns"] == T0 + 1
    assert rows[1]["detail"]["reason"] == "test kill"


# -- settings -----------------------------------------------------------------------------------

def test_risk_settings_build_and_reject_unknown_keys() -> None:
    cfg = load_settings(risk={"max_book_age_ms": 250, "cooldown_s": 2, "disabled": ["latency"]}).risk.build()
    assert cfg.max_book_age_ns == 250 * MS and cfg.cooldown_ns == 2 * SECOND_NS
    assert cfg.disabled == frozenset({"latency"})
    with pytest.raises(ConfigError, match=r"risk\.max_loss"):
        load_settings(risk={"max_loss": 5})
    with pytest.raises(ConfigError, match="unknown breaker 'nope'"):
        load_settings(risk={"disabled": ["nope"]})
    assert dataclasses.asdict(load_settings().risk.build()) == dataclasses.asdict(RiskConfig())


# -- the engine: paper mode consults the risk manager -------------------------------------------

DEMO_START = 0


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, StorageWriter]]:
    url = str(tmp_path / "demo.db")
    eng = connect(url)
    w = StorageWriter(eng, "demo-risk", flush_interval=0.01)
    yield url, w
    w.close()
    eng.dispose()


def test_demo_loss_streak_trips_and_stops_trading(db: tuple[str, StorageWriter]) -> None:
    url, w = db
    free = build_demo(load_settings(storage={"enabled": False}), seed=7).run(30, live=False, speed=0, start_ns=0)
    settings = load_settings(storage={"enabled": False}, risk={"max_loss_streak": 1, "cooldown_s": 3600})
    w.start_run("demo", {})
    demo = build_demo(settings, sink=w, seed=7)
    demo.engine.run_id = w.run_id
    summary = demo.run(30, live=False, speed=0, start_ns=0)
    risk = summary["risk"]
    assert risk["breakers"]["loss_streak"] == "open" and risk["killed"] is False
    refused = risk["refused"]["breaker:loss_streak"]
    trip = next(e for e in demo.engine.risk.events if e.action == "trip")
    ex = demo.engine.executor
    # nothing was sent after the trip; every later opportunity was refused
    assert all(t.created_ns <= trip.ts_ns for t in ex.trades)
    assert refused > 0 and summary["trades"] < free["trades"]
    w.flush()
    rows = [r for r in _audit_rows(url) if r["action"] == "risk.trip"]
    assert len(rows) == 1 and rows[0]["detail"]["breaker"] == "loss_streak"
    assert rows[0]["detail"]["run_id"] == w.run_id and Decimal(rows[0]["detail"]["last_pnl"]) < 0
    con = Console(width=120, record=True, force_terminal=False)
    print_summary(summary, con)
    text = con.export_text()
    assert f"breaker:loss_streak {refused}" in text and "loss_streak open" in text


def test_demo_defaults_do_not_refuse() -> None:
    summary = build_demo(load_settings(storage={"enabled": False}), seed=7).run(30, live=False, speed=0, start_ns=0)
    assert summary["trades"] > 0
    assert summary["risk"]["refused"] == {} and not summary["risk"]["killed"]
    assert set(summary["risk"]["breakers"].values()) == {"closed"}


def test_kill_file_stops_the_demo_and_resume_file_lifts_it(tmp_path: Path) -> None:
    path = tmp_path / "KILL"
    settings = load_settings(storage={"enabled": False}, risk={"kill_file": str(path)})
    demo = build_demo(settings, seed=7)
    eng = demo.engine
    eng.tick(1)
    assert not eng.risk.killed
    killswitch.request_kill(path, "maintenance", "ops")
    eng.tick(1 + SECOND_NS - 1)
    assert not eng.risk.killed  # polled at most once per second of event time
    eng.tick(1 + SECOND_NS)
    assert eng.risk.killed and eng.risk.kill_reason == "maintenance"
    path.unlink()
    eng.tick(1 + 5 * SECOND_NS)
    assert eng.risk.killed  # the file going away is not a resume
    killswitch.request_resume(path, "ops")
    eng.tick(1 + 6 * SECOND_NS)
    assert not eng.risk.killed and not killswitch.resume_path(path).exists()
    assert [(e.actor, e.action) for e in eng.risk.events] == [("ops", "kill"), ("ops", "resume")]

    killswitch.request_kill(path, "stop")
    summary = build_demo(settings, seed=7).run(20, live=False, speed=0, start_ns=0)
    assert summary["trades"] == 0 and summary["risk"]["killed"] is True
    assert summary["risk"]["refused"] == {"killed": summary["opportunities"]} and summary["opportunities"] > 0


def test_demo_pre_trade_limit_refuses_every_intent_and_counts_it() -> None:
    settings = load_settings(storage={"enabled": False}, risk={"max_trade_notional": 1.0})
    demo = build_demo(settings, seed=7)
    summary = demo.run(20, live=False, speed=0, start_ns=0)
    assert summary["opportunities"] > 0 and summary["trades"] == 0 and not demo.engine.executor.trades
    cycles = demo.engine.cycles.found if demo.engine.cycles is not None else 0  # cycles pass the same check
    assert summary["risk"]["refused"] == {"trade_notional": summary["opportunities"] + cycles}


# -- every breaker: open until the cool-down, then half-open with one probe, then closed ---------

def _trip_error_rate(rm: RiskManager) -> None:
    t = submit(rm, opp())
    settle(rm, t, 0, T0, status=ArbStatus.FAILED_LEG, sell_status=OrderStatus.REJECTED)  # 1 error of 2


def _trip_latency(rm: RiskManager) -> None:
    settle(rm, submit(rm, opp(), T0 - 100 * MS), 1, T0)  # both legs at the limit: 2 in a row


@pytest.mark.parametrize(("name", "limits", "trip"), [
    ("error_rate", {"error_window": 2, "max_error_rate": 0.5}, _trip_error_rate),
    ("latency", {"max_order_latency_ns": 100 * MS, "latency_breaches": 2}, _trip_latency),
    ("win_rate", {"win_rate_window": 1, "min_win_rate": 0.5}, lambda rm: trade(rm, "-1", T0)),
    ("one_legged", {"max_one_legged": 500.0}, lambda rm: rm.set_unhedged("BTC", Decimal(5), Decimal(100), T0)),
])
def test_each_breaker_half_opens_after_its_cooldown_and_a_good_probe_closes_it(name: str, limits: dict[str, Any],
                                                                                trip: Any) -> None:
    rm = manager(**limits)
    trip(rm)
    assert rm.breakers[name].state == "open" and check(rm, opp(), T0) == f"breaker:{name}"
    assert check(rm, opp(), T0 + 10 * SECOND_NS - 1) == f"breaker:{name}"
    if name == "one_legged":  # a level: still breached at the end of the cool-down, it re-trips
        assert check(rm, opp(), T0 + 10 * SECOND_NS) == "breaker:one_legged"
        rm.set_unhedged("BTC", Decimal(0), Decimal(100), T0 + 10 * SECOND_NS)  # leg risk closed it
        t1 = T0 + 20 * SECOND_NS
    else:
        t1 = T0 + 10 * SECOND_NS
    assert check(rm, opp(), t1) is None and rm.breakers[name].state == "half_open"
    probe = submit(rm, opp(), t1)
    assert check(rm, opp(), t1) == "probe_in_flight"
    settle(rm, probe, "1", t1 + MS)
    assert rm.breakers[name].state == "closed" and check(rm, opp(), t1 + MS) is None
    assert [a for a, b in actions(rm) if b == name][-2:] == ["half_open", "reset"]
