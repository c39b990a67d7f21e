"""Alembic environment for cryptoarb.

Used two ways: from code (``cryptoarb.storage.migrate.upgrade``), which passes an open
connection in ``config.attributes["connection"]``; and from the ``alembic`` command line with
``-c src/cryptoarb/storage/migrations/alembic.ini`` when writing a new migration, where the URL
comes from ``CRYPTOARB_DB`` or the ini file.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine

from cryptoarb.storage.models import Base
from cryptoarb.storage.urls import normalize_url

config = context.config
target_metadata = Base.metadata


def _configure(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=target_metadata,
        render_as_batch=conn.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str | None:
    return os.environ.get("CRYPTOARB_DB") or config.get_main_option("sqlalchemy.url")


if context.is_offline_mode():
    context.configure(url=normalize_url(_url()), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        engine = create_engine(normalize_url(_url()))
        try:
            with engine.begin() as conn:
                _configure(conn)
        finally:
            engine.dispose()
