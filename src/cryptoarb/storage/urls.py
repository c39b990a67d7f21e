"""Database URL handling shared by ``connect`` and the migration entry point."""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url

from cryptoarb.redact import redact_text

DEFAULT_URL = "sqlite:///cryptoarb.db"

_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def redact(url: str | URL) -> str:
    """The URL with its password hidden (also one given as a query parameter, such as
    ``?password=``); works on strings too malformed to parse."""
    if isinstance(url, URL):
        return redact_text(url.render_as_string(hide_password=True))
    return redact_text(_PASSWORD.sub(r"\1***@", url))


def normalize_url(url: str | None) -> URL:
    """Parse a user-supplied database location.

    ``None`` is the default SQLite file; anything without ``://`` is a SQLite file path;
    ``postgresql://`` / ``postgres://`` use the psycopg 3 driver (SQLAlchemy would pick
    psycopg2, which is not a dependency). Raises ``ValueError`` (or SQLAlchemy's
    ``ArgumentError``) for a URL that cannot be parsed.
    """
    if url is None or not url.strip():
        url = DEFAULT_URL
    url = url.strip()
    if "://" not in url:
        url = "sqlite://" if url == ":memory:" else f"sqlite:///{url}"
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


SUPPORTED = "sqlite:///FILE, a FILE.db / .sqlite / .sqlite3 path, or postgresql://USER@HOST[:PORT]/DB"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def check_storage_url(url: str) -> None:
    """Refuse, with one line saying what is supported, a storage location a run would be lost in.

    Only SQLite files and PostgreSQL are supported. A bare word (``nonsense``) is not taken for
    a SQLite file name: a bare path must end in .db, .sqlite or .sqlite3. ``sqlite:///``,
    ``sqlite://`` and ``:memory:`` are refused: an in-memory database vanishes with the process
    (use ``--no-store`` to store nothing, explicitly). Raises ``ValueError``.
    """
    u = url.strip()
    shown = redact(u)
    if not u:
        raise ValueError(f"empty storage URL; supported: {SUPPORTED}")
    if u == ":memory:" or u.rstrip("/") in ("sqlite:", "sqlite:/") or u == "sqlite:///":
        raise ValueError(f"{shown!r} is an in-memory database: the run would be lost when the process ends; "
                         "give sqlite:///FILE, or --no-store (storage.enabled = false) to store nothing")
    if "://" not in u:
        if not u.lower().endswith(_SQLITE_SUFFIXES):
            raise ValueError(f"{shown!r} is not a storage URL; supported: {SUPPORTED}")
        return
    scheme = u.split("://", 1)[0].lower()
    if scheme not in ("sqlite", "postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"{shown!r}: unsupported database {scheme!r}; supported: {SUPPORTED}")
    if scheme == "sqlite" and not u.split("://", 1)[1].lstrip("/"):
        raise ValueError(f"{shown!r} has no file name; give sqlite:///FILE")
