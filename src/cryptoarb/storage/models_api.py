"""Tables of the REST API's tokens (migration ``0005_api``); the users are ``models.User``.

Refresh tokens are recorded when issued, so that a refresh rotates them (the old one is marked
``used_at``), a second use of one is detected (the whole ``family`` -- every token descended from
one login -- is then revoked) and a logout survives restarts. Access tokens are short-lived and
not recorded, except when revoked early by a logout (``api_revoked_access``, until they expire).
Only token ids (``jti``) are stored, never a token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from cryptoarb.storage.coltypes import UTCDateTime
from cryptoarb.storage.models import ID, Base


class RefreshToken(Base):
    __tablename__ = "api_refresh_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    username: Mapped[str] = mapped_column(ID, index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # rotated: a second use is a theft
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RevokedAccess(Base):
    __tablename__ = "api_revoked_access"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
