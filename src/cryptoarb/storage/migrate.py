"""Run the packaged Alembic migrations from code, without an ``alembic.ini``.

The migration scripts ship inside the package (``cryptoarb/storage/migrations``) so an
installed cryptoarb can bring any database it is pointed at up to date by itself.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, text

from cryptoarb.storage.urls import normalize_url

SCRIPT_LOCATION = str(Path(__file__).with_name("migrations"))

# Any constant: serialises concurrent migrations of one PostgreSQL database.
_PG_LOCK_ID = 0x63727970746F


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` built in code, pointing at the packaged scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        # ConfigParser interpolation: a literal % in the URL (encoded password) must be doubled.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | Engine | Connection, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest).

    ``url`` may be a URL/path string, or an Engine or Connection when the caller needs its own
    connect arguments (a PostgreSQL ``search_path``, for instance). Errors propagate as the
    underlying SQLAlchemy/Alembic exceptions; ``db.connect`` turns them into ``StorageError``.
    """
    if isinstance(url, Connection):
        _run(url, revision)
        return
    engine = url if isinstance(url, Engine) else create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            _run(conn, revision)
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def _run(conn: Connection, revision: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)
