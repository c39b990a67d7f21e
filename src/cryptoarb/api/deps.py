"""Authentication dependencies: a bearer access token, and the admin role where needed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from cryptoarb.api.auth import Claims, TokenError
from cryptoarb.api.context import ApiContext, ctx

_bearer = HTTPBearer(auto_error=False, description="an access token from POST /api/login")


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_user(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Claims:
    if creds is None or creds.scheme.lower() != "bearer":
        raise unauthorized("not authenticated: send Authorization: Bearer <access token> (POST /api/login)")
    c: ApiContext = ctx(request)
    token = creds.credentials
    hit = c.tokens.cached(token)  # seen in the last second or two: no database round trip
    if hit is not None:
        return hit
    try:
        return await run_in_threadpool(c.tokens.authenticate, token)
    except TokenError as e:
        raise unauthorized(str(e)) from None


def admin(user: Annotated[Claims, Depends(current_user)]) -> Claims:
    if user.role != "admin":
        raise HTTPException(403, f"user {user.sub!r} is a {user.role}; this needs the admin role")
    return user


User = Annotated[Claims, Depends(current_user)]
Admin = Annotated[Claims, Depends(admin)]
Ctx = Annotated[ApiContext, Depends(ctx)]
