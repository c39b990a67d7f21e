"""``arb kill`` / ``arb resume`` and the kill/resume signals against real ``arb`` processes: a
running demo is killed and resumed from another process and by signal, each step lands as an
``audit_log`` row and an alert at a local webhook; bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from alertkit import Webhook, wait_for
from cryptoarb.engine import killswitch
from cryptoarb.engine.control import pid_path, running_pid
from test_cli import arb, spot_head  # noqa: F401 (spot_head is a fixture)
from test_live import _config as live_config
from test_live import recorded, venue  # noqa: F401 (fixtures: the local venue serving real Binance frames)
from wsserver import LocalVenue

EXIT_INTERRUPTED = 130


def _config(tmp_path: Path, hook: Webhook | None = None, kill_file: bool = True) -> Path:
    cfg = tmp_path / "arb.toml"
    text = f'[risk]\nkill_file = "{tmp_path / "KILL"}"\n' if kill_file else "[risk]\nmax_loss_streak = 25\n"
    if hook is not None:
        text += f'[alerts]\nurls = ["{hook.url()}"]\ndedupe_window_s = 0\n'
    cfg.write_text(text)
    return cfg


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``arb ARGS`` run in this process, exactly as the console script runs it: (exit code, stdout,
    stderr). The short commands need no process of their own (the engine they talk to has one)."""
    from cryptoarb.cli import main

    capsys.readouterr()
    code: int | str | None = 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["arb", *args])
        try:
            main()
        except SystemExit as e:
            code = e.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


def _audit(db: Path) -> list[tuple[str, str, dict[str, object]]]:
    with sqlite3.connect(db) as con:
        rows = con.execute("select actor, action, detail from audit_log order by id").fetchall()
    return [(a, b, json.loads(c)) for a, b, c in rows]


def test_a_running_demo_is_killed_and_resumed_by_command_and_by_signal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kill_file = tmp_path / "KILL"
    db = tmp_path / "demo.db"
    with Webhook() as hook:
        cfg = _config(tmp_path, hook)
        env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "cryptoarb.cli", "demo", "--no-live", "--duration", "600",
                                 "--config", str(cfg), "--db", str(db)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                stdin=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: running_pid(kill_file) == proc.pid, timeout=60), proc.poll()

            def alerted(title: str) -> bool:
                return wait_for(lambda: any(title in t for t in hook.titles()), timeout=30)

            code, out, err = _main(capsys, "kill", "--config", str(cfg), "--reason", "exchange maintenance drill",
                                   "--actor", "alice")
            assert code == 0 and f"engine pid {proc.pid}" in out, out + err
            assert alerted("KILL SWITCH set by alice"), hook.titles()
            assert kill_file.read_text() == "alice: exchange maintenance drill\n"

            code, out, err = _main(capsys, "resume", "--config", str(cfg), "--actor", "alice")
            assert code == 0 and "resume requested" in out, out + err
            assert alerted("kill switch lifted by alice"), hook.titles()
            assert not kill_file.exists()

            proc.send_signal(signal.SIGUSR1)
            assert alerted("KILL SWITCH set by signal"), hook.titles()
            assert kill_file.exists()  # the signal's kill is the same switch: a restart stays killed
            proc.send_signal(signal.SIGUSR2)
            assert alerted("kill switch lifted by signal"), hook.titles()
            assert not kill_file.exists()

            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "alerts: 4 raised, 4 delivered" in err, err
    assert not pid_path(kill_file).exists()  # removed on the way out
    rows = [(actor, action, detail) for actor, action, detail in _audit(db) if action in ("risk.kill", "risk.resume")]
    assert [(a, b) for a, b, _ in rows] == [("alice", "risk.kill"), ("alice", "risk.resume"),
                                           ("signal", "risk.kill"), ("signal", "risk.resume")]
    assert rows[0][2]["reason"] == "exchange maintenance drill" and "cancel_orders" in rows[0][2]
    assert rows[1][2]["killed_for"] == "exchange maintenance drill"
    assert rows[2][2]["reason"] == "SIGUSR1 received"
    kills = [d["ts_ns"] for _, b, d in rows]
    with sqlite3.connect(db) as con:  # nothing was sent while killed
        created = [c for (c,) in con.execute("select created_ns from arb_trades")]
    assert not [c for c in created if kills[0] <= c < kills[1] or kills[2] <= c < kills[3]]


