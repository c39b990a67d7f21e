"""The local venue's durable account state: balances, orders and trades in one SQLite file.

Every change an order makes (the order row, its trades, both balances) is one transaction,
committed (WAL, synchronous=FULL) before the HTTP answer is written: an answer lost on the way
(the "drop response" fault, a crash) never loses or half-applies an order, as on a real venue.
Amounts are exact decimals stored as text. API secrets are never stored: accounts come from the
config file at each start, the database only knows account names.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS balances (
    account TEXT NOT NULL, asset TEXT NOT NULL, free TEXT NOT NULL, locked TEXT NOT NULL,
    PRIMARY KEY (account, asset));
CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, symbol TEXT NOT NULL,
    client_order_id TEXT NOT NULL, side TEXT NOT NULL, type TEXT NOT NULL, time_in_force TEXT NOT NULL,
    price TEXT NOT NULL, orig_qty TEXT NOT NULL, executed_qty TEXT NOT NULL, cum_quote TEXT NOT NULL,
    orig_quote_qty TEXT NOT NULL, status TEXT NOT NULL, time INTEGER NOT NULL, update_time INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS orders_client ON orders (account, client_order_id);
CREATE TABLE IF NOT EXISTS trades (
    trade_id INTEGER PRIMARY KEY AUTOINCREMENT, order_id INTEGER NOT NULL, account TEXT NOT NULL,
    symbol TEXT NOT NULL, price TEXT NOT NULL, qty TEXT NOT NULL, quote_qty TEXT NOT NULL,
    commission TEXT NOT NULL, commission_asset TEXT NOT NULL, time INTEGER NOT NULL,
    is_buyer INTEGER NOT NULL, is_maker INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS trades_account ON trades (account, symbol);
"""

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
ZERO = Decimal(0)


@dataclass
class Order:
    order_id: int
    account: str
    symbol: str
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cum_quote: Decimal
    orig_quote_qty: Decimal
    status: str
    time: int
    update_time: int

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass
class Fill:
    trade_id: int
    order_id: int
    account: str
    symbol: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


def _order(row: sqlite3.Row) -> Order:
    d = dict(row)
    for k in ("price", "orig_qty", "executed_qty", "cum_quote", "orig_quote_qty"):
        d[k] = Decimal(d[k])
    return Order(**d)


def _fill(row: sqlite3.Row) -> Fill:
    d = dict(row)
    for k in ("price", "qty", "quote_qty", "commission"):
        d[k] = Decimal(d[k])
    d["is_buyer"] = bool(d["is_buyer"])
    d["is_maker"] = bool(d["is_maker"])
    return Fill(**d)


