"""Open the database and bring its schema up to date.

Everything that can go wrong while doing so (unparsable URL, missing driver, server down,
wrong credentials, a schema newer than this code) becomes a ``StorageError`` with a one-line
message naming the URL (password hidden), because that is what a user needs to fix it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from cryptoarb.storage.migrate import upgrade
from cryptoarb.storage.urls import normalize_url, redact

log = logging.getLogger(__name__)


class StorageError(Exception):
    """The database cannot be used; the message says which one and why."""


def connect(url: str | None = None, *, migrate: bool = True, **engine_kw: Any) -> Engine:
    """An Engine for ``url``, migrated to the newest schema.

    ``url``: ``None`` for ``sqlite:///cryptoarb.db``, a bare path for a SQLite file,
    ``:memory:`` for a private in-memory SQLite (tests), or any SQLAlchemy URL;
    ``postgresql://`` uses psycopg 3. ``engine_kw`` goes to ``create_engine``.
    """
    shown = redact(url or "")
    try:
        parsed = normalize_url(url)
    except (SQLAlchemyError, ValueError) as exc:
        raise StorageError(f"invalid database URL {shown!r}: {_one_line(exc)}") from None
    shown = redact(parsed)
    try:
        engine = create_engine(parsed, **_engine_options(parsed, engine_kw))
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise StorageError(f"cannot use database URL {shown!r}: {_one_line(exc)}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if migrate:
            upgrade(engine)
        else:
            with engine.connect():
                pass
    except (SQLAlchemyError, CommandError, OSError) as exc:
        engine.dispose()
        raise StorageError(f"cannot open database {shown!r}: {_one_line(exc)}") from None
    log.info("storage: connected to %s", shown)
    return engine


def _engine_options(url: URL, given: dict[str, Any]) -> dict[str, Any]:
    opts: dict[str, Any] = {"json_serializer": _json_dumps}
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            # One shared connection, usable from the writer thread: otherwise every thread
            # would see its own empty in-memory database.
            opts["poolclass"] = StaticPool
            opts["connect_args"] = {"check_same_thread": False}
    elif url.get_backend_name() == "postgresql":
        opts["pool_pre_ping"] = True
        if "connect_timeout" not in url.query:
            opts["connect_args"] = {"connect_timeout": 5}
    if "connect_args" in given and "connect_args" in opts:
        given = {**given, "connect_args": {**opts["connect_args"], **given["connect_args"]}}
    return {**opts, **given}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Foreign keys on (as on PostgreSQL); WAL so readers (a dashboard) do not block the
    writer; a busy timeout instead of failing at once when another process holds the lock."""
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
    finally:
        cur.close()


def _json_dumps(obj: Any) -> str:
    """JSON columns accept Decimals, datetimes and enums (written as strings)."""
    return json.dumps(obj, default=str)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.split("(Background on this error")[0].strip()
