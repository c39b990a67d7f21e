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
