"""Background writer: the engine thread queues records, a daemon thread writes them in batches.

Recording must never slow down or break trading. So the public methods only snapshot field
values and ``put`` a small tuple on a ``SimpleQueue``; building rows, talking to the database,
retrying and reporting all happen on the writer thread. A batch is written when it reaches
``batch_size`` items or ``flush_interval`` seconds after its first item, in one transaction,
with one executemany per table. A failure is retried with backoff when it looks transient
(connection trouble); when a batch still cannot be written, each table's rows are tried on
their own (and rows one by one for data errors) so one bad row does not lose the rest. What is
lost in the end is counted in ``rows_lost`` and described in ``errors``; nothing is raised to
the caller.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Executable, Table, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from cryptoarb.core.opportunity import Opportunity
from cryptoarb.core.orders import ArbTrade, Fill, Order
from cryptoarb.core.pnl import PnlSnapshot
from cryptoarb.redact import redact_config
from cryptoarb.storage import rows as R
from cryptoarb.storage.models import Base

log = logging.getLogger(__name__)

_FLUSH = -1
_STOP = -2
_MAX_ERRORS = 100

Groups = list[tuple[str, list[R.Row]]]


class StorageWriter:
    """Asynchronous, batched recorder of one run. Call ``close()`` when done (or use ``with``)."""

    def __init__(
        self,
        engine: Engine,
        run_id: str,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        retries: int = 3,
        backoff: float = 0.25,
    ) -> None:
        self.engine = engine
        self.run_id = run_id
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.retries = retries
        self.backoff = backoff
        self.rows_written = 0
        self.rows_lost = 0
        self.failed_batches = 0  # batches that could not be written whole
        self._errors: deque[str] = deque(maxlen=_MAX_ERRORS)
        self._lock = threading.Lock()
        self._q: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._closed = False
        self._statements: dict[str, Executable] = {}
        self._thread = threading.Thread(target=self._loop, name=f"storage-writer-{run_id}", daemon=True)
        self._thread.start()

    # -- hot path: engine thread -------------------------------------------------------------

    def opportunity(self, opp: Opportunity) -> None:
        """Opportunities are not mutated after creation, so the object itself is queued."""
        self._put(R.OPP, opp)

    def order(self, order: Order) -> None:
        """Record the order's current state; call again after every change (upserted by id)."""
        self._put(R.ORDER, R.order_snapshot(order))

    def fill(self, fill: Fill) -> None:
        self._put(R.FILL, R.fill_snapshot(fill))

    def arb_trade(self, trade: ArbTrade) -> None:
        """Record the trade's current state; call again when it settles (upserted by run and id)."""
        self._put(R.ARB, R.arb_snapshot(trade))

    def cycle(self, trade: Any) -> None:
        """Record a cycle's current state (``execution.cycles.CycleTrade``); upserted by run and id."""
        self._put(R.CYCLE, R.cycle_snapshot(trade))

    def balances(self, ts_ns: int, rows: Iterable[tuple[str, str, Decimal]]) -> None:
        """``rows`` as from ``Portfolio.snapshot()``: (venue, currency or symbol, amount)."""
        self._put(R.BALANCES, (ts_ns, tuple(rows)))

    def pnl(self, ts_ns: int, snap: PnlSnapshot) -> None:
        """The run's realised / unrealised / total PnL and exposure at ``ts_ns``."""
        self._put(R.PNL, (ts_ns, R.pnl_snapshot(snap)))

    def feature(self, row: Mapping[str, Any]) -> None:
        """A training row: ts_ns, group, buy_key, sell_key, spread_bps, net_bps, buy_depth_quote,
        sell_depth_quote, optional label and features dict; other keys go into features."""
        self._put(R.FEATURE, R.feature_snapshot(row))

    def spread_sample(self, row: Mapping[str, Any]) -> None:
        """A spread-series sample (docs/ml.md); the dict is built fresh by the caller."""
        self._put(R.SPREAD, row)

    def audit(self, actor: str, action: str, detail: Mapping[str, Any]) -> None:
        self._put(R.AUDIT, (time.time(), actor, action, R.jsonable(redact_config(detail))))

    def leg_incident(self, incident: Any) -> None:
        """A leg-risk incident's current state (upserted by run and trade id)."""
        self._put(R.LEG_INCIDENT, R.incident_snapshot(incident))

    def leg_exposure(self, ts_ns: int, asset: str, qty: Decimal, mark: Decimal, total_quote: float) -> None:
        """One-legged exposure of ``asset`` changed (signed base, its mark, the run's total)."""
        self._put(R.LEG_EXPOSURE, (ts_ns, asset, qty, mark, total_quote))

    def start_run(self, mode: str, config: Mapping[str, Any]) -> None:
        """Record this run (``mode``: replay / demo / paper / live) and its configuration,
        credentials hidden (database passwords, ccxt keys: see :mod:`cryptoarb.redact`)."""
        self._put(R.RUN_START, (mode, redact_config(R.jsonable(config)), time.time_ns()))

    def end_run(self) -> None:
        self._put(R.RUN_END, time.time_ns())

    def _put(self, kind: int, payload: Any) -> None:
        if self._closed:
            self._lose(1, "record queued after close() was dropped")
            return
        self._q.put((kind, payload))

    # -- control ----------------------------------------------------------------------------

    def flush(self, timeout: float = 10) -> None:
        """Block until everything queued so far is committed or given up on (see ``errors``).

        Raises TimeoutError if the writer has not got there within ``timeout`` seconds.
        """
        if not self._thread.is_alive():
            return
        done = threading.Event()
        self._q.put((_FLUSH, done))
        if not done.wait(timeout):
            raise TimeoutError(f"storage writer: not flushed within {timeout}s ({self._q.qsize()} queued)")

    def close(self, timeout: float = 30) -> list[str]:
        """Write what is queued, stop the thread, log a summary and return ``errors``."""
        if not self._closed:
            self._closed = True
            self._q.put((_STOP, threading.Event()))
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._lose(self._q.qsize(), f"writer did not finish within {timeout}s; queued records lost")
            if self.rows_lost:
                log.error(
                    "storage writer closed: %d rows written, %d rows lost in %d failed batches; last error: %s",
                    self.rows_written,
                    self.rows_lost,
                    self.failed_batches,
                    self.errors[-1],
                )
            else:
                log.info("storage writer closed: %d rows written", self.rows_written)
        return self.errors

    @property
    def errors(self) -> list[str]:
        """Descriptions of lost rows, newest last (at most the last 100)."""
        with self._lock:
            return list(self._errors)

    def __enter__(self) -> StorageWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writer thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        batch: list[tuple[int, Any]] = []
        deadline = 0.0
        while True:
            timeout = None if not batch else max(0.0, deadline - time.monotonic())
            try:
                item = self._q.get(timeout=timeout)
            except queue.Empty:
                batch = self._write(batch)
                continue
            kind = item[0]
            if kind in (_FLUSH, _STOP):
                batch = self._write(batch)
                item[1].set()
                if kind == _STOP:
                    return
                continue
            if not batch:
                deadline = time.monotonic() + self.flush_interval
            batch.append(item)
            if len(batch) >= self.batch_size:
                batch = self._write(batch)

    def _write(self, batch: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        """Write ``batch``; never raises, returns a fresh empty batch."""
        if batch:
            try:
                groups = self._build(batch)
                if groups:
                    self._commit(groups)
            except Exception as exc:  # a bug here must not kill the thread
                log.exception("storage writer: unexpected error")
                self.failed_batches += 1
                self._lose(len(batch), f"{type(exc).__name__}: {exc}")
        return []

    def _build(self, batch: list[tuple[int, Any]]) -> Groups:
        """Rows per target in write order; upserted rows deduplicated by key, last one wins."""
        by_target: dict[str, dict[Any, R.Row]] = {t: {} for t in R.TARGET_ORDER}
        for n, (kind, payload) in enumerate(batch):
            target, build = R.BUILDERS[kind]
            try:
                built = build(payload, self.run_id)
            except Exception as exc:
                self._lose(1, f"bad {target} record: {type(exc).__name__}: {exc}")
                continue
            keys = R.UPSERT_KEYS.get(target)
            for i, row in enumerate(built):
                by_target[target][tuple(row[k] for k in keys) if keys else (n, i)] = row
        return [(t, list(rows.values())) for t, rows in by_target.items() if rows]

    def _commit(self, groups: Groups) -> None:
        for attempt in range(self.retries + 1):
            try:
                with self.engine.begin() as conn:
                    for target, rows in groups:
                        self._execute(conn, target, rows)
                self.rows_written += sum(len(rows) for _, rows in groups)
                return
            except Exception as exc:
                transient = _transient(exc)
                log.warning("storage writer: batch failed (attempt %d): %s", attempt + 1, _brief(exc))
                if not transient or attempt == self.retries:
                    break
                time.sleep(self.backoff * 2**attempt)
        self.failed_batches += 1
        self._salvage(groups)

    def _salvage(self, groups: Groups) -> None:
        """Write each table's rows on their own; rows one by one after a data error."""
        for target, rows in groups:
            try:
                self._write_rows(target, rows)
            except Exception as exc:
                if not isinstance(exc, IntegrityError | DataError) or len(rows) == 1:
                    self._lose(len(rows), f"{target}: {_brief(exc)}")
                    continue
                for row in rows:
                    try:
                        self._write_rows(target, [row])
                    except Exception as row_exc:
                        self._lose(1, f"{target}: {_brief(row_exc)}")

    def _write_rows(self, target: str, rows: list[R.Row]) -> None:
        with self.engine.begin() as conn:
            self._execute(conn, target, rows)
        self.rows_written += len(rows)

    def _execute(self, conn: Connection, target: str, rows: list[R.Row]) -> None:
        keys = R.UPSERT_KEYS.get(target)
        if keys and conn.dialect.name not in ("sqlite", "postgresql"):
            _generic_upsert(conn, Base.metadata.tables[target], keys, rows)
        else:
            conn.execute(self._statement(target, conn.dialect.name), rows)

    def _statement(self, target: str, dialect: str) -> Executable:
        stmt = self._statements.get(target)
        if stmt is None:
            stmt = self._statements[target] = _make_statement(target, dialect)
        return stmt

    def _lose(self, n: int, message: str) -> None:
        text = f"{n} row(s) lost: {message}"
        log.error("storage writer: %s", text)
        with self._lock:
            self.rows_lost += n
            self._errors.append(text)


def _make_statement(target: str, dialect: str) -> Executable:
    if target == "run_end":
        runs = Base.metadata.tables["runs"]
        return update(runs).where(runs.c.id == bindparam("b_id")).values(ended_ns=bindparam("b_ended_ns"))
    table = Base.metadata.tables[target]
    keys = R.UPSERT_KEYS.get(target)
    if not keys:
        return insert(table)
    if dialect == "postgresql":
        pg = postgresql.insert(table)
        pg_set = {c.name: pg.excluded[c.name] for c in table.columns if c.name not in keys}
        return pg.on_conflict_do_update(index_elements=list(keys), set_=pg_set)
    lite = sqlite.insert(table)
    lite_set = {c.name: lite.excluded[c.name] for c in table.columns if c.name not in keys}
    return lite.on_conflict_do_update(index_elements=list(keys), set_=lite_set)


def _generic_upsert(conn: Connection, table: Table, keys: tuple[str, ...], rows: list[R.Row]) -> None:
    """Update-then-insert, for dialects without ON CONFLICT."""
    for row in rows:
        where = [table.c[k] == row[k] for k in keys]
        if conn.execute(update(table).where(*where).values(row)).rowcount == 0:
            conn.execute(insert(table).values(row))


def _transient(exc: BaseException) -> bool:
    """Worth retrying: the connection, not the data (SQLite's "database is locked" too)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


def _brief(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
