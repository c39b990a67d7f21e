"""Cycles on the real captures in ``../shared/data/exchange-captures`` (cryptofeed sessions).

No capture holds a 3-leg cycle on one venue (checked for every file: the books each builds are
listed in docs/triangular.md). The Coinbase session (legacy Pro ``level2``, April 2021) holds a
real 4-leg cycle through GBP: SKL/GBP, SKL/BTC, BAND/BTC, BAND/GBP. It is evaluated on the real
books by Bellman-Ford during the replay and at the end, and its rate is checked here against the
final books read independently. Kraken and Bitstamp give the bad-input cases.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.accounting import fee_asset
from cryptoarb.engine.engine import Engine
from cryptoarb.replay.reader import parse_sources
from cryptoarb.replay.run import replay
from tests.test_cli import arb


@pytest.fixture(scope="module")
def captures(shared_data_root: Path) -> Path:
    return shared_data_root / "exchange-captures"


def test_a_real_four_leg_cycle_is_evaluated_on_the_coinbase_books(captures: Path, tmp_path: Path) -> None:
    cap = captures / "COINBASE.ws.28.0"
    out = tmp_path / "cycles.json"
    r = arb("cycles", str(cap), "--start", "GBP", "--max-legs", "4", "--json", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(out.read_text())
    v = report["venues"]["coinbaseexchange"]
    assert report["scans"] >= 10  # Bellman-Ford ran through the capture, once per second of it
    names = {c["name"]: c for c in v["cycles"]}
    assert set(names) == {"GBP > SKL > BTC > BAND > GBP", "GBP > BAND > BTC > SKL > GBP"}
    # the same rates from the final books, computed here: the orientation of each market decides
    # bid or 1/ask, the venue's fee rule decides (1 - fee) or 1 / (1 + fee)
    engine = Engine(load_settings(storage={"enabled": False}), ["coinbaseexchange"])
    replay(engine, parse_sources([str(cap)]))
    for c in names.values():
        rate = 1.0
        ccy = "GBP"
        for key in c["markets"]:
            b = engine.books[key]
            inst = b.instrument
            f = inst.fees.taker
            if ccy == inst.quote:  # buy the base at the ask
                paid = fee_asset(inst, "buy") == inst.quote
                rate *= (1.0 / (1.0 + f) if paid else 1.0 - f) / b.ask
                ccy = inst.base
            else:
                paid = fee_asset(inst, "sell") == inst.base
                rate *= b.bid * (1.0 / (1.0 + f) if paid else 1.0 - f)
                ccy = inst.quote
        assert ccy == "GBP"
        assert math.isclose(c["rate"], rate, rel_tol=1e-12), (c, rate)
    # neither direction paid at the end, so Bellman-Ford reports nothing there
    assert v["bellman_ford"] == [] and all(c["rate"] < 1.0 for c in names.values())


def test_markets_that_form_no_cycle_exit_3_and_an_unlisted_start_exits_2(captures: Path) -> None:
    r = arb("cycles", str(captures / "KRAKEN.ws.50.0"), "--start", "CHF")
    out = r.stdout + r.stderr
    assert r.returncode == 3 and "Traceback" not in out, out
    assert "form no 3-leg cycle through CHF" in out and "BTC/CHF" in out and "ETH/CHF" in out
    r = arb("cycles", str(captures / "KRAKEN.ws.50.0"), "--start", "USDT")
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in out, out
    assert "error: kraken: start currency 'USDT' is not listed" in out
    r = arb("cycles", str(captures / "KRAKEN.ws.50.0"), "--start", "U$D")
    assert r.returncode == 2 and "--start 'U$D': not a currency code" in r.stdout + r.stderr
