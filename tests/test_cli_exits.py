"""``arb`` tells the truth about how it ended: interrupts, outputs checked first, success on nothing,
settings typos. Real processes, real signals, documented exit codes (README "Exit codes")."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_cli import DATA, arb, assert_user_error, spot_head  # noqa: F401 (spot_head is a fixture)

EXIT_NOTHING = 3
EXIT_INTERRUPTED = 130
ALL_FILES = ["binance:spot_btcusdt_20240808.gz", "binance:spot_btcusdt_20240809.gz",
             "binanceusdm:usdm_btcusdt_20240808.gz", "binancecoinm:cm_btcusd_perp_20240808.gz",
             "binancecoinm:cm_btcusd_perp_20240809.gz"]
ALL_MESSAGES = 41_249 + 58_325 + 93_954 + 48_270 + 50_116


def _real(spec: str) -> str:
    venue, name = spec.split(":")
    return f"{venue}:{DATA / name}"


def _start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.Popen([sys.executable, "-m", "cryptoarb.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)


def _signal_when(p: subprocess.Popen[str], marker: str, sig: int) -> tuple[str, str]:
    """Read stderr until ``marker`` (printed once the command's signal handling is in place and
    its work starts), send ``sig``, and collect the rest."""
    assert p.stderr is not None
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            p.send_signal(sig)
            break
    out, rest = p.communicate(timeout=120)
    return out, "".join(seen) + rest


def _needs_data() -> None:
    if not DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{DATA} is missing: CI must have ../shared/data")
        pytest.skip("../shared/data is absent")


# -- 1. Ctrl-C / SIGTERM ----------------------------------------------------------------------------


def test_replay_sigint_flushes_closes_the_run_and_writes_the_partial_summary(tmp_path: Path) -> None:
    _needs_data()
    db, summary = tmp_path / "r.db", tmp_path / "s.json"
    p = _start("replay", *map(_real, ALL_FILES), "--db", str(db), "--summary-json", str(summary))
    out, err = _signal_when(p, "Ctrl-C stops cleanly", signal.SIGINT)
    assert p.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "interrupted (SIGINT)" in err, err
    s = json.loads(summary.read_text())
    assert s["interrupted"] is True and 0 <= s["messages"] < ALL_MESSAGES
    assert "Books" in out and f"messages {s['messages']:,}" in out  # the partial summary is printed
    with sqlite3.connect(db) as con:
        runs = con.execute("select mode, ended_ns from runs").fetchall()
    assert len(runs) == 1 and runs[0][0] == "replay" and runs[0][1] is not None


def test_bench_sigterm_prints_what_was_measured(tmp_path: Path) -> None:
    _needs_data()
    p = _start("bench", *map(_real, ALL_FILES[:2]), "--no-ccxt")
    out, err = _signal_when(p, "Ctrl-C stops cleanly", signal.SIGTERM)
    assert p.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err, err
    assert "Per depth message" in out, out


def test_demo_sigterm_closes_its_run(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    p = _start("demo", "--no-live", "--db", str(db))  # no duration: runs until stopped
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the run row is stored once the demo has started
        time.sleep(0.2)
        try:
            with sqlite3.connect(db) as con:
                if con.execute("select count(*) from runs").fetchone()[0]:
                    break
        except sqlite3.OperationalError:
            continue  # not migrated yet
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == EXIT_INTERRUPTED, err
    assert "stopped early" in out and "Traceback" not in err, out + err
    with sqlite3.connect(db) as con:
        (ended,) = con.execute("select ended_ns from runs").fetchone()
    assert ended is not None


# -- 3. outputs checked before the work -------------------------------------------------------------


def test_unwritable_outputs_fail_before_any_work(spot_head: Path, tmp_path: Path) -> None:  # noqa: F811
    db = tmp_path / "r.db"
    r = arb("replay", f"binance:{spot_head}", "--db", str(db), "--summary-json", str(tmp_path))
    assert_user_error(r, "--summary-json", "is a directory")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = arb("replay", f"binance:{spot_head}", "--db", str(db), "--summary-json", str(blocker / "s.json"))
    assert_user_error(r, "--summary-json", "does not exist")
    assert not db.exists(), "the run started before the output was checked"
    r = arb("record", "--out", str(blocker / "captures"), "--duration", "1")
    assert_user_error(r, "--out", str(blocker / "captures"))
    assert "Task exception" not in r.stderr


def test_bad_json_in_an_environment_list_is_one_line(spot_head: Path) -> None:  # noqa: F811
    env_bad = {"ARB_DETECTOR__QUOTE_EQUIVALENTS": "[oops"}
    r = _run_env(env_bad, "replay", f"binance:{spot_head}", "--no-store")
    assert_user_error(r, "ARB_DETECTOR__QUOTE_EQUIVALENTS", "not valid JSON")
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# -- 4. success on nothing --------------------------------------------------------------------------


def test_inputs_that_give_nothing_exit_3_with_a_warning(spot_head: Path, tmp_path: Path) -> None:  # noqa: F811
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("hello world\nnot a capture\n")
    for spec, needle in ((f"binance:{empty}", "no recognised message"),
                         (f"binance:{garbage}", "no recognised message"),
                         (f"okx:{spot_head}", "okx: 3,000 message(s) but no order book was built")):
        r = arb("replay", spec, "--no-store")
        assert r.returncode == EXIT_NOTHING, (spec, r.stderr)
        assert "warning:" in r.stderr and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = arb("bench", f"binance:{garbage}")
    assert r.returncode == EXIT_NOTHING and "no recognised message" in r.stderr, r.stderr
    assert "0.00" not in r.stdout
    row = next(line for line in r.stdout.splitlines() if "raw bytes -> decision" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")][1:] == ["-", "-", "-", "-"], row


def test_no_measurement_is_null_in_json_and_dash_on_screen(tmp_path: Path) -> None:
    snap_only = tmp_path / "snap.txt"  # a snapshot and no diff: a book, but no depth message timed
    snap_only.write_text('1 {"rest":"BTC/USDT","data":{"lastUpdateId":5,"bids":[["1","1"]],"asks":[["2","1"]]}}\n')
    summary = tmp_path / "s.json"
    r = arb("replay", f"binance:{snap_only}", "--no-store", "--summary-json", str(summary))
    assert r.returncode == 0, r.stderr
    assert json.loads(summary.read_text())["latency_us"] == {"p50": None, "p99": None, "p999": None}
    assert "p50 - ·" in r.stdout and "0.0 µs" not in r.stdout, r.stdout


def test_strict_stops_at_a_bad_timestamp_or_separator(spot_head: Path, tmp_path: Path) -> None:  # noqa: F811
    with gzip.open(spot_head, "rb") as f:
        good = f.read().splitlines(keepends=True)[:50]
    for bad_line, reason in ((b"12x34 {}\n", "is not an integer"), (b"no-separator\n", "separator")):
        f = tmp_path / "bad.txt"
        f.write_bytes(b"".join(good[:10]) + bad_line + b"".join(good[10:]))
        r = arb("replay", f"binance:{f}", "--no-store", "--strict")
        assert_user_error(r, f"{f}:11", reason)


def test_a_venue_that_never_connects_is_not_a_success(tmp_path: Path) -> None:
    cfg = tmp_path / "dead.toml"
    cfg.write_text('[live.venues.binance]\nws_url = "ws://127.0.0.1:9"\n'
                   '[live.venues.binance.ccxt]\nurls = { api = { public = "http://127.0.0.1:9/api/v3" } }\n')
    r = arb("run", "--live", "--venues", "binance", "--duration", "1", "--no-view", "--no-store", "-c", str(cfg))
    assert r.returncode == EXIT_NOTHING and "never connected: binance" in r.stderr, r.stderr
    r = arb("record", "--venues", "binance", "--duration", "1", "--out", str(tmp_path / "cap"), "-c", str(cfg))
    assert r.returncode == EXIT_NOTHING and "never connected: binance" in r.stderr, r.stderr


def test_live_run_warns_about_venues_without_paper_balance(tmp_path: Path) -> None:
    cfg = tmp_path / "two.toml"
    cfg.write_text('[live.venues.binance]\nws_url = "ws://127.0.0.1:9"\n'
                   '[live.venues.kraken]\nws_url = "ws://127.0.0.1:9"\n'
                   '[[instruments]]\nvenue = "kraken"\nsymbol = "BTC/USDT"\nexchange_symbol = "XBT/USDT"\n')
    r = arb("run", "--live", "--venues", "binance,kraken", "--duration", "0.5", "--no-view", "--no-store",
            "-c", str(cfg))
    warning = next(line for line in r.stderr.splitlines() if "no paper balance" in line)
    assert "for kraken:" in warning and "binance" not in warning and "[paper.balances.kraken]" in warning
    assert "Traceback" not in r.stderr


# -- 5. settings typos -------------------------------------------------------------------------------


def _run_env(extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **extra}
    return subprocess.run([sys.executable, "-m", "cryptoarb.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, stdin=subprocess.DEVNULL)


def test_unknown_keys_negative_balances_and_unsupported_storage(spot_head: Path, tmp_path: Path) -> None:  # noqa: F811
    cfg = tmp_path / "typo.toml"
    cfg.write_text("[detector]\nmin_profit_bsp = 2\n")
    r = arb("replay", f"binance:{spot_head}", "--no-store", "-c", str(cfg))
    assert_user_error(r, "detector.min_profit_bsp", "did you mean 'min_profit_bps'")
    cfg.write_text("[paper.balances.binance]\nUSDT = -5\n")
    assert_user_error(arb("replay", f"binance:{spot_head}", "--no-store", "-c", str(cfg)), "binance.USDT", ">= 0")
    for name, needle in (("ARB_DETECTOR__MIN_PROFIT_BSP", "did you mean 'min_profit_bps'"),
                         ("ARB_DETECTR__MIN_PROFIT_BPS", "did you mean ARB_DETECTOR__")):
        r = _run_env({name: "2"}, "replay", f"binance:{spot_head}", "--no-store")
        assert_user_error(r, name, needle)
    for url, needle in (("nonsense", "not a storage URL"), ("sqlite:///", "in-memory"), ("mysql://u@h/db", "mysql")):
        r = _run_env({"ARB_STORAGE__URL": url}, "replay", f"binance:{spot_head}", "-q")
        assert_user_error(r, "ARB_STORAGE__URL", needle, "supported" if url != "sqlite:///" else "sqlite:///FILE")
        r = arb("replay", f"binance:{spot_head}", "-q", "--db", url, cwd=tmp_path)
        assert_user_error(r, "--db", needle)
    assert not (tmp_path / "nonsense").exists()


def test_live_run_sigint_prints_the_summary_and_exits_130(tmp_path: Path) -> None:
    cfg = tmp_path / "dead.toml"
    cfg.write_text('[live.venues.binance]\nws_url = "ws://127.0.0.1:9"\n')
    db = tmp_path / "live.db"
    p = _start("run", "--live", "--venues", "binance", "--no-view", "--db", str(db), "-c", str(cfg))
    out, err = _signal_when(p, "reconnecting", signal.SIGINT)  # logged from inside the running loop
    assert p.returncode == EXIT_INTERRUPTED, err
    assert "interrupted (SIGINT)" in err and "Traceback" not in err, err
    assert "Run summary" in out and "Feeds" in out, out
    with sqlite3.connect(db) as con:
        (ended,) = con.execute("select ended_ns from runs").fetchone()
    assert ended is not None


def test_replay_progress_counts_the_bytes_of_the_files(spot_head: Path, tmp_path: Path) -> None:  # noqa: F811
    """The replay bar's percentage and ETA come from bytes read of the files on disk (gzip:
    compressed bytes), growing while reading and equal to the total at the end."""
    from cryptoarb.replay.reader import LineStats, Source, stream, total_bytes

    plain = tmp_path / "plain.txt"
    with gzip.open(spot_head, "rb") as f:
        plain.write_bytes(f.read())
    for path in (spot_head, plain):
        src = [Source("binance", [path])]
        stats = LineStats()
        seen = [stats.progress.read() for i, _ in enumerate(stream(src[0], stats)) if i % 500 == 0]
        assert seen[0] < seen[len(seen) // 2] < total_bytes(src)
        assert seen == sorted(seen)
        assert stats.progress.read() == total_bytes(src) == path.stat().st_size
