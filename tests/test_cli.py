"""The ``arb`` command line as a user meets it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-2024-08-08"
CONTRACT_BOOK_KEYS = {"bids", "asks", "diffs_applied", "dropped_before_snapshot", "gaps", "resyncs", "checked_levels"}


def arb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "cryptoarb.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, stdin=subprocess.DEVNULL)


def assert_user_error(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out, out
    for n in needles:
        assert n in out, out


@pytest.fixture(scope="module")
def spot_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 3,000 lines of the real spot capture (snapshot at line 8), gzip."""
    if not DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{DATA} is missing: CI must have ../shared/data")
        pytest.skip("../shared/data is absent (real exchange captures); CI has it")
    out = tmp_path_factory.mktemp("cap") / "spot_head.gz"
    with gzip.open(DATA / "spot_btcusdt_20240808.gz", "rb") as src, gzip.open(out, "wb") as dst:
        for i, line in enumerate(src):
            if i == 3000:
                break
            dst.write(line)
    return out


def test_replay_writes_the_summary_contract_and_stores_the_run(spot_head: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    summary = tmp_path / "s.json"
    r = arb("replay", f"binance:{spot_head}", "--summary-json", str(summary), "--db", str(db))
    assert r.returncode == 0, r.stderr
    s = json.loads(summary.read_text())
    assert set(s) == {"messages", "books", "opportunities", "trades", "pnl_quote", "pnl", "max_unhedged_quote",
                      "latency_us", "risk", "legrisk", "inventory", "cycles"}
    assert set(s["risk"]) == {"refused", "breakers", "killed"}
    assert s["messages"] == 3000
    book = s["books"]["binance BTC/USDT"]
    assert set(book) == CONTRACT_BOOK_KEYS and book["gaps"] == 0 and book["diffs_applied"] > 0
    assert len(book["bids"]) == 5 and book["bids"][0][0] < book["asks"][0][0]
    assert set(s["latency_us"]) == {"p50", "p99", "p999"}
    with sqlite3.connect(db) as con:
        (mode,) = con.execute("select mode from runs").fetchone()
        pnl = con.execute("select realised, unrealised, total, currency from pnl").fetchall()
    assert mode == "replay"
    assert pnl and pnl[-1][3] == "USDT"  # the run's final PnL is stored


def test_malformed_line_is_counted_skipped_and_named(spot_head: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gz"
    with gzip.open(spot_head, "rb") as src, gzip.open(bad, "wb") as dst:
        for i, line in enumerate(src):
            dst.write(line)
            if i == 99:
                dst.write(b"1723161254000000000 {\"stream\":\"btcusdt@depth@100ms\",\"data\":{\"U\":1,\n")
                dst.write(b"garbage-without-timestamp\n")
    summary = tmp_path / "s.json"
    r = arb("replay", f"binance:{bad}", "--no-store", "--summary-json", str(summary))
    assert r.returncode == 0, r.stderr
    assert "2 bad line(s) skipped" in r.stderr and f"{bad}:101" in r.stderr
    assert json.loads(summary.read_text())["books"]["binance BTC/USDT"]["gaps"] == 0
    r = arb("replay", f"binance:{bad}", "--no-store", "--strict")
    assert_user_error(r, f"{bad}:101")


def test_truncated_gzip_names_the_file_and_line(spot_head: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gz"
    data = spot_head.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert_user_error(arb("replay", f"binance:{cut}", "--no-store"), str(cut), "truncated gzip after line")


def test_unknown_market_names_file_line_and_known_markets(tmp_path: Path) -> None:
    f = tmp_path / "eth.txt"
    f.write_text('1 {"stream":"ethbtc@depth@100ms","data":{"U":1,"u":2,"b":[],"a":[]}}\n')
    r = arb("replay", f"binance:{f}", "--no-store")
    # nothing usable came out (exit 3, docs: README "Exit codes"), and the warning says why and where
    assert r.returncode == 3, r.stderr
    assert all(n in r.stderr for n in (f"{f}:1", "unknown market 'ethbtc'", "BTCUSDT")), r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["replay", "binance:/nonexistent/x.gz"], ["/nonexistent/x.gz: no such file"]),
        (["replay", "nocolon"], ["expected VENUE:PATH"]),
        (["replay", "mtgox:x.gz"], ["unknown venue 'mtgox'", "binanceusdm"]),
        (["demo", "--duration", "-1"], ["--duration"]),
    ],
)
def test_bad_arguments_are_one_line_errors(args: list[str], needles: list[str]) -> None:
    assert_user_error(arb(*args), *needles)


def test_bad_config_and_database_url(spot_head: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[detector\nmin_profit_bps = 1\n")
    assert_user_error(arb("replay", f"binance:{spot_head}", "--config", str(cfg)), str(cfg), "not valid TOML")
    cfg.write_text("[detector]\nmin_profit_bps = -3\n")
    assert_user_error(arb("replay", f"binance:{spot_head}", "--config", str(cfg)), "detector.min_profit_bps")
    cfg.write_text("[detectr]\nmin_profit_bps = 1\n")
    assert_user_error(arb("replay", f"binance:{spot_head}", "--config", str(cfg)), "detectr")
    assert_user_error(arb("replay", f"binance:{spot_head}", "--config", str(tmp_path / "none.toml")),
                      "config file not found")
    assert_user_error(arb("replay", f"binance:{spot_head}", "--db", "postgresql://nobody:secret@127.0.0.1:1/x"),
                      "127.0.0.1")
    r = arb("replay", f"binance:{spot_head}", "--db", "postgresql://nobody:secret@127.0.0.1:1/x")
    assert "secret" not in r.stderr
    assert_user_error(arb("replay", f"binance:{spot_head}", "--no-store", "--summary-json",
                          str(tmp_path / "no" / "dir" / "s.json")), "does not exist")


def test_bench_json_has_the_documented_keys(spot_head: Path) -> None:
    r = arb("bench", f"binance:{spot_head}", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert set(res["ours"]) == {"p50_us", "p99_us", "p999_us", "msgs_per_s"}
    assert set(res["decision"]) == {"p50_us", "p99_us", "p999_us"}
    assert set(res["ccxt"]) == {"p50_us", "p99_us", "p999_us", "msgs_per_s"}
    assert res["ours"]["msgs_per_s"] > 0 and res["ccxt"]["msgs_per_s"] > 0


@pytest.mark.postgres
def test_replay_stores_into_postgresql(spot_head: Path) -> None:
    import uuid

    if os.environ.get("CI"):
        import psycopg  # CI has it: a missing driver must fail, not skip
    else:
        psycopg = pytest.importorskip("psycopg")
    try:
        con = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required on CI: {e}")
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {e}")
    schema = f"t_cli_{uuid.uuid4().hex[:8]}"
    con.execute(f"CREATE SCHEMA {schema}")
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
        r = arb("replay", f"binance:{spot_head}", "--db", url, "--quiet")
        assert r.returncode == 0, r.stderr
        (mode, ended) = con.execute(f"select mode, ended_ns from {schema}.runs").fetchone()
        assert mode == "replay" and ended is not None
        (n,) = con.execute(f"select count(*) from {schema}.alembic_version").fetchone()
        assert n == 1
    finally:
        con.execute(f"DROP SCHEMA {schema} CASCADE")
        con.close()
