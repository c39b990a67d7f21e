"""Leg risk for a broken cycle (issue 14): retry the leg that got nothing, else unwind to the
start currency, else keep the residual and report it; the one-legged exposure follows it."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal as D
from pathlib import Path

from cryptoarb.config import load_settings
from cryptoarb.core.cycle_repair import HEDGE_SKIPPED, limit_against, spend_qty
from cryptoarb.core.legrisk import SECOND_NS, IncidentStatus, LegRiskConfig
from cryptoarb.core.orders import OrderStatus
from cryptoarb.demo.run import build_demo
from cryptoarb.execution.cycle_repair import CycleRepair
from cryptoarb.execution.cycles import BROKEN, COMPLETE, UNWOUND
from cryptoarb.storage.db import connect
from cryptoarb.storage.writer import StorageWriter
from tests.accounting import assert_pnl_invariant
from tests.test_triangular import inst
from tests.test_triangular_exec import MS, rig


def repair_rig(**cfg):  # type: ignore[no-untyped-def]
    books, pf, d, ex = rig({"USDT": D(1000)})
    moves: list[tuple[str, D]] = []
    rep = CycleRepair(LegRiskConfig(**cfg), ex, [b.instrument for b in books],
                      lambda ccy, delta, now: moves.append((ccy, delta)))
    (opp,) = d.on_book(books[0], 0) or []
    t = ex.submit(opp, 0)
    assert t is not None
    ex.advance(5 * MS)  # leg 1 filled: EUR in hand, leg 2 on its way
    return books, pf, ex, rep, opp, t, moves


def ledger_matches(pf, t) -> None:  # type: ignore[no-untyped-def]
    """Every order the venue filled belongs to the cycle, and its PnL is what they closed."""
    fills = [f for o in t.orders for f in o.fills]
    assert t.realized_pnl == sum((f.pnl for f in fills), D(0))
    assert t.fees_quote == sum((f.fee_quote for f in fills), D(0))


def test_a_leg_getting_nothing_is_retried_within_the_price_limit_and_the_cycle_completes() -> None:
    books, pf, ex, _rep, opp, t, moves = repair_rig(retry_bps=20.0)
    books[1].load_snapshot([(39_000.0, 1.0)], [(40_050.0, 1.0)])  # the ask moved 12.5 bps: leg 2's limit misses
    books[1].update_id += 1
    ex.advance(10 * MS)
    inc = t.incident
    assert inc is not None and inc.ccy == "EUR" and inc.leg == 1 and inc.held == opp.legs[0].receive
    retry = t.orders[2]
    # the retry: leg 2 again, its limit 40000 + 20 bps = 40080, as much BTC as the EUR held pays for
    assert retry.id == "t-c1l1r2" and retry.limit_price == D(40_080) and retry.side == "buy"
    assert retry.qty == D("0.0223") and retry.qty * 40_080 <= inc.held < (retry.qty + D("0.0001")) * 40_080
    assert moves == [("EUR", inc.held)]  # one-legged while the retry travels
    ex.advance(15 * MS)  # retry filled at 40050: leg 3 goes
    assert retry.status is OrderStatus.FILLED and t.orders[3].id == "t-c1l2"
    assert inc.status is IncidentStatus.CLOSED and inc.steps_taken == ["retry"]
    assert moves == [("EUR", inc.held), ("EUR", -inc.held)]
    ex.advance(20 * MS)
    assert t.status == COMPLETE and t.closed_ns == 20 * MS and not ex.reserved
    ledger_matches(pf, t)
    # what came back: leg 3 sold the BTC the retry bought, fees included
    btc = retry.qty * D("0.999")
    assert t.orders[3].qty == D("0.02227") and btc - D("0.02227") == t.residual["BTC"]
    assert pf.balance("binance", "USDT") == 1000 - opp.legs[0].qty + D("0.02227") * 46_000 * D("0.999")


def test_a_retry_that_cannot_fill_gives_way_to_an_unwind_back_to_the_start_currency() -> None:
    books, pf, ex, rep, _opp, t, moves = repair_rig(retry_bps=20.0, unwind_bps=300.0)
    books[1].load_snapshot([(39_000.0, 1.0)], [(41_000.0, 1.0)])  # 2.5% away: beyond the retry limit
    books[1].update_id += 1
    ex.advance(10 * MS)
    inc = t.incident
    assert inc is not None and inc.status is IncidentStatus.OPEN and len(t.orders) == 2  # retry waits
    rep.poll(2 * SECOND_NS)
    assert len(t.orders) == 2  # still nothing within 40080
    rep.poll(10 * MS + 5 * SECOND_NS)  # the retry's time is up; hedge is passed over; unwind
    assert inc.steps_taken == [HEDGE_SKIPPED, "unwind"]
    unwind = t.orders[2]
    # EUR -> USDT buys USDT/EUR; the reference is what the EUR cost: held / cost EUR per USDT
    ref = inc.held / inc.cost
    assert unwind.id == "t-c1u2" and unwind.side == "buy" and unwind.symbol == "USDT/EUR"
    assert unwind.limit_price == limit_against("buy", ref, 300.0, D("0.0001"))
    assert unwind.qty == spend_qty(books[0].instrument, "buy", inc.held, unwind.limit_price)
    ex.advance(10 * MS + 5 * SECOND_NS + 5 * MS)
    assert unwind.status is OrderStatus.FILLED and inc.unwound
    # the first unwind spent at the limit's lock, less than all the EUR: the rest goes too
    ex.drain()
    assert t.status == UNWOUND and inc.status is IncidentStatus.CLOSED
    assert all(o.fills for o in t.orders[2:]) and len(t.orders) >= 3
    left = pf.balance("binance", "EUR")
    assert left == t.residual["EUR"] and left * D("1.1") <= 1  # only what no order can close
    assert moves[-1][0] == "EUR" and sum(m[1] for m in moves) == 0  # exposure back to nothing
    ledger_matches(pf, t)
    assert t.realized_pnl < 0  # an unwind costs the spread and the fees twice
    assert not ex.reserved and not rep.open


def test_every_step_run_out_keeps_the_residual_reports_it_and_keeps_it_one_legged() -> None:
    books, pf, ex, rep, opp, t, moves = repair_rig(steps=("retry",), step_attempts=1)
    books[1].load_snapshot([(39_000.0, 1.0)], [])  # no ask at all
    books[1].update_id += 1
    ex.advance(10 * MS)
    inc = t.incident
    assert inc is not None and not t.closed_ns
    rep.poll(10 * MS + 5 * SECOND_NS)
    assert inc.status is IncidentStatus.GAVE_UP and t.status == BROKEN
    assert t.residual == {"EUR": opp.legs[0].receive} and "every step ran out (retry)" in t.reason
    assert moves == [("EUR", opp.legs[0].receive)]  # still counted: never silently forgotten
    assert rep.summary()["gave_up"] == 1 and rep.summary()["held"] == {"EUR": float(opp.legs[0].receive)}
    ledger_matches(pf, t)


def test_a_repair_still_waiting_when_a_replay_ends_settles_the_cycle_as_it_stands() -> None:
    books, pf, ex, rep, opp, t, moves = repair_rig()
    books[1].load_snapshot([(39_000.0, 1.0)], [])
    books[1].update_id += 1
    ex.advance(10 * MS)
    assert t.incident is not None and not t.closed_ns  # the retry waits for an ask
    ex.drain()  # end of the replay: nothing will come any more
    assert t.closed_ns == 10 * MS and t.status == BROKEN and "run ended while repairing" in t.reason
    assert t.incident.status is IncidentStatus.GAVE_UP and not rep.open
    assert moves == [("EUR", opp.legs[0].receive)]  # still one-legged: reported, not forgotten
    ledger_matches(pf, t)


def test_a_retry_that_fills_short_lets_the_cycle_go_on_with_what_it_bought() -> None:
    books, pf, ex, _rep, _opp, t, _moves = repair_rig(retry_bps=20.0)
    books[1].load_snapshot([(39_000.0, 1.0)], [(40_050.0, 0.01)])  # 0.01 BTC within the limit
    books[1].update_id += 1
    ex.advance(10 * MS)
    inc = t.incident
    assert inc is not None
    first = t.orders[2]
    ex.advance(15 * MS)  # the retry took the 0.01 BTC there was: the cycle goes on with that
    assert first.filled_qty == D("0.01") and inc.status is IncidentStatus.CLOSED
    ex.drain()
    assert t.status == COMPLETE or t.status == "partial"
    assert "EUR" in t.residual and t.residual["EUR"] > 400  # the EUR the short retry did not spend
    ledger_matches(pf, t)


def test_spend_qty_never_spends_more_than_held_with_the_fee_on_top() -> None:
    i = inst("BTC/EUR", lot=0.0001, fee_side="quote")  # fee paid in EUR on top of a buy
    q = spend_qty(i, "buy", D(896), D(40_000))
    assert q == D("0.0223") and q * 40_000 * D("1.001") <= 896 < (q + D("0.0001")) * 40_000 * D("1.001")
    assert spend_qty(i, "sell", D("0.00999"), D(40_000)) == D("0.0099")
    assert limit_against("sell", D(100), 50.0, D("0.3")) == D("99.6")  # 99.5 -> up to the tick
    assert limit_against("buy", D(100), 50.0, D("0.3")) == D("100.5")


def test_a_demo_run_whose_cycle_broke_unwinds_it_and_keeps_the_pnl_invariant(tmp_path: Path) -> None:
    """Seed 8 of the demo breaks a cycle (its last leg gets nothing); under the default policy
    the cycle's ETH is repaired and the fills of the repair orders are the cycle's."""
    db = connect(f"sqlite:///{tmp_path / 'r.db'}")
    with StorageWriter(db, "rep-run") as sink:
        demo = build_demo(load_settings(storage={"enabled": False}), sink=sink, seed=8)
        summary = demo.run(60, live=False, speed=0, start_ns=0)
        sink.flush()
    cycles = demo.engine.cycles
    assert cycles is not None
    (t,) = [t for t in cycles.settled() if t.status == UNWOUND]
    inc = t.incident
    assert inc is not None and inc.status is IncidentStatus.CLOSED and "unwind" in inc.steps_taken
    assert all(o in t.orders for o in inc.orders) and any(o.fills for o in inc.orders)
    assert_pnl_invariant(demo.engine, summary)  # counts the repair orders: they are the cycle's
    assert inc.tracked == 0  # no longer one-legged (the residual left is under one lot)
    con = sqlite3.connect(tmp_path / "r.db")
    (status, orders) = con.execute("select status, orders from cycles where id = ?", (t.id,)).fetchone()
    assert status == UNWOUND
    for o in inc.orders:
        assert o.id in json.loads(orders)["legs"]
        assert con.execute("select count(*) from fills where order_id = ?", (o.id,)).fetchone()[0] == len(o.fills)


def test_a_concurrent_cycle_whose_middle_leg_misses_retries_it_from_what_leg_one_brought() -> None:
    books, pf, d, ex = rig({"USDT": D(1000), "EUR": D(1000), "BTC": D(1)}, concurrent=True)
    rep = CycleRepair(LegRiskConfig(retry_bps=20.0), ex, [b.instrument for b in books])
    (opp,) = d.on_book(books[0], 0) or []
    t = ex.submit(opp, 0)
    assert t is not None and len(t.orders) == 3
    books[1].load_snapshot([(39_000.0, 1.0)], [(40_050.0, 1.0)])  # before the legs arrive
    books[1].update_id += 1
    ex.advance(5 * MS)  # legs 1 and 3 filled, leg 2 missed: EUR up, BTC down
    inc = t.incident
    assert inc is not None and inc.leg == 1 and inc.ccy == "EUR" and inc.held == opp.legs[0].receive
    ex.advance(10 * MS)
    assert t.orders[3].id == "t-c1l1r3" and t.orders[3].status is OrderStatus.FILLED
    assert t.status == COMPLETE and inc.status is IncidentStatus.CLOSED and not rep.open and not ex.reserved
    ledger_matches(pf, t)


def test_a_stop_mid_cycle_sends_nothing_more_and_settles_the_cycle_with_its_residual() -> None:
    """A live run closing: the next leg waiting to leave is dropped (never sent), the cycle settles
    broken as it stands, and no repair starts."""
    _books, pf, ex, rep, opp, t, _moves = repair_rig()
    assert len(t.orders) == 2 and not t.orders[1].status.terminal  # leg 2 waits to leave
    ex.stop(7 * MS)
    assert t.orders[1].status is OrderStatus.REJECTED and "not sent: the run stopped" in t.orders[1].reason
    assert t.status == BROKEN and t.closed_ns == 7 * MS and t.residual == {"EUR": opp.legs[0].receive}
    assert t.reason == "leg 2 not sent: the run stopped"
    assert t.incident is None and not ex.arrivals and not ex.reserved and not rep.open
    assert ex.submit(opp, 8 * MS) is None  # nothing new either
    ledger_matches(pf, t)
