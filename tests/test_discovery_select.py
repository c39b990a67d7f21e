"""Discovery's selection on ccxt's own market structures (``tests/ccxt_markets/``: trimmed copies
of ccxt's offline markets for OKX, Bybit and Bitget, MIT; each lists BTC/USDT spot, the linear
BTC/USDT:USDT and the inverse BTC/USD:BTC perpetuals), loaded into ccxt exchanges with
``set_markets`` as ``load_markets`` would leave them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from cryptoarb.core.instruments import Kind
from cryptoarb.live.discovery import kind_of, select

MARKETS = Path(__file__).parent / "ccxt_markets"


def _exchanges(**edits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    import ccxt.async_support as ccxt_async

    out = {}
    for venue in ("okx", "bybit", "bitget"):
        markets = json.loads((MARKETS / f"{venue}.json").read_text())
        for sym, change in edits.get(venue, {}).items():
            markets[sym] = {**copy.deepcopy(markets[sym]), **change}
        ex = getattr(ccxt_async, venue)()
        ex.set_markets(list(markets.values()))
        out[venue] = ex
    return out


def test_linear_swaps_join_the_spot_group_of_their_quote_and_inverse_ones_need_their_quote() -> None:
    d = select(_exchanges(), ["USDT", "USD"], ["spot", "swap"], 2)
    assert sorted(g.name for g in d.groups) == ["BTC/USDT", "BTC/USDT basis"]
    basis = next(g for g in d.groups if g.label == "basis")
    assert sorted(basis.members) == sorted(f"{v} {s}" for v in ("okx", "bybit", "bitget")
                                           for s in ("BTC/USDT", "BTC/USDT:USDT"))
    # no USD spot market anywhere: the inverse contracts compare with nothing and are not followed
    assert all(i.kind is not Kind.INVERSE for insts in d.kept.values() for i in insts)
    assert d.books == 6


def test_declared_equivalents_bring_the_inverse_contracts_into_the_basis_group() -> None:
    d = select(_exchanges(), ["USDT", "USD"], ["spot", "swap"], 2, equivalents=[{"USD", "USDT"}])
    inverse = sorted(i.key for insts in d.kept.values() for i in insts if i.kind is Kind.INVERSE)
    assert inverse == ["bitget BTC/USD:BTC", "bybit BTC/USD:BTC", "okx BTC/USD:BTC"]
    basis = next(g for g in d.groups if g.label == "basis")
    assert set(inverse) <= set(basis.members)
    bitget = next(i for i in d.kept["bitget"] if i.kind is Kind.INVERSE)
    assert bitget.base_sized  # the venue's rule: its coin-margined contracts are sized in BTC


def test_inactive_dated_and_other_quotes_are_left_out() -> None:
    ex = _exchanges(okx={"BTC/USDT": {"active": False}},
                    bybit={"BTC/USDT:USDT": {"expiry": 1735286400000, "type": "future", "swap": False,
                                             "future": True}})
    d = select(ex, ["USDT"], ["spot", "swap"], 2)
    kept = {v: sorted(i.symbol for i in insts) for v, insts in d.kept.items()}
    assert kept == {"okx": ["BTC/USDT:USDT"], "bybit": ["BTC/USDT"], "bitget": ["BTC/USDT", "BTC/USDT:USDT"]}
    assert select(_exchanges(), ["USDT"], ["swap"], 2).books == 0  # swaps alone: no spot to compare with
    assert d.candidates == {"okx": 1, "bybit": 1, "bitget": 2}


def test_kind_of_ccxt_market_types() -> None:
    assert kind_of({"type": "spot", "spot": True}) is Kind.SPOT
    assert kind_of({"type": "swap", "swap": True, "linear": True}) is Kind.LINEAR
    assert kind_of({"type": "swap", "swap": True, "inverse": True}) is Kind.INVERSE
    assert kind_of({"type": "future", "future": True, "expiry": 1}) is None
    assert kind_of({"type": "option", "option": True}) is None
