"""The crash-safety run: ``arb run --live --trade`` on two local venues, SIGKILLed at random
points (during start-up and reconciliation, while orders are in flight, while a venue drops
answers or is slow), restarted each time, until enough trades were made; then one clean run
and the checks: no order lost, none duplicated, every order reconciled, the journal equal to
the venues' own order state, the ledger equal to the venues' balances.

Used by ``tests/test_live_crash.py`` (300 trades) and ``bench/live_crash.py`` (longer).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select

from cryptoarb.execution import journal as J
from cryptoarb.storage import connect
from cryptoarb.storage.journal_models import LiveOrderRow
from tests.exchange.process import LocalBinance
from tests.livetrade import arb_config, check_against_venue, key_env

SPOT = ("spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz")
REPO = Path(__file__).resolve().parents[1]
WINDOWS = {"a": (2000, 12000), "b": (54000, 64000)}  # capture lines: mids 61759-61843 vs 61558-61611


def _arb(cfg: Path, env: dict[str, str], log: Path, duration: float | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "cryptoarb.cli", "run", "--live", "--trade", "--venues", "binance,binanceus",
           "--symbols", "BTC/USDT", "--no-view", "--config", str(cfg)]
    if duration is not None:
        cmd += ["--duration", str(duration)]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL)


def _trades(db: Any) -> tuple[int, int]:
    """(trades, journal orders): a trade is an arbitrage attempt with its orders journaled."""
    with db.connect() as c:
        orders = c.execute(select(func.count()).select_from(LiveOrderRow)).scalar_one()
        trades = c.execute(select(func.count()).select_from(
            select(LiveOrderRow.run_id, LiveOrderRow.arb_id).distinct().subquery())).scalar_one()
    return int(trades), int(orders)


def _in_flight(db: Any) -> int:
    with db.connect() as c:
        return int(c.execute(select(func.count()).select_from(LiveOrderRow).where(
            LiveOrderRow.state.in_(sorted(J.LIVE_STATES)))).scalar_one())


def crash_run(tmp: Path, data: Path, min_trades: int = 300, seed: int = 1, max_kills: int = 200,
              time_budget_s: float = 600.0, min_kills: int = 10) -> dict[str, Any]:
    rng = random.Random(seed)
    files = [data / f for f in SPOT]
    # two stretches of the capture ~25 bps apart (the capture is 11 minutes long: each venue is
    # wound back to its stretch's start between two runs once past its end)
    a = LocalBinance(tmp / "venue-a", files, WINDOWS["a"][0], 1.0).start()
    b = LocalBinance(tmp / "venue-b", files, WINDOWS["b"][0], 1.0).start()
    venues = {"binance": a, "binanceus": b}
    db_url = f"sqlite:///{tmp / 'arb.db'}"
    cfg = arb_config(tmp / "arb.toml", venues, db_url)
    env = {**os.environ, **key_env(venues), "COLUMNS": "150", "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    log = tmp / "arb.log"
    figures: dict[str, Any] = {"kills": 0, "kills_with_orders_in_flight": 0, "orders_in_flight_at_kills": 0,
                               "drop_faults": 0, "latency_faults": 0, "kills_in_startup": 0, "exits": 0}
    started = time.monotonic()
    db = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        connect(db_url).dispose()  # the schema, before the first engine races to create it
        db = create_engine(db_url)
        while figures["kills"] < max_kills and time.monotonic() - started < time_budget_s:
            if _trades(db)[0] >= min_trades and figures["kills"] >= min_kills:
                break
            n0 = _trades(db)[1]
            proc = _arb(cfg, env, log)
            if rng.random() < 0.15:  # during start-up or reconciliation
                time.sleep(rng.uniform(0.5, 6.0))
                figures["kills_in_startup"] += 1
            else:  # once it trades: after a random stretch of trading
                deadline = time.monotonic() + 30
                while _trades(db)[1] == n0 and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.5, 4.0))
            if proc.poll() is not None:  # it stopped by itself: a start-up refusal (say which)
                figures["exits"] += 1
                continue
            venue = rng.choice([a, b])
            roll = rng.random()
            if roll < 0.4:  # the venue takes the next orders but their answers are lost
                venue.fault(kind="drop_response", path="/api/v3/order", method="POST", count=rng.randint(1, 3))
                figures["drop_faults"] += 1
            elif roll < 0.7:  # slow answers: orders surely in flight when the kill comes
                venue.fault(kind="latency", delay_ms=rng.randint(50, 400), path="/api/v3/order", method="POST",
                            count=rng.randint(1, 4))
                figures["latency_faults"] += 1
            time.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            figures["kills"] += 1
            n = _in_flight(db)
            figures["orders_in_flight_at_kills"] += n
            figures["kills_with_orders_in_flight"] += n > 0
            for name, v in (("a", a), ("b", b)):
                v.clear_faults()
                if v.admin("GET", "/admin/book")["line"] > WINDOWS[name][1]:
                    v.admin("POST", "/admin/book", {"seek_line": WINDOWS[name][0]})
        # one clean run: reconciles what the last kill left, trades a little, stops cleanly
        proc = _arb(cfg, env, log, duration=3)
        rc = proc.wait(120)
        assert rc == 0, log.read_text(errors="replace")[-3000:]
        trades, orders = _trades(db)
        engine = connect(db_url)
        journal = J.Journal(engine)
        checks = {name: check_against_venue(journal, name, v) for name, v in venues.items()}
        engine.dispose()
        figures.update(trades=trades, orders=orders, seconds=round(time.monotonic() - started, 1),
                       lost=sum(c["lost"] for c in checks.values()),
                       duplicated=sum(c["duplicated"] for c in checks.values()),
                       unresolved=sum(c["unresolved"] for c in checks.values()),
                       venue_orders=sum(c["venue_orders"] for c in checks.values()),
                       not_placed=sum(1 for o in journal_orders(db_url) if o.state == J.NOT_PLACED))
        return figures
    finally:
        if proc is not None and proc.poll() is None:  # a failure or a timeout: never leave an engine behind
            proc.kill()
            proc.wait(10)
        if db is not None:
            db.dispose()
        a.stop()
        b.stop()


def journal_orders(db_url: str) -> list[J.JournalOrder]:
    engine = connect(db_url)
    try:
        return J.Journal(engine).orders()
    finally:
        engine.dispose()
