"""Cycles executed live (issue 14): ccxt's ``binance`` class against the local Binance venue
(a real process speaking Binance's REST API) serving BTC/USDT from the real capture and ETH/USDT,
ETH/BTC as SYNTHETIC books scaled from it (tests/exchange/synthetic.py: made-up prices, chosen so
that USDT > BTC > ETH > USDT pays). The cycle is found on the venue's own books, sent through
``LiveVenue`` (journal before each send, exact step multiples), its fills reconciled with the
venue's, stored with expected vs realised PnL, and the ledger equals the venue's balances."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.config_trading import TradingVenueSettings
from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.footprint import Footprints
from cryptoarb.core.instruments import Instrument
from cryptoarb.core.legrisk import LegRiskConfig
from cryptoarb.core.orders import Order, OrderStatus
from cryptoarb.detect.triangular import TriangularDetector
from cryptoarb.execution import journal as J
from cryptoarb.execution.cycle_repair import CycleRepair
from cryptoarb.execution.cycles import COMPLETE, CycleExecutor
from cryptoarb.execution.live import JournalRunner, LiveVenue
from cryptoarb.execution.service import _route
from cryptoarb.storage import connect
from cryptoarb.storage.coltypes import to_exact
from cryptoarb.storage.writer import StorageWriter
from cryptoarb.venues.catalog import Catalog
from tests.exchange.process import LocalBinance, ccxt_client
from tests.livetrade import check_against_venue

# SYNTHETIC symbols: the captured BTC/USDT book x 0.05 (ETH/USDT) and x 0.0000008 (ETH/BTC), each
# level's quantity x 20. At the held line ETH/BTC asks 0.04947 while ETH/USDT / BTC/USDT ~ 0.05: the
# triangle pays about 1% before fees. Not market data. (The venue keeps balances to 8 decimals, as
# Binance states them: ETH/BTC's tick x step is 1e-8, so no spend is finer than a balance.)
SYNTHETIC = [
    {"symbol": "ETHUSDT", "base": "ETH", "quote": "USDT", "price_scale": "0.05", "qty_scale": "20",
     "tick_size": "0.01", "step_size": "0.0001", "min_qty": "0.0001", "min_notional": "5"},
    {"symbol": "ETHBTC", "base": "ETH", "quote": "BTC", "price_scale": "0.0000008", "qty_scale": "20",
     "tick_size": "0.00001", "step_size": "0.001", "min_qty": "0.001", "min_notional": "0.0001"},
]


START = {"BTC": D(2), "USDT": D(200000)}


def instruments() -> dict[str, Instrument]:
    cat = Catalog()
    eth = cat.get("binance", "ETH/USDT")
    # the catalog has no ETH/BTC on binance: the synthetic symbol's filters, as exchangeInfo states them
    ethbtc = replace(eth, symbol="ETH/BTC", quote="BTC", tick_size=0.00001, lot_size=0.001, min_notional=0.0001,
                     exchange_symbol="ETHBTC")
    return {"BTC/USDT": cat.get("binance", "BTC/USDT"), "ETH/USDT": eth, "ETH/BTC": ethbtc}


async def _books(ex, insts: dict[str, Instrument]) -> dict[str, OrderBook]:  # type: ignore[no-untyped-def]
    out = {}
    for sym, inst in insts.items():
        ob = await ex.fetch_order_book(sym, 100)
        b = OrderBook(inst)
        b.load_snapshot([(float(p), float(q)) for p, q, *_ in ob["bids"]],
                        [(float(p), float(q)) for p, q, *_ in ob["asks"]])
        b.set_state(VALID)  # a REST snapshot of the venue's book, as the engine's snapshot step loads it
        b.local_ns = time.time_ns()
        out[b.key] = b
    return out


def trade_cycle(venue: LocalBinance, tmp_path: Path, runner: JournalRunner, db: object,
                on_order: Callable[[Order], None] | None = None) -> dict[str, Any]:
    """Find the best cycle on the venue's books, trade it live to the end (repairs included)."""
    insts = instruments()
    fps = Footprints()
    out: dict[str, Any] = {"insts": insts}

    async def go() -> None:
        async with ccxt_client(venue, "alice") as (ex, _guard):
            await ex.load_markets()
            assert {"BTC/USDT", "ETH/USDT", "ETH/BTC"} <= set(ex.markets)
            books = await _books(ex, insts)

            def mid(a: str) -> D | None:
                b = books.get(f"binance {a}/USDT")
                return D(repr(b.mid())) if b is not None else None

            pf = Portfolio("USDT", price=mid)
            for ccy, amount in START.items():
                pf.deposit("binance", ccy, amount)
            lv = LiveVenue("binance", ex, runner, pf, "lt", insts,
                           TradingVenueSettings(recv_window_ms=1000, poll_interval_ms=50), footprints=fps)
            d = TriangularDetector(list(insts.values()), ["binance"], "USDT", min_profit_bps=1.0, max_in=500.0,
                                   available={("binance", c): a for c, a in START.items()}, footprints=fps)
            for b in books.values():
                d.add_book(b)
            now = time.time_ns()
            opps = [o for b in books.values() for o in d.on_book(b, now) or []]
            assert opps, "the synthetic triangle pays at the held line"
            opp = max(opps, key=lambda o: o.profit)
            assert opp.name == "USDT > BTC > ETH > USDT" and opp.profit > 0
            cx = CycleExecutor(pf, {}, books.get, lambda v: 5_000_000, "lt", fps)
            cx.go_live({"binance": lv})
            rep = CycleRepair(LegRiskConfig(), cx, insts.values())
            arb_seen: list[str] = []  # the live service's router: a cycle's answers never reach the arbitrage executor
            lv.on_update = _route(cx, lambda o, f, ns: arb_seen.append(o.id))
            if on_order is not None:
                cx.on_order.append(on_order)
            with StorageWriter(db, "lt") as sink:
                cx.on_order.append(sink.order)
                cx.on_fill.append(sink.fill)
                cx.on_trade.append(sink.cycle)
                t = cx.submit(opp, time.time_ns())
                assert t is not None
                deadline = time.monotonic() + 60
                while not t.closed_ns and time.monotonic() < deadline:
                    cx.advance(time.time_ns())
                    if rep.open:
                        rep.poll(time.time_ns())
                    await asyncio.sleep(0.01)
                sink.flush()
            assert await lv.drain(10)
            assert not arb_seen
            out.update(t=t, opp=opp, pf=pf, venue_bal=await lv.fetch_balances())

    asyncio.run(go())
    return out


