"""Docs that run: every command in README.md and docs/*.md is executed here (on small inputs) or,
when it needs the internet or a chain, parsed by the real ``arb`` command line. A command the
table below does not know fails the test: a new command in the docs must say how it is checked."""

from __future__ import annotations

import gzip
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHARED = ROOT.parent / "shared" / "data"
HEAD_LINES = 3000


def _blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S)


def doc_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every shell command: fenced bash/sh blocks (continuations joined,
    comments dropped) and the README's inline `arb ... --option` spans."""
    out: list[tuple[str, list[str]]] = []
    for doc in DOCS:
        text = doc.read_text()
        for lang, body in _blocks(text):
            if lang not in ("bash", "sh"):
                continue
            for line in body.replace("\\\n", " ").splitlines():
                argv = shlex.split(line, comments=True)
                if argv:
                    out.append((doc.name, argv))
        if doc.name == "README.md":  # the tour's inline commands (elsewhere inline `arb ...` are mentions)
            prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
            for span in dict.fromkeys(re.findall(r"`(arb [^`]*--[^`]*)`", prose)):
                out.append((doc.name, shlex.split(span)))
    return out


def _heads(tmp: Path, argv: list[str]) -> list[str]:
    """The command with each ../shared/data capture replaced by its first lines (same name)."""
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED} is missing: CI must have ../shared/data")
        pytest.skip("../shared/data is absent")
    res = []
    for a in argv:
        venue, sep, path = a.rpartition(":")
        if "../shared/data/" in path:
            src = ROOT / path
            dst = tmp / src.name
            if not dst.exists():
                with gzip.open(src, "rb") as f, gzip.open(dst, "wb") as g:
                    for i, line in enumerate(f):
                        if i == HEAD_LINES:
                            break
                        g.write(line)
            a = f"{venue}{sep}{dst}"
        res.append(a)
    return res


def _arb(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "cryptoarb.cli", *argv], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, stdin=subprocess.DEVNULL)


def _parses(argv: list[str]) -> None:
    """The real command line accepts these options and arguments (nothing runs)."""
    import typer.main

    from cryptoarb.cli import app

    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("arb", list(argv), resilient_parsing=False)
    sub = cmd.get_command(ctx, argv[0])  # type: ignore[attr-defined]
    assert sub is not None, argv
    sub_ctx = sub.make_context(argv[0], list(argv[1:]), parent=ctx)
    if hasattr(sub, "get_command") and len(argv) > 1:  # a group (arb user add ...): its subcommand too
        leaf = sub.get_command(sub_ctx, argv[1])
        assert leaf is not None, argv
        leaf.make_context(argv[1], list(argv[2:]), parent=sub_ctx)


def _parses_nested(argv: list[str]) -> None:
    """Like :func:`_parses`, through command groups (``arb model swap ...``) to the leaf command,
    whose options and arguments must all parse."""
    import click
    import typer.main

    from cryptoarb.cli import app

    cmd: click.Command = typer.main.get_command(app)
    ctx = cmd.make_context("arb", [], resilient_parsing=True)
    args = list(argv)
    while isinstance(cmd, click.Group):
        sub = cmd.get_command(ctx, args[0])
        assert sub is not None, argv
        ctx = click.Context(sub, info_name=args[0], parent=ctx)
        cmd, args = sub, args[1:]
    cmd.make_context(ctx.info_name, args, parent=ctx.parent)


