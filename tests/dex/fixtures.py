"""Fixtures shared by tests/test_dex_*.py (imported there; pytest finds them by name).

``dex_env`` deploys the contracts once per process and fails with the install command when the
npm artifacts are missing; ``chain`` gives each test a clean chain by EVM snapshot/revert.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dex.chainenv import Env, artifacts_missing, get_env


@pytest.fixture(scope="session")
def dex_env() -> Env:
    why = artifacts_missing()
    if why:
        pytest.fail(why, pytrace=False)
    return get_env()


@pytest.fixture
def chain(dex_env: Env) -> Iterator[Env]:
    """The deployed environment, reverted to its deployed state after the test."""
    snap = dex_env.tester.take_snapshot()
    try:
        yield dex_env
    finally:
        dex_env.tester.enable_auto_mine_transactions()
        dex_env.tester.revert_to_snapshot(snap)
