"""The order journal on SQLite and PostgreSQL, client order ids within each venue's rules, and
API keys from the environment or a mode-600 secrets file (never shown), with the CLI's checks
before ``--trade`` opens anything."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cryptoarb.execution import journal as J
from cryptoarb.execution.client_ids import RULES, client_id, valid
from cryptoarb.execution.keys import Credentials, KeysError, env_name, load_keys
from test_storage import backend, db_url, engine  # noqa: F401  (fixtures: SQLite and PostgreSQL)


def _order(cid: str = "car1b", side: str = "buy") -> J.JournalOrder:
    return J.JournalOrder(cid, "r-1b", "r", 1, "binance", "BTC/USDT", side, "limit_ioc", Decimal("0.01"),
                          Decimal("61830.01"), "BTC", "USDT", created_ns=1)


def test_journal_books_each_fill_once_with_its_ledger_rows(engine: Engine) -> None:  # noqa: F811
    j = J.Journal(engine)
    assert j.open_ledger("binance", {"BTC": Decimal("2"), "USDT": Decimal("200000")}, 0)
    assert not j.open_ledger("binance", {"BTC": Decimal("9")}, 1)  # only the first time
    o = _order()
    j.new(o, 10)
    assert [x.client_id for x in j.unresolved()] == ["car1b"]
    f1 = J.VenueFill("t1", Decimal("61830.01"), Decimal("0.004"), Decimal("0.000004"), "BTC", 11)
    f2 = J.VenueFill("t2", Decimal("61830.02"), Decimal("0.006"), Decimal("0.000006"), "BTC", 12)
    assert j.record(o, J.UNKNOWN, 11, reason="RequestTimeout") == []
    assert j.record(o, J.PARTIAL, 12, [f1]) == [f1]
    # the same fills again (an answer, then a reconciliation): only the new one is booked
    assert j.record(o, J.FILLED, 13, [f1, f2]) == [f2]
    assert j.unresolved() == []
    [row] = j.orders()
    assert (row.state, row.filled_qty, row.cost) == (J.FILLED, Decimal("0.01"),
                                                      Decimal("0.004") * Decimal("61830.01") +
                                                      Decimal("0.006") * Decimal("61830.02"))
    assert [s for s, _ in j.events("car1b")] == [J.PENDING_NEW, J.UNKNOWN, J.PARTIAL, J.FILLED]
    led = j.ledger("binance")
    assert led[("binance", "BTC")] == Decimal("2.00999")
    assert led[("binance", "USDT")] == Decimal("200000") - row.cost


def test_client_ids_follow_each_venue_rule_and_never_repeat() -> None:
    ids = set()
    for venue in [*RULES, "kraken"]:
        for run in ("0123456789ab", "ba9876543210"):
            for arb in (1, 12345678901):
                for leg in ("b", "s"):
                    cid = client_id(venue, run, arb, leg)
                    assert valid(venue, cid), (venue, cid)
                    ids.add((venue, cid))
    assert len(ids) == (len(RULES) + 1) * 8
    assert client_id("binance", "0123456789ab", 7, "b") == "ca0123456789ab7b"
    assert re.fullmatch("t-[0-9a-z]{1,28}", client_id("gate", "0123456789ab" * 3, 7, "b"))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for k in list(os.environ):
        if k.startswith("CRYPTOARB_"):
            monkeypatch.delenv(k)
    return monkeypatch


def test_keys_from_the_environment_are_never_shown(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(env_name("binance", "API_KEY"), "KEYvalue123")
    clean_env.setenv(env_name("binance", "API_SECRET"), "SECRETvalue456")
    creds = load_keys(["binance"])["binance"]
    assert creds.ccxt_config() == {"apiKey": "KEYvalue123", "secret": "SECRETvalue456"}
    shown = repr(creds) + str(creds) + repr([creds])
    assert "KEYvalue123" not in shown and "SECRETvalue456" not in shown and "***" in shown
    assert creds.scrub("binance said: bad key KEYvalue123") == "binance said: bad key ***"


def test_a_secrets_file_must_be_private(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    f = tmp_path / "keys.toml"
    f.write_text('[binance]\napiKey = "fileKEY123"\nsecret = "fileSECRET456"\n')
    f.chmod(0o644)
    with pytest.raises(KeysError, match=r"readable by others \(mode 644\): chmod 600"):
        load_keys(["binance"], str(f))
    f.chmod(0o600)
    creds = load_keys(["binance"], str(f))["binance"]
    assert isinstance(creds, Credentials) and creds.source == str(f)
    with pytest.raises(KeysError, match="--trade needs API keys for binanceus"):
        load_keys(["binance", "binanceus"], str(f))
    f.write_text('[binance]\napiKey = "fileKEY123"\nsecert = "x"\n')
    with pytest.raises(KeysError, match=r"unknown key.*secert") as e:
        load_keys(["binance"], str(f))
    assert "fileKEY123" not in str(e.value)
    with pytest.raises(KeysError, match="secrets file not found"):
        load_keys(["binance"], str(tmp_path / "nope.toml"))


def _arb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOARB_")}
    return subprocess.run([sys.executable, "-m", "cryptoarb.cli", *args], capture_output=True, text=True,
                          env={**base, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_trade_refuses_to_start_without_keys_or_journal_before_opening_anything(tmp_path: Path) -> None:
    db = tmp_path / "never.db"
    r = _arb("run", "--live", "--trade", "--venues", "binance", "--db", str(db))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--trade needs API keys for binance: set CRYPTOARB_BINANCE_API_KEY" in r.stderr
    assert not db.exists()  # nothing recorded
    r = _arb("run", "--live", "--trade", "--venues", "binance", "--no-store")
    assert r.returncode == 2 and "needs the order journal" in r.stderr
    keys = tmp_path / "keys.toml"
    keys.write_text('[binance]\napiKey = "k"\nsecret = "s"\n')
    keys.chmod(0o640)
    r = _arb("run", "--live", "--trade", "--venues", "binance", "--db", str(db),
             env={"CRYPTOARB_SECRETS_FILE": str(keys)})
    assert r.returncode == 2 and "chmod 600" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not db.exists()
