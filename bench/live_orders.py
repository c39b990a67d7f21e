"""Live-order overhead: the journal commit before each send, and intent -> order on the wire
through ``LiveVenue`` vs a plain ccxt ``create_order``, against the local Binance venue.

    .venv/bin/python bench/live_orders.py [--orders 100] [--pg postgresql://postgres@127.0.0.1:5432/test]

With ``--pg`` the journal is measured in a private schema of that database, dropped at the end.

"On the wire" is the moment ccxt hands the signed POST /api/v3/order to its HTTP client
(``Exchange.fetch``), so neither the venue's time nor the network is counted. Orders are IOC
buys far below the ask (they expire unfilled: balances never run out). Both paths alternate,
order by order, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from cryptoarb.execution import journal as J  # noqa: E402
from cryptoarb.execution.live import JournalRunner  # noqa: E402
from cryptoarb.storage import connect  # noqa: E402
from tests.exchange.process import LocalBinance  # noqa: E402
from tests.livetrade import SYMBOL, live_venue, order, top  # noqa: E402


def _ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"median {statistics.median(xs):.3f} ms, p90 {xs[int(len(xs) * 0.9)]:.3f} ms (n={len(xs)})"


def journal_commit(url: str, n: int) -> list[float]:
    engine = connect(url)
    j = J.Journal(engine)
    out = []
    run = uuid.uuid4().hex[:8]
    for i in range(n):
        o = J.JournalOrder(f"bench{run}{i}", f"{run}-{i}", run, i, "binance", SYMBOL, "buy", "limit_ioc",
                           Decimal("0.01"), Decimal("60000"), "BTC", "USDT")
        t = time.perf_counter()
        j.new(o, time.time_ns())
        out.append((time.perf_counter() - t) * 1e3)
    engine.dispose()
    return out


async def wire(venue: LocalBinance, url: str, n: int) -> tuple[list[float], list[float]]:
    engine = connect(url)
    runner = JournalRunner(J.Journal(engine))
    ours: list[float] = []
    plain: list[float] = []
    try:
        async with live_venue(venue, runner, run_id=uuid.uuid4().hex[:8]) as lv:
            ex = lv.exchange
            ex.enableRateLimit = False  # the throttle would space both paths alike: measure our own work
            wire_at: list[float] = []
            fetch = ex.fetch

            async def stamped(url, method="GET", headers=None, body=None):  # type: ignore[no-untyped-def]
                if method == "POST":
                    wire_at.append(time.perf_counter())
                return await fetch(url, method, headers, body)

            ex.fetch = stamped
            bid, _ = top(venue)
            low = bid - 2000
            for i in range(n):
                o = order("binance", "buy", "0.001", str(low), f"b-{i}", arb_id=i)
                t = time.perf_counter()
                await lv.place(o)
                ours.append((wire_at[-1] - t) * 1e3)
                t = time.perf_counter()
                await ex.create_order(SYMBOL, "limit", "buy", 0.001, float(low),
                                      {"timeInForce": "IOC", "newClientOrderId": f"plain{uuid.uuid4().hex[:20]}"})
                plain.append((wire_at[-1] - t) * 1e3)
    finally:
        runner.close()
        engine.dispose()
    return ours, plain


def private_schema(url: str) -> tuple[str, Callable[[], None]]:
    """A fresh schema of the PostgreSQL database at ``url`` (the database may be shared and
    migrated by other code): its URL, and how to drop it."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")

    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=100)
    ap.add_argument("--pg", default="", help="a PostgreSQL URL to measure the journal on too")
    args = ap.parse_args()
    data = ROOT.parent / "shared" / "data" / "binance-2024-08-08"
    drop = None
    if args.pg:
        args.pg, drop = private_schema(args.pg)
    try:
        return _run(args, data)
    finally:
        if drop is not None:
            drop()


def _run(args: argparse.Namespace, data: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{tmp}/journal.db"
        print(f"journal commit (SQLite, WAL):  {_ms(journal_commit(sqlite, args.orders))}")
        if args.pg:
            print(f"journal commit (PostgreSQL):   {_ms(journal_commit(args.pg, args.orders))}")
        venue = LocalBinance(Path(tmp) / "venue", [data / "spot_btcusdt_20240808.gz",
                                                   data / "spot_btcusdt_20240809.gz"], 2000).start()
        try:
            for name, url in [("SQLite", sqlite)] + ([("PostgreSQL", args.pg)] if args.pg else []):
                ours, plain = asyncio.run(wire(venue, url, args.orders))
                mo, mp = statistics.median(ours), statistics.median(plain)
                print(f"intent -> wire, LiveVenue ({name} journal): {_ms(ours)}")
                print(f"intent -> wire, plain ccxt create_order:  {_ms(plain)}")
                print(f"  overhead we add ({name}): {mo - mp:.3f} ms median ({mo / mp:.1f}x the plain call)")
        finally:
            venue.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