def check_cycle(out: dict[str, Any], runner: JournalRunner, venue: LocalBinance, tmp_path: Path) -> None:
    """Every order journaled before it was sent and resolved; on the venue's grid; the venue's
    own state equals the journal and the ledger; expected vs realised stored."""
    t, opp, pf, insts = out["t"], out["opp"], out["pf"], out["insts"]
    jos = {jo.order_id: jo for jo in runner.journal.orders("binance")}
    assert set(jos) == {o.id for o in t.orders}
    for o in t.orders:
        events = [s for s, _ in runner.journal.events(jos[o.id].client_id)]
        assert events[0] == J.PENDING_NEW and events[-1] in J.TERMINAL
        assert o.qty % D(repr(insts[o.symbol].lot_size)) == 0
    check_against_venue(runner.journal, "binance", venue)
    assert {a: v for a, v in out["venue_bal"].items() if v} == {
        a: v for a, v in ((a, pf.balance("binance", a)) for a in ("BTC", "ETH", "USDT")) if v}
    real = t.realized_pnl
    assert real == sum((f.pnl for o in t.orders for f in o.fills), D(0))
    con = sqlite3.connect(tmp_path / "live.db")
    row = con.execute("select status, expected_pnl, realized_pnl from cycles where run_id = 'lt'").fetchone()
    assert row[0] == t.status and D(row[1]) == to_exact(opp.profit) and D(row[2]) == to_exact(real)
    assert con.execute("select count(*) from fills where order_id like 'lt-c%'").fetchone()[0] == sum(
        len(o.fills) for o in t.orders)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[JournalRunner, Any]]:
    db = connect(str(tmp_path / "live.db"))
    runner = JournalRunner(J.Journal(db))
    runner.journal.open_ledger("binance", START, 0)
    yield runner, db
    runner.close()
    db.dispose()


def test_a_profitable_cycle_on_the_local_venue_is_executed_live_and_reconciled(
        binance_venues: Callable[..., LocalBinance], tmp_path: Path, journal: tuple[JournalRunner, Any]) -> None:
    venue = binance_venues("tri", synthetic=SYNTHETIC)
    runner, db = journal
    out = trade_cycle(venue, tmp_path, runner, db)
    t, opp = out["t"], out["opp"]
    assert t.status == COMPLETE, (t.status, t.reason)
    assert [o.symbol for o in t.orders] == ["BTC/USDT", "ETH/BTC", "ETH/USDT"]
    assert all(o.status is OrderStatus.FILLED and o.filled_qty == o.qty for o in t.orders)
    check_cycle(out, runner, venue, tmp_path)
    # the books did not move: the venue's USDT changed by exactly the planned profit, and what
    # the later legs could not use is the planned dust
    assert out["venue_bal"]["USDT"] - START["USDT"] == opp.profit
    assert t.residual == {c: a for c, a in zip(("BTC", "ETH"), opp.dust, strict=True) if a}
    # realised: what the fills closed in the ledger (each flow at the marks: the cheap ETH/BTC
    # leg shows as a gain against the ETH/USDT and BTC/USDT mids), positive like the plan
    assert t.realized_pnl > 0


