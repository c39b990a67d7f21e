"""Where each native handler connects, checked against ccxt.pro 4.5.90 (which tracks the venues).

Issue 8, defect 1: Binance split the USDⓈ-M WebSocket base URL into ``/public``, ``/market`` and
``/private`` and retired ``wss://fstream.binance.com/stream``; every stream we subscribe must be
sent to the endpoint ccxt.pro routes it to (``get_ws_url`` + ``get_future_ws_category``).
"""

from __future__ import annotations

import orjson
import pytest

from cryptoarb.venues.binance import BinanceHandler, stream_category
from cryptoarb.venues.catalog import Catalog


def _ccxt_url(venue: str, channel: str) -> str:
    """ccxt.pro's endpoint for a market-data ``channel`` (its raw ``/ws`` form, as ``/stream``)."""
    import ccxt.pro

    ex = getattr(ccxt.pro, venue)()
    kind = {"binance": "spot", "binanceusdm": "linear", "binancecoinm": "inverse", "binanceus": "spot"}[venue]
    url = ex.get_ws_url(kind, ex.get_future_ws_category(channel))
    assert url.endswith("/ws")
    return url[:-3] + "/stream"


@pytest.mark.parametrize("venue", ["binance", "binanceusdm", "binancecoinm", "binanceus"])
def test_every_binance_stream_goes_to_the_endpoint_ccxt_routes_it_to(venue: str) -> None:
    cat = Catalog()
    h = BinanceHandler(venue, cat, lambda b, t: None)
    h.all_streams = True  # as when recording: every stream, each to its endpoint
    insts = [i for i in cat.all() if i.venue == venue]
    assert insts
    streams = [s for m in h.subscribe_messages(insts) for s in orjson.loads(m)["params"]]
    assert {s.split("@")[1] for s in streams} == {"depth", "bookTicker", "trade"}
    for inst in insts:
        url = h.url_for(inst)
        for s in streams:
            if s.startswith(inst.exchange_symbol.lower() + "@"):
                assert url == _ccxt_url(venue, s.split("@")[1]), s
    if venue == "binanceusdm":
        assert all(h.url_for(i) == "wss://fstream.binance.com/public/stream" for i in insts)
        assert stream_category("markPrice") == "market"  # what would need the other endpoint


def test_the_retired_usdm_url_is_not_used_anywhere() -> None:
    h = BinanceHandler("binanceusdm", Catalog(), lambda b, t: None)
    assert h.ws_url != "wss://fstream.binance.com/stream"
