"""pytest fixtures for the local Binance venue (registered in tests/conftest.py).

``binance_venues`` is a factory: ``binance_venues("a")`` starts a venue process named "a" (its
own state directory under the test's tmp_path, a free port of 127.0.0.1) on the real spot
BTC/USDT capture, and every venue it started is stopped when the test ends. Call it twice for
two venues (point ccxt's ``binance`` at one and ``binanceus`` at the other).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.exchange.process import LocalBinance

SPOT_FILES = ("spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz")
DEFAULT_START = 2000  # capture lines before the held book (past the REST snapshot line)


@pytest.fixture
def binance_venues(tmp_path: Path, shared_data: Path) -> Iterator[Callable[..., LocalBinance]]:
    started: list[LocalBinance] = []

    def make(name: str = "venue", start_line: int = DEFAULT_START, pace: float = 0.0, **kw: Any) -> LocalBinance:
        v = LocalBinance(tmp_path / name, [shared_data / f for f in SPOT_FILES], start_line, pace, **kw)
        started.append(v)
        return v.start()

    try:
        yield make
    finally:
        for v in started:
            v.stop()
