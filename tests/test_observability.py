"""Errors to Sentry and structured logs (issue 12, item 5), through the real ``arb`` command.

Sentry: a local HTTP server speaks the ingest protocol (``tests/sentrykit.py``); the DSN points
at it. A real command fails on a real database error (a PostgreSQL trigger refuses the insert of
``arb user add``): the event arrives, and none of the secrets the process knew (database
password on the command line, JWT secret, venue API keys, alert URLs, the user's password) is in
anything sent. Logs: ``--log-file`` with ``--log-format json`` writes one JSON object per line,
scrubbed; bad log options are one line and exit 2.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DATA, require_shared_data
from tests.sentrykit import SentryServer

PG = "postgresql://postgres@127.0.0.1:5432/test"
DB_PASSWORD = "pg-Pass-8c1f2e9d"
JWT = "jwt-secret-0123456789abcdef0123456789abcdef"
API_KEY = "binance-key-AbCdEf0123456789"
API_SECRET = "binance-secret-ZyXw9876543210"
APPRISE_PW = "apprise-pw-5e7d1c"
TGRAM = "tgram://123456789:AAFakeBotTokenForTestsOnly_abcdefgh/12345"
USER_PASSWORD = "user-password-horse-battery"
SECRETS = (DB_PASSWORD, JWT, API_KEY, API_SECRET, APPRISE_PW, TGRAM, "AAFakeBotTokenForTestsOnly_abcdefgh",
           USER_PASSWORD, "$argon2id$")  # the new user's password hash, in the SQL error's parameters


def _arb(args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ARB_", "SENTRY_"))}
    full.update({"COLUMNS": "200", "NO_COLOR": "1", **env})
    return subprocess.run([sys.executable, "-m", "cryptoarb.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=cwd, env=full, timeout=120)


def _psycopg() -> object:
    import psycopg

    try:
        psycopg.connect(PG, connect_timeout=3).close()
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG} unreachable: {e}")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 unreachable")
    return psycopg


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """(schema, URL with a password on it: the server trusts local connections and ignores it)."""
    psycopg = _psycopg()
    schema = f"obs_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as c:  # type: ignore[attr-defined]
        c.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema, f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG, autocommit=True) as c:  # type: ignore[attr-defined]
            c.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sentry() -> Iterator[SentryServer]:
    srv = SentryServer()
    yield srv
    srv.close()


def _config(tmp: Path) -> Path:
    p = tmp / "arb.toml"
    p.write_text(f'''
[api]
jwt_secret = "{JWT}"

[alerts]
urls = ["json://alerter:{APPRISE_PW}@127.0.0.1:9/hook", "{TGRAM}"]

[live.venues.binance]
ccxt = {{ apiKey = "{API_KEY}", secret = "{API_SECRET}" }}
''')
    return p


def test_a_crash_in_a_real_command_reaches_sentry_scrubbed(tmp_path: Path, pg_schema: tuple[str, str],
                                                            sentry: SentryServer) -> None:
    schema, url = pg_schema
    cfg = _config(tmp_path)
    env = {"SENTRY_DSN": sentry.dsn, "SENTRY_ENVIRONMENT": "test"}
    # the schema exists (migrations ran), then the database starts refusing new users, saying why
    # in a message that quotes a connection string with its password (as drivers and proxies do)
    r = _arb(["user", "list", "--config", str(cfg), "--db", url], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert not sentry.raw, "a clean run sends nothing"
    psycopg = _psycopg()
    with psycopg.connect(PG, autocommit=True) as c:  # type: ignore[attr-defined]
        c.execute(f"""CREATE FUNCTION {schema}.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'replica read-only: postgresql://postgres:{DB_PASSWORD}@10.0.0.7/test'; END $$""")
        c.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON {schema}.users FOR EACH ROW "
                  f"EXECUTE FUNCTION {schema}.refuse()")

    r = _arb(["user", "add", "alice", "--role", "admin", "--config", str(cfg), "--db", url], env, tmp_path,
             stdin=USER_PASSWORD + "\n")
    assert r.returncode == 1 and "Traceback" in r.stderr  # a program error, not a user error
    assert sentry.got.wait(10), "no event reached the local Sentry endpoint"
    ev = sentry.events[0]
    assert ev["level"] == "error" and ev["environment"] == "test" and ev["release"].startswith("cryptoarb@")
    exc = ev["exception"]["values"][-1]
    assert exc["type"] == "ProgrammingError" and "replica read-only" in exc["value"], exc["value"]
    assert any(f.get("function") == "add_user" for f in exc["stacktrace"]["frames"])  # where it happened
    sent = b"".join(sentry.raw).decode()
    for s in SECRETS:
        i = sent.find(s)
        assert i < 0, f"secret {s[:12]}... reached Sentry: ...{sent[max(0, i - 300):i + 60]}"
    assert "***" in exc["value"]  # the password in the database's message, masked in place
    frame_vars = json.dumps([f.get("vars") for f in exc["stacktrace"]["frames"]])
    assert "alice" in frame_vars  # locals are still sent (useful), only the secrets are gone


def test_user_errors_are_not_sent(tmp_path: Path, sentry: SentryServer) -> None:
    r = _arb(["replay", str(tmp_path / "missing.gz"), "--no-store"], {"SENTRY_DSN": sentry.dsn}, tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    assert not sentry.raw


def _head(tmp: Path) -> Path:
    require_shared_data("binance-2024-08-08")
    dst = tmp / "spot.gz"
    with gzip.open(DATA / "binance-2024-08-08" / "spot_btcusdt_20240808.gz", "rb") as f, gzip.open(dst, "wb") as g:
        for i, line in enumerate(f):
            if i == 1500:
                break
            g.write(line)
    return dst


def test_log_file_json_lines(tmp_path: Path, pg_schema: tuple[str, str]) -> None:
    _, url = pg_schema
    log = tmp_path / "arb.log"
    r = _arb(["--log-level", "info", "--log-format", "json", "--log-file", str(log),
              "replay", f"binance:{_head(tmp_path)}", "--db", url, "--config", str(_config(tmp_path))], {}, tmp_path)
    assert r.returncode == 0, r.stderr
    lines = log.read_text().splitlines()
    recs = [json.loads(line) for line in lines]  # every line is one JSON object
    assert recs and all({"ts", "level", "logger", "msg"} <= rec.keys() for rec in recs)
    assert any(rec["logger"] == "cryptoarb.storage.writer" and "rows written" in rec["msg"] for rec in recs)
    assert all(rec["ts"].endswith("Z") and rec["level"] in ("debug", "info", "warning", "error") for rec in recs)
    text = log.read_text() + r.stderr
    for s in SECRETS:
        assert s not in text


def test_text_logs_and_env_configuration(tmp_path: Path) -> None:
    log = tmp_path / "arb.log"
    r = _arb(["replay", f"binance:{_head(tmp_path)}", "--db", str(tmp_path / "run.db")],
             {"ARB_LOG_LEVEL": "info", "ARB_LOG_FILE": str(log)}, tmp_path)
    assert r.returncode == 0, r.stderr
    first = log.read_text().splitlines()[0]
    assert first[:4].isdigit() and " INFO " in first  # readable text by default: time, level, logger
    assert "INFO" not in r.stderr  # the terminal keeps warnings and errors only when a file is given


@pytest.mark.parametrize(("args", "env", "needle"), [
    (["--log-level", "loud", "version"], {}, "--log-level 'loud'"),
    (["version"], {"ARB_LOG_LEVEL": "verbose"}, "ARB_LOG_LEVEL 'verbose'"),
    (["--log-format", "xml", "version"], {}, "--log-format 'xml'"),
    (["--log-file", "/nonexistent-dir/x.log", "version"], {}, "--log-file /nonexistent-dir/x.log"),
    (["version"], {"SENTRY_DSN": "not a dsn"}, "SENTRY_DSN: not a Sentry DSN"),
])
def test_bad_log_and_sentry_options_are_one_line_exit_2(monkeypatch: pytest.MonkeyPatch, args: list[str],
                                                        env: dict[str, str], needle: str) -> None:
    from typer.testing import CliRunner

    from cryptoarb.cli import app

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    out = r.stderr if r.stderr else r.output
    assert r.exit_code == 2 and out.count("\n") == 1 and out.startswith("error:"), out
    assert needle in out and (r.exception is None or isinstance(r.exception, SystemExit))
