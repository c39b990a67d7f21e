"""Authentication dependencies: a bearer access token, and the admin role where needed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cryptoarb.api.auth import Claims, TokenError
from cryptoarb.api.context import ApiContext, ctx

_bearer = HTTPBearer(auto_error=False, description="an access token from POST /api/login")


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def current_user(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Claims:
    if creds is None or creds.scheme.lower() != "bearer":
        raise unauthorized("not authenticated: send Authorization: Bearer <access token> (POST /api/login)")
    c: ApiContext = ctx(request)
    try:
        return c.tokens.authenticate(creds.credentials)
    except TokenError as e:
        raise unauthorized(str(e)) from None


def admin(user: Annotated[Claims, Depends(current_user)]) -> Claims:
    if user.role != "admin":
        raise HTTPException(403, f"user {user.sub!r} is a {user.role}; this needs the admin role")
    return user


User = Annotated[Claims, Depends(current_user)]
Admin = Annotated[Claims, Depends(admin)]
Ctx = Annotated[ApiContext, Depends(ctx)]
