"""Perpetuals' instruments from ccxt's own market parsing (issue 8, "More markets": OKX and Gate
perpetuals end to end). The raw entries are written by hand from the venues' documented
instrument fields (OKX ``/api/v5/public/instruments``, Gate ``/futures/usdt/contracts``); ccxt
parses them offline, ``from_ccxt_market`` turns them into ours: kind, contract size, lot."""

from __future__ import annotations

import ccxt
import pytest

from cryptoarb.core.instruments import Kind
from cryptoarb.live.markets import from_ccxt_market
from cryptoarb.venues.catalog import Catalog
from cryptoarb.venues.okx import OkxHandler


def _okx(inst_id: str, ct_val: str, ct_val_ccy: str, settle: str, ct_type: str) -> dict[str, str]:
    base, quote, _ = inst_id.split("-")
    return {"instId": inst_id, "instType": "SWAP", "uly": f"{base}-{quote}", "instFamily": f"{base}-{quote}",
            "baseCcy": "", "quoteCcy": "", "settleCcy": settle, "ctVal": ct_val, "ctMult": "1",
            "ctValCcy": ct_val_ccy, "ctType": ct_type, "lotSz": "0.01", "minSz": "0.01", "tickSz": "0.1",
            "lever": "100", "state": "live", "listTime": "1611916828000", "expTime": "", "alias": "",
            "optType": "", "stk": "", "category": "1"}


@pytest.mark.parametrize(("raw", "symbol", "kind", "size", "base_at_50k"), [
    (_okx("BTC-USDT-SWAP", "0.01", "BTC", "USDT", "linear"), "BTC/USDT:USDT", Kind.LINEAR, 0.01, 0.01),
    (_okx("BTC-USD-SWAP", "100", "USD", "BTC", "inverse"), "BTC/USD:BTC", Kind.INVERSE, 100.0, 0.002),
])
def test_okx_swaps_carry_their_contract_value(raw: dict[str, str], symbol: str, kind: Kind, size: float,
                                              base_at_50k: float) -> None:
    ex = ccxt.okx()
    inst = from_ccxt_market("okx", ex.parse_market(raw), int(ex.precisionMode))
    assert (inst.symbol, inst.kind, inst.contract_size, inst.exchange_symbol) == (symbol, kind, size, raw["instId"])
    assert inst.base_qty(1.0, 50_000.0) == pytest.approx(base_at_50k)  # one contract, in BTC
    h = OkxHandler("okx", Catalog([inst]), lambda b, t: None)
    assert h.unify(raw["instId"]) == symbol and h.url_for(inst) == h.ws_url
