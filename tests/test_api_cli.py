"""The API's commands: ``arb user ...``, ``arb runs``, ``arb trades``, ``arb show settings``, and the
real thing end to end: ``arb demo`` serving its dashboard line's API, ``arb api`` and its secret."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import test_live
from cryptoarb.api import users
from cryptoarb.cli import app
from cryptoarb.storage.db import connect
from tests.api_support import (
    PASSWORD,
    SECRET,
    cheap_argon2,  # noqa: F401  (autouse fixture)
    store_demo,
)

runner = CliRunner()
DASHBOARD = re.compile(r"^dashboard: (\S+)  user: (\S+)  password: (\S+)$")  # the format docs/api.md promises


def arb(*args: str, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def test_user_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "u.db")
    r = arb("user", "add", "alice", "--role", "admin", "--db", db, input="a-long-password\n")
    assert r.exit_code == 0 and "user alice added (admin)" in r.output
    assert users.verify(connect(db), "alice", "a-long-password") is not None
    r = arb("user", "add", "alice", "--db", db, input="another-password\n")
    assert r.exit_code == 2 and "already exists" in r.output
    assert arb("user", "add", "bob", "--role", "root", "--db", db, input="x" * 10 + "\n").exit_code == 2
    r = arb("user", "add", "bob", "--db", db, input="short\n")
    assert r.exit_code == 2 and "at least 8" in r.output
    assert arb("user", "add", "bad name!", "--db", db, input="long-enough\n").exit_code == 2
    assert arb("user", "add", "carol", "--db", db, input="").exit_code == 2  # no password on stdin
    r = arb("user", "list", "--db", db)
    assert r.exit_code == 0 and "alice" in r.output and "admin" in r.output and "bob" not in r.output
    r = arb("user", "passwd", "alice", "--db", db, input="a-new-password\n")
    assert r.exit_code == 0 and users.verify(connect(db), "alice", "a-new-password") is not None
    assert arb("user", "passwd", "nobody", "--db", db, input="a-new-password\n").exit_code == 2
    assert arb("user", "remove", "alice", "--db", db).exit_code == 0
    r = arb("user", "remove", "alice", "--db", db)
    assert r.exit_code == 2 and "no user 'alice'" in r.output


def test_runs_trades_and_settings_views(tmp_path: Path) -> None:
    db_path = tmp_path / "v.db"
    r = arb("runs", "--db", str(db_path))
    assert r.exit_code == 3 and "no run stored" in r.output
    rid = store_demo(connect(str(db_path)), seconds=20, seed=1)
    r = arb("runs", "--db", str(db_path))
    assert r.exit_code == 0 and rid in r.output and "demo" in r.output
    r = arb("trades", "--db", str(db_path), "--run", rid, "--json")
    data = json.loads(r.output)
    assert r.exit_code == 0 and data["total"] == len(data["items"]) > 0
    assert all(t["run_id"] == rid for t in data["items"])
    r = arb("trades", "--db", str(db_path), "--run", "nope")
    assert r.exit_code == 2 and "no run 'nope'" in r.output
    r = runner.invoke(app, ["trades", "--db", str(db_path)], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "expected" in r.output and rid in r.output, r.output
    env = {"ARB_API__JWT_SECRET": SECRET, "ARB_LIVE__VENUES": json.dumps({"okx": {"ccxt": {"apiKey": "AKsecret99"}}})}
    r = runner.invoke(app, ["show", "settings", "--db", "postgresql://u:pgpass777@127.0.0.1/x"], env=env)
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)
    assert shown["api"]["jwt_secret"] == "***" and shown["live"]["venues"]["okx"]["ccxt"]["apiKey"] == "***"
    for secret in (SECRET, "AKsecret99", "pgpass777"):
        assert secret not in r.output


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARB_") and k != "JWT_SECRET"}
    return {**env, "COLUMNS": "120", "NO_COLOR": "1", **extra}


def test_demo_serves_its_dashboard_line(tmp_path: Path) -> None:
    """``arb demo`` prints the documented line; with it a client logs in, reads live state, trips
    the kill switch and resumes; a viewer is refused; the one-off admin is gone afterwards."""
    db = tmp_path / "demo.db"
    p = subprocess.Popen([sys.executable, "-m", "cryptoarb.cli", "demo", "--duration", "40", "--no-live", "--db",
                          str(db), "--api-port", "0", "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=_env(), cwd=tmp_path)
    try:
        assert p.stdout is not None
        line = p.stdout.readline().rstrip("\n")
        m = DASHBOARD.match(line)
        assert m, line + (p.stderr.read() if p.poll() is not None and p.stderr else "")
        url, name, password = m.groups()
        c = httpx.Client(base_url=url, timeout=10)
        tok = c.post("/api/login", json={"username": name, "password": password}).json()["access_token"]
        h = {"Authorization": f"Bearer {tok}"}
        assert c.get("/api/me", headers=h).json()["role"] == "admin"
        deadline = time.monotonic() + 30
        while c.get("/api/status", headers=h).json()["messages"] in (None, 0):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        r = c.post("/api/risk/kill", json={"reason": "e2e"}, headers=h)
        assert r.status_code == 200 and r.json()["via"] == "engine"
        time.sleep(0.6)  # the next snapshot
        assert c.get("/api/risk", headers=h).json()["killed"] is True
        assert c.post("/api/risk/resume", headers=h).json()["changed"] is True
        users.add_user(connect(str(db)), "viewer1", "viewer", PASSWORD)
        vt = c.post("/api/login", json={"username": "viewer1", "password": PASSWORD}).json()["access_token"]
        r = c.post("/api/risk/kill", json={"reason": "no"}, headers={"Authorization": f"Bearer {vt}"})
        assert r.status_code == 403
        p.send_signal(signal.SIGINT)
        assert p.wait(60) == 130
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert name not in {u.username for u in users.list_users(connect(str(db)))}


def test_arb_api_needs_a_secret_and_serves(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "cryptoarb.cli", "api", "--port", "0", "--db", str(tmp_path / "a.db")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no JWT secret set" in r.stderr, r.stderr
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(JWT_SECRET="changeme"), timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and "well-known default" in r.stderr and "Traceback" not in r.stderr
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=_env(JWT_SECRET=SECRET), cwd=tmp_path)
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        m = re.match(r"^api: (\S+)", line)
        assert m, line
        deadline = time.monotonic() + 30
        while True:
            try:
                r2 = httpx.get(m.group(1) + "health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert r2.json()["engine"] == "none" and r2.json()["database"] == "ok"
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert SECRET not in (p.stderr.read() if p.stderr else "")


def test_a_busy_demo_port() -> None:
    from cryptoarb.api.server import PortInUse, bind

    s = bind("127.0.0.1", 0)
    port = s.getsockname()[1]
    try:
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port}"):
            bind("127.0.0.1", port)
        r = runner.invoke(app, ["demo", "--duration", "0.5", "--no-live", "--no-store", "--api-port", str(port)])
        assert r.exit_code == 2 and "cannot listen" in r.output
    finally:
        s.close()


recorded = test_live.recorded  # the local venue serving real Binance frames (tests/test_live.py)
venue = test_live.venue


def test_live_run_serves_the_api(venue: Any, tmp_path: Path) -> None:
    """``arb run --live --api``: the API sees the live feed (native path, books) and kills the engine."""
    db = tmp_path / "live.db"
    users.add_user(connect(str(db)), "ops", "admin", PASSWORD)
    cfg = tmp_path / "arb.toml"
    cfg.write_text(f'[live.venues.binance]\nws_url = "{venue.ws_url}"\n'
                   f'[live.venues.binance.ccxt]\nurls = {{ api = {{ public = "{venue.http_url}/api/v3" }} }}\n')
    p = subprocess.Popen([sys.executable, "-m", "cryptoarb.cli", "run", "--live", "--venues", "binance", "--symbols",
                          "BTC/USDT", "--duration", "8", "--no-view", "--config", str(cfg), "--db", str(db), "--api",
                          "--api-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=_env(JWT_SECRET=SECRET), cwd=tmp_path)
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        m = re.match(r"^api: (\S+)", line)
        assert m, line + (p.stderr.read() if p.poll() is not None and p.stderr else "")
        c = httpx.Client(base_url=m.group(1), timeout=10)
        h = {"Authorization": "Bearer " + c.post("/api/login", json={"username": "ops", "password": PASSWORD}
                                                 ).json()["access_token"]}
        deadline = time.monotonic() + 30
        while True:
            v = c.get("/api/venues", headers=h).json()
            if v["engine"] and v["items"] and v["items"][0]["books_valid"]:
                break
            assert time.monotonic() < deadline, v
            time.sleep(0.2)
        assert v["items"][0]["venue"] == "binance" and v["items"][0]["path"] == "native"
        book = c.get("/api/books", headers=h, params={"key": "binance BTC/USDT"}).json()["items"][0]
        assert book["valid"] and book["bids"][0][0] < book["asks"][0][0]
        assert c.post("/api/risk/kill", json={"reason": "live drill"}, headers=h).json()["via"] == "engine"
        assert p.wait(60) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read() if p.stderr else ""
    assert "Traceback" not in err and SECRET not in err, err
