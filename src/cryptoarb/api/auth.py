"""Tokens: the signing secret, access/refresh JWTs, rotation and server-side revocation.

Both tokens are HS256 JWTs (the algorithm is pinned on decode: ``alg: none`` or any other is
refused) carrying ``sub``, ``role``, ``typ`` (access/refresh), ``iss``, ``aud``, ``iat``, ``exp``
and ``jti``; every one of them is required. Refresh tokens are recorded (``api_refresh_tokens``):
using one marks it used and issues its successor in the same *family*; a second use of a used or
revoked one revokes the whole family (a stolen token is worth one use at most, and then only to
whoever is first). Logout revokes the family and the access token presented. All of it is in the
database, so it survives restarts and is shared by every API process of one database.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy import Engine, delete, insert, select, update

from cryptoarb.config_api import ApiSettings
from cryptoarb.storage.models import User
from cryptoarb.storage.models_api import RefreshToken, RevokedAccess

ALGORITHM = "HS256"
MIN_SECRET = 32
#: secrets found in tutorials, defaults of other projects and our own examples: never accepted
KNOWN_DEFAULTS = frozenset({
    "secret", "changeme", "change-me", "change_me", "jwt-secret", "jwt_secret", "jwtsecret", "supersecret",
    "your-256-bit-secret", "your-secret-key", "secret-key", "mysecret", "password", "dev", "development",
    "test", "cryptoarb", "please-change-me", "change-this-secret-in-production", "x" * 32, "0" * 32,
})
ACCESS, REFRESH = "access", "refresh"


class SecretRefused(ValueError):
    """The signing secret is missing or weak (and the API is not in dev mode)."""


class TokenError(Exception):
    """A token that is not (or no longer) valid; the message says why, for the client."""


def load_secret(api: ApiSettings, dev: bool = False) -> tuple[str, str]:
    """(secret, where it came from). Order: ``[api] jwt_secret`` (``ARB_API__JWT_SECRET``), then
    ``JWT_SECRET``, then ``[api] jwt_secret_file``. Outside dev mode an empty, short (< 32
    characters) or known-default secret is refused; in dev mode one is generated (tokens then
    end with the process)."""
    where, value = "", ""
    if api.jwt_secret:
        where, value = "api.jwt_secret (ARB_API__JWT_SECRET)", api.jwt_secret
    elif os.environ.get("JWT_SECRET"):
        where, value = "JWT_SECRET", os.environ["JWT_SECRET"]
    elif api.jwt_secret_file:
        path = Path(api.jwt_secret_file)
        try:
            lines = path.read_text().splitlines()
        except OSError as e:
            raise SecretRefused(f"api.jwt_secret_file {path}: cannot read it ({e.strerror or e})") from None
        where, value = f"api.jwt_secret_file {path}", (lines[0].strip() if lines else "")
    problem = weakness(value)
    if problem is None:
        return value, where
    if dev or api.dev:
        return secrets.token_urlsafe(48), "generated (dev mode)"
    src = where or "no JWT secret set (ARB_API__JWT_SECRET, JWT_SECRET or api.jwt_secret_file)"
    raise SecretRefused(f"{src}: {problem}; refusing to start the API (use --dev only for local development)")


def weakness(value: str) -> str | None:
    if not value:
        return "the secret is empty"
    if value.strip().lower() in KNOWN_DEFAULTS or len(set(value)) < 8:
        return "the secret is a well-known default or has too little variety"
    if len(value) < MIN_SECRET:
        return f"the secret is {len(value)} characters; at least {MIN_SECRET} are needed"
    return None


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    typ: str
    jti: str
    iat: int
    exp: int
    family: str = ""


def _now() -> datetime:
    return datetime.now(UTC)


class Tokens:
    """Issues and checks tokens for one secret and one database."""

    #: how long a checked access token is trusted without asking the database again: a logout,
    #: removal or role change made by another process takes effect within this time (in this
    #: process at once: its own revocations clear the cache)
    CACHE_S = 2.0
    CACHE_MAX = 10_000

    def __init__(self, db: Engine, secret: str, api: ApiSettings) -> None:
        self.db = db
        self._secret = secret
        self.api = api
        self._cache: dict[str, tuple[float, Claims]] = {}

    def cached(self, token: str) -> Claims | None:
        """The claims of ``token`` if it was authenticated less than CACHE_S ago and has not expired."""
        hit = self._cache.get(token)
        if hit is None:
            return None
        until, claims = hit
        now = time.monotonic()
        if now >= until or time.time() >= claims.exp:
            self._cache.pop(token, None)
            return None
        return claims

    # -- encoding -------------------------------------------------------------------------------
    def _encode(self, sub: str, role: str, typ: str, ttl_s: int, family: str = "") -> Claims:
        now = _now()
        iat = int(now.timestamp())
        c = Claims(sub, role, typ, uuid.uuid4().hex, iat, iat + ttl_s, family)
        return c

    def _sign(self, c: Claims) -> str:
        body: dict[str, Any] = {"sub": c.sub, "role": c.role, "typ": c.typ, "jti": c.jti, "iat": c.iat,
                                "exp": c.exp, "iss": self.api.issuer, "aud": self.api.audience}
        if c.family:
            body["fam"] = c.family
        return jwt.encode(body, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str, typ: str) -> Claims:
        """The claims of a well-signed, unexpired token of type ``typ``; TokenError otherwise."""
        try:
            body = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], audience=self.api.audience, issuer=self.api.issuer,
                options={"require": ["exp", "iat", "jti", "iss", "aud", "sub"]}, leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError("token has the wrong audience") from None
        except jwt.InvalidIssuerError:
            raise TokenError("token has the wrong issuer") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError(f"token algorithm not allowed (only {ALGORITHM})") from None
        except jwt.InvalidSignatureError:
            raise TokenError("token signature is invalid") from None
        except jwt.MissingRequiredClaimError as e:
            raise TokenError(f"token lacks the {e.claim!r} claim") from None
        except jwt.InvalidTokenError as e:
            raise TokenError(f"malformed token ({type(e).__name__})") from None
        if body.get("typ") != typ:
            raise TokenError(f"not an {typ} token" if typ == ACCESS else f"not a {typ} token")
        try:
            return Claims(str(body["sub"]), str(body.get("role", "")), typ, str(body["jti"]), int(body["iat"]),
                          int(body["exp"]), str(body.get("fam", "")))
        except (TypeError, ValueError):
            raise TokenError("malformed token claims") from None

    # -- issuing --------------------------------------------------------------------------------
    def issue(self, username: str, role: str, family: str = "") -> dict[str, Any]:
        """A fresh access + refresh pair; the refresh token is recorded in ``family`` (a new
        family for a login)."""
        a = self._encode(username, role, ACCESS, self.api.access_ttl_s)
        r = self._encode(username, role, REFRESH, self.api.refresh_ttl_s, family or uuid.uuid4().hex)
        with self.db.begin() as conn:
            conn.execute(insert(RefreshToken).values(
                jti=r.jti, family=r.family, username=username, issued_at=datetime.fromtimestamp(r.iat, UTC),
                expires_at=datetime.fromtimestamp(r.exp, UTC), used_at=None, revoked_at=None))
        return {"access_token": self._sign(a), "refresh_token": self._sign(r), "token_type": "bearer",
                "expires_in": self.api.access_ttl_s}

    def rotate(self, refresh_token: str) -> dict[str, Any]:
        """Use a refresh token once: its successor pair; reuse revokes its family."""
        c = self.decode(refresh_token, REFRESH)
        now = _now()
        reused = False
        with self.db.begin() as conn:  # committed before any refusal: a reuse must stay revoked
            row = conn.execute(select(RefreshToken).where(RefreshToken.jti == c.jti)).first()
            if row is None:
                raise TokenError("refresh token unknown (issued by another database?)")
            if row.used_at is not None or row.revoked_at is not None:
                conn.execute(update(RefreshToken).where(RefreshToken.family == row.family,
                                                        RefreshToken.revoked_at.is_(None)).values(revoked_at=now))
                reused = True
            else:
                done = conn.execute(update(RefreshToken)
                                    .where(RefreshToken.jti == c.jti, RefreshToken.used_at.is_(None))
                                    .values(used_at=now))
                reused = done.rowcount != 1  # a concurrent refresh won the race
            user = conn.execute(select(User.role, User.disabled, User.tokens_after)
                                .where(User.username == c.sub)).first()
        if reused:
            raise TokenError("refresh token already used or revoked; its session is now revoked (log in again)")
        self._check_user(user, c)
        return self.issue(c.sub, user.role, row.family)  # type: ignore[union-attr]

    def revoke(self, refresh_token: str | None, access: Claims | None) -> None:
        """Logout: the refresh token's family, and the access token presented, are revoked."""
        self._cache.clear()
        now = _now()
        fam = ""
        if refresh_token:
            c = self.decode(refresh_token, REFRESH)
            if access is not None and c.sub != access.sub:
                raise TokenError("the refresh token belongs to another user")
            fam = c.family
        with self.db.begin() as conn:
            if fam:
                conn.execute(update(RefreshToken).where(RefreshToken.family == fam, RefreshToken.revoked_at.is_(None))
                             .values(revoked_at=now))
            if access is not None:
                conn.execute(delete(RevokedAccess).where(RevokedAccess.expires_at < now))  # prune
                conn.execute(insert(RevokedAccess).values(jti=access.jti,
                                                          expires_at=datetime.fromtimestamp(access.exp, UTC)))

    # -- checking -------------------------------------------------------------------------------
    def authenticate(self, token: str) -> Claims:
        """The claims of a valid access token whose user still exists, enabled, with the role
        the database gives it now (a demoted admin is a viewer at once)."""
        c = self.decode(token, ACCESS)
        with self.db.connect() as conn:
            if conn.execute(select(RevokedAccess.jti).where(RevokedAccess.jti == c.jti)).first() is not None:
                raise TokenError("token revoked (logged out)")
            user = conn.execute(select(User.role, User.disabled, User.tokens_after)
                                .where(User.username == c.sub)).first()
        self._check_user(user, c)
        out = Claims(c.sub, user.role, c.typ, c.jti, c.iat, c.exp)  # type: ignore[union-attr]
        if len(self._cache) >= self.CACHE_MAX:
            self._cache.clear()
        self._cache[token] = (time.monotonic() + self.CACHE_S, out)
        return out

    @staticmethod
    def _check_user(user: Any, c: Claims) -> None:
        if user is None or user.disabled:
            raise TokenError("user no longer exists or is disabled")
        after = user.tokens_after
        if after is not None and c.iat < int(after.timestamp()):
            raise TokenError("token issued before the password was changed; log in again")

