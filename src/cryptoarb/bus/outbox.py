"""The recorder's outbox: bus events wait in a local SQLite file until the database has them.

The consumer thread commits a batch here (``INSERT OR IGNORE`` by event key, fsync'd) and only
then acknowledges it on the bus; a relay thread moves batches into PostgreSQL (``bus.apply``:
rows and keys in one transaction) and deletes them here once committed. A crash at any point
loses nothing: before the outbox commit the bus delivers the batch again; after it, the file
still holds it; between the database commit and the delete, ``bus_events`` makes the second
write a no-op. A database outage only grows the outbox (its depth is a metric), and the relay
retries with backoff until the database is back.

An event the database refuses for its data (not the connection) is retried a few times (a fill
can arrive before its order, on another stream), then moved to ``dead`` and counted.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from cryptoarb.bus import messages as M
from cryptoarb.bus.apply import Applier

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20


def _open(path: Path) -> sqlite3.Connection:
    c = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute("CREATE TABLE IF NOT EXISTS outbox (n INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE NOT NULL,"
              " body BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)")
    c.execute("CREATE TABLE IF NOT EXISTS dead (key TEXT PRIMARY KEY, body BLOB NOT NULL, reason TEXT NOT NULL)")
    return c


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


class Outbox:
    def __init__(self, path: Path, db: Engine, batch: int = 500) -> None:
        self.path = path
        self.db = db
        self.batch = batch
        self._in = _open(path)
        self._lock = threading.Lock()
        self.applier = Applier()
        self.written = 0  # events applied to the database by this process
        self.dead = 0
        self.db_errors = 0
        self.db_up = True
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._relay, name="outbox-relay", daemon=True)
        self._thread.start()

    def put(self, events: Sequence[M.Event]) -> None:
        """Durably queue ``events`` (call before acknowledging them on the bus)."""
        rows = [(M.key(e), M.encode(e)) for e in events]
        with self._lock:
            self._in.execute("BEGIN IMMEDIATE")
            self._in.executemany("INSERT OR IGNORE INTO outbox (key, body) VALUES (?, ?)", rows)
            self._in.execute("COMMIT")
        self._wake.set()

    def depth(self) -> int:
        with self._lock:
            return int(self._in.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def drain(self, timeout: float) -> bool:
        """Wait until the outbox is empty (everything in the database); False on timeout."""
        deadline = time.monotonic() + timeout
        while self.depth():
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.05)
        return True

    def close(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        with self._lock:
            self._in.close()

    # -- relay thread ---------------------------------------------------------------------
    def _relay(self) -> None:
        out = _open(self.path)
        backoff = 0.1
        while not self._stop.is_set():
            rows = out.execute("SELECT n, key, body, attempts FROM outbox ORDER BY n LIMIT ?", (self.batch,)).fetchall()
            if not rows:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            try:
                if not self._write(out, rows):
                    self._stop.wait(0.2)  # only events waiting for a parent: give it time
                backoff = 0.1
                if not self.db_up:
                    log.warning("outbox: database back; %d queued", self.depth())
                self.db_up = True
            except Exception as exc:
                if not _transient(exc):
                    log.exception("outbox: unexpected error")
                self.db_errors += 1
                if self.db_up:
                    log.warning("outbox: database unavailable, keeping events (%s)", str(exc).splitlines()[0])
                self.db_up = False
                self._stop.wait(backoff)
                backoff = min(2.0, backoff * 2)
        out.close()

    def _write(self, out: sqlite3.Connection, rows: list[tuple[int, str, bytes, int]]) -> int:
        events = [M.decode(body) for _, _, body, _ in rows]
        try:
            with self.db.begin() as conn:
                self.written += self.applier.apply(conn, events)
            done = [(n,) for n, *_ in rows]
        except Exception as exc:
            if _transient(exc) or not isinstance(exc, DBAPIError):
                raise
            done = self._one_by_one(out, rows, events)
        with self._lock:
            self._in.execute("BEGIN IMMEDIATE")
            self._in.executemany("DELETE FROM outbox WHERE n = ?", done)
            self._in.execute("COMMIT")
        return len(done)

    def _one_by_one(self, out: sqlite3.Connection, rows: list[tuple[int, str, bytes, int]],
                    events: list[M.Event]) -> list[tuple[int]]:
        """After a data error: each event on its own; refused ones wait (a parent may come)."""
        done: list[tuple[int]] = []
        for (n, key, body, attempts), ev in zip(rows, events, strict=True):
            try:
                with self.db.begin() as conn:
                    self.written += self.applier.apply(conn, [ev])
                done.append((n,))
            except Exception as exc:
                if _transient(exc):
                    raise
                reason = str(getattr(exc, "orig", exc)).splitlines()[0][:300]
                with self._lock:
                    if attempts + 1 >= MAX_ATTEMPTS or not isinstance(exc, IntegrityError):
                        self._in.execute("INSERT OR REPLACE INTO dead (key, body, reason) VALUES (?, ?, ?)",
                                         (key, body, reason))
                        done.append((n,))
                        self.dead += 1
                        log.error("outbox: event %s given up: %s", key, reason)
                    else:
                        self._in.execute("UPDATE outbox SET attempts = attempts + 1 WHERE n = ?", (n,))
        return done
