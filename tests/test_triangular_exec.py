"""Cycles in paper: sequential and concurrent legs, a broken cycle's residual, storage, the PnL
invariant on a run with cycles (issue 14)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal as D
from pathlib import Path

from cryptoarb.config import load_settings
from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.footprint import Footprints
from cryptoarb.demo.run import build_demo
from cryptoarb.detect.triangular import TriangularDetector
from cryptoarb.execution.cycles import BROKEN, COMPLETE, CycleExecutor
from cryptoarb.execution.paper import PaperVenue
from cryptoarb.storage.coltypes import to_exact
from cryptoarb.storage.db import connect
from cryptoarb.storage.writer import StorageWriter
from tests.accounting import assert_pnl_invariant
from tests.test_triangular import trap_books

MS = 1_000_000


def rig(balances: dict[str, D], concurrent: bool = False):  # type: ignore[no-untyped-def]
    books = trap_books()
    by_key = {b.key: b for b in books}
    fps = Footprints()
    pf = Portfolio("USDT", price=lambda a: {"EUR": D("1.1"), "BTC": D(46000)}.get(a))
    for ccy, amount in balances.items():
        pf.deposit("binance", ccy, amount)
    av = {("binance", c): a for c, a in balances.items()}
    d = TriangularDetector([b.instrument for b in books], ["binance"], "USDT", min_profit_bps=0.0, max_in=1000.0,
                           available=av, footprints=fps, concurrent=concurrent)
    for b in books:
        d.add_book(b)
    ex = CycleExecutor(pf, {"binance": PaperVenue("binance", pf, footprints=fps)}, by_key.get, lambda v: 5 * MS,
                       "t", fps, concurrent)
    return books, pf, d, ex


def test_sequential_cycle_fills_every_leg_and_ends_with_the_planned_usdt() -> None:
    books, pf, d, ex = rig({"USDT": D(1000)})
    (opp,) = d.on_book(books[0], 0) or []
    t = ex.submit(opp, 0)
    assert t is not None and len(t.orders) == 1  # sequential: one leg at a time
    ex.advance(5 * MS)
    assert len(t.orders) == 2 and t.orders[0].status.value == "filled"
    ex.advance(10 * MS)
    ex.advance(15 * MS)
    assert t.status == COMPLETE and [o.filled_qty for o in t.orders] == [f.qty for f in opp.legs]
    # the books did not move: the account's USDT changed by exactly the planned profit
    assert pf.balance("binance", "USDT") - 1000 == opp.profit
    assert t.residual == {c: a for c, a in (("BTC", opp.dust[1]), ("EUR", opp.dust[0])) if a}
    assert t.expected_pnl == opp.profit and not ex.reserved


def test_a_leg_that_meets_an_empty_book_breaks_the_cycle_and_records_the_residual() -> None:
    books, pf, d, ex = rig({"USDT": D(1000)})
    (opp,) = d.on_book(books[0], 0) or []
    t = ex.submit(opp, 0)
    assert t is not None
    ex.advance(5 * MS)  # leg 1 filled: EUR in hand, leg 2 on its way
    books[1].load_snapshot([(39_000.0, 1.0)], [])  # BTC/EUR asks vanish before it arrives
    ex.advance(10 * MS)
    assert t.status == BROKEN and len(t.orders) == 2 and t.orders[1].filled_qty == 0
    assert t.residual == {"EUR": opp.legs[0].receive}
    assert pf.balance("binance", "EUR") == opp.legs[0].receive
    assert "leg 3 not sent" in t.reason
    assert not ex.reserved and not any(fp.held for fp in ex.footprints.values())


def test_concurrent_cycle_sends_all_legs_at_once_from_balances_already_there() -> None:
    books, pf, d, ex = rig({"USDT": D(1000), "EUR": D(1000), "BTC": D(1)}, concurrent=True)
    (opp,) = d.on_book(books[0], 0) or []
    t = ex.submit(opp, 0)
    assert t is not None and len(t.orders) == 3
    assert set(ex.reserved) == {("binance", "USDT"), ("binance", "EUR"), ("binance", "BTC")}
    ex.advance(5 * MS)
    assert t.status == COMPLETE and not ex.reserved
    assert pf.balance("binance", "USDT") - 1000 == opp.profit


def test_concurrent_sizing_is_bounded_by_the_intermediate_balances() -> None:
    books, _pf, d, _ex = rig({"USDT": D(1000), "EUR": D(100), "BTC": D(1)}, concurrent=True)
    (opp,) = d.on_book(books[0], 0) or []
    # the EUR leg spends the 100 EUR already there (0.0025 BTC at 40000, fee taken in BTC), not the
    # 896 EUR the sequential cycle would have; the first leg is sized to deliver what that needs
    assert opp.legs[1].need == 100 and opp.legs[1].qty == D("0.0025")
    assert opp.legs[0].receive >= 100 > opp.legs[0].receive - D("0.01") * D("0.8991")


def test_demo_run_with_cycles_is_stored_and_keeps_the_pnl_invariant(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    db = connect(url)
    with StorageWriter(db, "cyc-run") as sink:
        demo = build_demo(load_settings(storage={"enabled": False}), sink=sink, seed=7)
        summary = demo.run(30, live=False, speed=0, start_ns=0)
        sink.flush()
    cycles = demo.engine.cycles
    assert cycles is not None and summary["cycles"] == len(cycles.settled()) >= 1
    assert_pnl_invariant(demo.engine, summary)
    con = sqlite3.connect(tmp_path / "c.db")
    rows = con.execute("select id, status, expected_pnl, realized_pnl, orders, closed_ns from cycles").fetchall()
    assert len(rows) == len(cycles.executor.trades)
    for (id_, status, exp, real, orders, closed), t in zip(sorted(rows), cycles.executor.trades, strict=True):
        assert (id_, status, D(exp), D(real)) == (t.id, t.status, to_exact(t.expected_pnl), to_exact(t.realized_pnl))
        assert closed == t.closed_ns
        for oid in __import__("json").loads(orders)["legs"]:
            assert con.execute("select status from orders where id = ?", (oid,)).fetchone() is not None


def test_a_short_first_leg_resizes_the_next_legs_to_what_it_delivered() -> None:
    books, pf, d, ex = rig({"USDT": D(1000)})
    (opp,) = d.on_book(books[0], 0) or []
    t = ex.submit(opp, 0)
    assert t is not None
    books[0].load_snapshot([(0.9, 500.0)], [(0.91, 10_000.0)])  # only 500 USDT bid left at 0.9
    books[0].update_id += 1  # a new picture of the book (the footprint of the old one lapses)
    ex.advance(5 * MS)
    first = t.orders[0]
    assert first.filled_qty == 500 and first.status.value == "canceled"
    eur = D(500) * D("0.9") * D("0.999")  # 449.55 EUR arrived: 0.0112 BTC (448 EUR), not the planned 0.0224
    assert t.orders[1].qty == D("0.0112") and t.orders[1].qty * 40_000 <= eur
    ex.advance(10 * MS)
    ex.advance(15 * MS)
    assert t.status == "partial" and t.orders[2].qty == D("0.01118")  # 0.0112 x 0.999 = 0.0111888 -> lots
    assert t.residual["EUR"] == eur - D("448")
    assert pf.balance("binance", "EUR") == eur - D("448")