def check(argv: list[str], tmp: Path) -> str:
    """Run (or parse) one documented command; returns how it was checked."""
    prog, *args = argv
    if prog == "make":
        make = (ROOT / "Makefile").read_text()
        target = next(a for a in args if "=" not in a)
        assert re.search(rf"^{target}:", make, re.M), f"make {target}: no such target"
        return "make target exists (make demo runs arb demo, checked below)"
    if prog in (".", "export"):
        return "shell set-up"
    if prog == "python" and args[:2] == ["-m", "cryptoarb.bench.venues"]:
        args = [str(ROOT / a) if a.startswith("../") else a for a in args[2:]]
        if not SHARED.is_dir():
            pytest.skip("../shared/data is absent")
        r = subprocess.run([sys.executable, "-m", "cryptoarb.bench.venues", *args, "--runs", "1", "--only",
                            "KRAKEN"], capture_output=True, text=True, cwd=tmp, timeout=300)
        assert r.returncode == 0 and "kraken" in r.stdout, r.stdout + r.stderr
        return "ran on one capture"
    if prog == "python" and args and args[0] == "bench/live_crash.py":
        assert (ROOT / args[0]).is_file()
        return "its 300-trade form runs in tests/test_live_crash.py"
    if prog == "python" and args and args[0] in ("bench/risk_bench.py", "bench/fuzz_handlers.py",
                                                  "bench/alerts_bench.py", "bench/live_orders.py"):
        small = {"--runs": "1", "--calls": "2000"} if ("risk" in args[0] or "alerts" in args[0]) else \
            {"--orders": "5"} if "live_orders" in args[0] else {"--runs": "2"}
        opts = list(args[1:])  # the documented options, with small counts
        for i, a in enumerate(opts[:-1]):
            if a in small:
                opts[i + 1] = small.pop(a)
        opts += [x for kv in small.items() for x in kv]
        r = subprocess.run([sys.executable, str(ROOT / args[0]), *opts], capture_output=True, text=True,
                           cwd=tmp, timeout=300)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
        return "ran, small"
    if prog.endswith("python") and args[:2] == ["-m", "tests.exchange.binance_rest"]:
        # the local venue is started and traded against by tests/test_exchange_binance_*.py; here:
        # every documented option is one it accepts
        r = subprocess.run([sys.executable, "-m", "tests.exchange.binance_rest", "--help"], capture_output=True,
                           text=True, cwd=ROOT, timeout=60)
        assert r.returncode == 0, r.stderr
        for opt in (a for a in args[2:] if a.startswith("--")):
            assert opt in r.stdout, (opt, r.stdout)
        return "options checked against its --help"
    if prog == "python" and args and args[0] == "bench/ml_bench.py":
        if not SHARED.is_dir():
            pytest.skip("../shared/data is absent")
        r = subprocess.run([sys.executable, str(ROOT / args[0]), "--runs", "1", "--epochs", "1",
                            "--demo-seconds", "5"], capture_output=True, text=True, cwd=tmp, timeout=300)
        assert r.returncode == 0 and "s/epoch" in r.stdout and "ratio" in r.stdout, r.stdout + r.stderr
        return "ran, small"
    if prog == "python" and args and args[0] == "bench/api_bench.py":
        small = ["--runs", "1", "--duration", "2", "--rate", "50", "--clients", "4"]
        r = subprocess.run([sys.executable, str(ROOT / args[0]), *small], capture_output=True, text=True, cwd=tmp,
                           timeout=300)
        assert r.returncode == 0 and "engine raw->decision" in r.stdout and "REST at" in r.stdout, r.stdout + r.stderr
        return "ran, small"
    if prog == "python" and args and args[0] == "bench/tri_bench.py":
        r = subprocess.run([sys.executable, str(ROOT / args[0]), *args[1:], "--runs", "1", "--updates", "2000"],
                           capture_output=True, text=True, cwd=tmp, timeout=300)
        assert r.returncode == 0 and "| 1,000 |" in r.stdout, r.stdout + r.stderr
        return "ran, small"
    if prog == "python" and args and args[0] in ("bench/bus_bench.py", "bench/scale_bench.py", "bench/recv_bench.py"):
        # bus_bench needs a Redis server: runs small in tests/test_roles_bus.py::test_bus_bench_runs_small;
        # scale_bench and recv_bench run small in tests/test_scale_bench.py; here: every documented option exists
        r = subprocess.run([sys.executable, str(ROOT / args[0]), "--help"], capture_output=True, text=True,
                           cwd=tmp, timeout=60)
        assert r.returncode == 0, r.stderr
        for opt in (a for a in args[1:] if a.startswith("--")):
            assert opt in r.stdout, (opt, r.stdout)
        return "options checked against its --help"
    if prog == "python" and args and args[0] == "bench/cold_start_bench.py":
        # the documented options, 4 books per venue, one run: every book valid in each mode
        opts = list(args[1:])
        for i, a in enumerate(opts[:-1]):
            if a in ("--books", "--repeat"):
                opts[i + 1] = "4" if a == "--books" else "1"
        r = subprocess.run([sys.executable, str(ROOT / args[0]), *opts], capture_output=True, text=True,
                           cwd=tmp, timeout=300)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
        assert '"median_all_valid_s": null' not in r.stdout and "median_all_valid_s" in r.stdout, r.stdout
        return "ran, small"
    if prog == "python" and args and args[0] == "bench/discovery_bench.py":
        r = subprocess.run([sys.executable, str(ROOT / args[0]), "20"], capture_output=True, text=True, cwd=tmp,
                           timeout=300)
        assert r.returncode == 0 and "dry-run s:" in r.stdout, r.stdout + r.stderr
        return "ran, small"
    if prog == "python" and args and args[0] == "bench/dex_bench.py":
        assert (ROOT / args[0]).is_file()
        return "runs in test_dex_bench_keeps_measuring_when_pool_state_ages"
    if prog in ("docker", "helm", "kubectl", "kubeseal", "cp"):
        from tests.test_deploy import check_deploy_command

        return check_deploy_command(argv)  # no Docker, cluster or helm binary here: docs/deploy.md
    assert prog == "arb", f"no check for documented command {argv}"
    root: list[str] = []  # the root log options (tests/test_observability.py checks them)
    while args and args[0] in ("--log-level", "--log-file", "--log-format"):
        root, args = [*root, *args[:2]], args[2:]
    sub = args[0]
    if sub.startswith("-"):  # --version, --help
        r = _arb(args, tmp)
        assert r.returncode == 0 and r.stdout.strip(), r.stderr
        return "ran"
    if sub in ("features", "retrain", "model"):
        # run end to end (export, retrain, shadow, swap, roll back) on replayed captures by tests/test_ml.py
        _parses_nested(args)
        return "parsed"
    if sub in ("kill", "resume"):
        _parses(args)  # they need a running engine: tests/test_kill_cli.py runs them against a demo
        return "parsed"
    if sub in ("engine", "recorder", "analytics"):
        _parses(args)  # they need Redis and PostgreSQL: run for real by tests/test_roles.py
        return "parsed"
    if sub in ("run", "record"):
        _parses(args)  # live venues: no network here (tests/test_live.py runs both on a local venue)
        return "parsed"
    if sub == "demo":
        opts = [a for a in args]
        if "--duration" in opts:
            opts[opts.index("--duration") + 1] = "0.5"
        r = _arb([*opts, "--no-store", "--no-live"], tmp)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        return "ran (0.5 s)"
    if sub == "inventory":
        _parses(args)  # the documented files are the reader's; here the default settings' balances
        r = _arb(["inventory", "--json"], tmp)
        assert r.returncode == 0 and '"holdings"' in r.stdout, r.stdout + r.stderr
        return "parsed; ran on the default settings"
    if sub in ("api", "user", "runs", "trades"):
        _parses(args)  # they serve or change a database: tests/test_api_*.py run them on throwaway ones
        return "parsed"
    if sub in ("venues", "show"):
        r = _arb(args, tmp)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
        return "ran"
    if sub == "cycles":
        if not SHARED.is_dir():
            pytest.skip("../shared/data is absent")
        r = _arb([str(ROOT / a) if a.startswith("../") else a for a in args], tmp)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
        return "ran"
    if sub in ("replay", "bench"):
        r = _arb([*root, *_heads(tmp, args)], tmp)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
        return f"ran on the first {HEAD_LINES} lines of each capture"
    raise AssertionError(f"no check for documented command {argv}")


