"""Persistence: schema (models + Alembic migrations), connection, and the background writer.

Typical use: ``engine = connect(url)`` (migrates to the newest schema), then
``with StorageWriter(engine, run_id) as w: w.start_run("replay", config); w.order(order); ...``
where every recording call is cheap and non-blocking.
"""

from cryptoarb.storage.db import StorageError, connect
from cryptoarb.storage.migrate import upgrade
from cryptoarb.storage.models import Base
from cryptoarb.storage.writer import StorageWriter

__all__ = ["Base", "StorageError", "StorageWriter", "connect", "upgrade"]