class Store:
    """The SQLite file in the state directory; one connection, used by the server's one thread."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "venue.sqlite"
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- transactions ----------------------------------------------------------------------
    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        self.db.execute("ROLLBACK")

    # -- balances --------------------------------------------------------------------------
    def seed(self, account: str, balances: dict[str, Decimal]) -> None:
        """Initial balances of a new account; an account the file already knows keeps its own."""
        known = self.db.execute("SELECT 1 FROM balances WHERE account = ? LIMIT 1", (account,)).fetchone()
        if known is not None:
            return
        self.begin()
        for asset, amount in balances.items():
            self.db.execute("INSERT INTO balances VALUES (?, ?, ?, '0')", (account, asset, str(amount)))
        self.commit()

    def balances(self, account: str) -> dict[str, tuple[Decimal, Decimal]]:
        rows = self.db.execute("SELECT asset, free, locked FROM balances WHERE account = ? ORDER BY asset", (account,))
        return {r["asset"]: (Decimal(r["free"]), Decimal(r["locked"])) for r in rows}

    def free(self, account: str, asset: str) -> Decimal:
        r = self.db.execute("SELECT free FROM balances WHERE account = ? AND asset = ?", (account, asset)).fetchone()
        return Decimal(r["free"]) if r else ZERO

    def move(self, account: str, asset: str, free: Decimal = ZERO, locked: Decimal = ZERO) -> None:
        """Add ``free`` and ``locked`` (either may be negative) to a balance; never below zero."""
        r = self.db.execute("SELECT free, locked FROM balances WHERE account = ? AND asset = ?",
                            (account, asset)).fetchone()
        f = (Decimal(r["free"]) if r else ZERO) + free
        lk = (Decimal(r["locked"]) if r else ZERO) + locked
        if f < 0 or lk < 0:
            raise AssertionError(f"balance of {account} {asset} would go negative: free {f} locked {lk}")
        self.db.execute("INSERT INTO balances VALUES (?, ?, ?, ?) ON CONFLICT (account, asset) "
                        "DO UPDATE SET free = excluded.free, locked = excluded.locked",
                        (account, asset, str(f), str(lk)))

    # -- orders ----------------------------------------------------------------------------
    def insert_order(self, o: dict[str, Any]) -> int:
        cols = ("account", "symbol", "client_order_id", "side", "type", "time_in_force", "price", "orig_qty",
                "executed_qty", "cum_quote", "orig_quote_qty", "status", "time", "update_time")
        cur = self.db.execute(f"INSERT INTO orders ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                              tuple(str(o[c]) if isinstance(o[c], Decimal) else o[c] for c in cols))
        return int(cur.lastrowid or 0)

    def update_order(self, order_id: int, executed_qty: Decimal, cum_quote: Decimal, status: str, now: int) -> None:
        self.db.execute("UPDATE orders SET executed_qty = ?, cum_quote = ?, status = ?, update_time = ? "
                        "WHERE order_id = ?", (str(executed_qty), str(cum_quote), status, now, order_id))

    def order(self, account: str, symbol: str, order_id: int | None = None,
              client_order_id: str | None = None) -> Order | None:
        """By venue id, or else by client id (the latest order that used it, as Binance answers)."""
        if order_id is not None:
            r = self.db.execute("SELECT * FROM orders WHERE account = ? AND symbol = ? AND order_id = ?",
                                (account, symbol, order_id)).fetchone()
        else:
            r = self.db.execute("SELECT * FROM orders WHERE account = ? AND symbol = ? AND client_order_id = ? "
                                "ORDER BY order_id DESC LIMIT 1", (account, symbol, client_order_id)).fetchone()
        return _order(r) if r else None

    def open_orders(self, account: str | None = None, symbol: str | None = None) -> list[Order]:
        q = "SELECT * FROM orders WHERE status IN ('NEW', 'PARTIALLY_FILLED')"
        args: list[Any] = []
        if account is not None:
            q += " AND account = ?"
            args.append(account)
        if symbol is not None:
            q += " AND symbol = ?"
            args.append(symbol)
        return [_order(r) for r in self.db.execute(q + " ORDER BY order_id", args)]

    def orders(self, account: str, symbol: str | None = None, from_id: int | None = None,
               start: int | None = None, end: int | None = None, limit: int = 500) -> list[Order]:
        q = "SELECT * FROM orders WHERE account = ?"
        args: list[Any] = [account]
        for cond, val in (("symbol = ?", symbol), ("order_id >= ?", from_id), ("time >= ?", start),
                          ("time <= ?", end)):
            if val is not None:
                q += " AND " + cond
                args.append(val)
        # Binance: the oldest first, or the most recent ``limit`` ones when no start is given
        if from_id is None and start is None:
            rows = list(self.db.execute(q + " ORDER BY order_id DESC LIMIT ?", [*args, limit]))[::-1]
        else:
            rows = list(self.db.execute(q + " ORDER BY order_id LIMIT ?", [*args, limit]))
        return [_order(r) for r in rows]

    # -- trades ----------------------------------------------------------------------------
    def insert_trade(self, f: dict[str, Any]) -> int:
        cols = ("order_id", "account", "symbol", "price", "qty", "quote_qty", "commission", "commission_asset",
                "time", "is_buyer", "is_maker")
        cur = self.db.execute(f"INSERT INTO trades ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                              tuple(str(f[c]) if isinstance(f[c], Decimal) else f[c] for c in cols))
        return int(cur.lastrowid or 0)

    def trades(self, account: str, symbol: str, order_id: int | None = None, from_id: int | None = None,
               start: int | None = None, end: int | None = None, limit: int = 500) -> list[Fill]:
        q = "SELECT * FROM trades WHERE account = ? AND symbol = ?"
        args: list[Any] = [account, symbol]
        for cond, val in (("order_id = ?", order_id), ("trade_id >= ?", from_id), ("time >= ?", start),
                          ("time <= ?", end)):
            if val is not None:
                q += " AND " + cond
                args.append(val)
        if from_id is None and start is None and order_id is None:
            rows = list(self.db.execute(q + " ORDER BY trade_id DESC LIMIT ?", [*args, limit]))[::-1]
        else:
            rows = list(self.db.execute(q + " ORDER BY trade_id LIMIT ?", [*args, limit]))
        return [_fill(r) for r in rows]
