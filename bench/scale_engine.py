"""The engine side of the load harness: the real ``arb run --live`` in its own process(es).

The engine command is pluggable (``--engine-cmd``, a template; ``--shards N`` is passed through
to it): by default ``python -m cryptoarb.cli run --live --no-view --no-store`` with a config
file that points each venue's WebSocket URL (``live.venues.<v>.ws_url``) and ccxt REST URLs
(``live.venues.<v>.ccxt.urls``) at the local venues, so instruments come from ccxt's
``load_markets`` against them and the run goes through ``plan``, ``build_feeds`` and
``run_feeds`` exactly as live. ``SCALE_SRC`` chooses whose ``src`` runs (before/after in one
sitting). The measurement probe (``scale_probe/sitecustomize.py``) is installed through
``PYTHONPATH`` in every process the command starts.

The detector's ``min_profit_bps`` is set out of reach: the renamed markets of different
recordings sit at different prices (BTC 2024, BTC 2022, AVAX 2022), so detection runs on every
update (the worst case: the spread check always passes to the full computation) but no paper
trade is ever placed, as in a quiet real market.

``--engine-nice`` (default -15 where permitted) gives the engine process(es), in a session (and
scheduling autogroup) of their own, the CPU before the other tenants of a shared machine,
standing in for the machine the engine would have to itself;
the venues rank above it (they stand for the network).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEFAULT_CMD = ("{python} -m cryptoarb.cli run --live --no-view --no-store --config {config} "
               "--venues {venues} --symbols {symbols} --duration {duration}")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def write_config(path: Path, venues: dict[str, tuple[int, int]]) -> None:
    """The engine's config: each venue's ws_url and ccxt REST URLs on 127.0.0.1."""
    from scale_frames import ccxt_config

    lines = ["[detector]", "min_profit_bps = 1e9", "", "[live]", "stale_after_s = 30.0", ""]
    for v, (ws_port, http_port) in venues.items():
        lines += [f"[live.venues.{v}]", f'ws_url = "ws://127.0.0.1:{ws_port}/ws"',
                  f"ccxt = {_toml(ccxt_config(v, f'http://127.0.0.1:{http_port}'))}", ""]
    path.write_text("\n".join(lines))


def _nice(n: int) -> None:
    """The engine's priority, inherited by its shard processes; left as is when not permitted.

    With autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``), CFS shares the CPU
    equally between sessions first, and a process's nice value only ranks it inside its own
    session: on a machine shared with other sessions the engine would get a fifth of it whatever
    its nice value. So the engine gets a session of its own, and that session's nice value."""
    with contextlib.suppress(OSError):
        os.setsid()
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(n))
    with contextlib.suppress(OSError):
        os.nice(n)


class EngineProcess:
    """The engine command, started with the probe; stopped with SIGINT (a clean exit)."""

    def __init__(self, workdir: Path, template: str, venues: list[str], symbols: str, duration: float,
                 extra: list[str], nice: int = 0) -> None:
        self.workdir = workdir
        src = str(Path(os.environ.get("SCALE_SRC", str(ROOT / "src"))).resolve())  # the engine runs elsewhere
        cmd = template.format(python=sys.executable, config=workdir / "engine.toml", venues=",".join(venues),
                              symbols=symbols, duration=duration).split() + extra
        env = {**os.environ, "PYTHONPATH": f"{BENCH / 'scale_probe'}{os.pathsep}{src}",
               "SCALE_PROBE_DIR": str(workdir), "COLUMNS": "200"}
        self.started_ns = time.time_ns()
        self.out = open(workdir / "engine.out", "wb")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.out, stderr=subprocess.STDOUT, cwd=workdir,
                                     preexec_fn=(lambda: _nice(nice)) if nice else None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        return self.proc.returncode

    def output(self) -> str:
        return (self.workdir / "engine.out").read_text(errors="replace")


def probe_lines(workdir: Path) -> dict[int, list[dict[str, Any]]]:
    """Every engine process's probe lines, by pid (a half-written last line is skipped)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for p in workdir.glob("probe-*.jsonl"):
        rows = []
        for line in p.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
        if rows:
            out[int(p.stem.split("-")[1])] = rows
    return out
