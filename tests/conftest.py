"""Shared fixtures.

Real exchange captures live in ``../shared/data`` beside the repository (never copied into
it). Tests that need them skip when the folder is absent on a developer machine, and fail
when it is absent in CI (env var ``CI`` set), where it must be present.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.exchange.fixtures import binance_venues  # noqa: F401  (a fixture: the local Binance REST venue)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BINANCE_DIR = "binance-2024-08-08"


def require_shared_data(sub: str = "") -> Path:
    """``DATA / sub``, or skip (fail in CI) when the shared data folder is absent."""
    path = DATA / sub if sub else DATA
    if not path.is_dir():
        msg = f"../shared/data is absent (real exchange captures); CI has it [{path}]"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip("../shared/data is absent (real exchange captures); CI has it")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The Binance captures folder, ``../shared/data/binance-2024-08-08``."""
    return require_shared_data(BINANCE_DIR)


@pytest.fixture(scope="session")
def shared_data_root() -> Path:
    """``../shared/data`` itself (``exchange-captures/``, ``exchange-fixtures/``, ...)."""
    return require_shared_data()
