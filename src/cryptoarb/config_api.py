"""The ``[api]`` settings section: the REST API, its tokens and its stream (docs/api.md).

The JWT signing secret is a setting (``ARB_API__JWT_SECRET``) but may also come from the plain
``JWT_SECRET`` variable or a secrets file (``jwt_secret_file``): :func:`cryptoarb.api.auth.load_secret`
decides which one wins and refuses weak ones. Its key name contains ``secret``, so stored run
configs and ``arb show settings`` print ``***`` for it (``cryptoarb.redact``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ApiSettings(BaseModel):
    """``[api]``: where the API listens and how it authenticates."""

    model_config = ConfigDict(extra="forbid")  # a typo must not be ignored

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)  # 0: any free port (the chosen one is printed)
    jwt_secret: str = ""  # >= 32 characters; also JWT_SECRET or jwt_secret_file
    jwt_secret_file: str = ""  # a file holding the secret (first line), e.g. a mounted secret
    dev: bool = False  # development mode: a missing or weak secret is replaced by a random one
    issuer: str = "cryptoarb"
    audience: str = "cryptoarb-api"
    access_ttl_s: int = Field(900, ge=10, le=86_400)
    refresh_ttl_s: int = Field(7 * 86_400, ge=60, le=90 * 86_400)
    login_per_user: int = Field(5, ge=1)  # failed logins per user name per login_window_s
    login_per_ip: int = Field(30, ge=1)  # login attempts per client address per login_window_s
    login_window_s: float = Field(60.0, gt=0)
    max_body_bytes: int = Field(65_536, ge=1_024)
    max_stream_clients: int = Field(200, ge=1)
    stream_queue: int = Field(1_000, ge=10)  # messages buffered per stream client before it is dropped
    max_page: int = Field(1_000, ge=1)  # largest ``limit`` of a list endpoint
