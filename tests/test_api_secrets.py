"""No secret in any API answer or log line: the database URL's password, venue API keys, the JWT
secret, user passwords. Every GET operation of the schema is called (path parameters from the
stored data), the stream is read, logins fail and succeed, while every log record is captured."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cryptoarb.api.hub import StreamHub
from cryptoarb.api.link import EngineLink
from cryptoarb.config import load_settings
from cryptoarb.storage.db import connect
from cryptoarb.storage.writer import StorageWriter
from tests.api_support import (
    PASSWORD,
    SECRET,
    PgSchema,
    Pumper,
    add_users,
    cheap_argon2,  # noqa: F401  (autouse fixture)
    make_api,
    require_pg,
)

DB_PASSWORD = "pgPassw0rd-leak-4711"  # trust authentication: PostgreSQL accepts it and never asks
API_KEY, API_SECRET = "AKleak-12345678", "SKleak-abcdefgh"


@pytest.fixture(scope="module")
def leaky(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    request.getfixturevalue("cheap_argon2")
    require_pg()
    schema = PgSchema()
    url = schema.url.replace("postgres@", f"postgres:{DB_PASSWORD}@")
    settings = load_settings(api={"jwt_secret": SECRET}, storage={"url": url},
                             live={"venues": {"okx": {"ccxt": {"apiKey": API_KEY, "secret": API_SECRET}}}})
    db = connect(url)
    add_users(db)
    from cryptoarb.demo.run import build_demo

    w = StorageWriter(db, run_id=uuid.uuid4().hex[:12])
    w.start_run("demo", {"settings": settings.model_dump(mode="json")})  # what arb demo stores
    d = build_demo(settings, sink=w, seed=1)
    d.run(20, live=False, speed=0)
    w.end_run()
    w.close()
    link = EngineLink(d.engine, StreamHub()).attach()
    api = make_api(db, url, link=link, login_per_ip=10_000)
    api.ctx.settings = settings
    with api.client, Pumper(link):
        yield {"api": api, "run": w.run_id, "engine": d.engine}
    db.dispose()
    schema.close()


def test_no_secret_in_answers_or_logs(leaky: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    api, rid = leaky["api"], leaky["run"]
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    c = api.client
    bodies.append(c.post("/api/login", json={"username": "root", "password": "wrong " + PASSWORD}).text)
    bodies.append(c.post("/api/login", json={"username": PASSWORD, "password": PASSWORD}).text)  # a slip
    bodies.append(c.post("/api/login", json={"username": "root"}).text)
    h = api.auth()
    trade = c.get("/api/trades", headers=h, params={"run": rid}).json()["items"][0]["id"]
    fill_params = {"run_id": rid, "trade_id": trade}
    paths = [p for p, ops in c.get("/openapi.json").json()["paths"].items() if "get" in ops]
    assert len(paths) >= 18
    for path in paths:
        url = path.format(**fill_params)
        r = c.get(url, headers=h)
        assert r.status_code == 200, (url, r.text)
        bodies.append(r.text)
    for extra in ("/health", "/metrics", "/openapi.json", "/api/runs/nope"):
        bodies.append(c.get(extra, headers=h).text)
    r = c.put("/api/settings", json={"detector": {"min_profit_bps": -5}}, headers=h)
    bodies.append(r.text)
    with c.websocket_connect("/api/stream") as ws:
        ws.send_json({"type": "auth", "token": h["Authorization"][7:]})
        bodies += [ws.receive_text() for _ in range(8)]
    run = c.get(f"/api/runs/{rid}", headers=h).json()
    assert run["config"]["settings"]["live"]["venues"]["okx"]["ccxt"] == {"apiKey": "***", "secret": "***"}
    assert "***" in run["config"]["settings"]["storage"]["url"]
    text = "\n".join(bodies) + "\n".join(rec.getMessage() for rec in caplog.records)
    for secret in (DB_PASSWORD, API_KEY, API_SECRET, SECRET, PASSWORD):
        assert secret not in text, secret
    assert any("failed login" in rec.getMessage() for rec in caplog.records)  # the logs were captured
