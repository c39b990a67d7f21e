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
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

from cryptoarb.config_trading import TradingVenueSettings
from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.footprint import Footprints
from cryptoarb.core.instruments import Instrument
from cryptoarb.detect.triangular import TriangularDetector
from cryptoarb.execution import journal as J
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


def test_a_profitable_cycle_on_the_local_venue_is_executed_live_and_reconciled(
        binance_venues: Callable[..., LocalBinance], tmp_path: Path) -> None:
    venue = binance_venues("tri", synthetic=SYNTHETIC)
    db = connect(str(tmp_path / "live.db"))
    runner = JournalRunner(J.Journal(db))
    start = {"BTC": D(2), "USDT": D(200000)}
    runner.journal.open_ledger("binance", start, 0)
    insts = instruments()
    fps = Footprints()
    out: dict[str, object] = {}

    async def go() -> None:
        async with ccxt_client(venue, "alice") as (ex, _guard):
            await ex.load_markets()
            assert {"BTC/USDT", "ETH/USDT", "ETH/BTC"} <= set(ex.markets)
            books = await _books(ex, insts)

            def mid(a: str) -> D | None:
                b = books.get(f"binance {a}/USDT")
                return D(repr(b.mid())) if b is not None else None

            pf = Portfolio("USDT", price=mid)
            for ccy, amount in start.items():
                pf.deposit("binance", ccy, amount)
            lv = LiveVenue("binance", ex, runner, pf, "lt", insts,
                           TradingVenueSettings(recv_window_ms=1000, poll_interval_ms=50), footprints=fps)
            d = TriangularDetector(list(insts.values()), ["binance"], "USDT", min_profit_bps=1.0, max_in=500.0,
                                   available={("binance", c): a for c, a in start.items()}, footprints=fps)
            for b in books.values():
                d.add_book(b)
            now = time.time_ns()
            opps = [o for b in books.values() for o in d.on_book(b, now) or []]
            assert opps, "the synthetic triangle pays at the held line"
            opp = max(opps, key=lambda o: o.profit)
            assert opp.name == "USDT > BTC > ETH > USDT" and opp.profit > 0
            cx = CycleExecutor(pf, {}, books.get, lambda v: 5_000_000, "lt", fps)
            cx.go_live({"binance": lv})
            arb_seen: list[str] = []  # the live service's router: a cycle's answers never reach the arbitrage executor
            lv.on_update = _route(cx, lambda o, f, ns: arb_seen.append(o.id))
            with StorageWriter(db, "lt") as sink:
                cx.on_order.append(sink.order)
                cx.on_fill.append(sink.fill)
                cx.on_trade.append(sink.cycle)
                t = cx.submit(opp, time.time_ns())
                assert t is not None
                deadline = time.monotonic() + 60
                while not t.closed_ns and time.monotonic() < deadline:
                    cx.advance(time.time_ns())
                    await asyncio.sleep(0.01)
                sink.flush()
            assert await lv.drain(10)
            assert not arb_seen
            out.update(t=t, opp=opp, pf=pf, venue_bal=await lv.fetch_balances())

    try:
        asyncio.run(go())
        t, opp, pf = out["t"], out["opp"], out["pf"]
        assert t.status == COMPLETE, (t.status, t.reason)  # type: ignore[attr-defined]
        legs = t.orders  # type: ignore[attr-defined]
        assert [o.symbol for o in legs] == ["BTC/USDT", "ETH/BTC", "ETH/USDT"]
        # every leg journaled before it was sent, then resolved; sent on the venue's grid
        jos = {jo.order_id: jo for jo in runner.journal.orders("binance")}
        assert set(jos) == {o.id for o in legs}
        for o in legs:
            events = [s for s, _ in runner.journal.events(jos[o.id].client_id)]
            assert events[0] == J.PENDING_NEW and events[-1] == J.FILLED
            inst = insts[o.symbol]
            assert o.qty % D(repr(inst.lot_size)) == 0 and o.filled_qty == o.qty
        # the venue's own state: orders, fills, balances -- the journal's ledger equals them exactly
        counts = check_against_venue(runner.journal, "binance", venue)
        assert counts["orders"] == 3 and counts["lost"] == 0
        assert {a: v for a, v in out["venue_bal"].items() if v} == {  # type: ignore[attr-defined]
            a: v for a, v in ((a, pf.balance("binance", a)) for a in ("BTC", "ETH", "USDT")) if v}  # type: ignore[attr-defined]
        # expected vs realised, stored like an arbitrage trade's
        # the books did not move: the venue's USDT changed by exactly the planned profit, and what
        # the later legs could not use is the planned dust
        usdt = out["venue_bal"]["USDT"] - start["USDT"]  # type: ignore[index]
        assert usdt == opp.profit, (usdt, opp.profit)  # type: ignore[attr-defined]
        assert t.residual == {c: a for c, a in zip(("BTC", "ETH"), opp.dust, strict=True) if a}  # type: ignore[attr-defined]
        # realised: what the fills closed in the ledger (each flow at the marks: the cheap ETH/BTC
        # leg shows as a gain against the ETH/USDT and BTC/USDT mids), positive like the plan
        real = t.realized_pnl  # type: ignore[attr-defined]
        assert real == sum((f.pnl for o in legs for f in o.fills), D(0)) and real > 0
        con = sqlite3.connect(tmp_path / "live.db")
        row = con.execute("select status, expected_pnl, realized_pnl from cycles where run_id = 'lt'").fetchone()
        assert row[0] == COMPLETE and D(row[1]) == to_exact(opp.profit) and D(row[2]) == to_exact(real)  # type: ignore[attr-defined]
        assert con.execute("select count(*) from fills where order_id like 'lt-c%'").fetchone()[0] == sum(
            len(o.fills) for o in legs)
    finally:
        runner.close()
        db.dispose()
