"""What the bus and role tests share: the machine's Redis and PostgreSQL (a key prefix / a fresh
schema per test, cleaned up), throwaway servers on free ports for fault tests, the role
processes and the settings they run with (zero fees, so the real captures give trades)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from glob import glob
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.zerofees import ZERO_FEES

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parents[1]


def _require(what: str, check: Any) -> None:
    try:
        check()
    except Exception as e:
        msg = f"{what} unreachable: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of its own on the machine's Redis; its keys are deleted afterwards."""
    _require(f"Redis at {REDIS_URL}", lambda: redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    yield prefix
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(f"{prefix}*"))
    if keys:
        r.delete(*keys)
    r.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The machine's PostgreSQL, with a fresh schema on the search path (dropped afterwards)."""
    _require(f"PostgreSQL at {PG_URL}", lambda: psycopg.connect(PG_URL, connect_timeout=3).close())
    schema = f"b_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def pg_counts(url: str) -> dict[str, int]:
    conninfo, _, opts = url.partition("?")
    schema = opts.split("%3D", 1)[1] if opts else "public"
    with psycopg.connect(conninfo.replace("postgresql://", "postgresql://", 1), options=f"-csearch_path={schema}"
                         ) as c:
        out = {}
        for t in ("opportunities", "orders", "fills", "arb_trades", "runs", "pnl", "balances", "training_features",
                  "bus_events"):
            out[t] = int(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
        return out


def pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    conninfo, _, opts = url.partition("?")
    schema = opts.split("%3D", 1)[1] if opts else "public"
    with psycopg.connect(conninfo, options=f"-csearch_path={schema}") as c:
        return list(c.execute(sql).fetchall())


# -- throwaway servers -------------------------------------------------------------------------

class RedisServer:
    """``redis-server --port N --save ''`` (no persistence: a restart loses every key)."""

    def __init__(self, tmp: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            msg = "redis-server is not installed"
            if os.environ.get("CI"):
                pytest.fail(msg, pytrace=False)
            pytest.skip(msg)
        self.exe = exe
        self.port = free_port()
        self.dir = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("throwaway redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()


class PgServer:
    """A throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``) in a temp dir, on a free port."""

    def __init__(self, tmp: Path) -> None:
        bins = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            msg = "PostgreSQL server binaries (initdb) not found under /usr/lib/postgresql"
            if os.environ.get("CI"):
                pytest.fail(msg, pytrace=False)
            pytest.skip(msg)
        self.bin = Path(bins[-1]).parent
        # not under pytest's tmp_path: its parents are private to root, and the server runs as postgres
        self.root = Path(tempfile.mkdtemp(prefix="arb-pg-"))
        self.root.chmod(0o777)
        self.data = self.root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as = _run_as_postgres()
        subprocess.run([*self._as, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
        self.start()

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "20", *args],
                       check=True, capture_output=True)

    def start(self) -> None:
        self._ctl("-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off", "-l",
                  str(self.data / "log"), "start")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _run_as_postgres() -> list[str]:
    """initdb refuses root: run the server tools as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


# -- role processes ---------------------------------------------------------------------------

STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=False)
def reap() -> Iterator[None]:
    """Kill the role processes a test started and left running (a failed assertion midway)."""
    yield
    while STARTED:
        p = STARTED.pop()
        if p.poll() is None:
            p.kill()
            p.communicate()


def arb(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
    """``arb ARGS`` as its own process (stdout/stderr captured; killed after the test by ``reap``)."""
    p = subprocess.Popen([sys.executable, "-m", "cryptoarb.cli", *args], cwd=ROOT, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "COLUMNS": "250", **(env or {})}, **kw)
    STARTED.append(p)
    return p


def done(p: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    try:
        out, errs = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        out, errs = p.communicate(timeout=10)
        raise AssertionError(f"arb did not finish in {timeout}s: {errs[-2000:]}") from None
    return int(p.returncode), out + errs


#: the bus part of the roles' settings; the zero-fee detector and instruments follow (tests/zerofees.py)
CONFIG = """\
[bus]
prefix = "{prefix}"
required_groups = {groups}
claim_idle_ms = 500
[bus.shards.usdm]
venues = ["binance", "binanceusdm"]
[bus.shards.coinm]
venues = ["binance", "binancecoinm"]
"""


def write_config(path: Path, prefix: str, groups: tuple[str, ...] = ("recorder", "analytics")) -> Path:
    path.write_text(CONFIG.format(prefix=prefix, groups=list(groups)).replace("'", '"') + ZERO_FEES)
    return path


def shard_sources(data: Path, shard: str) -> list[str]:
    """The captures of one shard (the 2024-08-08 files: a few seconds of replay each)."""
    other = {"usdm": f"binanceusdm:{data / 'usdm_btcusdt_20240808.gz'}",
             "coinm": f"binancecoinm:{data / 'cm_btcusd_perp_20240808.gz'}"}[shard]
    return [f"binance:{data / 'spot_btcusdt_20240808.gz'}", other]
