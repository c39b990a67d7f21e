"""API users: names, roles and argon2id password hashes in the ``users`` table.

``arb user add/list/remove/passwd`` and the API's login use these functions. A login for an
unknown user still runs one argon2 verification (against a dummy hash), so the answer time does
not tell which user names exist.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cryptoarb.storage.models import User, utcnow
from cryptoarb.storage.models_api import RefreshToken

ROLES = ("viewer", "admin")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes anything, but nobody needs more; a bound on login work

_hasher = PasswordHasher()  # argon2id, argon2-cffi's defaults (RFC 9106 low-memory profile)
_dummies: dict[int, str] = {}


def use_hasher(hasher: PasswordHasher) -> PasswordHasher:
    """Hash new passwords with ``hasher`` (the previous one is returned). Tests use cheaper
    parameters; stored hashes keep verifying, argon2 hashes carry their own parameters."""
    global _hasher
    old, _hasher = _hasher, hasher
    return old


def _dummy() -> str:
    """A hash made with the current parameters: what an unknown user's login is checked against."""
    h = _dummies.get(id(_hasher))
    if h is None:
        h = _dummies[id(_hasher)] = _hasher.hash(secrets.token_urlsafe(16))
    return h


class UserError(ValueError):
    """A user name, role or password that cannot be used; the message says why."""


@dataclass(frozen=True)
class UserInfo:
    username: str
    role: str
    created_at: datetime
    disabled: bool


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise UserError(f"user name {name!r}: 1-64 characters, letters, digits and _ . @ - (starting with a letter "
                        f"or digit)")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"password: at most {MAX_PASSWORD} characters")
    return password


def add_user(db: Engine, name: str, role: str, password: str) -> UserInfo:
    check_name(name)
    check_role(role)
    digest = _hasher.hash(check_password(password))
    now = utcnow()
    try:
        with db.begin() as conn:
            conn.execute(insert(User).values(username=name, password_hash=digest, role=role, created_at=now,
                                             disabled=False, tokens_after=None))
    except IntegrityError:
        raise UserError(f"user {name!r} already exists") from None
    return UserInfo(name, role, now, False)


def list_users(db: Engine) -> list[UserInfo]:
    with db.connect() as conn:
        rows = conn.execute(select(User.username, User.role, User.created_at, User.disabled)
                            .order_by(User.username)).all()
    return [UserInfo(r.username, r.role, r.created_at, r.disabled) for r in rows]


def remove_user(db: Engine, name: str) -> None:
    with db.begin() as conn:
        if conn.execute(delete(User).where(User.username == name)).rowcount == 0:
            raise UserError(f"no user {name!r}")
        conn.execute(delete(RefreshToken).where(RefreshToken.username == name))


def set_password(db: Engine, name: str, password: str) -> None:
    """New password; every token issued before now stops working."""
    digest = _hasher.hash(check_password(password))
    now = utcnow()
    with db.begin() as conn:
        done = conn.execute(update(User).where(User.username == name).values(password_hash=digest, tokens_after=now))
        if done.rowcount == 0:
            raise UserError(f"no user {name!r}")
        conn.execute(update(RefreshToken).where(RefreshToken.username == name, RefreshToken.revoked_at.is_(None))
                     .values(revoked_at=now))


def exists(db: Engine, name: str) -> bool:
    with db.connect() as conn:
        return conn.execute(select(User.id).where(User.username == name)).first() is not None


def verify(db: Engine, name: str, password: str) -> UserInfo | None:
    """The user when ``password`` is theirs (and they are enabled), else None."""
    with db.connect() as conn:
        row = conn.execute(select(User).where(User.username == name)).first() if NAME.match(name) else None
    digest = row.password_hash if row is not None else _dummy()
    try:
        _hasher.verify(digest, password[:MAX_PASSWORD])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled:
        return None
    if _hasher.check_needs_rehash(digest):
        with db.begin() as conn:
            conn.execute(update(User).where(User.username == name).values(password_hash=_hasher.hash(password)))
    return UserInfo(row.username, row.role, row.created_at, row.disabled)


def one_off_admin(db: Engine) -> tuple[str, str]:
    """A new admin with a random name suffix and password (the demo's dev mode): (name, password)."""
    for _ in range(10):
        name, password = f"admin-{secrets.token_hex(2)}", secrets.token_urlsafe(12)
        try:
            add_user(db, name, "admin", password)
        except UserError:
            continue
        return name, password
    raise UserError("could not create a one-off admin (10 name collisions)")
