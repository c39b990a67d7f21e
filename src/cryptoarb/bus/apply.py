"""Bus events into the shared database, each exactly once.

An event's rows are built by the storage writer's own builders (``storage.rows``) and written
in one transaction with the event's key in ``bus_events`` (``ON CONFLICT DO NOTHING
RETURNING``): only the events whose key was new write rows. Orders and arbitrage trades are
latest-state rows, so an older state arriving late never overwrites a newer one (orders:
``updated_ns``; trades: a settled trade is final).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from msgspec.structs import astuple
from sqlalchemy import Connection, Executable, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite

from cryptoarb.bus import messages as M
from cryptoarb.storage import rows as R
from cryptoarb.storage.models import Base

Built = list[tuple[str, list[R.Row]]]


def _payload(ev: M.Event) -> tuple[int, Any] | None:
    """The (storage kind, payload) the writer's builders take; None: not stored."""
    if isinstance(ev, M.OppEvent):
        return R.OPP, ev
    if isinstance(ev, M.OrderEvent):
        return R.ORDER, astuple(ev)[2:]
    if isinstance(ev, M.FillEvent):
        return R.FILL, astuple(ev)[2:]
    if isinstance(ev, M.TradeEvent):
        return R.ARB, astuple(ev)[2:]
    if isinstance(ev, M.BalancesEvent):
        return R.BALANCES, (ev.ts_ns, ev.rows)
    if isinstance(ev, M.PnlEvent):
        return R.PNL, (ev.ts_ns, (ev.currency, ev.realised, ev.unrealised, ev.total, ev.unhedged_quote,
                                  ev.max_unhedged_quote))
    if isinstance(ev, M.FeatureEvent):
        return R.FEATURE, R.feature_snapshot(ev.row)
    if isinstance(ev, M.AuditEvent):
        return R.AUDIT, (ev.ts, ev.actor, ev.action, ev.detail)
    if isinstance(ev, M.RunEvent):
        if ev.ended_ns is None:
            return R.RUN_START, (ev.mode, ev.config, ev.started_ns)
        return R.RUN_END, ev.ended_ns
    return None


def stored(ev: M.Event) -> bool:
    return not isinstance(ev, M.BookTopEvent)


def build(ev: M.Event) -> Built:
    """The rows of one event, per target; raises on a bad value (a data error, not transient)."""
    p = _payload(ev)
    if p is None:
        return []
    target, fn = R.BUILDERS[p[0]]
    return [(target, fn(p[1], ev.run))]


class Applier:
    """Writes events to one database (PostgreSQL, or SQLite for the one-process tests)."""

    def __init__(self) -> None:
        self._stmts: dict[tuple[str, str], Executable] = {}

    def apply(self, conn: Connection, events: list[M.Event]) -> int:
        """Write the events whose key is new, in one transaction (the caller's); returns how many."""
        events = [e for e in events if stored(e)]
        if not events:
            return 0
        now = time.time_ns()
        table = Base.metadata.tables["bus_events"]
        keys = [{"key": M.key(e), "kind": type(e).__name__[:-5].lower(), "applied_ns": now} for e in events]
        ins = self._dialect_insert(conn)(table).on_conflict_do_nothing(index_elements=["key"])
        new = set(conn.execute(ins.returning(table.c.key), keys).scalars()) if conn.dialect.name == "postgresql" \
            else _sqlite_new(conn, table, keys)
        by_target: dict[str, list[R.Row]] = {t: [] for t in R.TARGET_ORDER}
        n = 0
        for e in events:
            if M.key(e) in new:
                n += 1
                for target, rows in build(e):
                    by_target[target].extend(rows)
        for target in R.TARGET_ORDER:
            rows = by_target[target]
            if rows:
                conn.execute(self._stmt(target, conn.dialect.name), rows)
        return n

    def _dialect_insert(self, conn: Connection) -> Callable[..., Any]:
        return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    def _stmt(self, target: str, dialect: str) -> Executable:
        s = self._stmts.get((target, dialect))
        if s is None:
            s = self._stmts[(target, dialect)] = _statement(target, dialect)
        return s


def _sqlite_new(conn: Connection, table: Any, keys: list[dict[str, Any]]) -> set[str]:
    """SQLite's executemany has no RETURNING: one row at a time (tests only)."""
    new: set[str] = set()
    for k in keys:
        r = conn.execute(sqlite.insert(table).values(k).on_conflict_do_nothing(index_elements=["key"]))
        if r.rowcount:
            new.add(k["key"])
    return new


def _statement(target: str, dialect: str) -> Executable:
    if target == "run_end":
        runs = Base.metadata.tables["runs"]
        return update(runs).where(runs.c.id == bindparam("b_id")).values(ended_ns=bindparam("b_ended_ns"))
    table = Base.metadata.tables[target]
    keys = R.UPSERT_KEYS.get(target)
    if not keys:
        return insert(table)
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    if target in ("runs", "opportunities"):
        return ins.on_conflict_do_nothing(index_elements=list(keys))
    new = {c.name: ins.excluded[c.name] for c in table.columns if c.name not in keys}
    if target == "orders":  # a late older state never replaces a newer one
        return ins.on_conflict_do_update(index_elements=list(keys), set_=new,
                                         where=table.c.updated_ns <= ins.excluded.updated_ns)
    return ins.on_conflict_do_update(index_elements=list(keys), set_=new,  # arb_trades: settled is final
                                     where=table.c.closed_ns.is_(None))
