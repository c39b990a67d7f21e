"""Crash safety of live trading (issue 10): ``arb run --live --trade`` on two local Binance
venues, SIGKILLed at random points at least until 300 trades were made, restarted each time;
then no order is lost or doubled, every order is reconciled, the journal equals the venues'
order state and the ledger their balances (``tests/livecrash.py``; longer: ``bench/live_crash.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.livecrash import crash_run


@pytest.mark.timeout(420)
def test_sigkill_at_random_points_loses_and_doubles_nothing(tmp_path: Path, shared_data: Path) -> None:
    figures = crash_run(tmp_path, shared_data, min_trades=300, seed=10)
    print("crash figures:", json.dumps(figures))
    assert figures["exits"] == 0  # every start-up succeeded (a refusal would be in arb.log)
    assert figures["trades"] >= 300
    assert figures["kills"] >= 10
    assert figures["kills_with_orders_in_flight"] >= 1
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["unresolved"] == 0
