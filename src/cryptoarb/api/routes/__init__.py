"""One router per resource; :func:`cryptoarb.api.app.create_app` includes them all under ``/api``."""

from __future__ import annotations

from typing import Any

from cryptoarb.api.schemas import Error

#: the error answers every authenticated route may give (documented in the OpenAPI schema)
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "missing, invalid, expired or revoked token"},
}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    403: {"model": Error, "description": "the user is not an admin"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Error, "description": "no such item"}}
