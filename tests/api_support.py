"""Shared set-up of the API tests: databases (SQLite file and a fresh PostgreSQL schema), a stored
demo run, apps with users, and tokens forged with chosen claims.

PostgreSQL is the server at 127.0.0.1:5432 (database ``test``); unreachable, its tests skip, or
fail when ``CI`` is set (as in tests/test_storage.py).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cryptoarb.api import users
from cryptoarb.api.app import create_app
from cryptoarb.api.context import ApiContext
from cryptoarb.api.link import EngineLink
from cryptoarb.api.server import build_context
from cryptoarb.config import Settings, load_settings
from cryptoarb.storage.db import connect
from cryptoarb.storage.writer import StorageWriter

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "test-secret-" + "7Hq2Zx9Lm4Pw8Rt6Yv3Nc5Bd1Kg0Jf"  # 43 characters, varied
ADMIN, VIEWER, PASSWORD = "root", "watcher", "correct horse battery"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)  # real argon2id, fast parameters
_pg_down: list[str] = []


def pg_unreachable() -> str:
    if not _pg_down:
        try:
            psycopg.connect(PG_URL, connect_timeout=3).close()
            _pg_down.append("")
        except psycopg.Error as exc:
            _pg_down.append(f"PostgreSQL at {PG_URL} unreachable: {str(exc).strip().splitlines()[0]}")
    return _pg_down[0]


def require_pg() -> None:
    if reason := pg_unreachable():
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


class PgSchema:
    """A fresh PostgreSQL schema on the search path of the URL it gives; dropped on close."""

    def __init__(self) -> None:
        self.name = f"api_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {self.name}")
        self.url = f"{PG_URL}?options=-csearch_path%3D{self.name}"

    def close(self) -> None:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {self.name} CASCADE")


def open_db(backend: str, tmp: Path) -> tuple[Engine, str, PgSchema | None]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'api.db'}"
        return connect(url), url, None
    require_pg()
    schema = PgSchema()
    return connect(schema.url), schema.url, schema


def settings_for(url: str, **api: Any) -> Settings:
    return load_settings(api={"jwt_secret": SECRET, **api}, storage={"url": url})


def store_demo(db: Engine, seconds: float = 20.0, seed: int = 1) -> str:
    """A real demo run (simulated market, paper trades) stored in ``db``; its run id."""
    from cryptoarb.demo.run import build_demo

    w = StorageWriter(db, run_id=uuid.uuid4().hex[:12])
    w.start_run("demo", {"seed": seed, "simulated": True})
    d = build_demo(load_settings(), sink=w, seed=seed)
    d.run(seconds, live=False, speed=0)
    w.end_run()
    assert not w.close()
    return w.run_id


@dataclass
class Api:
    """An app on a database, with an admin and a viewer."""

    ctx: ApiContext
    client: TestClient
    url: str

    def login(self, user: str = ADMIN, password: str = PASSWORD, ip: str | None = None) -> dict[str, Any]:
        r = self.client.post("/api/login", json={"username": user, "password": password})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def auth(self, user: str = ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.login(user)['access_token']}"}


def make_api(db: Engine, url: str, link: EngineLink | None = None, **api: Any) -> Api:
    ctx = build_context(settings_for(url, **api), db, link=link)
    client = TestClient(create_app(ctx))
    return Api(ctx, client, url)


def add_users(db: Engine) -> None:
    for name, role in ((ADMIN, "admin"), (VIEWER, "viewer")):
        with contextlib.suppress(users.UserError):  # already there (a module-scoped database)
            users.add_user(db, name, role, PASSWORD)


def forge(claims: dict[str, Any], key: str = SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    """A token with exactly these claims (defaults filled in for the ones not given)."""
    now = int(time.time())
    body = {"sub": ADMIN, "role": "admin", "typ": "access", "jti": uuid.uuid4().hex, "iat": now, "exp": now + 600,
            "iss": "cryptoarb", "aud": "cryptoarb-api", **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm=algorithm, headers=headers or None)


class Pumper:
    """Plays the engine's thread for a link: pumps it every few ms until stopped."""

    def __init__(self, link: EngineLink) -> None:
        self.link = link
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.link.pump()
            time.sleep(0.005)

    def __enter__(self) -> Pumper:
        self.link.pump()
        self.thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        self.thread.join(2)


@pytest.fixture(autouse=True, scope="module")
def cheap_argon2() -> Iterator[None]:
    old = users.use_hasher(CHEAP)
    yield
    users.use_hasher(old)
