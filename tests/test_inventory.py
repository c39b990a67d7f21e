"""Inventory: holdings against targets, rebalancing suggestions (never executed), venue balances
against the ledger (drift events), the summary section and ``arb inventory``."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.config import ConfigError, load_settings
from cryptoarb.core.inventory import Drift, Holding, InventoryConfig, Move, drift, holdings, suggest
from cryptoarb.storage import StorageWriter, connect
from tests.test_cli import arb, assert_user_error
from tests.test_legrisk import MS, S, engine, start

TARGETS = {"a": {"X": D("0.5"), "Q": D("0.5")}, "b": {"X": D("0.25"), "Q": D("0.5")}, "c": {"X": D("0.25")}}


def test_suggestions_restore_targets_largest_first_and_respect_the_band() -> None:
    cfg = InventoryConfig(targets=TARGETS, band=D("0.1"))
    bal = {"a": {"X": D(2), "Q": D(900)}, "b": {"X": D(6), "Q": D(100)}, "c": {"X": D(2)}}
    # X: total 10, targets a 5 / b 2.5 / c 2.5; a is 3 short, b 3.5 over, c within 0.5 (band 1)
    # Q: total 1000, a 400 over, b 400 short
    assert suggest(bal, cfg) == [
        Move("Q", "a", "b", D(400), "a holds 90.0% of Q (target 50.0%), b 10.0% (target 50.0%)"),
        Move("X", "b", "a", D(3), "b holds 60.0% of X (target 25.0%), a 20.0% (target 50.0%)"),
    ]
    assert suggest(bal, InventoryConfig(targets=TARGETS, band=D("0.45"))) == []  # everything within the band
    assert suggest(bal, InventoryConfig(targets=TARGETS, band=D("0.1"), min_move={"Q": D(400)}))[0].asset == "X"
    rows = {(h.venue, h.asset): h for h in holdings(bal, cfg)}
    assert rows[("b", "X")].share == D("0.6") and rows[("b", "X")].target == D("0.25")
    assert ("c", "Q") not in rows  # neither held nor targeted there
    assert holdings({"a": {"X": D(1)}}, cfg)[-1] == Holding("c", "X", D(0), D(0), D("0.25"))  # targeted, empty


def test_drift_compares_only_fetched_venues_and_missing_assets_count_as_zero() -> None:
    ledger = {"a": {"X": D("1.5"), "Q": D(100)}, "b": {"X": D(1)}}
    fetched = {"a": {"X": D("1.50000001"), "BNB": D("0.1")}}  # Q missing: the venue reports none
    assert drift(ledger, fetched, D("0.00000001")) == [
        Drift("a", "BNB", D(0), D("0.1")), Drift("a", "Q", D(100), D(0))]
    assert [d.asset for d in drift(ledger, fetched, D("0.000000001"))] == ["BNB", "Q", "X"]  # tighter: X too
    assert Drift("a", "Q", D(100), D(0)).diff == -100


def test_engine_inventory_drift_goes_to_listeners_and_the_summary() -> None:
    e = engine(["a", "b"], {"a": {"Q": "5000"}, "b": {"X": "20"}},
               {"inventory": {"targets": {"a": {"X": 0.5}, "b": {"X": 0.5}}, "band": 0.05}})
    start(e)
    e.tick(5 * MS)  # a bought 10 X, b sold 10 X: now 10 and 10
    heard: list[tuple[int, list[Drift]]] = []
    e.inventory.on_drift.append(lambda ts, d: heard.append((ts, d)))
    ledger = {v: dict(c) for v, c in e.portfolio.balances.items()}
    assert e.inventory.compare(ledger, 6 * MS) == [] and heard == []
    ledger["b"]["X"] -= D("0.5")  # the venue says half an X less than we booked
    found = e.inventory.compare({"b": ledger["b"]}, 7 * MS)
    assert found == [Drift("b", "X", D(10), D("9.5"))] and heard == [(7 * MS, found)]
    e.tick(S)
    inv = e.summary()["inventory"]
    assert inv["drift"] == [{"venue": "b", "asset": "X", "ledger": "10.0", "reported": "9.5", "diff": "-0.5"}]
    assert inv["suggestions"] == []  # 10 and 10: on target
    assert {(h["venue"], h["asset"]): h["share"] for h in inv["holdings"]}[("a", "X")] == 0.5
    assert e.portfolio.balances["b"]["X"] == 10  # a drift never rewrites the ledger


def test_inventory_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"targets for X add up to 0\.9"):
        load_settings(legrisk={"inventory": {"targets": {"a": {"X": 0.5}, "b": {"X": 0.4}}}})
    with pytest.raises(ConfigError, match="within"):
        load_settings(legrisk={"inventory": {"targets": {"a": {"X": 1.5}}}})


CFG = """
[paper.balances.binance]
USDT = "90000"
BTC = "0.2"
[paper.balances.okx]
USDT = "10000"
BTC = "1.8"
[legrisk.inventory]
band = 0.05
targets = { binance = { USDT = 0.5, BTC = 0.5 }, okx = { USDT = 0.5, BTC = 0.5 } }
"""


def test_cli_inventory_from_settings_and_from_a_stored_run(tmp_path: Path) -> None:
    cfg = tmp_path / "arb.toml"
    cfg.write_text(CFG)
    r = arb("inventory", "--config", str(cfg), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [(m["asset"], m["from"], m["to"], m["qty"]) for m in doc["suggestions"]] == [
        ("BTC", "okx", "binance", "0.80"), ("USDT", "binance", "okx", "40000.0")]
    r = arb("inventory", "--config", str(cfg))
    assert r.returncode == 0 and "never executed automatically" in r.stdout and "okx" in r.stdout
    # a stored run's last balances
    db = tmp_path / "runs.db"
    eng = connect(str(db))
    with StorageWriter(eng, "r1", flush_interval=0.01) as w:
        w.start_run("paper", {})
        w.balances(1, [("okx", "BTC", D(1)), ("binance", "BTC", D(1))])
        w.balances(2, [("okx", "BTC", D("1.9")), ("binance", "BTC", D("0.1")), ("okx", "BTC/USDT:USDT", D(3))])
    eng.dispose()
    r = arb("inventory", "--config", str(cfg), "--db", str(db), "--run", "latest", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [(h["venue"], h["asset"], h["qty"]) for h in doc["holdings"]] == [  # positions left out
        ("binance", "BTC", "0.1"), ("okx", "BTC", "1.9"), ("binance", "USDT", "0"), ("okx", "USDT", "0")]
    assert doc["suggestions"][0] == {"asset": "BTC", "from": "okx", "to": "binance", "qty": "0.90",
                                     "reason": "okx holds 95.0% of BTC (target 50.0%), binance 5.0% (target 50.0%)"}
    assert_user_error(arb("inventory", "--config", str(cfg), "--db", str(db), "--run", "nope"), "--run nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("[legrisk.inventory]\ntargets = { a = { X = 0.7 } }\n")
    assert_user_error(arb("inventory", "--config", str(bad)), "targets for X add up to 0.7")
    empty = tmp_path / "empty.toml"
    empty.write_text("[paper]\nbalances = {}\n")
    assert arb("inventory", "--config", str(empty)).returncode == 3


def test_live_venue_balances_compared_with_the_ledger(binance_venues: Any, tmp_path: Path) -> None:
    """Against the local Binance venue (a real process, ccxt's binance class): the balances it
    reports after a live fill equal the ledger the fill was booked in; a booking the venue does
    not know about is a drift, heard by the listeners; nothing is compared while an order is
    in flight."""
    import asyncio

    from cryptoarb.core.accounting import Portfolio
    from cryptoarb.execution import journal as J
    from cryptoarb.execution.inventory import Inventory, check_venue
    from cryptoarb.execution.live import JournalRunner
    from tests.livetrade import live_venue, order, top

    venue = binance_venues("a")
    db = connect(str(tmp_path / "journal.db"))
    runner = JournalRunner(J.Journal(db))
    pf = Portfolio("USDT")
    inv = Inventory(InventoryConfig(), pf)
    heard: list[list[Drift]] = []
    inv.on_drift.append(lambda _ts, d: heard.append(d))

    async def go() -> tuple[list[Drift] | None, list[Drift] | None, list[Drift] | None]:
        async with live_venue(venue, runner, portfolio=pf) as lv:
            for asset, amount in (await lv.fetch_balances()).items():  # seeded from the venue, as at start
                pf.deposit("binance", asset, amount)
            _, ask = top(venue)
            await lv.place(order("binance", "buy", "0.01", str(ask + 5), "r1-1b"))
            clean = await check_venue(lv, inv, 1)
            pf.deposit("binance", "USDT", D(1))  # the ledger now claims 1 USDT the venue never saw
            drifted = await check_venue(lv, inv, 2)
            lv._tasks.add(asyncio.get_running_loop().create_future())  # an order in flight
            racing = await check_venue(lv, inv, 3)
            return clean, drifted, racing

    try:
        clean, drifted, racing = asyncio.run(go())
    finally:
        runner.close()
        db.dispose()
    assert clean == [] and racing is None
    assert drifted is not None and [(d.venue, d.asset, d.diff) for d in drifted] == [("binance", "USDT", D(-1))]
    assert heard == [drifted] and inv.checks == 2
