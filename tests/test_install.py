"""Installs that reproduce: the tested dependency set is pinned, and what is installed is it."""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"requirements.lock: {line!r} is not pinned with =="
        pins[canonicalize_name(name)] = version
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    pins = _lock()
    declared = _declared()
    assert len(declared) > 10
    for req in declared:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is declared in pyproject.toml but not pinned in requirements.lock"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, outside pyproject's {req.specifier}")


def test_the_environment_under_test_is_the_locked_one() -> None:
    """make test installs from the lock: a drifted package means the lock no longer says what was tested."""
    drift = []
    for name, version in _lock().items():
        try:
            have = md.version(name)
        except md.PackageNotFoundError:
            drift.append(f"{name} (locked {version}) is not installed")
            continue
        if have != version:
            drift.append(f"{name} {have} installed, {version} locked")
    assert not drift, "; ".join(drift)


def test_the_makefile_installs_from_the_lock() -> None:
    make = (ROOT / "Makefile").read_text()
    assert "pip install -q -r requirements.lock" in make and "pip install -q --no-deps -e ." in make
    assert re.search(r"^lock:", make, re.M), "no documented way to refresh the lock"


def test_license_is_an_spdx_string() -> None:
    """``license = { text = ... }`` makes setuptools print a deprecation banner on every install."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(pyproject["project"]["license"], str)


def _arb(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "cryptoarb.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL)


def test_help_short_flag_version_and_no_bool_noise() -> None:
    from cryptoarb import __version__

    for args in (["-h"], ["replay", "--help"]):
        r = _arb(*args)
        assert r.returncode == 0 and "Usage:" in r.stdout, (args, r.stdout, r.stderr)
        assert "<bool>" not in r.stdout, r.stdout
    for flag in ("--version",):
        r = _arb(flag)
        assert r.returncode == 0 and r.stdout.strip() == f"cryptoarb {__version__}", r.stdout + r.stderr
