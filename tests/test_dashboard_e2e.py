"""The dashboard end to end in a real browser: ``arb demo`` (API + built dashboard, a temporary
SQLite database) in a subprocess, a viewer added with ``arb user add``, then ``web/e2e/e2e.mjs``
drives Debian's chromium through playwright-core (no browser download): log in as the demo's
one-off admin, watch opportunities and trades arrive live, kill and resume, a viewer refused,
phone width. Screenshots go to ``web/artifacts/`` (gitignored).

Needs ``/usr/bin/chromium`` (``apt-get install chromium``), Node and the built dashboard
(``make dashboard``; ``make test`` builds it first). Missing, they skip the test on a developer
machine and fail it in CI (env ``CI`` set). ``E2E_DOCS_SHOT=docs/dashboard.png`` also refreshes
the README's screenshot.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
STATIC_INDEX = ROOT / "src" / "cryptoarb" / "api" / "static" / "index.html"
ARTIFACTS = WEB / "artifacts"
# the line `arb demo` prints in dev mode (docs/api.md)
DASHBOARD_LINE = re.compile(r"dashboard: (?P<url>http://\S+)\s+user: (?P<user>\S+)\s+password: (?P<password>\S+)")
START_TIMEOUT_S = 90.0
E2E_TIMEOUT_S = 150.0


def _need(ok: bool, why: str) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


class Demo:
    """``arb demo`` in a subprocess; its output collected on a thread (it must never block on a pipe)."""

    def __init__(self, db: Path) -> None:
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
        env.pop("JWT_SECRET", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cryptoarb.cli", "demo", "--duration", "600", "--no-live",
             "--api-port", "0", "--db", f"sqlite:///{db}"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self.found = threading.Event()
        self.match: re.Match[str] | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            m = DASHBOARD_LINE.search(line)
            if m and self.match is None:
                self.match = m
                self.found.set()
        self.found.set()  # ended: whoever waits stops waiting

    def wait_url(self) -> re.Match[str]:
        self.found.wait(START_TIMEOUT_S)
        if self.match is None:
            self.stop()
            pytest.fail("arb demo printed no dashboard line:\n" + "".join(self.lines), pytrace=False)
        return self.match

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def test_dashboard_in_chromium_against_arb_demo(tmp_path: Path) -> None:
    _need(Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    node = shutil.which("node")
    _need(node is not None, "node is missing (Node >= 20.19 builds and tests the dashboard)")
    _need((WEB / "node_modules" / "playwright-core").is_dir(), "web/node_modules is missing: run make dashboard")
    _need(STATIC_INDEX.is_file(), f"the dashboard is not built ({STATIC_INDEX}): run make dashboard")
    assert node is not None

    db = tmp_path / "e2e.db"
    demo = Demo(db)
    try:
        m = demo.wait_url()
        viewer, viewer_pw = "e2e-viewer", secrets.token_urlsafe(18)
        add = subprocess.run(
            [sys.executable, "-m", "cryptoarb.cli", "user", "add", viewer, "--role", "viewer", "--db", f"sqlite:///{db}"],
            cwd=ROOT, input=viewer_pw + "\n", capture_output=True, text=True, timeout=60,
        )
        assert add.returncode == 0, add.stdout + add.stderr
        env = {
            **os.environ, "CHROMIUM": CHROMIUM, "E2E_URL": m["url"], "E2E_ADMIN_USER": m["user"],
            "E2E_ADMIN_PASSWORD": m["password"], "E2E_VIEWER_USER": viewer, "E2E_VIEWER_PASSWORD": viewer_pw,
            "E2E_ARTIFACTS": str(ARTIFACTS),
        }
        t0 = time.monotonic()
        run = subprocess.run([node, "e2e/e2e.mjs"], cwd=WEB, env=env, capture_output=True, text=True,
                             timeout=E2E_TIMEOUT_S)
        took = time.monotonic() - t0
        demo_out = "".join(demo.lines[-60:])
        assert run.returncode == 0, (
            f"browser test failed after {took:.0f} s:\n{run.stdout}{run.stderr}\n--- arb demo:\n{demo_out}")
        assert "e2e: ok" in run.stdout
        for name in ("login.png", "dashboard-admin.png", "killed.png", "phone-viewer.png"):
            assert (ARTIFACTS / name).stat().st_size > 10_000, name
    finally:
        rc = demo.stop()
    assert rc in (0, 130), "".join(demo.lines[-40:])
