"""Mutation fuzz of every venue handler on its real captured messages (``cryptoarb.bench.fuzz``):
seeded, bounded for CI (the longer run: ``python bench/fuzz_handlers.py --runs N``, figures in
docs/fuzz.md). No mutated message may crash the replay path, leave a VALID book breaking the
book invariants, or leave a VALID book different from the clean replay where the venue's
sequence numbers or checksums make the difference detectable."""

from __future__ import annotations

import pytest

from cryptoarb.bench.fuzz import DEFECTS, KINDS, fuzz, load_streams
from tests.conftest import require_shared_data

pytestmark = pytest.mark.realdata

RUNS_PER_VENUE = 2 * len(KINDS)  # every kind twice per venue


def test_mutated_captures_never_crash_nor_leave_a_wrong_valid_book() -> None:
    streams = load_streams(require_shared_data(), window=600)
    assert len(streams) == 16  # 13 cryptofeed sessions + the Binance spot, USDⓈ-M and COIN-M captures
    report = fuzz(streams, RUNS_PER_VENUE, seed=8)
    assert report.controls == len(streams)
    assert not report.defects, "\n".join(report.defects)
    total = report.total()
    assert sum(total.values()) == RUNS_PER_VENUE * len(streams)
    assert all(total[c] == 0 for c in DEFECTS)
    assert total["detected"] > len(streams)  # the mutations do reach the handlers' checks
