"""Debugging aid: ``python -m cryptoarb.bench.ccxt_venues FILE...`` prints :func:`bench_ccxt` of one capture."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cryptoarb.bench.ccxt_venues import bench_ccxt


def _main_paths(paths: list[str]) -> None:
    print(json.dumps(bench_ccxt([Path(p) for p in paths] if len(paths) > 1 else paths[0], runs=1), indent=2))


if __name__ == "__main__":
    _main_paths(sys.argv[1:])
