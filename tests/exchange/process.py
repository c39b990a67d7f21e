"""Start and stop the local Binance venue as a real subprocess, drive its admin endpoints, and
point a ccxt ``binance`` / ``binanceus`` instance at it.

``LocalBinance(tmp_path / "a", capture_files).start()`` runs ``python -m
tests.exchange.binance_rest`` on a free port of 127.0.0.1 and waits for its ``READY`` line;
``restart()`` stops it and starts it again on the same port with the same state directory;
``kill()`` SIGKILLs it. ``ccxt_urls(exchange, base)`` rewrites every API URL of a ccxt
instance to the venue, and ``LoopbackGuard`` is an aiohttp session for ccxt that records every
request and refuses any host but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp

REPO = Path(__file__).resolve().parents[2]

ACCOUNTS = [
    {"name": "alice", "api_key": "aliceKey0123456789", "secret": "alice-secret-not-a-real-one",
     "balances": {"BTC": "2", "USDT": "200000"}, "taker_fee": "0.001", "maker_fee": "0.001"},
    {"name": "poor", "api_key": "poorKey0123456789", "secret": "poor-secret-not-a-real-one",
     "balances": {"BTC": "0", "USDT": "10"}, "taker_fee": "0.001", "maker_fee": "0.001"},
]


class LocalBinance:
    """One venue process: a state directory, a config, a port."""

    def __init__(self, state_dir: Path, captures: list[Path], start_line: int = 0, pace: float = 0.0,
                 accounts: list[dict[str, Any]] | None = None, weight_limit: int = 6000,
                 synthetic: list[dict[str, Any]] | None = None) -> None:
        self.state_dir = state_dir
        self.captures = captures
        self.start_line = start_line
        self.pace = pace
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        state_dir.mkdir(parents=True, exist_ok=True)
        self.config = state_dir / "venue.json"
        self.log = state_dir / "venue.log"  # the process's stderr
        self.accounts = accounts or ACCOUNTS
        cfg: dict[str, Any] = {"accounts": self.accounts, "weight_limit_1m": weight_limit}
        if synthetic:  # SYNTHETIC symbols derived from the captured book (tests/exchange/synthetic.py)
            cfg["synthetic"] = synthetic
        self.config.write_text(json.dumps(cfg))

    def account(self, name: str) -> dict[str, Any]:
        return next(a for a in self.accounts if a["name"] == name)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> LocalBinance:
        cmd = [sys.executable, "-m", "tests.exchange.binance_rest", "--config", str(self.config),
               "--state-dir", str(self.state_dir), "--start-line", str(self.start_line), "--pace", str(self.pace),
               "--port", str(self.port)]
        for c in self.captures:
            cmd += ["--capture", str(c)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
        # stderr to a file, never a pipe nobody drains (a full pipe would block the venue)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        if not line.startswith(b"READY "):
            err = b""
            if not line:  # stdout closed: the process is exiting, with its reason on stderr
                with suppress(subprocess.TimeoutExpired):
                    self.proc.wait(10)
            if self.proc.poll() is not None:
                last = self.log.read_bytes().strip().splitlines()
                err = last[-1] if last else b""
            self.kill()
            raise RuntimeError(f"local venue did not start: {line!r} {err.decode(errors='replace')}")
        self.url = line.split()[1].decode()
        self.port = int(urlparse(self.url).port or 0)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_pipes()

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def restart(self, crash: bool = False) -> LocalBinance:
        """Stop (SIGKILL when ``crash``) and start again on the same port and state directory."""
        self.kill() if crash else self.stop()
        _wait_port_free(self.port)
        return self.start()

    # -- admin -----------------------------------------------------------------------------
    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"admin {method} {path}: {e.code} {e.read().decode(errors='replace')}") from None

    def fault(self, **spec: Any) -> Any:
        return self.admin("POST", "/admin/fault", spec)

    def clear_faults(self) -> Any:
        return self.admin("DELETE", "/admin/fault")

    def orders(self, account: str = "alice") -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.admin("GET", f"/admin/orders?account={account}")
        return result

    def balances(self, account: str = "alice") -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = self.admin("GET", f"/admin/balances?account={account}")
        return result

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.admin("GET", "/admin/requests")
        return result


def _wait_port_free(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return
            except OSError:
                time.sleep(0.05)


def ccxt_urls(exchange: Any, base: str) -> None:
    """Point every API URL of a ccxt instance at ``base`` (keeping each URL's path)."""
    api = exchange.urls["api"]
    for key, url in list(api.items()):
        if isinstance(url, str):
            api[key] = base + urlparse(url).path
    exchange.urls["api"] = api


class RefusedHost(aiohttp.ClientConnectionError):
    """A request to a host other than 127.0.0.1 (tests never leave the machine)."""


class LoopbackGuard:
    """An aiohttp session for ccxt (``session=``) that records every URL and refuses other hosts."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.refused: list[str] = []
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._on_start)
        self.session = aiohttp.ClientSession(trace_configs=[trace], trust_env=False)

    async def _on_start(self, session: aiohttp.ClientSession, ctx: Any,
                        params: aiohttp.TraceRequestStartParams) -> None:
        url = str(params.url)
        self.urls.append(url)
        if params.url.host != "127.0.0.1":
            self.refused.append(url)
            raise RefusedHost(f"refused a request to {params.url.host}: only 127.0.0.1 is allowed in tests")

    async def close(self) -> None:
        await self.session.close()


@asynccontextmanager
async def ccxt_client(venue: LocalBinance, account: str = "alice", cls: Any = None,
                      **config: Any) -> AsyncIterator[tuple[Any, LoopbackGuard]]:
    """A ccxt async instance (``binance`` unless ``cls`` says otherwise) on ``venue`` with
    ``account``'s keys, its HTTP through a :class:`LoopbackGuard`; closed on exit."""
    import ccxt.async_support as ccxt_async

    guard = LoopbackGuard()
    acc = venue.account(account)
    ex = (cls or ccxt_async.binance)({"apiKey": acc["api_key"], "secret": acc["secret"], "session": guard.session,
                                      **config})
    ccxt_urls(ex, venue.url)
    try:
        yield ex, guard
    finally:
        await ex.close()
        await guard.close()
