"""The crash-safety run of tests/test_live_crash.py, longer: ``arb run --live --trade`` on two
local Binance venues, SIGKILLed at random points until ``--trades`` trades were made, then the
checks (nothing lost or doubled, the journal = the venues' orders, the ledger = their balances).

    .venv/bin/python bench/live_crash.py --trades 1000 --seed 3

Prints the figures as JSON (trades, kills, orders, lost, duplicated, ...); exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tests.livecrash import crash_run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=3600.0, help="stop killing after this long")
    args = ap.parse_args()
    data = ROOT.parent / "shared" / "data" / "binance-2024-08-08"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            figures = crash_run(Path(tmp), data, min_trades=args.trades, seed=args.seed, max_kills=10_000,
                                time_budget_s=args.budget_s)
        except AssertionError as e:
            print(f"FAILED: {e}", file=sys.stderr)
            return 1
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