def test_a_leg_the_venue_refuses_mid_cycle_is_retried_live_and_the_cycle_completes(
        binance_venues: Callable[..., LocalBinance], tmp_path: Path, journal: tuple[JournalRunner, Any]) -> None:
    venue = binance_venues("tri-r", synthetic=SYNTHETIC)
    runner, db = journal

    def arm(o: Order) -> None:  # leg 1 filled: the venue refuses the next order (-2010), as Binance would
        if o.id == "lt-c1l0" and o.status is OrderStatus.FILLED:
            venue.fault(kind="insufficient_balance", path="/api/v3/order", method="POST")

    out = trade_cycle(venue, tmp_path, runner, db, arm)
    t = out["t"]
    assert [o.id for o in t.orders] == ["lt-c1l0", "lt-c1l1", "lt-c1l1r2", "lt-c1l2"]
    refused, retry = t.orders[1], t.orders[2]
    assert refused.status is OrderStatus.REJECTED and "insufficient" in refused.reason
    assert retry.status is OrderStatus.FILLED and retry.limit_price > refused.limit_price  # within retry_bps
    inc = t.incident
    assert inc is not None and inc.steps_taken == ["retry"] and inc.ccy == "BTC"
    assert t.status == COMPLETE, (t.status, t.reason)
    check_cycle(out, runner, venue, tmp_path)


def test_arb_run_live_trade_with_tri_trades_cycles_on_the_local_venue(
        binance_venues: Callable[..., LocalBinance], tmp_path: Path) -> None:
    """The whole path: ``arb run --live --trade`` with ``[tri]``, its books built from the venue's
    depth stream (the synthetic symbols' frames too) and REST snapshots, ETH/BTC's market found
    through ccxt at the venue, cycles detected, risk-checked, sent through ``LiveVenue``."""
    import os
    import subprocess
    import sys

    from tests.livetrade import arb_config, key_env

    venue = binance_venues("tri-run", pace=1.0, synthetic=SYNTHETIC)
    url = f"sqlite:///{tmp_path / 'arb.db'}"
    cfg = arb_config(tmp_path / "arb.toml", {"binance": venue}, url,
                     extra='\n[tri]\nvenues = ["binance"]\nstart = "USDT"\nmax_in = 300.0\n')
    cmd = [sys.executable, "-m", "cryptoarb.cli", "run", "--live", "--trade", "--venues", "binance",
           "--symbols", "BTC/USDT,ETH/USDT,ETH/BTC", "--no-view", "--config", str(cfg), "--duration", "8"]
    r = subprocess.run(cmd, env={**os.environ, **key_env({"binance": venue})}, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    con = sqlite3.connect(tmp_path / "arb.db")
    rows = con.execute("select id, status, expected_pnl, realized_pnl, orders, reason from cycles").fetchall()
    done = [r for r in rows if r[1] == COMPLETE]
    assert done and all(D(exp) > 0 and D(real) > 0 for _, _, exp, real, _, _ in done)
    # the book moves (pace 1): a first leg may find its level gone (failed: nothing held); a cycle
    # caught mid-way by the end of the run settles with what it holds, its next leg never sent
    others = [(r[0], r[1], r[5]) for r in rows if r[1] != COMPLETE]
    assert all(st == "failed" or (st == "broken" and "run stopped" in why) for _, st, why in others), others
    legs = [oid for *_, orders, _ in rows for oid in __import__("json").loads(orders)["legs"]]
    unsent = {oid for (oid,) in con.execute("select id from orders where reason like 'not sent: the run stopped%'")}
    db = connect(url)
    try:
        journal = J.Journal(db)
        # every leg that left was journaled first; the others never left
        assert sorted(set(legs) - unsent) == sorted(jo.order_id for jo in journal.orders("binance"))
        check_against_venue(journal, "binance", venue)  # orders, fills and balances = the venue's own
    finally:
        db.dispose()
