"""Storage adapter: schema, connection errors and the background writer, on SQLite and PostgreSQL.

PostgreSQL tests use the server at 127.0.0.1:5432 (database ``test``, user ``postgres``) with a
fresh schema per test. If it is unreachable they are skipped, or fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, func, select, text

from cryptoarb.core.opportunity import BUY, SELL, Opportunity, OrderIntent
from cryptoarb.core.orders import ArbStatus, ArbTrade, Fill, Order, OrderStatus
from cryptoarb.core.pnl import PnlSnapshot
from cryptoarb.storage import StorageError, StorageWriter, connect, upgrade
from cryptoarb.storage.models import Base
from cryptoarb.storage.urls import normalize_url

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
D = Decimal
TINY, PRICE, HUGE = D("0.00012345"), D("61837.63"), D("12345678901234567890.123456789012345678")
_pg_down: list[str] = []  # cached reason PostgreSQL is unreachable ("" when reachable)


def _pg_unreachable() -> str:
    if not _pg_down:
        try:
            psycopg.connect(PG_URL, connect_timeout=3).close()
            _pg_down.append("")
        except psycopg.Error as exc:
            _pg_down.append(f"PostgreSQL at {PG_URL} unreachable: {str(exc).strip().splitlines()[0]}")
    return _pg_down[0]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and (reason := _pg_unreachable()):
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Any) -> Iterator[str]:
    """A bare SQLite path, or the PostgreSQL URL with its own fresh schema on the search path."""
    if backend == "sqlite":
        yield str(tmp_path / "test.db")
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = connect(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def writer(engine: Engine) -> Iterator[StorageWriter]:
    w = StorageWriter(engine, "run-1", retries=1, backoff=0.01)
    yield w
    w.close()


def rows(engine: Engine, table: str, order_by: str = "id") -> list[dict[str, Any]]:
    t = Base.metadata.tables[table]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t).order_by(t.c[order_by])).mappings()]


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Base.metadata.tables[table])).scalar_one())


def wait_for(cond: Callable[[], bool], timeout: float = 5) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def make_order(oid: str = "o-1", qty: Decimal = TINY, side: str = "buy") -> Order:
    return Order(oid, "binance", "BTC/USDT", side, qty, D("61900"), PRICE, created_ns=1_700_000_000_000_000_001)


def make_fill(oid: str = "o-1", qty: Decimal = TINY) -> Fill:
    return Fill(oid, "binance", "BTC/USDT", "buy", PRICE, qty, D("0.000000061837"), "USDT", ts_ns=2**62)


def make_opp(i: int = 1) -> Opportunity:
    buy = OrderIntent("binance", "BTC/USDT", BUY, 0.01, 61900.0, 61837.63)
    sell = OrderIntent("okx", "BTC/USDT", SELL, 0.01, 61800.0, 61850.0)
    return Opportunity(i, "BTC", "spot", buy, sell, 0.01, 61837.63, 61850.0, 618.4, 0.12, 0.0047, 10, 2**62)


# -- schema and connection ------------------------------------------------------------------------


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(ctx, Base.metadata) == []
        from alembic.script import ScriptDirectory

        from cryptoarb.storage.migrate import alembic_config

        # the newest revision, whatever its name (branches add theirs and the chain is re-linked)
        assert ctx.get_current_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    upgrade(engine)  # idempotent at head
    assert count(engine, "orders") == 0


def test_normalize_url() -> None:
    assert str(normalize_url(None)) == "sqlite:///cryptoarb.db"
    assert str(normalize_url("data/foo.db")) == "sqlite:///data/foo.db"
    assert str(normalize_url("/abs/foo.db")) == "sqlite:////abs/foo.db"
    assert normalize_url(PG_URL).drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("postgresql://postgres:s3cret@127.0.0.1:1/test", "127.0.0.1:1/test"),
        ("postgresql://u:s3cret@host:notaport/db", "invalid database URL"),
        ("nosuchdialect://u:s3cret@h/db", "nosuchdialect"),
        ("/nonexistent-dir/sub/x.db", "/nonexistent-dir/sub/x.db"),
    ],
)
def test_bad_url_gives_storage_error(url: str, expect: str) -> None:
    with pytest.raises(StorageError) as info:
        connect(url)
    msg = str(info.value)
    assert expect in msg and "s3cret" not in msg and "\n" not in msg


# -- writer ---------------------------------------------------------------------------------------


def test_round_trip_every_kind(engine: Engine, writer: StorageWriter) -> None:
    writer.start_run("replay", {"fees": D("0.001"), "venues": ["binance", "okx"]})
    writer.opportunity(make_opp())
    order = make_order(qty=HUGE)
    order.arb_id = 7
    order.transition(OrderStatus.SUBMITTED, 5)
    order.add_fill(make_fill(qty=TINY))
    writer.order(order)
    writer.fill(make_fill(qty=TINY))
    trade = ArbTrade(7, 1, "BTC", order, make_order("o-2", side="sell"), D("-0.5"), TINY, created_ns=3)
    writer.arb_trade(trade)
    writer.balances(9, [("binance", "USDT", PRICE), ("binance", "BTC", -TINY), ("okx", "X", HUGE)])
    writer.feature({"ts_ns": 11, "group": "BTC", "buy_key": "binance BTC/USDT", "sell_key": "okx BTC/USDT",
                    "spread_bps": 2.1, "net_bps": -0.3, "buy_depth_quote": 1e5, "sell_depth_quote": 2e5,
                    "features": {"imb": 0.25}, "vol": float("nan")})  # fmt: skip
    writer.audit("alice", "login", {"ip": "10.0.0.1", "amount": D("1.5")})
    writer.end_run()
    writer.flush()
    assert writer.errors == [] and writer.rows_lost == 0

    (run,) = rows(engine, "runs")
    assert run["mode"] == "replay" and run["ended_ns"] >= run["started_ns"] > 0
    assert run["config"] == {"fees": "0.001", "venues": ["binance", "okx"]}
    (opp,) = rows(engine, "opportunities")
    assert (opp["run_id"], opp["id"], opp["buy_vwap"], opp["local_ns"]) == ("run-1", 1, 61837.63, 2**62)
    (o,) = rows(engine, "orders")
    assert o["qty"] == HUGE and str(o["filled_qty"]) == "0.00012345" and str(o["avg_price"]) == "61837.63"
    assert (o["status"], o["arb_id"], o["created_ns"]) == ("partially_filled", 7, 1_700_000_000_000_000_001)
    (f,) = rows(engine, "fills")
    assert (f["price"], f["qty"], f["fee"], f["ts_ns"]) == (PRICE, TINY, D("0.000000061837"), 2**62)
    assert all(isinstance(f[k], Decimal) for k in ("price", "qty", "fee"))
    (a,) = rows(engine, "arb_trades")
    assert (a["status"], a["expected_pnl"], a["expected_qty_base"], a["closed_ns"]) == (
        "pending",
        D("-0.5"),
        TINY,
        None,
    )
    bal = [(b["venue"], b["asset"], b["amount"]) for b in rows(engine, "balances")]
    assert bal == [("binance", "USDT", PRICE), ("binance", "BTC", -TINY), ("okx", "X", HUGE)]
    assert str(bal[0][2]) == "61837.63" and str(bal[2][2]) == str(HUGE)
    (feat,) = rows(engine, "training_features")
    assert feat["features"] == {"imb": 0.25, "vol": None} and feat["label"] is None and feat["run_id"] == "run-1"
    (aud,) = rows(engine, "audit_log")
    assert aud["detail"] == {"ip": "10.0.0.1", "amount": "1.5"} and aud["ts"].utcoffset().total_seconds() == 0


def test_decimals_round_like_postgresql(engine: Engine, writer: StorageWriter) -> None:
    writer.balances(1, [("v", "a", D("0.1234567890123456785")), ("v", "b", D("-0.0000000000000000005"))])
    writer.balances(1, [("v", "c", 0.1)])  # a float means its repr, not its binary expansion
    writer.flush()
    amounts = [b["amount"] for b in rows(engine, "balances")]
    assert amounts == [D("0.123456789012345679"), D("-0.000000000000000001"), D("0.1")]


def test_pnl_snapshots_are_stored_exactly(engine: Engine, writer: StorageWriter) -> None:
    realised, unrealised = D("-298.035120244997912345678901234"), D("12.5")
    snap = PnlSnapshot("USDT", float(realised), float(unrealised), float(realised + unrealised), 1.5, 178660.25,
                       (realised, unrealised, realised + unrealised))
    writer.pnl(7, snap)
    writer.flush()
    (row,) = rows(engine, "pnl")
    assert row["run_id"] == "run-1" and row["ts_ns"] == 7 and row["currency"] == "USDT"
    assert row["realised"] == D("-298.035120244997912346") and row["unrealised"] == D("12.5")
    assert row["total"] == D("-285.535120244997912346")
    assert row["unhedged_quote"] == 1.5 and row["max_unhedged_quote"] == 178660.25


def test_order_upsert_ends_in_final_state(engine: Engine, writer: StorageWriter) -> None:
    order = make_order(qty=D("0.002"))
    writer.order(order)
    writer.flush()
    assert rows(engine, "orders")[0]["status"] == "new"
    order.transition(OrderStatus.SUBMITTED, 10)
    writer.order(order)
    for qty, price, ts in ((D("0.0005"), D("61837.63"), 11), (D("0.0015"), D("61837.64"), 12)):
        fill = Fill(order.id, "binance", "BTC/USDT", "buy", price, qty, D("0.01"), "USDT", ts)
        order.add_fill(fill)
        writer.order(order)  # several states of one order in the same batch
        writer.fill(fill)
    writer.flush()
    (o,) = rows(engine, "orders")
    assert (o["status"], o["filled_qty"], o["fee"], o["updated_ns"]) == ("filled", D("0.002"), D("0.02"), 12)
    assert o["avg_price"] == (D("0.0005") * D("61837.63") + D("0.0015") * D("61837.64")) / D("0.002")
    assert count(engine, "fills") == 2


def test_snapshot_taken_at_call_time(engine: Engine, writer: StorageWriter) -> None:
    order = make_order()
    trade = ArbTrade(1, 1, "BTC", order, make_order("o-2"), D("1"), TINY, created_ns=1)
    writer.order(order)
    writer.arb_trade(trade)
    order.transition(OrderStatus.REJECTED, 99, "no balance")  # mutated, not re-queued
    trade.status, trade.realized_pnl, trade.closed_ns = ArbStatus.FAILED, D("-1"), 5
    writer.flush()
    assert rows(engine, "orders")[0]["status"] == "new"
    t = rows(engine, "arb_trades")[0]
    assert (t["status"], t["realized_pnl"], t["closed_ns"]) == ("pending", D("0"), None)
    writer.arb_trade(trade)
    writer.flush()
    t = rows(engine, "arb_trades")[0]
    assert (t["status"], t["realized_pnl"], t["closed_ns"]) == ("failed", D("-1"), 5)


def test_flush_semantics(engine: Engine) -> None:
    with StorageWriter(engine, "r", batch_size=10, flush_interval=60) as w:
        w.flush(timeout=2)  # nothing queued: returns at once
        for i in range(25):
            w.opportunity(make_opp(i))
        assert wait_for(lambda: count(engine, "opportunities") == 20)  # two full batches
        time.sleep(0.2)
        assert count(engine, "opportunities") == 20  # the rest waits for the interval...
        w.flush()
        assert count(engine, "opportunities") == 25  # ...or a flush
    with StorageWriter(engine, "r2", batch_size=1000, flush_interval=0.05) as w:
        w.opportunity(make_opp())
        assert wait_for(lambda: count(engine, "opportunities") == 26)  # interval elapsed


def test_bad_records_lose_only_themselves(engine: Engine, writer: StorageWriter) -> None:
    writer.order(make_order("ok-1"))
    writer.order(make_order("too-big", qty=D("1e25")))  # exceeds NUMERIC(38, 18)
    writer.feature({"ts_ns": 1, "group": "BTC"})  # required keys missing
    writer.fill(make_fill("ok-1"))
    writer.fill(make_fill("no-such-order"))  # foreign key violation: fails the batch, then alone
    writer.fill(make_fill("ok-1"))
    writer.opportunity(make_opp())
    writer.flush()
    assert writer.rows_lost == 3 and len(writer.errors) == 3
    assert [o["id"] for o in rows(engine, "orders")] == ["ok-1"]
    assert count(engine, "fills") == 2 and count(engine, "opportunities") == 1
    assert any("fills" in e for e in writer.errors)


def test_dropped_table_is_reported_not_raised(engine: Engine, writer: StorageWriter) -> None:
    writer.opportunity(make_opp(1))
    writer.flush()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE training_features"))
    writer.feature({"ts_ns": 1, "group": "g", "buy_key": "a", "sell_key": "b", "spread_bps": 1,
                    "net_bps": 1, "buy_depth_quote": 1, "sell_depth_quote": 1})  # fmt: skip
    writer.opportunity(make_opp(2))
    writer.flush()
    assert writer.rows_lost == 1 and writer.failed_batches == 1
    assert "training_features" in writer.errors[0]
    assert count(engine, "opportunities") == 2  # the rest of the batch was written
    writer.opportunity(make_opp(3))  # and the writer carries on
    writer.flush()
    assert count(engine, "opportunities") == 3


def test_unreachable_database_is_reported_not_raised(backend: str, tmp_path: Any) -> None:
    url = (
        "sqlite:////nonexistent-dir/sub/x.db"
        if backend == "sqlite"
        else "postgresql+psycopg://postgres@127.0.0.1:1/test"
    )
    broken = create_engine(url)
    w = StorageWriter(broken, "r", retries=2, backoff=0.01)
    w.start_run("live", {})
    for i in range(100):
        w.order(make_order(f"o-{i}"))
    # the hot path never waits for the database: nothing was tried (so nothing lost) before flush
    assert (w.rows_lost, w.failed_batches) == (0, 0)
    w.flush()
    assert w.rows_lost == 101 and w.failed_batches == 1
    errors = w.close()
    assert errors and all("lost" in e for e in errors)
    w.order(make_order("late"))  # after close: counted, not raised
    assert w.rows_lost == 102
    broken.dispose()
