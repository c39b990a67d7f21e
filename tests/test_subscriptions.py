"""Issue #15: a live run subscribes the books only (the engine consumes no trades or tickers:
on Binance they were 93.5 % of the frames); a recording (a feed with a sink) keeps every stream."""

from __future__ import annotations

import re

import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.engine import Engine
from cryptoarb.live.feed import VenueFeed
from cryptoarb.venues.registry import NATIVE
from feed_transports import feed_transport  # noqa: F401 -- parametrizes every test of the module

pytestmark = pytest.mark.usefixtures("feed_transport")

#: venues that stream trades (or tickers) besides their books when asked
WITH_TRADES = {"binance", "binanceus", "binanceusdm", "binancecoinm", "okx", "bitget", "bitfinex", "gate", "kucoin"}
_EVENTS = re.compile(r"trade|ticker|/market/match", re.I)


class _Sink:
    def frame(self, venue: str, local_ns: int, raw: bytes) -> None: ...
    def rest(self, venue: str, symbol: str, local_ns: int, body: bytes) -> None: ...


def _subscriptions(venue: str, sink: _Sink | None) -> list[str]:
    inst = Instrument(venue, "BTC/USDT", "BTC", "USDT", Kind.SPOT, 0.01, 1e-6, 0.0, 1.0, Fees(0.001), "BTC-USDT")
    engine = Engine(load_settings(storage={"enabled": False}), [venue], instruments=[])
    engine.catalog.add(inst)
    feed = VenueFeed(engine, venue, [inst], url="ws://127.0.0.1:9/", rest=object(), sink=sink)  # type: ignore[arg-type]
    return feed.handler.subscribe_messages([inst])


@pytest.mark.parametrize("venue", sorted(NATIVE))
def test_a_live_run_subscribes_no_trade_or_ticker_stream(venue: str) -> None:
    msgs = _subscriptions(venue, None)
    assert msgs and not any(_EVENTS.search(m) for m in msgs), msgs


@pytest.mark.parametrize("venue", sorted(WITH_TRADES & set(NATIVE)))
def test_a_recording_subscribes_the_trades_too(venue: str) -> None:
    live, recorded = _subscriptions(venue, None), _subscriptions(venue, _Sink())
    assert any(_EVENTS.search(m) for m in recorded), recorded
    assert len(" ".join(recorded)) > len(" ".join(live))
