"""A stored run reconstructs the run: the settings actually used, a starting balance snapshot, one
snapshot per nanosecond in which trades closed, and order ids under the stored run's id."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.config import load_settings
from cryptoarb.demo.run import DEMO_BALANCES, DEMO_LATENCY_MS, build_demo
from cryptoarb.engine import Engine
from cryptoarb.venues.simulated import SIM_VENUES


class RecordingSink:
    """The engine's Sink, keeping what it was told."""

    def __init__(self, run_id: str = "run-under-test") -> None:
        self.run_id = run_id
        self.snapshots: list[tuple[int, list[tuple[str, str, Decimal]]]] = []
        self.order_ids: list[str] = []
        self.closed_ns: list[int] = []

    def opportunity(self, opp: Any) -> None: ...
    def fill(self, fill: Any) -> None: ...
    def feature(self, row: Any) -> None: ...
    def pnl(self, ts_ns: int, snap: Any) -> None: ...

    def order(self, order: Any) -> None:
        self.order_ids.append(order.id)

    def arb_trade(self, trade: Any) -> None:
        if trade.closed_ns:
            self.closed_ns.append(trade.closed_ns)

    def cycle(self, trade: Any) -> None:  # a cycle (triangular arbitrage) closing is a trade closing
        if trade.closed_ns:
            self.closed_ns.append(trade.closed_ns)

    def balances(self, ts_ns: int, rows: list[tuple[str, str, Decimal]]) -> None:
        self.snapshots.append((ts_ns, list(rows)))


@pytest.fixture(scope="module")
def same_latency_run() -> tuple[Any, RecordingSink]:
    """The demo with one latency for every venue: trades found on the same message close in the
    same nanosecond (their legs arrive together)."""
    settings = load_settings(storage={"enabled": False}, paper={"latency_ms": dict.fromkeys(SIM_VENUES, 10.0)})
    sink = RecordingSink()
    demo = build_demo(settings, sink=sink, seed=7)
    demo.run(30, live=False, speed=0, start_ns=0)
    return demo, sink


def test_trades_closing_in_the_same_nanosecond_share_one_snapshot(same_latency_run: Any) -> None:
    demo, sink = same_latency_run
    closes = Counter(sink.closed_ns)
    assert any(n > 1 for n in closes.values()), "the scenario must close two trades in one nanosecond"
    stamps = [ts for ts, _ in sink.snapshots]
    assert len(stamps) == len(set(stamps)), Counter(stamps).most_common(3)
    # one per closing nanosecond (trades, and leg-risk orders that filled), after the starting one
    legs = {o.updated_ns for o in demo.engine.executor.singles if o.fills}
    assert set(stamps[1:]) == set(closes) | legs
    # each shows the state after the last trade of its nanosecond; the last one the final state
    assert sink.snapshots[-1][1] == demo.engine.portfolio.snapshot()


def test_the_starting_balances_are_snapshotted_before_any_trade(same_latency_run: Any) -> None:
    _, sink = same_latency_run
    ts0, rows = sink.snapshots[0]
    assert ts0 < min(sink.closed_ns)
    expected = sorted((v, c, a) for v in SIM_VENUES for c, a in DEMO_BALANCES.items())
    assert rows == expected


def test_order_ids_carry_the_sinks_run_id(same_latency_run: Any) -> None:
    demo, sink = same_latency_run
    assert demo.engine.run_id == sink.run_id
    assert sink.order_ids and all(o.startswith(f"{sink.run_id}-") for o in sink.order_ids)


def test_a_run_id_other_than_the_sinks_is_refused() -> None:
    settings = load_settings(storage={"enabled": False})
    with pytest.raises(ValueError, match="differs from the sink's run"):
        Engine(settings, ["binance"], sink=RecordingSink("stored-id"), run_id="another-id")


def test_no_sink_no_snapshots_and_a_run_without_messages_still_starts() -> None:
    sink = RecordingSink()
    engine = Engine(load_settings(storage={"enabled": False}), ["binance"], sink=sink)
    engine.finish()
    assert len(sink.snapshots) == 1 and sink.snapshots[0][1] == engine.portfolio.snapshot()


def test_arb_demo_stores_what_it_ran_with(tmp_path: Path) -> None:
    """Through the command line into SQLite: runs.config holds the demo's balances and
    latencies, order ids and rows carry runs.id, snapshots start with the balances and never
    repeat a timestamp."""
    db = tmp_path / "demo.db"
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    r = subprocess.run([sys.executable, "-m", "cryptoarb.cli", "demo", "--duration", "30", "--speed", "0",
                        "--no-live", "--db", str(db)], capture_output=True, text=True, env=env, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(db)
    try:
        ((run_id, config),) = con.execute("select id, config from runs").fetchall()
        paper = json.loads(config)["settings"]["paper"]
        assert paper["latency_ms"] == DEMO_LATENCY_MS
        assert {v: {c: Decimal(a) for c, a in cs.items()} for v, cs in paper["balances"].items()} == {
            v: DEMO_BALANCES for v in SIM_VENUES}
        orders = con.execute("select id, run_id from orders").fetchall()
        assert orders and all(oid.startswith(f"{run_id}-") and rid == run_id for oid, rid in orders)
        (dups,) = con.execute("select count(*) from (select ts_ns, venue, asset from balances "
                              "group by ts_ns, venue, asset having count(*) > 1)").fetchone()
        assert dups == 0
        first = con.execute("select venue, asset, amount from balances where ts_ns = "
                            "(select min(ts_ns) from balances) order by venue, asset").fetchall()
        assert [(v, a, Decimal(x)) for v, a, x in first] == sorted(
            (v, c, a) for v in SIM_VENUES for c, a in DEMO_BALANCES.items())
        (first_ts, first_trade) = con.execute(
            "select (select min(ts_ns) from balances), (select min(closed_ns) from arb_trades)").fetchone()
        assert first_ts < first_trade
    finally:
        con.close()