def test_a_replay_started_with_the_kill_file_armed_trades_nothing_and_says_so(
        tmp_path: Path, spot_head: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    kill_file = tmp_path / "KILL"
    killswitch.request_kill(kill_file, "armed before the start", "ops")
    db, summary = tmp_path / "replay.db", tmp_path / "s.json"
    with Webhook() as hook:
        cfg = _config(tmp_path, hook)
        r = arb("replay", f"binance:{spot_head}", "--config", str(cfg), "--db", str(db), "-q",
                "--summary-json", str(summary))
    assert r.returncode == 0, r.stderr
    s = json.loads(summary.read_text())
    assert s["risk"]["killed"] is True and s["trades"] == 0
    assert "cryptoarb: KILL SWITCH set by ops: trading stopped" in hook.titles()
    [kill] = [(a, d) for a, b, d in _audit(db) if b == "risk.kill"]
    assert kill[0] == "ops" and kill[1]["reason"] == "armed before the start"
    assert not pid_path(kill_file).exists()
    # the engine is gone: arb resume has nobody to talk to and changes nothing
    _one_line(capsys, "resume", "--config", str(cfg), needle="no engine is running with kill file")
    assert kill_file.exists()


def _one_line(capsys: pytest.CaptureFixture[str], *args: str, needle: str) -> None:
    """``arb ARGS``: exit 2, one ``error:`` line naming what is wrong, nothing on stdout."""
    code, out, err = _main(capsys, *args)
    assert code == 2, out + err
    assert out == "" and err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert needle in err and "Traceback" not in err, err


def test_bad_input_is_one_line_and_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kill_file = tmp_path / "KILL"
    cfg = str(_config(tmp_path))
    _one_line(capsys, "kill", "--config", str(tmp_path / "nope.toml"), needle="nope.toml: no such file")
    (tmp_path / "other").mkdir()
    _one_line(capsys, "kill", "--config", str(_config(tmp_path / "other", kill_file=False)),
              needle="[risk] kill_file is not set in")
    _one_line(capsys, "kill", "--config", cfg, needle=f"no engine is running with kill file {kill_file}")
    _one_line(capsys, "resume", "--config", cfg, needle="no engine is running")
    assert not kill_file.exists() and not killswitch.resume_path(kill_file).exists()
    _one_line(capsys, "kill", "--config", cfg, "--reason", " ", needle="--reason must be one non-empty line")
    _one_line(capsys, "kill", "--config", cfg, "--actor", "a:b", needle="--actor must be a non-empty name")
    bad = tmp_path / "bad.toml"
    bad.write_text("[risk]\nkill_fil = 'x'\n")
    _one_line(capsys, "kill", "--config", str(bad), needle="risk.kill_fil: unknown key (did you mean 'kill_file'?)")

    # a stale pid file (the engine was SIGKILLed), or one whose pid now belongs to another program
    gone = subprocess.Popen(["true"])
    gone.wait()
    other = subprocess.Popen(["sleep", "60"])
    try:
        for pid in (gone.pid, other.pid):
            pid_path(kill_file).write_text(f"{pid}\n")
            _one_line(capsys, "kill", "--config", cfg, needle="no engine is running")
        assert other.poll() is None  # never signalled
    finally:
        other.kill()
        other.wait()
    assert not kill_file.exists()


def test_arb_run_live_answers_arb_kill_and_resume_signals(
        venue: LocalVenue, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """The asyncio runner: the kill arrives through the signal while the loop waits on sockets."""
    kill_file = tmp_path / "KILL"
    with Webhook() as hook:
        cfg = live_config(tmp_path, venue)
        cfg.write_text(cfg.read_text() + f'[risk]\nkill_file = "{kill_file}"\n[alerts]\nurls = ["{hook.url()}"]\n')
        env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "cryptoarb.cli", "run", "--live", "--venues", "binance",
                                 "--symbols", "BTC/USDT", "--duration", "120", "--no-view", "--config", str(cfg)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                stdin=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: running_pid(kill_file) == proc.pid, timeout=60), proc.poll()
            code, out, err = _main(capsys, "kill", "--config", str(cfg), "--reason", "live drill")
            assert code == 0, out + err
            assert wait_for(lambda: any("KILL SWITCH" in t for t in hook.titles())), hook.titles()
            proc.send_signal(signal.SIGUSR2)
            assert wait_for(lambda: any("lifted by signal" in t for t in hook.titles())), hook.titles()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "alerts: 2 raised, 2 delivered" in err and "Traceback" not in err, err
    assert "live drill" in hook.received[0]["json"]["message"]
    assert not kill_file.exists() and not pid_path(kill_file).exists()