COMMANDS = doc_commands()


def test_the_docs_have_commands() -> None:
    assert len(COMMANDS) >= 10 and any(a[:2] == ["arb", "replay"] for _, a in COMMANDS)


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[f"{w}:{' '.join(a)[:50]}" for w, a in COMMANDS])
def test_documented_command(where: str, argv: list[str], tmp_path: Path) -> None:
    check(argv, tmp_path)


def test_documented_toml_loads_as_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every TOML example is valid settings: no unknown key, no invalid value."""
    from cryptoarb.config import load_settings

    for k in [k for k in os.environ if k.upper().startswith("ARB_")]:
        monkeypatch.delenv(k)
    n = 0
    for doc in DOCS:
        for lang, body in _blocks(doc.read_text()):
            if lang != "toml":
                continue
            tomllib.loads(body)
            f = tmp_path / f"{doc.stem}{n}.toml"
            f.write_text(body)
            load_settings(f)
            n += 1
    assert n >= 2


def test_the_readme_replay_output_is_not_tracked() -> None:
    """The tour writes summary.json (and arb record captures/, cryptoarb.db) where it runs."""
    r = subprocess.run(["git", "check-ignore", "summary.json", "captures/x.gz", "cryptoarb.db"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.stdout.split() == ["summary.json", "captures/x.gz", "cryptoarb.db"], r.stdout + r.stderr


def test_readme_says_where_the_shared_data_comes_from() -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Test data"):]
    for what in ("../shared/data", "hftbacktest", "cryptofeed", "nautilus_trader"):
        assert what in section


def test_read_records_takes_a_str_path(tmp_path: Path) -> None:
    """docs/venues.md: ``read_records(path)`` -- a str works as well as a Path."""
    from cryptoarb.replay.cryptofeed import RECV, read_records

    f = tmp_path / "cap"
    f.write_text("wss://ws.kraken.com <-> 1.5\n1.75: {\"a\":1}\n")
    recs = list(read_records(str(f)))
    assert [r.kind for r in recs][-1] == RECV and recs[-1].payload == b'{"a":1}'


def test_dex_bench_keeps_measuring_when_pool_state_ages(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """docs/benchmarks.md's ``python bench/dex_bench.py``: it used to die with StalePoolError once
    the pools' state was older than max_age_s (after ~2 minutes) and print nothing. A clock that
    advances 10 s per reading ages the state past 30 s within the run."""
    import importlib.util
    import itertools
    import types

    from dex.chainenv import artifacts_missing

    why = artifacts_missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    from cryptoarb.dex import pools

    ticks = itertools.count(1_000_000.0, 10.0)
    monkeypatch.setattr(pools, "time", types.SimpleNamespace(monotonic=lambda: next(ticks)))
    spec = importlib.util.spec_from_file_location("dex_bench", ROOT / "bench" / "dex_bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["--runs", "1", "--scale", "0.01"])
    out = capsys.readouterr().out
    assert "V2 quote + optimal size + exact re-price (detector)" in out
    assert out.count("\n") == 2 + 9, out  # header, rule, nine measured rows
