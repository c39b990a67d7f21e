"""``POST /api/login``, ``/api/token/refresh``, ``/api/logout``; ``GET /api/me``."""

from __future__ import annotations

import logging
import math

from fastapi import APIRouter, HTTPException, Request, Response

from cryptoarb.api import users
from cryptoarb.api.auth import TokenError
from cryptoarb.api.deps import Ctx, User, unauthorized
from cryptoarb.api.routes import AUTH_ERRORS
from cryptoarb.api.schemas import Error, Login, LogoutBody, Me, Ok, RefreshBody, TokenPair

router = APIRouter(tags=["auth"])
log = logging.getLogger(__name__)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", response_model=TokenPair, responses={
    401: {"model": Error, "description": "wrong user name or password"},
    429: {"model": Error, "description": "too many attempts; see Retry-After"}})
def login(body: Login, request: Request, response: Response, c: Ctx) -> TokenPair:
    """A short-lived access token and a long-lived refresh token for a user name and password.

    Limited per client address (all attempts) and per user name (failed attempts)."""
    ip, name = _client(request), body.username
    wait = max(c.per_ip.retry_after(ip), c.per_user.retry_after(name))
    if wait > 0:
        c.metrics.logins.labels("limited").inc()
        raise HTTPException(429, f"too many login attempts; try again in {math.ceil(wait)} s",
                            headers={"Retry-After": str(math.ceil(wait))})
    c.per_ip.hit(ip)
    user = users.verify(c.db, name, body.password)
    if user is None:
        c.per_user.hit(name)
        c.metrics.logins.labels("failed").inc()
        # an unknown name is not logged: it is often a password typed into the wrong field
        who = repr(name) if users.exists(c.db, name) else "an unknown user name"
        log.warning("api: failed login for %s from %s", who, ip)
        raise unauthorized("wrong user name or password")
    c.per_user.clear(name)
    c.metrics.logins.labels("ok").inc()
    return TokenPair(**c.tokens.issue(user.username, user.role))


@router.post("/token/refresh", response_model=TokenPair, responses={
    401: {"model": Error, "description": "invalid, expired, used or revoked refresh token"}})
def refresh(body: RefreshBody, c: Ctx) -> TokenPair:
    """A new token pair for a refresh token, which is used up (rotation). Presenting a used or
    revoked refresh token again revokes every token of that login."""
    try:
        return TokenPair(**c.tokens.rotate(body.refresh_token))
    except TokenError as e:
        raise unauthorized(str(e)) from None


@router.post("/logout", response_model=Ok, responses=AUTH_ERRORS)
def logout(body: LogoutBody, user: User, c: Ctx) -> Ok:
    """Revoke the access token presented and (when given) the refresh token's whole login;
    recorded in the database, so it holds across restarts."""
    try:
        c.tokens.revoke(body.refresh_token, user)
    except TokenError as e:
        raise unauthorized(str(e)) from None
    return Ok(detail="logged out")


@router.get("/me", response_model=Me, responses=AUTH_ERRORS)
def me(user: User) -> Me:
    """Who the token belongs to, their role now, and when the token expires."""
    return Me(username=user.sub, role=user.role, expires_at=user.exp)
