"""Mutation fuzz of the venue handlers, long mode (the suite runs a short one: tests/test_fuzz.py).

    python bench/fuzz_handlers.py [--runs 400] [--window 2000] [--seed 1] [--data ../shared/data]

``--runs`` mutated replays per venue (mutation kinds in turn), each of the venue's first
``--window`` captured messages; prints the per-venue and per-mutation tables of docs/fuzz.md
and every defect found, and exits 1 when there is one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cryptoarb.bench.fuzz import fuzz, kind_table, load_streams, table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=400, help="mutated runs per venue")
    ap.add_argument("--window", type=int, default=2000, help="messages per venue")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    a = ap.parse_args()
    if not (a.data / "exchange-captures").is_dir():
        print(f"error: no captures in {a.data} (the shared data folder)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    streams = load_streams(a.data, a.window)
    report = fuzz(streams, a.runs, seed=a.seed)
    took = time.perf_counter() - t0
    print(f"{sum(report.total().values()):,} mutated runs, {report.messages:,} messages, seed {a.seed}, "
          f"window {a.window}, {took:.0f} s\n")
    print("\n".join(table(report)))
    print()
    print("\n".join(kind_table(report)))
    for d in report.defects:
        print("DEFECT", d)
    return 1 if report.defects else 0


if __name__ == "__main__":
    sys.exit(main())
