"""No secret is ever stored or logged: database passwords and ccxt credentials are redacted from
``runs.config`` and from log lines. The end-to-end tests run the real ``arb`` with secrets in
its settings, then scan every column of every table, and stdout/stderr, for them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import column, create_engine, inspect, select
from sqlalchemy.sql import table as sql_table

import test_live
from cryptoarb.redact import MASK, RedactingFilter, redact_config, redact_text, secret_values
from cryptoarb.storage.urls import normalize_url

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
# every ccxt credential (Exchange.requiredCredentials) plus spellings users write
CREDENTIALS = {
    "apiKey": "K3Y-apikey-0001", "secret": "S3CR-secret-0002", "password": "PW-passw-0003",
    "uid": "UID-uid-0004", "login": "LOGIN-login-0005", "twofa": "TWOFA-2fa-0006",
    "privateKey": "PK-private-0007", "walletAddress": "0xWALLET-0008", "token": "TOK-token-0009",
    "accountId": "ACCT-acct-0010", "api_key": "K3Y-snake-0011",
}
WS_TOKEN = "WSTOKEN-query-0012"
DB_PASSWORD = "DBPASS-pg-0013"
SECRETS = [*CREDENTIALS.values(), WS_TOKEN, DB_PASSWORD]

recorded = test_live.recorded  # the local venue serving real Binance frames (tests/test_live.py)
venue = test_live.venue


# -- the mechanism --------------------------------------------------------------------------------
def test_redact_config_hides_every_credential_and_keeps_the_rest() -> None:
    cfg = {
        "storage": {"url": f"postgresql://postgres:{DB_PASSWORD}@db.example:5432/arb", "enabled": True},
        "live": {"venues": {"binance": {
            "ws_url": f"wss://example/ws?stream=x&token={WS_TOKEN}",
            "ccxt": {**CREDENTIALS, "enableRateLimit": True, "timeout": 5000,
                     "headers": {"X-MBX-APIKEY": CREDENTIALS["apiKey"]}},
        }}},
        "paper": {"seed": 7, "balances": {"binance": {"USDT": "1000"}}},
    }
    out = redact_config(cfg)
    text = json.dumps(out)
    for s in SECRETS:
        assert s not in text, s
    ccxt = out["live"]["venues"]["binance"]["ccxt"]
    assert all(ccxt[k] == MASK for k in CREDENTIALS)
    assert ccxt["enableRateLimit"] is True and ccxt["timeout"] == 5000
    assert out["storage"]["url"] == f"postgresql://postgres:{MASK}@db.example:5432/arb"
    assert out["live"]["venues"]["binance"]["ws_url"] == f"wss://example/ws?stream=x&token={MASK}"
    assert out["paper"] == cfg["paper"]
    assert cfg["storage"]["url"].endswith("/arb") and DB_PASSWORD in cfg["storage"]["url"]  # a copy


def test_storage_urls_hide_a_password_given_as_a_query_parameter() -> None:
    from cryptoarb.storage.urls import normalize_url, redact

    url = f"postgresql://postgres@127.0.0.1:5432/test?password={DB_PASSWORD}"
    assert DB_PASSWORD not in redact(url) and DB_PASSWORD not in redact(normalize_url(url))
    assert redact(f"postgresql://u:{DB_PASSWORD}@h/db") == "postgresql://u:***@h/db"


def test_text_without_credentials_is_unchanged() -> None:
    for s in ("sqlite:///cryptoarb.db", "postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dx",
              "a=b c=d", "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"):
        assert redact_text(s) == s


def test_an_rpc_urls_path_is_scrubbed_from_logs() -> None:
    key = "0123456789abcdef0123456789abcdef"
    secrets = secret_values({"dex": {"chains": [{"rpc_url": f"https://mainnet.example/v3/{key}"}]}})
    flt = RedactingFilter(secrets)
    rec = logging.LogRecord("x", logging.WARNING, __file__, 1, "chain 1: %s", (
        f"HTTPSConnectionPool(host='mainnet.example', port=443): Max retries exceeded with url: /v3/{key}",), None)
    flt.filter(rec)
    assert key not in rec.getMessage() and "Max retries" in rec.getMessage()


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    flt = RedactingFilter(secret_values({"ccxt": CREDENTIALS}))
    log = logging.getLogger("cryptoarb.test_secrets")
    log.addFilter(flt)
    try:
        with caplog.at_level(logging.DEBUG, logger="cryptoarb.test_secrets"):
            log.warning("rest failed with key %s", CREDENTIALS["apiKey"])
            log.info("connected to postgresql://u:%s@h/db", DB_PASSWORD)
            try:
                raise RuntimeError(f"signature rejected for {CREDENTIALS['secret']}")
            except RuntimeError:
                log.exception("boom")
    finally:
        log.removeFilter(flt)
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert len(caplog.records) == 3 and "RuntimeError" in text
    for s in SECRETS:
        assert s not in text, s


# -- end to end: the real command, every table, every column ------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite file, or PostgreSQL (trust auth: the password is accepted and ignored) with a
    password in its URL and a fresh schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "secrets.db")
        return
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is required on CI: {e}")
        pytest.skip(f"no PostgreSQL at {PG_URL}: {e}")
    schema = f"t_sec_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def _config(tmp_path: Path, ws_url: str = "wss://127.0.0.1:9/ws", rest: str = "") -> Path:
    creds = "\n".join(f'{k} = "{v}"' for k, v in CREDENTIALS.items())
    urls = f'urls = {{ api = {{ public = "{rest}/api/v3" }} }}\n' if rest else ""
    cfg = tmp_path / "secrets.toml"
    cfg.write_text(f'[live.venues.binance]\nws_url = "{ws_url}?token={WS_TOKEN}"\n'
                   f"[live.venues.binance.ccxt]\n{urls}{creds}\n")
    return cfg


def _arb(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "cryptoarb.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, stdin=subprocess.DEVNULL)


def _database_text(url: str) -> tuple[str, dict[str, int]]:
    """Every value of every column of every table, as text; and the row count per table."""
    eng = create_engine(normalize_url(url))
    parts: list[str] = []
    counts: dict[str, int] = {}
    try:
        insp = inspect(eng)
        with eng.connect() as conn:
            for name in insp.get_table_names():
                cols = [c["name"] for c in insp.get_columns(name)]
                t = sql_table(name, *[column(c) for c in cols])
                rows = conn.execute(select(t)).all()
                counts[name] = len(rows)
                for row in rows:
                    parts.extend(json.dumps(v, default=str) if isinstance(v, dict | list) else str(v)
                                 for v in row)
    finally:
        eng.dispose()
    return "\n".join(parts), counts


def _assert_clean(text: str, where: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{where} holds {leaked}"


def test_demo_with_secrets_stores_and_logs_none(db_url: str, tmp_path: Path) -> None:
    r = _arb("demo", "--duration", "20", "--speed", "0", "--no-live", "--config", str(_config(tmp_path)),
             "--db", db_url)
    assert r.returncode == 0, r.stderr
    _assert_clean(r.stdout + r.stderr, "stdout/stderr")
    text, counts = _database_text(db_url)
    assert counts["runs"] == 1 and counts["orders"] > 0 and counts["balances"] > 0, counts
    _assert_clean(text, "the database")
    assert MASK in text  # the run says credentials were set, without them


def test_live_run_with_secrets_stores_and_logs_none(db_url: str, venue: Any, tmp_path: Path) -> None:
    cfg = _config(tmp_path, ws_url=venue.ws_url, rest=venue.http_url)
    r = _arb("run", "--live", "--venues", "binance", "--symbols", "BTC/USDT", "--duration", "3", "--no-view",
             "--config", str(cfg), "--db", db_url)
    assert r.returncode == 0, r.stderr
    _assert_clean(r.stdout + r.stderr, "stdout/stderr")
    text, counts = _database_text(db_url)
    assert counts["runs"] == 1, counts
    _assert_clean(text, "the database")


def test_an_error_quoting_a_credential_is_logged_without_it(venue: Any, tmp_path: Path) -> None:
    """The REST endpoint carries credentials and refuses connections: the feed logs the failure
    (ccxt's message quotes the URL), and the log line hides them."""
    proxy_pw = "PROXYPW-rest-0014"
    cfg = tmp_path / "rest.toml"
    cfg.write_text(f'[storage]\nenabled = false\n[live.venues.binance]\nws_url = "{venue.ws_url}"\n'
                   f'[live.venues.binance.ccxt]\napiKey = "{CREDENTIALS["apiKey"]}"\n'
                   f'urls = {{ api = {{ public = "http://proxyuser:{proxy_pw}@127.0.0.1:9/api/v3" }} }}\n')
    r = _arb("run", "--live", "--venues", "binance", "--symbols", "BTC/USDT", "--duration", "2", "--no-view",
             "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "snapshot failed" in r.stderr and "127.0.0.1:9" in r.stderr, r.stderr
    assert proxy_pw not in r.stdout + r.stderr and CREDENTIALS["apiKey"] not in r.stdout + r.stderr
