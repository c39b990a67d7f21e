"""Leg risk on scripted failures, through the whole engine (simulated venues, paper execution):
one leg rejected or gone, a partial fill, a venue down after the first leg. Each ends with the
one-legged exposure at zero (or at the configured residual), the costs booked in the incident,
and the PnL invariant holding (tests/accounting.py: equity change == realised + unrealised,
trades + incidents == realised)."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from cryptoarb.config import ConfigError, load_settings
from cryptoarb.core.book import INVALID, OrderBook
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.core.legrisk import Incident, IncidentStatus, LegRiskConfig, order_qty, plan
from cryptoarb.core.orders import ArbStatus, ArbTrade, OrderStatus
from cryptoarb.engine import Engine
from cryptoarb.storage import StorageWriter, connect
from cryptoarb.storage.models import Base
from cryptoarb.venues.catalog import Catalog
from cryptoarb.venues.simulated import simulated_handler_factory
from tests.accounting import assert_pnl_invariant
from tests.helpers import book

MS = 1_000_000
S = 1_000 * MS


def xq(venue: str, fee: float = 0.0, fee_side: str = "quote") -> Instrument:
    return Instrument(venue, "X/Q", "X", "Q", Kind.SPOT, 0.1, 0.001, 0.0, 1.0, Fees(fee, fee), "XQ", fee_side)


def engine(venues: list[str], balances: dict[str, dict[str, str]], legrisk: dict[str, Any] | None = None,
           fee: float = 0.0, fee_side: str = "quote", sink: Any = None, **settings: Any) -> Engine:
    """1 ms latency to every venue; only the pre-trade limits that matter here are on."""
    insts = [xq(v, fee, fee_side) for v in venues]
    s = load_settings(storage={"enabled": False}, paper={"default_latency_ms": 1.0, "balances": balances},
                      detector={"min_profit_bps": 1.0, "max_notional_quote": 100_000},
                      legrisk=legrisk or {}, **settings)
    return Engine(s, venues, catalog=Catalog(insts), handler_factory=simulated_handler_factory, instruments=insts,
                  sink=sink, run_id="lr" if sink is not None else None)


def send(e: Engine, venue: str, seq: int, t_ns: int, bids: list[list[float]], asks: list[list[float]],
         kind: str = "snapshot") -> None:
    raw = msgspec.json.encode({"type": kind, "symbol": "X/Q", "seq": seq, "ts": t_ns, "bids": bids, "asks": asks})
    e.on_message(e.handler(venue), raw, t_ns)


def only_incident(e: Engine) -> Incident:
    assert len(e.legrisk.incidents) == 1, e.legrisk.incidents
    return next(iter(e.legrisk.incidents.values()))


def done(e: Engine, t_ns: int) -> None:
    e.tick(t_ns)
    e.finish()
    assert all(t.status is not ArbStatus.PENDING for t in e.executor.trades)
    assert_pnl_invariant(e)


def start(e: Engine, b_bid: float = 101.0, b_qty: float = 10, a_qty: float = 10) -> None:
    """a asks 100 x 10, b bids 101: the detector buys 10 on a and sells on b (orders arrive
    1 ms later); c (when there) quotes too far to trade."""
    if "c" in e.venues:
        send(e, "c", 1, 1 * MS, [[99.0, 20]], [[103.0, 20]])
    send(e, "b", 1, 1 * MS, [[b_bid, b_qty]], [[102.0, 10]])
    send(e, "a", 1, 2 * MS, [[99.5, 20]], [[100.0, a_qty]])
    assert len(e.executor.trades) == 1


def test_missing_leg_retried_within_its_price_limit_once_the_book_comes_back() -> None:
    e = engine(["a", "b"], {"a": {"Q": "5000"}, "b": {"X": "20"}}, {"steps": ["retry"], "retry_bps": 20})
    start(e)
    send(e, "b", 2, 2 * MS + 500_000, [[100.6, 10]], [[102.0, 10]])  # b's bid moves before our sell arrives
    e.tick(4 * MS)
    t = e.executor.trades[0]
    assert t.status is ArbStatus.FAILED_LEG and t.unhedged_qty_base == 10
    inc = only_incident(e)
    assert inc.status is IncidentStatus.OPEN and not inc.orders  # 100.6 < 101 - 20 bps (100.798): wait
    assert e.legrisk.exposure.qty["X"] == 10 and e.risk.exposure.unhedged["X"][0] == 10
    send(e, "b", 3, 500 * MS, [[100.9, 10]], [[102.0, 10]])
    send(e, "a", 2, 1_100 * MS, [[99.5, 20]], [[101.5, 10]])  # the once-a-second poll: retry now
    e.tick(1_200 * MS)
    assert [(o.id, o.venue, o.side, o.qty, o.limit_price, o.status) for o in inc.orders] == [
        (f"{e.run_id}-{t.id}r1", "b", "sell", D("10.000"), D("100.8"), OrderStatus.FILLED)]
    assert inc.status is IncidentStatus.CLOSED and inc.qty == 0 and inc.steps_taken == ["retry"]
    assert inc.slippage_quote == D("1.0")  # sold at 100.9 instead of 101
    assert e.legrisk.exposure.qty["X"] == 0 and e.risk.exposure.one_legged_quote == 0.0
    done(e, 2 * S)
    s = e.summary()["legrisk"]
    assert s["incidents"] == s["closed"] == 1 and s["exposure_quote"] == 0.0 and s["max_exposure_quote"] > 1_000


def test_rejected_leg_retried_once_its_venue_is_back() -> None:
    """b's book is resyncing when our sell arrives: the venue rejects it. The retry waits (a book
    that cannot be traded is passed over) until b is valid again, then sells at the expected price."""
    e = engine(["a", "b"], {"a": {"Q": "5000"}, "b": {"X": "20"}}, {"steps": ["retry"]})
    start(e)
    e.books["b X/Q"].set_state(INVALID)
    e.tick(4 * MS)
    t = e.executor.trades[0]
    assert t.sell_order.status is OrderStatus.REJECTED and t.status is ArbStatus.FAILED_LEG
    inc = only_incident(e)
    send(e, "a", 2, 1_100 * MS, [[99.5, 20]], [[101.5, 10]])  # a poll while b is still invalid: waits
    assert inc.status is IncidentStatus.OPEN and not inc.orders and e._risk_due_ns == 2_100 * MS
    send(e, "b", 2, 1_500 * MS, [[101.0, 10]], [[102.0, 10]])  # b resynced
    send(e, "a", 3, 2_200 * MS, [[99.5, 20]], [[101.5, 10]])  # the next poll retries
    e.tick(2_500 * MS)
    assert [(o.venue, o.status) for o in inc.orders] == [("b", OrderStatus.FILLED)]
    assert inc.status is IncidentStatus.CLOSED and inc.qty == 0 and inc.slippage_quote == 0
    done(e, 4 * S)


def test_partial_fill_hedged_on_the_best_other_venue() -> None:
    e = engine(["a", "b", "c"], {"a": {"Q": "5000"}, "b": {"X": "20"}, "c": {"X": "20"}},
               {"steps": ["hedge"], "hedge_bps": 50})
    start(e)
    send(e, "c", 2, 2 * MS + 200_000, [[100.7, 20]], [[103.0, 20]])  # c now bids within 50 bps of 101
    send(e, "b", 2, 2 * MS + 500_000, [[101.0, 4], [98.0, 10]], [[102.0, 10]])  # b keeps only 4 at 101
    e.tick(4 * MS)
    t = e.executor.trades[0]
    assert t.status is ArbStatus.PARTIAL and t.sell_order.filled_qty == 4 and t.unhedged_qty_base == 6
    inc = only_incident(e)
    assert [(o.venue, o.side, o.qty) for o in inc.orders] == [("c", "sell", D("6.000"))]  # not a (99.5), not b
    e.tick(6 * MS)
    assert inc.status is IncidentStatus.CLOSED and inc.qty == 0 and inc.steps_taken == ["hedge"]
    assert inc.slippage_quote == D("1.8")  # 6 x (101 - 100.7)
    assert e.legrisk.exposure.qty["X"] == 0
    done(e, 2 * S)


def test_venue_down_after_the_first_leg_retries_then_unwinds_with_costs_booked() -> None:
    e = engine(["a", "b"], {"a": {"Q": "5000"}, "b": {"X": "20"}},
               {"steps": ["retry", "unwind"], "step_attempts": 2, "unwind_bps": 100}, fee=0.001)
    start(e)
    e.executor.venues["b"].fail_rate = 1.0  # b goes down: every order errors from now on
    e.tick(4 * MS)
    inc = only_incident(e)
    e.tick(10 * MS)
    assert [(o.venue, o.side, o.status) for o in inc.orders] == [
        ("b", "sell", OrderStatus.FAILED), ("b", "sell", OrderStatus.FAILED), ("a", "sell", OrderStatus.FILLED)]
    assert [o.id[-2:] for o in inc.orders] == ["r1", "r2", "u3"]
    assert inc.status is IncidentStatus.CLOSED and inc.qty == 0 and inc.steps_taken == ["retry", "unwind"]
    # bought 10 at 100, sold back at 99.5, fees 0.1 % on both: the loss is realised and booked
    assert inc.fees_quote == D("0.995") and inc.realised == D("-5.995")
    t = e.executor.trades[0]
    assert t.realized_pnl + inc.realised == e.portfolio.ledger.realised
    assert e.legrisk.exposure.qty["X"] == 0
    done(e, 2 * S)


def test_short_leg_bought_back_with_the_fee_taken_from_what_it_receives() -> None:
    """Sell filled on b, buy on a failed; the venues take fees in the asset received (Binance):
    the retry buys 10 / (1 - 0.1 %) on the lot grid, so the exposure ends below one lot."""
    e = engine(["a", "b"], {"a": {"Q": "5000"}, "b": {"X": "20"}}, {"steps": ["retry"], "retry_bps": 100},
               fee=0.001, fee_side="get")
    start(e, a_qty=20)
    e.executor.venues["a"].fail_rate = 1.0
    e.tick(3 * MS)  # the buy fails; the retry is on its way to a
    e.executor.venues["a"].fail_rate = 0.0
    e.tick(5 * MS)
    inc = only_incident(e)
    assert inc.start_qty == -10 and [(o.side, o.qty, o.status) for o in inc.orders] == [
        ("buy", D("10.010"), OrderStatus.FILLED)]
    assert inc.status is IncidentStatus.CLOSED and abs(inc.qty) < D("0.001")
    assert inc.qty == D("10.010") * D("0.999") - 10  # the residual no lot can close, still tracked
    assert e.legrisk.exposure.qty["X"] == inc.qty
    done(e, 2 * S)


def test_every_step_exhausted_leaves_it_open_tracked_and_tripping_the_breaker() -> None:
    e = engine(["a", "b"], {"a": {"Q": "5000"}, "b": {"X": "20"}}, {"steps": ["retry"], "step_attempts": 2},
               risk={"max_one_legged": 900.0})
    start(e)
    e.executor.venues["b"].fail_rate = 1.0
    e.tick(10 * MS)
    inc = only_incident(e)
    assert inc.status is IncidentStatus.GAVE_UP and inc.qty == 10 and len(inc.orders) == 2
    assert "left open" in inc.reason
    assert e.risk.breakers["one_legged"].state == "open"  # 10 X at the mark (~100) >= 900
    send(e, "a", 2, 20 * MS, [[99.5, 20]], [[100.0, 10]])  # the next opportunity: refused by the breaker
    assert e.opportunities == 2 and e.risk.refused == {"breaker:one_legged": 1} and len(e.executor.trades) == 1
    s = e.summary()
    assert s["legrisk"]["gave_up"] == 1 and s["legrisk"]["by_asset"] == {"X": 10.0}
    assert s["legrisk"]["exposure_quote"] == pytest.approx(10 * (99.75 + 101.5) / 2)  # at the mids' mean
    done(e, 2 * S)


def test_configured_residual_is_left_without_an_order() -> None:
    e = engine(["a", "b"], {"a": {"Q": "5000"}, "b": {"X": "20"}}, {"residual_quote": 500})
    start(e)
    send(e, "b", 2, 2 * MS + 500_000, [[101.0, 6], [90.0, 10]], [[102.0, 10]])
    e.tick(4 * MS)
    inc = only_incident(e)
    assert inc.start_qty == 4 and inc.status is IncidentStatus.CLOSED and not inc.orders
    assert e.legrisk.exposure.qty["X"] == 4  # the configured residual: tracked, not closed
    done(e, 2 * S)


def test_kill_switch_holds_repairs() -> None:
    e = engine(["a", "b"], {"a": {"Q": "5000"}, "b": {"X": "20"}}, {"steps": ["unwind"]})
    start(e)
    e.kill("test")
    send(e, "b", 2, 2 * MS + 500_000, [[90.0, 10]], [[102.0, 10]])
    e.tick(10 * MS)
    inc = only_incident(e)
    assert inc.status is IncidentStatus.OPEN and not inc.orders
    e.resume()
    send(e, "a", 2, 1_100 * MS, [[99.5, 20]], [[101.5, 10]])  # the next poll plans it again
    e.tick(1_200 * MS)
    assert inc.status is IncidentStatus.CLOSED and [o.side for o in inc.orders] == ["sell"]
    done(e, 2 * S)


def test_incidents_and_exposure_are_stored(tmp_path: Path) -> None:
    url = str(tmp_path / "lr.db")
    db = connect(url)
    with StorageWriter(db, "lr", flush_interval=0.01) as w:
        e = engine(["a", "b"], {"a": {"Q": "5000"}, "b": {"X": "20"}}, {"steps": ["retry", "unwind"],
                   "step_attempts": 1}, sink=w)
        start(e)
        e.executor.venues["b"].fail_rate = 1.0
        done(e, 2 * S)
    with db.connect() as conn:
        inc = [dict(r) for r in conn.execute(select(Base.metadata.tables["leg_incidents"])).mappings()]
        exp = [dict(r) for r in conn.execute(select(Base.metadata.tables["leg_exposure"]).order_by("id")).mappings()]
        orders = [dict(r) for r in conn.execute(select(Base.metadata.tables["orders"])).mappings()]
    db.dispose()
    assert len(inc) == 1 and inc[0]["status"] == "closed" and inc[0]["steps"] == "retry,unwind"
    assert D(inc[0]["start_qty"]) == 10 and D(inc[0]["open_qty"]) == 0 and inc[0]["orders"] == 2
    assert [(r["asset"], D(r["qty"])) for r in exp] == [("X", D(10)), ("X", D(0))]
    assert sorted(o["id"][-2:] for o in orders) == ["1b", "1s", "r1", "u2"]
    assert all(o["arb_id"] == 1 for o in orders)


# -- the pure parts -------------------------------------------------------------------------------

def test_plan_picks_the_deepest_book_within_the_limit_and_waits_otherwise() -> None:
    cfg = LegRiskConfig(steps=("hedge",), hedge_bps=100)
    books: dict[str, OrderBook] = {
        "a X/Q": book(xq("a"), [(99.5, 100)], [(100.0, 10)]),
        "b X/Q": book(xq("b"), [(100.9, 2)], [(102.0, 10)]),  # the failed venue: never hedged on
        "c X/Q": book(xq("c"), [(100.5, 3), (99.0, 50)], [(103.0, 10)]),
        "d X/Q": book(xq("d"), [(100.2, 5)], [(103.0, 10)]),
    }
    inc = Incident(1, "g", "X", D(5), D(5), "a X/Q", "b X/Q", D(101), D(100), 0)
    act = plan(inc, cfg, books.get, list(books), 0)
    assert act is not None and (act.key, act.side, act.qty, act.limit) == ("d X/Q", "sell", D("5.000"), D("100.0"))
    books["d X/Q"].set_state("invalid")  # a book that cannot be traded is skipped
    act = plan(inc, cfg, books.get, list(books), 0)
    assert act is not None and act.key == "c X/Q"
    assert plan(inc, cfg, books.get, list(books), 0, afford=lambda *_: False) is None
    tight = LegRiskConfig(steps=("hedge",), hedge_bps=1)  # limit 100.9: only b reaches it
    assert plan(inc, tight, books.get, list(books), 0) is None


def test_order_qty_grosses_up_a_buy_whose_fee_comes_out_of_the_base() -> None:
    assert order_qty(xq("a", 0.001, "get"), "buy", D(-10)) == D("10.010")
    assert order_qty(xq("a", 0.001, "quote"), "buy", D(-10)) == D("10.000")
    assert order_qty(xq("a", 0.001, "get"), "sell", D("10.0009")) == D("10.000")


def test_settings_are_strict() -> None:
    cfg = load_settings(legrisk={"steps": ["hedge", "unwind"], "step_time_ms": 250}).legrisk.build()
    assert cfg.steps == ("hedge", "unwind") and cfg.step_time_ns == 250 * MS
    with pytest.raises(ConfigError, match="unknown step 'hedges'"):
        load_settings(legrisk={"steps": ["hedges"]})
    with pytest.raises(ConfigError, match="retry_bsp"):
        load_settings(legrisk={"retry_bsp": 1})


def test_an_unwind_goes_through_the_live_execution_interface(binance_venues: Any, tmp_path: Path) -> None:
    """The same policy on a live venue (the local Binance process through ccxt): a buy filled
    for real, its sell leg failed elsewhere; the unwind is journaled, sent, filled at the venue,
    and the journal, its ledger and the venue's balances agree afterwards."""
    import asyncio
    from dataclasses import replace

    from cryptoarb.core.accounting import Portfolio, settle_arb
    from cryptoarb.core.book import VALID
    from cryptoarb.core.orders import Order
    from cryptoarb.detect.groups import Group
    from cryptoarb.execution import journal as J
    from cryptoarb.execution.arb import ArbExecutor, ExecConfig
    from cryptoarb.execution.legrisk import LegRisk
    from cryptoarb.execution.live import JournalRunner
    from tests.livetrade import SYMBOL, check_against_venue, live_venue, order, top

    venue = binance_venues("a")
    db = connect(str(tmp_path / "journal.db"))
    runner = JournalRunner(J.Journal(db))
    pf = Portfolio("USDT")

    async def go() -> Incident:
        async with live_venue(venue, runner, portfolio=pf) as lv:
            start_bal = await lv.fetch_balances()
            runner.journal.open_ledger("binance", start_bal, 0)
            for asset, amount in start_bal.items():
                pf.deposit("binance", asset, amount)
            bid, ask = top(venue)
            buy = await lv.place(order("binance", "buy", "0.01", str(ask + 5), "r1-1b"))
            inst = Catalog().get("binance", SYMBOL)
            other = replace(inst, venue="binanceus")
            sell = Order("r1-1s", "binanceus", SYMBOL, "sell", D("0.01"), bid, bid, 0, arb_id=1)
            sell.transition(OrderStatus.FAILED, 1, "venue down")
            trade = ArbTrade(1, 1, "BTC/USDT", buy, sell, D(0), D("0.01"), 0)
            settle_arb(trade, inst, other, 2)
            assert trade.status is ArbStatus.FAILED_LEG and trade.unhedged_qty_base == D("0.01") - buy.fee
            b = OrderBook(inst)
            b.load_snapshot([(float(bid), 10.0)], [(float(ask), 10.0)])
            b.set_state(VALID)
            books = {inst.key: b}
            ex = ArbExecutor(pf, {"binance": lv}, books.get, ExecConfig(default_latency_ns=0), run_id="r1")
            lv.on_update = ex.order_update
            lr = LegRisk(LegRiskConfig(steps=("unwind",), unwind_bps=100), ex, books.get,
                         [Group("g", "spot", (inst.key, other.key))], lambda a: (bid + ask) / 2, run_id="r1")
            lr.on_trade(trade)
            ex.advance(3)  # the unwind leaves: the live venue sends it (journal first)
            assert await lv.drain(10)
            return lr.incidents[1]

    try:
        inc = asyncio.run(go())
        assert inc.status is IncidentStatus.CLOSED and [(o.side, o.status) for o in inc.orders] == [
            ("sell", OrderStatus.FILLED)]
        assert abs(inc.qty) < D("0.00001") and inc.realised < 0  # sold back below the ask it paid
        counts = check_against_venue(runner.journal, "binance", venue)
        assert counts["orders"] == 2 and counts["lost"] == counts["duplicated"] == counts["unresolved"] == 0
    finally:
        runner.close()
        db.dispose()
